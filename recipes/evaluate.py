"""Compare melody models on one dataset: results.json, loss curves, bits-per-note bars, improvement heatmap.

    python recipes/evaluate.py --config recipes/evaluate.yaml --models original folk-base --out_dir out/eval

Run `python recipes/evaluate.py --help` for every option.
"""

import logging
import sys

from hf_melody.errors import HFMelodyError
from hf_melody.evaluation import evaluate_models, parse_evaluation_args, results_table


def main() -> int:
    if "-h" in sys.argv or "--help" in sys.argv:
        from transformers import HfArgumentParser

        from hf_melody.evaluation import EvaluationArguments

        HfArgumentParser(EvaluationArguments).print_help()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = parse_evaluation_args()
        results = evaluate_models(**args.to_kwargs())
    except HFMelodyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(results_table(results))
    print(f"wrote {args.out_dir}/results.json and {len(results['plots'])} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
