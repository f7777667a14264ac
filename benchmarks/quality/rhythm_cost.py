"""What REMI's rhythm tokens cost per note, from scratch and fine-tuned, on plain and on rich rhythms (issue 29).

Two folders made from the Kinderlieder (`essen/kinder0`, held out of every bundled checkpoint), split 80/20 by a
hash of the tune id (the test split is the same tunes in both):

- rich: the tunes as written;
- plain: the same tunes re-timed so that every note is a quarter note, each silence one quarter-note rest, in 4/4.
  Every rhythm token of a plain tune is then predictable from the grammar and the past: Bar and Position follow
  from the beat count, Duration is always a quarter.

Each model scores the test split of each folder: bits per note split by what the tokens encode (`onset`: Bar,
TimeSig and Position tokens; `pitch`; `duration`; `end`: EOS), once as the model gives them (`raw`) and once with
each step's distribution renormalised over the tokens the REMI grammar allows there (`grammar`): the same
renormalisation generation applies, so it is what the model + grammar system actually predicts. The order-2 note
n-gram of `hf_melody.evaluation.baselines` is the reference (pitch / duration / IOI viewpoints).

Models: `--models` (bundles: names or folders) and, with `--train`, the seed presets trained from scratch on the
plain train split (`recipes/scratch_folder.yaml --preset P`, at most `--train-minutes` each, one thread) and
folk-base fine-tuned on it (`recipes/finetune_style.yaml`, same budget).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality/rhythm_cost.py --models original folk-base \
        --train original deeper-thinner wider-shallower --train-minutes 4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).parents[2]
QUARTER = 480


def plain(melody):
    """The melody with every note a quarter note and every silence one quarter-note rest, in 4/4."""
    from hf_melody.data.melody import Melody

    notes, t, end = [], 0, None
    for onset, duration, pitch in sorted(melody.notes):
        if end is not None and onset > end:
            t += QUARTER  # a silence: one quarter-note rest
        notes.append([t, QUARTER, pitch])
        t += QUARTER
        end = onset + duration
    return Melody(melody.id, melody.source, notes, [[0, 4, 4]], melody.title, melody.key, "other")


def kind_names(tokenizer) -> list[str]:
    """The rhythm/pitch class of every token id: onset, pitch, duration, end or other."""
    out = []
    for i in range(tokenizer.vocab_size):
        name = tokenizer.miditok[i]
        kind = name.split("_")[0]
        out.append({"Bar": "onset", "TimeSig": "onset", "Position": "onset", "Rest": "onset", "Pitch": "pitch",
                    "Duration": "duration", "EOS": "end"}.get(kind, "other"))
    return out


def breakdown(model, tokenizer, melodies) -> dict:
    """Bits per note by token class, raw and renormalised over the grammar's legal tokens."""
    import torch

    from hf_melody.grammar.remi import REMIGrammar
    from hf_melody.grammar.state import GrammarRules

    grammar = REMIGrammar.for_tokenizer(tokenizer)
    rules = GrammarRules(allow_style=False)
    kinds = kind_names(tokenizer)
    totals = {"raw": {}, "grammar": {}}
    notes = 0
    model.eval()
    n_pos = int(model.config.n_positions)
    for m in melodies:
        ids = tokenizer.encode(m, bos=True, eos=True, style="other")
        if len(ids) > n_pos:
            continue  # these folders' tunes fit in one window; a longer one would need the sliding window
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        state = grammar.prompt_state(ids[:2])
        for k in range(2, len(ids)):
            target = ids[k]
            row = logp[k - 1]
            mask = grammar.allowed_mask(state, rules)
            renorm = row[target] - torch.logsumexp(row.masked_fill(~mask, float("-inf")), -1)
            kind = kinds[target]
            totals["raw"][kind] = totals["raw"].get(kind, 0.0) - float(row[target]) / math.log(2)
            totals["grammar"][kind] = totals["grammar"].get(kind, 0.0) - float(renorm) / math.log(2)
            grammar.feed(state, [target])
        notes += len(m.notes)
    out = {}
    for way, bits in totals.items():
        per = {k: round(v / notes, 3) for k, v in sorted(bits.items())}
        per["total"] = round(sum(bits.values()) / notes, 3)
        out[way] = per
    return out


def ngram_reference(train, test) -> dict:
    from hf_melody.evaluation.baselines import NGramNoteModel

    r = NGramNoteModel(order=2).fit([m.notes for m in train]).evaluate([m.notes for m in test])
    return {k: round(r[f"{k}_bits_per_note"], 3) for k in ("pitch", "duration", "ioi")} | {
        "total": round(r["bits_per_note"], 3)}


def train(recipe: str, folder: Path, out: Path, minutes: float, extra: list[str], log: Path) -> float:
    cmd = [sys.executable, str(ROOT / "recipes/train.py"), "--config", recipe, "--dataset", str(folder),
           "--output_dir", str(out), "--overwrite_output_dir", "true", "--disable_tqdm", "true",
           "--max_train_minutes", str(minutes), *extra]
    t = time.perf_counter()
    with open(log, "w") as f:
        subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=f,
                       stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=["original", "folk-base"], help="bundles to score as they are")
    parser.add_argument("--train", nargs="*", default=[], help="presets to train from scratch on the plain folder")
    parser.add_argument("--finetune", default="folk-base", help="bundle fine-tuned on the plain folder with --train "
                        "('' skips it)")
    parser.add_argument("--train-minutes", type=float, default=4.0)
    parser.add_argument("--out", default="out/rhythm_cost")
    args = parser.parse_args()

    import torch

    from hf_melody import load_melodies, load_model, load_tokenizer
    from hf_melody.data.dataset import split_of

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    melodies, _ = load_melodies("essen/kinder0", progress=False)
    sets = {"rich": melodies, "plain": [plain(m) for m in melodies]}
    splits = {}
    for name, mels in sets.items():
        test = [m for m in mels if split_of(m.id, 0.0, 0.2, seed=7) == "test"]
        train_mels = [m for m in mels if split_of(m.id, 0.0, 0.2, seed=7) != "test"]
        splits[name] = (train_mels, test)
        print(json.dumps({"benchmark": "rhythm_cost", "model": "ngram-order2", "folder": name,
                          "train": len(train_mels), "test": len(test), "bits": ngram_reference(train_mels, test)}),
              flush=True)

    bundles = [(b, "bundled") for b in args.models]
    if args.train or args.finetune:
        folder = out / "plain-train"
        folder.mkdir(exist_ok=True)
        for i, m in enumerate(splits["plain"][0]):
            m.to_score().dump_midi(str(folder / f"{i:04d}.mid"))
        for preset in args.train:
            target = out / f"{preset}-scratch-plain"
            seconds = train("recipes/scratch_folder.yaml", folder, target, args.train_minutes,
                            ["--preset", preset], out / f"{preset}-scratch-plain.log")
            bundles.append((str(target), f"{preset} from scratch on plain, {seconds:.0f} s"))
        if args.finetune:
            target = out / "finetune-plain"
            seconds = train("recipes/finetune_style.yaml", folder, target, args.train_minutes,
                            ["--init_from", args.finetune], out / "finetune-plain.log")
            bundles.append((str(target), f"{args.finetune} fine-tuned on plain, {seconds:.0f} s"))

    for bundle, how in bundles:
        model, tok = load_model(bundle), load_tokenizer(bundle)
        for name, (_, test) in splits.items():
            record = {"benchmark": "rhythm_cost", "model": bundle, "how": how, "folder": name,
                      "bits": breakdown(model, tok, test)}
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
