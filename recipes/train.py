"""Train a GPT-2 melody model from a YAML recipe; any key can be overridden on the command line.

    accelerate launch recipes/train.py --config recipes/original.yaml --dataset essen --max_steps 300

Run `python recipes/train.py --help` for every option.
"""

import sys

from hf_melody.errors import HFMelodyError
from hf_melody.training import make_parser, parse_args, train


def main() -> int:
    if "-h" in sys.argv or "--help" in sys.argv:
        make_parser().print_help()
        return 0
    try:
        model_args, data_args, training_args = parse_args()
        metrics = train(model_args, data_args, training_args)
    except HFMelodyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if training_args.should_log:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
