"""The Kinderlieder benchmark: 10-fold cross-validation by melody on essen/kinder0 (213 tunes), as in IDyOM.

For each fold:
  scratch   a fresh GPT-2 (`--preset`) trained on the fold's training melodies only;
  finetune  a model pretrained on the other corpora (kinder0 excluded; default the bundled `folk-base`)
            fine-tuned on the same melodies;
  ngram     the order-k Witten-Bell n-gram baseline (pitch, duration, onset), trained on the same melodies.
Each is scored on the fold's held-out melodies: pitch bits per note (the IDyOM measure) and full bits per note
(everything the model predicts: timing, duration, bars, end of melody). One JSON line per setting: mean and
sample standard deviation over the folds. References: IDyOM 2.106 pitch bits/note (Pearce 2005); order-2
n-gram about 2.62.

    python benchmarks/kinder_cv.py                                  # the full benchmark (see --help for defaults)
    python benchmarks/kinder_cv.py --folds 2 --steps 20 --finetune-steps 20 --max-test 10    # a smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

from hf_melody import MelodyTokenizer, build_model, load_melodies, load_model, load_tokenizer
from hf_melody.baselines import NGramNoteModel, kfold
from hf_melody.data import DataConfig, build_dataset
from hf_melody.errors import HFMelodyError
from hf_melody.evaluation import IDYOM_KINDER_PITCH_BITS, ORDER2_KINDER_PITCH_BITS
from hf_melody.likelihood import score_melodies

logger = logging.getLogger("kinder_cv")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="essen/kinder0", help="the benchmark corpus (default: essen/kinder0)")
    p.add_argument("--folds", type=int, default=10, help="cross-validation folds (default: 10)")
    p.add_argument("--only-folds", type=int, default=None, help="run only the first N folds (quick checks)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold split and the training runs")
    p.add_argument("--settings", default="scratch,finetune,ngram", help="comma-separated subset of "
                   "scratch,finetune,ngram")
    p.add_argument("--preset", default="original", help="architecture of the scratch model (default: original)")
    p.add_argument("--steps", type=int, default=1000, help="training steps of the scratch model (default: 1000)")
    p.add_argument("--lr", type=float, default=5e-3, help="learning rate of the scratch model (default: 5e-3)")
    p.add_argument("--pretrained", default="folk-base", help="bundle to fine-tune (name, folder or Hub id); it "
                   "must not have seen kinder0 (default: folk-base)")
    p.add_argument("--finetune-steps", type=int, default=300, help="fine-tuning steps (default: 300)")
    p.add_argument("--finetune-lr", type=float, default=1e-3, help="fine-tuning learning rate (default: 1e-3)")
    p.add_argument("--batch-size", type=int, default=32, help="blocks per step (default: 32)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per training block (default: 256)")
    p.add_argument("--augment-semitones", type=int, default=5, help="transpose training melodies by -k..k")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout of the scratch model (default: 0.1)")
    p.add_argument("--order", type=int, default=2, help="n-gram baseline context length (default: 2)")
    p.add_argument("--max-test", type=int, default=None, help="score at most this many test melodies per fold")
    p.add_argument("--out", default="out/kinder_cv", help="folder for kinder_cv.json (default: out/kinder_cv)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    return p.parse_args(argv)


def fit(model, tokenizer, melodies, steps: int, lr: float, max_length: int, args: argparse.Namespace):
    """Train `model` on `melodies` (all of them: no validation split) for `steps` steps."""
    import torch
    from transformers import Trainer, TrainingArguments, default_data_collator

    config = DataConfig(max_length=max_length, augment_semitones=args.augment_semitones,
                        validation_ratio=0.0, test_ratio=0.0, seed=args.seed)
    dsd = build_dataset(melodies, tokenizer, config, cache=False)
    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(
            output_dir=tmp, max_steps=steps, learning_rate=lr, per_device_train_batch_size=args.batch_size,
            lr_scheduler_type="cosine", warmup_steps=0.05, weight_decay=0.01, logging_strategy="no",
            save_strategy="no", eval_strategy="no", report_to="none", seed=args.seed, disable_tqdm=True,
            use_cpu=(args.device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cpu")
        trainer = Trainer(model=model, args=training_args, train_dataset=dsd["train"],
                          data_collator=default_data_collator)
        with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its summary; stdout is for results
            result = trainer.train()
    return trainer.model, float(result.training_loss)


def score(model, tokenizer, test) -> dict[str, float]:
    r = score_melodies(model, tokenizer, test, pitch_bits=not tokenizer.is_bpe)
    return {"pitch_bits_per_note": r.pitch_bits_per_note, "bits_per_note": r.bits_per_note,
            "num_notes": r.num_notes}


def summary(setting: str, folds: list[dict], extra: dict) -> dict:
    out = {"setting": setting, **extra, "folds": len(folds)}
    for key in ("pitch_bits_per_note", "bits_per_note"):
        values = [f[key] for f in folds if f.get(key) is not None]
        if not values:
            continue
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        out[key] = {"mean": round(mean, 4), "sd": round(sd, 4), "per_fold": [round(v, 4) for v in values]}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("hf_melody.data", "transformers", "datasets"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import datasets

    datasets.disable_progress_bars()  # stdout/stderr stay readable: one JSON line per setting
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = set(settings) - {"scratch", "finetune", "ngram"}
    if unknown:
        print(f"error: unknown settings {sorted(unknown)}; choose from scratch, finetune, ngram", file=sys.stderr)
        return 2
    melodies, _ = load_melodies(args.dataset, progress=False)
    if "finetune" in settings:
        try:
            load_tokenizer(args.pretrained)
        except HFMelodyError as e:
            print(f"error: --pretrained {args.pretrained}: {e} (or drop 'finetune' from --settings)", file=sys.stderr)
            return 2
        from hf_melody.evaluation import bundle_training_files, trained_on

        pretrained_info, _ = bundle_training_files(args.pretrained)
        if trained_on(pretrained_info, args.dataset):
            print(f"error: {args.pretrained} was trained on {args.dataset}; the benchmark needs a model that "
                  "excluded it", file=sys.stderr)
            return 2

    results: dict[str, list[dict]] = {s: [] for s in settings}
    splits = kfold(melodies, args.folds, args.seed)[:args.only_folds or args.folds]
    for k, (train, test) in enumerate(splits):
        test = test[:args.max_test] if args.max_test else test
        t0 = time.time()
        if "ngram" in settings:
            r = NGramNoteModel(args.order).fit([m.notes for m in train]).evaluate([m.notes for m in test])
            results["ngram"].append({"pitch_bits_per_note": r["pitch_bits_per_note"],
                                     "bits_per_note": r["bits_per_note"], "num_notes": r["num_notes"]})
        if "scratch" in settings:
            tok = MelodyTokenizer()
            model = build_model(args.preset, tok, n_positions=args.max_length, dropout=args.dropout,
                                seed=args.seed + k)
            model, loss = fit(model, tok, train, args.steps, args.lr, args.max_length, args)
            results["scratch"].append({**score(model, tok, test), "train_loss": loss})
        if "finetune" in settings:
            tok, model = load_tokenizer(args.pretrained), load_model(args.pretrained)
            model, loss = fit(model, tok, train, args.finetune_steps, args.finetune_lr,
                              min(args.max_length, model.config.n_positions), args)
            results["finetune"].append({**score(model, tok, test), "train_loss": loss})
        logger.info("fold %d/%d (%d train, %d test melodies) in %.0f s: %s", k + 1, len(splits), len(train),
                    len(test), time.time() - t0, json.dumps({s: {key: round(v, 3) for key, v in r[-1].items()}
                                                             for s, r in results.items()}))

    extras = {
        "scratch": {"preset": args.preset, "steps": args.steps, "lr": args.lr},
        "finetune": {"pretrained": args.pretrained, "steps": args.finetune_steps, "lr": args.finetune_lr},
        "ngram": {"order": args.order, "smoothing": "interpolated Witten-Bell"},
    }
    lines = [summary(s, results[s], extras[s]) for s in settings]
    for line in lines:
        print(json.dumps(line))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kinder_cv.json").write_text(json.dumps(
        {"command": " ".join(["python", "benchmarks/kinder_cv.py", *(argv if argv is not None else sys.argv[1:])]),
         "dataset": args.dataset, "folds": args.folds, "references": {"idyom_pitch_bits": IDYOM_KINDER_PITCH_BITS,
                                                                    "order2_pitch_bits": ORDER2_KINDER_PITCH_BITS},
         "summary": lines, "per_fold": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
