"""Train a small melody model on your own folder of MIDI files, then sample from it.

    python examples/train_on_my_midi.py path/to/midi --steps 300 --out out/my-model

Bad files (corrupt, drum-only, empty) are skipped and listed; training goes on with the rest.
"""

import argparse

import hf_melody
from hf_melody import MelodyPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a folder of .mid/.midi files (searched recursively)")
    parser.add_argument("--preset", default="original", help="original, deeper-thinner, wider-shallower, small")
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--out", default="out/my-model", help="where the bundle is written")
    args = parser.parse_args()

    metrics = hf_melody.train({
        "dataset": args.folder, "preset": args.preset, "max_steps": args.steps, "output_dir": args.out,
        "eval_steps": max(1, args.steps // 5), "save_steps": args.steps, "validation_ratio": 0.1, "test_ratio": 0.0,
        "dropout": 0.0,
    })
    print(f"validation loss {metrics.get('eval_loss', float('nan')):.3f}; bundle in {args.out}")
    melody = MelodyPipeline.from_pretrained(args.out)(seed=0, max_new_notes=32)[0]
    melody.save_midi(f"{args.out}/sample.mid")
    print(f"sample: {args.out}/sample.mid ({melody.num_notes} notes)")


if __name__ == "__main__":
    main()
