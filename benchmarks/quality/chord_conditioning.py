"""A model that hears chords (issue 25 point 3): chord tokens per bar vs the decoding constraint, measured.

Two GPT-2s of one preset, trained the same way (same seed, tune order, transpositions, steps and learning rate) on
the Essen folk songs minus the Kinderlieder (`essen/kinder0`, held out):
  plain   the library's REMI tokens, `[BOS] Bar TimeSig Position Pitch Duration ... [EOS]`;
  chords  the same with one chord token per bar right after the bar's `TimeSig`: the chord
          `harmony.inference.infer_chords` finds for that bar of that melody (72 = 12 roots x
          `INFERRED_QUALITIES`, plus "no chord"), as extra ids after the tokenizer's vocabulary. The loss skips the
          chord tokens: the model learns p(melody | chords), and the chords are always given.
Then:
  bits      held-out bits per note of the 213 Kinderlieder (all melody tokens, EOS included, over the melody
            vocabulary; the chord model is given the chords inferred from each tune, which leaks some of the tune:
            the plain model's bits are printed beside it so the difference is visible; and the chord model given
            "no chord" in every bar, and given the inferred chords moved a tritone: what the chords are worth),
            and pitch bits per note (the Pitch tokens alone);
  generate  8-bar melodies over the progressions of `chord_tones.py` in 4/4 and 3/4, seeds 0..n-1 (one
            `torch.Generator` per seed), under the REMI grammar (`REMIGrammar.allowed_mask`, exactly `--bars` bars),
            the chord model's chord token forced after each `TimeSig`; settings: plain none / soft 1.5 / hard
            (`harmony.ChordProcessor`, as `MelodyPipeline(chords=..., chord_strictness=...)` applies it), chords
            alone / soft 1.5 / hard; and plain soft 1.5 through `MelodyPipeline` itself (the plain model saved
            with `hub.save_bundle`), as a check of this script's decoding loop. Measures: strong-beat and
            overall chord-tone ratios (`harmony.chord_tone_ratios`), and in-key share, mean |interval|, notes per
            bar, pitch range (`evaluation.statistics`) beside the real Kinderlieder's;
  samples   seeds 0-2 of `C G Am F` in 4/4 of each setting as MID + WAV + PNG under `--out`.
One JSON line per measurement on stdout, the training log on stderr.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality/chord_conditioning.py --stage train --model plain &
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality/chord_conditioning.py --stage train --model chords &
    wait; OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality/chord_conditioning.py --stage measure
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore", message=".*past_key_values.*deprecated")  # transformers 5.24's cache rename

PROGRESSIONS = ("C G Am F", "Dm7 G7 Cmaj7 Cmaj7", "Am Dm E7 Am")
SETTINGS = (("plain", "none", None), ("plain", "soft 1.5", 1.5), ("plain", "soft 1.5 (pipeline)", 1.5),
            ("plain", "hard", "hard"),
            ("chords", "none", None), ("chords", "soft 1.5", 1.5), ("chords", "hard", "hard"))
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---- chord vocabulary -------------------------------------------------------------------------------------------
class ChordVocab:
    """Chord symbols <-> extra ids after the melody vocabulary: 12 roots x `INFERRED_QUALITIES`, then "no chord"."""

    def __init__(self, base: int):
        from hf_melody.harmony.inference import INFERRED_QUALITIES

        self.base, self.qualities = base, INFERRED_QUALITIES
        self.size = 12 * len(INFERRED_QUALITIES) + 1
        self.none = base + self.size - 1

    def id_of(self, symbol: str) -> int:
        from hf_melody.harmony.chords import parse_chord

        if not symbol:
            return self.none
        chord = parse_chord(symbol)
        if chord.quality not in self.qualities:
            return self.none
        return self.base + 12 * self.qualities.index(chord.quality) + chord.root

    def shift(self, i: int, semitones: int) -> int:
        if i == self.none:
            return i
        q, root = divmod(i - self.base, 12)
        return self.base + 12 * q + (root + semitones) % 12


def bar_chords(melody) -> list[str]:
    from hf_melody.harmony.inference import infer_chords

    text = infer_chords([list(n) for n in melody.notes], [list(t) for t in melody.time_signatures])
    return text.split()


def with_chords(ids: list[int], chord_ids: list[int], timesig_ids: set[int], none_id: int) -> list[int]:
    """`ids` with the chord of bar k inserted after the k-th TimeSig token."""
    out, bar = [], 0
    for i in ids:
        out.append(i)
        if i in timesig_ids:
            out.append(chord_ids[bar] if bar < len(chord_ids) else none_id)
            bar += 1
    return out


def encode_all(melodies, tok, vocab: ChordVocab) -> tuple[list[dict], int]:
    """Per melody: melody ids (no BOS/EOS), chord ids per bar, lowest/highest pitch; and how many melodies have
    more inferred chords than Bar tokens (the two bar counts disagree)."""
    timesig = {i for t, i in tok.base_vocab.items() if t.startswith("TimeSig_")}
    bar_id = tok.bar_token_id
    rows, mismatched = [], 0
    for m in melodies:
        ids = tok.encode(m)
        chords = [vocab.id_of(s) for s in bar_chords(m)]
        bars = sum(i == bar_id for i in ids)
        mismatched += bars < len(chords)
        pitches = [p for _, _, p in m.notes]
        rows.append({"ids": ids, "chords": chords, "lo": min(pitches), "hi": max(pitches), "bars": bars,
                     "timesig": timesig})
    return rows, mismatched


def sequence(row: dict, tok, vocab: ChordVocab, conditioned: bool, shift: int = 0) -> list[int]:
    ids = tok.transpose_ids(row["ids"], shift) if shift else row["ids"]
    if conditioned:
        ids = with_chords(ids, [vocab.shift(c, shift) for c in row["chords"]], row["timesig"], vocab.none)
    return [tok.bos_token_id, *ids, tok.eos_token_id]


# ---- training ---------------------------------------------------------------------------------------------------
def blocks(rows, tok, vocab, conditioned: bool, block: int, batch: int, seed: int, augment: int):
    """Endless packed batches (inputs, labels): tunes shuffled per epoch and transposed by a random shift in
    -augment..augment that keeps them in the tokenizer's range (the same draws for both models)."""
    import torch

    from hf_melody.music import tokenizer_pitch_range

    lo, hi = tokenizer_pitch_range(tok)
    rng, buf, epoch = random.Random(seed), [], 0
    while True:
        order = list(range(len(rows)))
        rng.shuffle(order)
        for k in order:
            row = rows[k]
            shifts = [s for s in range(-augment, augment + 1) if lo <= row["lo"] + s and row["hi"] + s <= hi]
            buf += sequence(row, tok, vocab, conditioned, rng.choice(shifts) if shifts else 0)
            while len(buf) >= batch * (block + 1):
                x = torch.tensor(buf[:batch * (block + 1)]).view(batch, block + 1)
                buf = buf[batch * (block + 1):]
                labels = x[:, 1:].clone()
                labels[labels >= vocab.base] = -100  # chord tokens are given, never predicted
                yield x[:, :-1], labels, epoch
        epoch += 1


def train(args) -> None:
    import torch
    import torch.nn.functional as F

    from hf_melody import MelodyTokenizer, build_model, load_melodies

    torch.set_num_threads(args.threads)
    conditioned = args.model == "chords"
    tok = MelodyTokenizer()
    vocab = ChordVocab(tok.vocab_size)
    melodies, report = load_melodies(args.train_data.split(","), progress=False, exclude=[args.test_data])
    rows, mismatched = encode_all(melodies, tok, vocab)
    log(f"{args.model}: {len(rows)} training tunes ({report.summary()}); {mismatched} with more inferred chords "
        f"than Bar tokens")
    model = build_model(args.preset, tok, n_positions=args.block, dropout=0.0, seed=args.seed)
    if conditioned:
        model.resize_token_embeddings(tok.vocab_size + vocab.size, mean_resizing=False)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(
        math.pi * min(s, args.steps) / args.steps))))
    stream = blocks(rows, tok, vocab, conditioned, args.block, args.batch_size, args.seed, args.augment_semitones)
    torch.manual_seed(args.seed)
    start, losses, history, melody_tokens = time.perf_counter(), [], [], 0
    for step in range(1, args.steps + 1):
        x, labels, epoch = next(stream)
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        melody_tokens += int((labels != -100).sum())
        if step % args.log_every == 0 or step == args.steps:
            history.append({"step": step, "loss": round(statistics.mean(losses), 4), "epoch": epoch,
                            "seconds": round(time.perf_counter() - start, 1)})
            log(f"{args.model} {json.dumps(history[-1])}")
            losses = []
        if step % args.save_every == 0 or step == args.steps:
            info = {"model": args.model, "preset": args.preset, "step": step, "steps": args.steps,
                    "batch_size": args.batch_size, "block": args.block, "lr": args.lr, "seed": args.seed,
                    "train_tunes": len(rows), "melody_tokens_seen": melody_tokens,
                    "seconds": round(time.perf_counter() - start, 1),
                    "parameters": sum(p.numel() for p in model.parameters()), "loss_history": history}
            save(model, tok, Path(args.out) / "models" / args.model, info)
    emit({"section": "train", **{k: v for k, v in info.items() if k != "loss_history"},
          "first_loss": history[0]["loss"], "last_loss": history[-1]["loss"]})


def save(model, tok, out: Path, info: dict) -> None:
    """The model, its tokenizer and the training log (saved along the way: a run cut short keeps its last save)."""
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "chord_conditioning.json").write_text(json.dumps(info, indent=1))


# ---- measuring --------------------------------------------------------------------------------------------------
def load(args, name: str):
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(Path(args.out) / "models" / name)
    model.eval()
    return model


def bits(model, rows, tok, vocab, conditioned: bool, notes: int) -> dict:
    """Bits per note of the melody tokens (EOS included; BOS and chord tokens are given), over the melody
    vocabulary, and of the Pitch tokens alone."""
    import torch

    pitch = torch.zeros(vocab.base, dtype=torch.bool)
    for t, i in tok.base_vocab.items():
        pitch[i] = t.startswith("Pitch_")
    total = pitch_total = 0.0
    with torch.no_grad():
        for row in rows:
            seq = torch.tensor(sequence(row, tok, vocab, conditioned))
            logp = torch.log_softmax(model(input_ids=seq[None, :-1]).logits[0, :, :vocab.base], -1)
            target = seq[1:]
            keep = target < vocab.base
            nll = -logp[keep].gather(1, target[keep][:, None])[:, 0] / math.log(2)
            total += float(nll.sum())
            pitch_total += float(nll[pitch[target[keep]]].sum())
    return {"bits_per_note": round(total / notes, 4), "pitch_bits_per_note": round(pitch_total / notes, 4)}


def generate(model, tok, vocab, conditioned: bool, chords: str, meter: str, strictness, seeds: int, bars: int,
             max_new: int, temperature: float = 1.0) -> tuple[list[list[int]], int]:
    """`seeds` melodies (melody ids, chord tokens dropped) of exactly `bars` bars over `chords` in `meter`, and how
    many of them ended (EOS) within `max_new` tokens."""
    import torch

    from hf_melody.grammar.remi import GrammarRules, LengthLimits, REMIGrammar
    from hf_melody.harmony import ChordProcessor, parse_progression

    grammar = REMIGrammar.for_tokenizer(tok)
    rules = GrammarRules(exact_end=True, allow_style=False)
    progression = parse_progression(chords, meter)
    bar_chord = [vocab.id_of(progression.bar_chords(b)[0]) for b in range(bars)]
    timesig = tok.encode_base_tokens([f"TimeSig_{meter}"])[0]
    prompt = [tok.bos_token_id, *tok.encode_base_tokens(["Bar_None", f"TimeSig_{meter}"])]
    if conditioned:
        prompt.append(bar_chord[0])
    rows = [list(prompt) for _ in range(seeds)]
    states = []
    for _ in range(seeds):
        s = grammar.prompt_state([i for i in prompt if i < vocab.base])
        grammar.length_limits(s, LengthLimits(num_bars=bars))
        states.append(s)
    bars_seen = [1] * seeds
    done = [False] * seeds
    gens = [torch.Generator().manual_seed(seed) for seed in range(seeds)]
    proc = ChordProcessor(tok, chords, strictness) if strictness is not None else None
    pad = tok.pad_token_id
    with torch.no_grad():
        out = model(input_ids=torch.tensor(rows), use_cache=True)
        for step in range(max_new):
            logits = out.logits[:, -1, :].float()
            scores = logits[:, :vocab.base] / temperature
            if proc is not None:
                view = torch.tensor([[i if i < vocab.base else pad for i in r] for r in rows])
                scores = proc(view, scores)
            nxt = []
            for r in range(seeds):
                if done[r]:
                    nxt.append(pad)
                    continue
                if conditioned and rows[r][-1] == timesig:
                    nxt.append(bar_chord[bars_seen[r] - 1] if bars_seen[r] <= bars else vocab.none)
                    continue
                mask = grammar.allowed_mask(states[r], rules, budget=max_new - step)
                row = scores[r].masked_fill(~mask, float("-inf"))
                if torch.isinf(row).all():  # the chord constraint left nothing: the grammar alone
                    row = (logits[r, :vocab.base] / temperature).masked_fill(~mask, float("-inf"))
                i = int(torch.multinomial(torch.softmax(row, -1), 1, generator=gens[r]))
                grammar.feed(states[r], [i])
                bars_seen[r] += i == tok.bar_token_id
                done[r] = i == tok.eos_token_id
                nxt.append(i)
            for r, i in enumerate(nxt):
                rows[r].append(i)
            if all(done):
                break
            out = model(input_ids=torch.tensor(nxt)[:, None], past_key_values=out.past_key_values, use_cache=True)
    return [[i for i in r[1:] if i < vocab.base and i not in (pad, tok.eos_token_id)] for r in rows], sum(done)


def pipeline_melodies(pipe, chords: str, meter: str, strictness, seeds: int, bars: int) -> tuple[list[list[int]], int]:
    """The same through the library's own road: `MelodyPipeline(chords=..., chord_strictness=...)`, one seed a
    call (as `chord_tones.py` does), for the plain model saved as a bundle."""
    out = []
    for seed in range(seeds):
        [m] = pipe(seed=seed, time_signature=meter, num_bars=bars, chords=chords, chord_strictness=strictness)
        out.append(list(m.token_ids))
    return out, seeds


def melody_notes(ids, tok):
    from hf_melody.grammar.remi import REMIGrammar

    grammar = REMIGrammar.for_tokenizer(tok)
    return [[n.onset, n.duration, n.pitch] for n in grammar.feed(grammar.initial_state(), ids)], grammar


def describe(melodies: list[list[list[int]]], chords: str | None, meter: str, tpq: int) -> dict:
    from hf_melody.evaluation.statistics import in_key_ratio, mean_abs_interval, num_bars, pitch_range
    from hf_melody.harmony.inference import chord_tone_ratios

    stats: dict[str, list[float]] = {k: [] for k in ("strong_beat_chord_tone_ratio", "chord_tone_ratio",
                                                     "in_key_ratio", "mean_abs_interval", "notes_per_bar",
                                                     "pitch_range")}
    num, den = (int(x) for x in meter.split("/"))
    for notes in melodies:
        if not notes:
            continue
        if chords is not None:
            for k, v in chord_tone_ratios(notes, chords, meter, tpq=tpq).items():
                stats[k].append(v)
        scaled = [[o * 480 // tpq, d * 480 // tpq, p] for o, d, p in notes]
        stats["in_key_ratio"].append(in_key_ratio(scaled))
        stats["mean_abs_interval"].append(mean_abs_interval(scaled))
        stats["notes_per_bar"].append(len(notes) / max(1, num_bars(scaled, [[0, num, den]])))
        stats["pitch_range"].append(pitch_range(scaled))
    return {k: round(statistics.mean([x for x in v if x == x]), 4) for k, v in stats.items() if v}


def reference(melodies) -> dict:
    from hf_melody.evaluation.statistics import chord_statistics, melody_statistics

    rows = [melody_statistics([list(n) for n in m.notes], [list(t) for t in m.time_signatures]) for m in melodies]
    chord_rows = [chord_statistics([list(n) for n in m.notes], [list(t) for t in m.time_signatures])
                  for m in melodies]
    out = {k: round(statistics.mean([r[k] for r in rows if r[k] == r[k]]), 4)
           for k in ("in_key_ratio", "mean_abs_interval", "notes_per_bar", "pitch_range")}
    for k in ("strong_beat_chord_tone_ratio", "chord_tone_ratio"):
        out[k] = round(statistics.mean([r[k] for r in chord_rows if r[k] == r[k]]), 4)
    return out


def save_samples(melodies, tok, name: str, chords: str, folder: Path) -> None:
    from hf_melody.export.render import save_midi, save_piano_roll, save_wav

    folder.mkdir(parents=True, exist_ok=True)
    for seed, ids in enumerate(melodies):
        score = tok.decode(ids)
        stem = f"{name.replace(' ', '_').replace('.', '')}_seed{seed}"
        title = f"{name} over {chords}, seed {seed}"
        save_midi(score, folder / f"{stem}.mid", title=title)
        save_wav(score, folder / f"{stem}.wav")
        save_piano_roll(score, folder / f"{stem}.png", title=title)


def tables(records: list[dict]) -> str:
    """The Markdown tables of RESULTS.md section 22b from the JSON lines of a measure run."""
    lines = ["| model | chords given | bits / note | pitch bits / note |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {r['model']} | {r['chords_given']} | {r['bits_per_note']:.3f} | {r['pitch_bits_per_note']:.3f} |"
              for r in records if r["section"] == "bits"]
    keys = ("strong_beat_chord_tone_ratio", "chord_tone_ratio", "in_key_ratio", "mean_abs_interval", "notes_per_bar",
            "pitch_range")
    gen = [r for r in records if r["section"] == "generate"]
    cells = list(dict.fromkeys((r["meter"], r["chords"]) for r in gen))
    lines += ["", "| route | strong-beat chord tones | chord tones | in key | mean abs interval | notes / bar | range "
              "| " + " | ".join(f"{m} `{c}`" for m, c in cells) + " |",
              "| --- " + "| ---: " * (len(keys) + len(cells)) + "|"]
    for route in dict.fromkeys((r["model"], r["setting"]) for r in gen):
        rows = [r for r in gen if (r["model"], r["setting"]) == route]
        means = [statistics.mean(r[k] for r in rows) for k in keys]
        per_cell = [next(r for r in rows if (r["meter"], r["chords"]) == c)[keys[0]] for c in cells]
        label = f"plain {route[1]}" if route[0] == "plain" else ("chords alone" if route[1] == "none"
                                                                  else f"chords + {route[1]}")
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" if k != "pitch_range" else f"{v:.1f}"
                                                             for k, v in zip(keys, means, strict=True))
                     + " | " + " | ".join(f"{v:.2f}" for v in per_cell) + " |")
    ref = next(r for r in records if r["section"] == "reference")
    lines.append("| real Kinderlieder (inferred chords) | " + " | ".join(
        f"{ref[k]:.3f}" if k != "pitch_range" else f"{ref[k]:.1f}" for k in keys) + " |" + " |" * len(cells))
    return "\n".join(lines)


def measure(args) -> None:
    import torch

    from hf_melody import MelodyTokenizer, load_melodies

    torch.set_num_threads(args.threads)
    tok = MelodyTokenizer()
    vocab = ChordVocab(tok.vocab_size)
    test, _ = load_melodies(args.test_data, progress=False)
    test_rows, _ = encode_all(test, tok, vocab)
    notes = sum(len(m.notes) for m in test)
    models = {name: load(args, name) for name in ("plain", "chords")}
    from hf_melody import MelodyPipeline
    from hf_melody.hub import save_bundle

    bundle = save_bundle(models["plain"], tok, Path(args.out) / "models" / "plain-bundle",
                         training_info={"preset": args.preset, "note": "chord_conditioning.py plain model"})
    pipe = MelodyPipeline.from_pretrained(bundle)
    records = [{"section": "reference", "corpus": args.test_data, "tunes": len(test), **reference(test)}]
    emit(records[-1])
    for name, model in models.items():
        records.append({"section": "bits", "model": name, "corpus": args.test_data, "tunes": len(test), "notes": notes,
              "chords_given": "inferred per bar" if name == "chords" else "none",
              **bits(model, test_rows, tok, vocab, name == "chords", notes)})
        emit(records[-1])
    blank = [{**row, "chords": []} for row in test_rows]  # "no chord" in every bar: what the chords are worth
    records.append({"section": "bits", "model": "chords", "corpus": args.test_data, "tunes": len(test),
                    "notes": notes, "chords_given": "none (no-chord token every bar)",
                    **bits(models["chords"], blank, tok, vocab, True, notes)})
    emit(records[-1])
    wrong = [{**row, "chords": [vocab.shift(c, 6) for c in row["chords"]]} for row in test_rows]  # a tritone away
    records.append({"section": "bits", "model": "chords", "corpus": args.test_data, "tunes": len(test),
                    "notes": notes, "chords_given": "wrong (inferred, moved a tritone)",
                    **bits(models["chords"], wrong, tok, vocab, True, notes)})
    emit(records[-1])
    if args.skip_generation:
        return
    for meter in args.meters.split(","):
        for chords in PROGRESSIONS:
            for name, setting, strictness in SETTINGS:
                start = time.perf_counter()
                if setting.endswith("(pipeline)"):
                    melodies, finished = pipeline_melodies(pipe, chords, meter, strictness, args.seeds, args.bars)
                else:
                    melodies, finished = generate(models[name], tok, vocab, name == "chords", chords, meter,
                                                  strictness, args.seeds, args.bars, args.max_new_tokens)
                seconds = time.perf_counter() - start
                tracked = [melody_notes(ids, tok) for ids in melodies]
                tpq = tracked[0][1].ticks_per_quarter
                records.append({"section": "generate", "model": name, "setting": setting, "chords": chords,
                                "meter": meter, "seeds": args.seeds, "bars": args.bars, "finished": finished,
                                "seconds_per_melody": round(seconds / args.seeds, 3),
                                **describe([n for n, _ in tracked], chords, meter, tpq)})
                emit(records[-1])
                if chords == PROGRESSIONS[0] and meter == "4/4" and not setting.endswith("(pipeline)"):
                    save_samples(melodies[:args.samples], tok, f"{name} {setting}", chords,
                                 Path(args.out) / "samples")
    text = tables(records)
    (Path(args.out) / "tables.md").write_text(text + "\n")
    log(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=("train", "measure"), required=True)
    p.add_argument("--model", choices=("plain", "chords"), help="with --stage train: which model")
    p.add_argument("--train-data", default="essen", help="comma-separated corpora (default: essen)")
    p.add_argument("--test-data", default="essen/kinder0", help="held out of training, scored (default: kinder0)")
    p.add_argument("--preset", default="original")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block", type=int, default=512, help="tokens per block and the model's positions")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--augment-semitones", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--bars", type=int, default=8)
    p.add_argument("--meters", default="4/4,3/4")
    p.add_argument("--max-new-tokens", type=int, default=480)
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--skip-generation", action="store_true", help="measure: the bits only")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="out/chord_conditioning")
    args = p.parse_args()
    if args.stage == "train":
        if args.model is None:
            p.error("--stage train needs --model plain or --model chords")
        train(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
