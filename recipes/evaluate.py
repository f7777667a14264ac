"""Compare melody models on one dataset: results.json, loss curves, bits-per-note bars, improvement heatmap.

    python recipes/evaluate.py --config recipes/evaluate.yaml --models original folk-base --output-dir out/eval

Run `python recipes/evaluate.py --help` for every option. From Python: `hf_melody.evaluate("recipes/evaluate.yaml")`.
"""

import logging
import sys

import hf_melody
from hf_melody.errors import HFMelodyError
from hf_melody.evaluation import results_table
from hf_melody.evaluation.arguments import evaluation_parser


def main() -> int:
    parser = evaluation_parser("recipes/evaluate.py")
    if "-h" in sys.argv or "--help" in sys.argv:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        [config] = parser.parse_args_and_config()
        results = hf_melody.evaluate(config)
    except HFMelodyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(results_table(results))
    print(f"wrote {config.output_dir}/results.json and {len(results['plots'])} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
