"""The Kinderlieder benchmark: 10-fold cross-validation by melody on essen/kinder0 (213 tunes), as in IDyOM.

For each fold:
  scratch   a fresh GPT-2 (`--preset`) trained on the fold's training melodies only;
  finetune  a model pretrained on the other corpora (kinder0 excluded; default the bundled `folk-base`)
            fine-tuned on the same melodies;
  ngram     the order-k Witten-Bell n-gram baseline (pitch, duration, onset), trained on the same melodies;
  ngram-pretrain  the same n-gram trained on what `finetune` saw: the pretrained bundle's own training melodies
            (its `training_info.json` datasets minus `exclude`, the recipe's train split) plus the fold's;
  ppm       IDyOM's cpitch model (`evaluation.ppm`): PPM* long-term model trained on the fold's melodies, short-term
            model learning each test melody as it goes, their entropy-weighted combination (the setting's pitch
            columns; `ppm_ltm_*`, `ppm_stm_*`, `ppm_both_plus_*` give each model alone and IDyOM's `both+`);
            with `--viewpoints cpint,cpintfref,...` through those derived viewpoints instead of `cpitch` alone
            (`evaluation.viewpoints`: one LTM and STM per viewpoint, combined IDyOM's way).
Each is scored on the fold's held-out melodies:
  pitch_bits_per_note       -log2 P(Pitch token | everything before): for the GPT-2 models this includes the
                            note's own Position/Rest/Bar tokens, i.e. the model knows *when* the note starts;
  fair_pitch_bits_per_note  the pitch from the past only, those onset tokens marginalised (`evaluation.fair_pitch`):
                            what IDyOM's and the n-gram's pitch models predict; the column to compare with them
                            (for the n-grams the two are the same number);
  bits_per_note             everything the model predicts (timing, duration, bars, end of melody).
With `--dynamic-steps N` the neural models are also scored with dynamic evaluation (a copy adapted by N SGD steps
after each bar of the melody being scored, never on what follows: IDyOM's short-term model): `dynamic_*` keys.
One JSON line per setting (mean and sample standard deviation over the folds), then a Markdown table. References:
IDyOM 2.106 pitch bits/note (Pearce 2005); order-2 n-gram about 2.62.

    python benchmarks/quality/kinder_cv.py --dynamic-steps 1        # the full benchmark (see --help for defaults)
    python benchmarks/quality/kinder_cv.py --only-folds 1 --steps 20 --finetune-steps 20 --max-test 5 --dynamic-steps 1
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
from hf_melody.data.arguments import DataConfig
from hf_melody.data.dataset import build_dataset
from hf_melody.errors import HFMelodyError
from hf_melody.evaluation import IDYOM_KINDER_PITCH_BITS, ORDER2_KINDER_PITCH_BITS
from hf_melody.evaluation.baselines import NGramNoteModel, kfold
from hf_melody.evaluation.likelihood import DynamicEvaluation, score_melodies

logger = logging.getLogger("kinder_cv")
SETTINGS = ("scratch", "finetune", "ngram", "ngram-pretrain", "ppm")
METRICS = ("pitch_bits_per_note", "fair_pitch_bits_per_note", "bits_per_note", "dynamic_pitch_bits_per_note",
           "dynamic_fair_pitch_bits_per_note", "dynamic_bits_per_note", "fair_pitch_explored_mass",
           "ppm_ltm_pitch_bits_per_note", "ppm_stm_pitch_bits_per_note", "ppm_both_plus_pitch_bits_per_note")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="essen/kinder0", help="the benchmark corpus (default: essen/kinder0)")
    p.add_argument("--folds", type=int, default=10, help="cross-validation folds (default: 10)")
    p.add_argument("--only-folds", type=int, default=None, help="run only the first N folds (quick checks)")
    p.add_argument("--first-fold", type=int, default=1, help="start at this fold (1-based; with --only-folds N: "
                   "folds first..first+N-1), to spread the folds over several processes or sessions")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold split and the training runs")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated subset of {','.join(SETTINGS)}")
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
    p.add_argument("--stm-exclusion-rule", choices=("textbook", "idyom"), default="textbook", help="the ppm "
                   "STM's update-excluded counts: textbook, or idyom (IDyOM's ppm-star.lisp; evaluation.ppm."
                   "EXCLUSION_RULES; default: textbook)")
    p.add_argument("--viewpoints", default=None, help="the ppm setting through these viewpoints, e.g. "
                   "'cpitch,cpint,cpintfref,cpint*cpintfref' (default: cpitch alone, the single-viewpoint PPM)")
    p.add_argument("--dynamic-steps", type=int, default=0, help="also score with dynamic evaluation: SGD steps "
                   "after each bar (default: 0, off)")
    p.add_argument("--dynamic-lr", type=float, default=1e-3, help="learning rate of dynamic evaluation "
                   "(default: 1e-3)")
    p.add_argument("--num-proc", type=int, default=None, help="processes for the first parse of the corpora")
    p.add_argument("--out", default="out/kinder_cv", help="folder for kinder_cv.json (default: out/kinder_cv)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--bf16", choices=("auto", "yes", "no"), default="auto", help="bf16 autocast for training "
                   "(default auto: on where the CPU computes bfloat16 natively or on a GPU, as the recipes do)")
    return p.parse_args(argv)


def fit(model, tokenizer, melodies, steps: int, lr: float, max_length: int, args: argparse.Namespace):
    """Train `model` on `melodies` (all of them: no validation split) for `steps` steps."""
    import torch
    from transformers import Trainer, TrainingArguments, default_data_collator

    from hf_melody.training.trainer import cpu_supports_bf16

    config = DataConfig(max_length=max_length, augment_semitones=args.augment_semitones,
                        validation_ratio=0.0, test_ratio=0.0, seed=args.seed)
    dsd = build_dataset(melodies, tokenizer, config, cache=False)
    use_cpu = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cpu"
    bf16 = args.bf16 == "yes" or (args.bf16 == "auto" and (not use_cpu or cpu_supports_bf16()))
    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(
            output_dir=tmp, max_steps=steps, learning_rate=lr, per_device_train_batch_size=args.batch_size,
            lr_scheduler_type="cosine", warmup_steps=0.05, weight_decay=0.01, logging_strategy="no",
            save_strategy="no", eval_strategy="no", report_to="none", seed=args.seed, disable_tqdm=True,
            use_cpu=use_cpu, bf16=bf16)
        trainer = Trainer(model=model, args=training_args, train_dataset=dsd["train"],
                          data_collator=default_data_collator)
        with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its summary; stdout is for results
            result = trainer.train()
    return trainer.model, float(result.training_loss)


def score(model, tokenizer, test, args: argparse.Namespace) -> dict[str, float]:
    """Both pitch measures and bits per note, and the same with dynamic evaluation when asked for."""
    plain = not tokenizer.is_bpe
    r = score_melodies(model, tokenizer, test, pitch_bits=plain, fair_pitch=plain, device=args.device)
    out = {"pitch_bits_per_note": r.pitch_bits_per_note, "fair_pitch_bits_per_note": r.fair_pitch_bits_per_note,
           "bits_per_note": r.bits_per_note, "num_notes": r.num_notes,
           "fair_pitch_explored_mass": r.fair_pitch_explored_mass}
    if args.dynamic_steps:
        d = score_melodies(model, tokenizer, test, pitch_bits=plain, fair_pitch=plain, device=args.device,
                           dynamic=DynamicEvaluation(steps=args.dynamic_steps, lr=args.dynamic_lr))
        out.update({"dynamic_pitch_bits_per_note": d.pitch_bits_per_note,
                    "dynamic_fair_pitch_bits_per_note": d.fair_pitch_bits_per_note,
                    "dynamic_bits_per_note": d.bits_per_note})
    return out


def ngram_scores(train_notes, test, order: int) -> dict[str, float]:
    """The n-gram's pitch model sees past pitches only: its pitch bits are the fair measure too."""
    r = NGramNoteModel(order).fit(train_notes).evaluate([m.notes for m in test])
    return {"pitch_bits_per_note": r["pitch_bits_per_note"], "fair_pitch_bits_per_note": r["pitch_bits_per_note"],
            "bits_per_note": r["bits_per_note"], "num_notes": r["num_notes"]}


def ppm_scores(train, test, alphabet: list[int], viewpoints: str | None = None,
               exclusion_rule: str = "textbook") -> dict[str, float]:
    """IDyOM's PPM on the fold: LTM (trained on `train`), STM, both (the pitch columns) and both+."""
    from hf_melody.evaluation.ppm import IDYOM_LTM, PPM, cpitch_predictions

    stm_options = {"exclusion_rule": exclusion_rule}
    if viewpoints:
        return viewpoint_scores(train, test, alphabet, viewpoints, stm_options)
    out, notes = {}, sum(len(m.notes) for m in test)
    for name, stm, learns in (("ltm", False, False), ("stm", True, False), ("both", True, False),
                              ("both_plus", True, True)):
        ltm = None if name == "stm" else PPM(alphabet, **IDYOM_LTM).fit([p for _, _, p in sorted(m.notes)]
                                                                         for m in train)
        bits = sum(sum(cpitch_predictions([p for _, _, p in sorted(m.notes)], ltm=ltm, stm=stm, alphabet=alphabet,
                                          ltm_learns=learns, stm_options=stm_options)[0]) for m in test)
        out[f"ppm_{name}_pitch_bits_per_note"] = bits / notes
    both = out.pop("ppm_both_pitch_bits_per_note")
    return {"pitch_bits_per_note": both, "fair_pitch_bits_per_note": both, "num_notes": notes, **out}


def viewpoint_scores(train, test, alphabet: list[int], viewpoints: str, stm_options: dict) -> dict[str, float]:
    """`ppm_scores` through a multiple-viewpoint system: one fit, then a pass with the LTM fixed (ltm, stm, both)
    and one where it learns the test melodies as it goes (both+; the fixed pass left its counts unchanged)."""
    from hf_melody.evaluation.viewpoints import ViewpointSystem, melody_pitches

    system = ViewpointSystem(viewpoints, alphabet, stm_options=stm_options).fit(melody_pitches(m) for m in train)
    notes, bits = sum(len(m.notes) for m in test), {"ltm": 0.0, "stm": 0.0, "both": 0.0, "both+": 0.0}
    for models in (("ltm", "stm", "both"), ("both+",)):
        for m in test:
            for name, (ic, _) in system.predict(*melody_pitches(m), models=models).items():
                bits[name] += sum(ic)
    return {"pitch_bits_per_note": bits["both"] / notes, "fair_pitch_bits_per_note": bits["both"] / notes,
            "num_notes": notes, "ppm_ltm_pitch_bits_per_note": bits["ltm"] / notes,
            "ppm_stm_pitch_bits_per_note": bits["stm"] / notes,
            "ppm_both_plus_pitch_bits_per_note": bits["both+"] / notes}


def pretraining_melodies(pretrained: str, num_proc: int | None) -> tuple[list, dict]:
    """The training split of the melodies `pretrained` was trained on (datasets minus `exclude`, default split)."""
    from hf_melody.data.arguments import DataConfig
    from hf_melody.data.dataset import split_melodies
    from hf_melody.evaluation import bundle_training_files

    info, _ = bundle_training_files(pretrained)
    if not info.get("dataset"):
        raise HFMelodyError(f"{pretrained} has no training_info.json listing its datasets; the ngram-pretrain "
                            "setting needs it (or drop ngram-pretrain from --settings)")
    melodies, _ = load_melodies(info["dataset"], progress=False, num_proc=num_proc, exclude=info.get("exclude", []))
    d = DataConfig()
    train = split_melodies(melodies, d.validation_ratio, d.test_ratio, d.seed)["train"]
    return train, {"datasets": info["dataset"], "exclude": info.get("exclude", []), "melodies": len(train)}


def summary(setting: str, folds: list[dict], extra: dict) -> dict:
    out = {"setting": setting, **extra, "folds": len(folds)}
    for key in METRICS:
        values = [f[key] for f in folds if f.get(key) is not None]
        if not values:
            continue
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        out[key] = {"mean": round(mean, 4), "sd": round(sd, 4), "per_fold": [round(v, 4) for v in values]}
    return out


def table(lines: list[dict]) -> str:
    """Markdown: mean ± sd over the folds; the past-only (fair) pitch column is always there."""
    def cell(line: dict, key: str) -> str:
        v = line.get(key)
        return f"{v['mean']:.3f} ± {v['sd']:.3f}" if v else "-"

    dyn = any("dynamic_bits_per_note" in line for line in lines)
    cols = [("pitch bits/note (onset known)", "pitch_bits_per_note"),
            ("pitch bits/note (past only, fair)", "fair_pitch_bits_per_note"), ("bits/note", "bits_per_note")]
    if dyn:
        cols += [("dynamic: pitch (past only)", "dynamic_fair_pitch_bits_per_note"),
                 ("dynamic: bits/note", "dynamic_bits_per_note")]
    rows = ["| setting | folds | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 2) + "|"]
    rows += [f"| {line['setting']} | {line['folds']} | " + " | ".join(cell(line, k) for _, k in cols) + " |"
             for line in lines]
    return "\n".join(rows)


def check_settings(args: argparse.Namespace) -> list[str] | None:
    """The `--settings` asked for, in order; None (after an error message) when one is unknown."""
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        print(f"error: unknown settings {sorted(unknown)}; choose from {', '.join(SETTINGS)}", file=sys.stderr)
        return None
    if args.viewpoints:
        from hf_melody.evaluation.viewpoints import parse_viewpoints

        try:
            parse_viewpoints(args.viewpoints)
        except HFMelodyError as e:
            print(f"error: --viewpoints: {e}", file=sys.stderr)
            return None
    return settings


def check_pretrained(args: argparse.Namespace) -> bool:
    """`--pretrained` loads and never saw the benchmark corpus; False (after an error message) otherwise."""
    try:
        load_tokenizer(args.pretrained)
    except HFMelodyError as e:
        print(f"error: --pretrained {args.pretrained}: {e} (or drop 'finetune' and 'ngram-pretrain' from "
              "--settings)", file=sys.stderr)
        return False
    from hf_melody.evaluation import bundle_training_files, trained_on

    pretrained_info, _ = bundle_training_files(args.pretrained)
    if trained_on(pretrained_info, args.dataset):
        print(f"error: {args.pretrained} was trained on {args.dataset}; the benchmark needs a model that "
              "excluded it", file=sys.stderr)
        return False
    return True


def run_fold(k: int, train, test, settings: list[str], pretrain_notes: list, results: dict[str, list[dict]],
             args: argparse.Namespace) -> None:
    """Train every setting on the fold's `train` melodies, score it on `test`, append the scores to `results`."""
    if "ngram" in settings:
        results["ngram"].append(ngram_scores([m.notes for m in train], test, args.order))
    if "ppm" in settings:
        from hf_melody.evaluation.ppm import ppm_alphabet

        results["ppm"].append(ppm_scores(train, test, ppm_alphabet(list(train) + list(test)), args.viewpoints,
                                         args.stm_exclusion_rule))
    if "ngram-pretrain" in settings:
        results["ngram-pretrain"].append(ngram_scores(pretrain_notes + [m.notes for m in train], test,
                                                      args.order))
    if "scratch" in settings:
        tok = MelodyTokenizer()
        model = build_model(args.preset, tok, n_positions=args.max_length, dropout=args.dropout,
                            seed=args.seed + k)
        model, loss = fit(model, tok, train, args.steps, args.lr, args.max_length, args)
        results["scratch"].append({**score(model, tok, test, args), "train_loss": loss})
    if "finetune" in settings:
        tok, model = load_tokenizer(args.pretrained), load_model(args.pretrained)
        model, loss = fit(model, tok, train, args.finetune_steps, args.finetune_lr,
                          min(args.max_length, model.config.n_positions), args)
        results["finetune"].append({**score(model, tok, test, args), "train_loss": loss})


def setting_summaries(settings: list[str], results: dict[str, list[dict]], pretrain_info: dict,
                      args: argparse.Namespace) -> list[dict]:
    """One summary per setting: its fold statistics plus what it was (preset, steps, order, dynamic evaluation)."""
    extras = {
        "scratch": {"preset": args.preset, "steps": args.steps, "lr": args.lr},
        "finetune": {"pretrained": args.pretrained, "steps": args.finetune_steps, "lr": args.finetune_lr},
        "ngram": {"order": args.order, "smoothing": "interpolated Witten-Bell"},
        "ngram-pretrain": {"order": args.order, "smoothing": "interpolated Witten-Bell",
                           "pretraining": pretrain_info},
        "ppm": {"ltm": "PPM* escape C, blended", "stm": "PPM* escape X, update exclusion, blended",
                "combination": "geometric, entropy-weighted, bias 7", "alphabet": "every pitch of the corpus"},
    }
    extras["ppm"]["stm_exclusion_rule"] = args.stm_exclusion_rule
    if args.viewpoints:
        extras["ppm"].update({"viewpoints": args.viewpoints,
                              "viewpoint_combination": "geometric, entropy-weighted, bias 2 (within LTM and STM)"})
    dynamic = {"dynamic": f"{args.dynamic_steps} SGD step(s) at lr {args.dynamic_lr:g} after each bar"
               } if args.dynamic_steps else {}
    return [summary(s, results[s], {**extras[s], **(dynamic if s in ("scratch", "finetune") else {})})
            for s in settings]


def write_record(lines: list[dict], results: dict[str, list[dict]], args: argparse.Namespace,
                 argv: list[str] | None) -> None:
    """`--out`/kinder_cv.json: the command that reruns this, the references, the summaries and every fold."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = ["python", "benchmarks/quality/kinder_cv.py", *(argv if argv is not None else sys.argv[1:])]
    (out / "kinder_cv.json").write_text(json.dumps(
        {"command": " ".join(command),
         "dataset": args.dataset, "folds": args.folds, "references": {"idyom_pitch_bits": IDYOM_KINDER_PITCH_BITS,
                                                                    "order2_pitch_bits": ORDER2_KINDER_PITCH_BITS},
         "summary": lines, "per_fold": results}, indent=1))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # 1. Quiet the libraries: stdout carries only the result lines and the table, stderr one log line per fold.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("hf_melody.data.dataset", "transformers", "datasets"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import datasets

    datasets.disable_progress_bars()  # stdout/stderr stay readable: one JSON line per setting

    # 2. Refuse bad input before any training: unknown settings, and a pretrained model that saw the benchmark
    #    corpus (its scores would be contaminated).
    settings = check_settings(args)
    if settings is None:
        return 2
    melodies, _ = load_melodies(args.dataset, progress=False, num_proc=args.num_proc)
    if ("finetune" in settings or "ngram-pretrain" in settings) and not check_pretrained(args):
        return 2

    # 3. ngram-pretrain sees what `finetune` saw: the pretrained bundle's own training melodies, which must not
    #    hold a single benchmark melody.
    pretrain_notes, pretrain_info = [], {}
    if "ngram-pretrain" in settings:
        pretrain, pretrain_info = pretraining_melodies(args.pretrained, args.num_proc)
        test_ids = {m.id for m in melodies}
        if any(m.id in test_ids for m in pretrain):
            print(f"error: {args.pretrained}'s training data holds melodies of {args.dataset}", file=sys.stderr)
            return 2
        pretrain_notes = [m.notes for m in pretrain]

    # 4. The folds (a window of them with --first-fold/--only-folds, so a long run can be spread over sessions):
    #    every setting trains on the same melodies and is scored on the same held-out ones.
    results: dict[str, list[dict]] = {s: [] for s in settings}
    first = args.first_fold - 1
    splits = kfold(melodies, args.folds, args.seed)[first:first + (args.only_folds or args.folds)]
    for k, (train, test) in enumerate(splits, start=first):
        test = test[:args.max_test] if args.max_test else test
        t0 = time.time()
        run_fold(k, train, test, settings, pretrain_notes, results, args)
        logger.info("fold %d/%d (%d train, %d test melodies) in %.0f s: %s", k + 1, args.folds, len(train),
                    len(test), time.time() - t0, json.dumps({s: {key: round(v, 3) for key, v in r[-1].items()
                                                                  if v is not None} for s, r in results.items()}))

    # 5. Report: one JSON line per setting (mean and sd over the folds), a Markdown table, and the full record.
    lines = setting_summaries(settings, results, pretrain_info, args)
    for line in lines:
        print(json.dumps(line))
    print()
    print(table(lines))
    write_record(lines, results, args, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
