"""Train a GPT-2 melody model from a YAML recipe; any key can be overridden on the command line.

    accelerate launch recipes/train.py --config recipes/original.yaml --dataset essen --max-steps 300

Run `python recipes/train.py --help` for every option. From Python: `hf_melody.train("recipes/original.yaml")`.
"""

import sys

import hf_melody
from hf_melody.errors import HFMelodyError
from hf_melody.training.arguments import training_parser


def main() -> int:
    parser = training_parser("recipes/train.py")
    if "-h" in sys.argv or "--help" in sys.argv:
        parser.print_help()
        return 0
    try:
        model_args, data_args, training_args = parser.parse_args_and_config()
        metrics = hf_melody.train(model_args, data_args, training_args)
    except HFMelodyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if training_args.should_log:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
