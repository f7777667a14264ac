"""Does fine-tuning move a model's samples toward a new style? Musical-statistics overlap before vs after.

Exports the soprano lines of the Bach chorales (music21 corpus) to a temporary MIDI folder, as a user's folder
would be, fine-tunes a bundle on it with `recipes/finetune_style.yaml` (style `other`), and compares samples of
the model before and after with the held-out chorales (Yang & Lerch overlapping area per feature, 1 = as close
to the chorales as the chorales are to each other). Prints one JSON line per model.

    python benchmarks/quality/style_finetune.py --model folk-base --steps 150
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="folk-base", help="bundle to fine-tune (name, folder or Hub id)")
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps")
    parser.add_argument("--samples", type=int, default=40, help="samples per model")
    parser.add_argument("--train-melodies", type=int, default=300, help="chorale melodies in the MIDI folder")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from hf_melody import MelodyPipeline, load_melodies
    from hf_melody.data.dataset import split_of
    from hf_melody.evaluation.statistics import compare_sets
    from hf_melody.training.trainer import parse_args, train

    chorales, _ = load_melodies("bach-chorales", progress=False)
    held_out = [m for m in chorales if split_of(m.id, 0.25, 0.0, seed=7) == "validation"]
    train_set = [m for m in chorales if m not in held_out][: args.train_melodies]
    reference = [m.notes for m in held_out]
    ref_ts = [m.time_signatures for m in held_out]

    def score(pipe, style, label):
        samples = pipe(num_return_sequences=args.samples, seed=0, max_new_notes=48, style=style)
        notes = [[list(n) for n in s.notes] for s in samples]
        tss = [[[t.time, t.numerator, t.denominator] for t in s.score.time_signatures] for s in samples]
        report = compare_sets(notes, reference, tss, ref_ts)
        print(json.dumps({"benchmark": "style_finetune", "model": label, "style": style,
                          "mean_overlap": round(report["mean_overlap"], 3),
                          "overlap": {k: round(v, 3) for k, v in report["overlap"].items() if v is not None},
                          "samples": args.samples, "reference_melodies": len(reference)}), flush=True)
        return report["mean_overlap"]

    before = score(MelodyPipeline.from_pretrained(args.model), None, f"{args.model} (before)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "chorales"
        folder.mkdir()
        for m in train_set:
            m.to_score().dump_midi(str(folder / f"{m.id.replace('/', '_')}.mid"))
        start = time.perf_counter()
        metrics = train(*parse_args([
            "--config", str(ROOT / "recipes/finetune_style.yaml"), "--init_from", args.model,
            "--dataset", str(folder), "--output_dir", str(Path(tmp) / "tuned"), "--max_steps", str(args.steps),
            "--eval_steps", str(args.steps), "--save_strategy", "no", "--disable_tqdm", "true"]))
        seconds = time.perf_counter() - start
        after = score(MelodyPipeline.from_pretrained(Path(tmp) / "tuned"), "other", f"{args.model} (fine-tuned)")
    print(json.dumps({"benchmark": "style_finetune", "impl": "comparison", "mean_overlap_before": round(before, 3),
                      "mean_overlap_after": round(after, 3), "finetune_steps": args.steps,
                      "finetune_seconds": round(seconds, 1), "train_melodies": len(train_set),
                      "final_eval_loss": round(metrics.get("eval_loss", float("nan")), 4)}), flush=True)


if __name__ == "__main__":
    main()
