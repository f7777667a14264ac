"""Melodies per second from a folder of real MIDI files to packed token blocks: hf_melody vs a naive per-file loop.

hf_melody:  `iter_midi_folder(folder)` (symusic read, melody track choice, skyline) + `build_dataset(..., cache=False)`
            (split by melody, tokenize with `datasets.map`, pack into blocks).
naive:      what a simple script does: for each file, read it with mido, take the notes of the first non-drum track
            (and the time signatures), build a `symusic.Score`, tokenize it with miditok, then pack in plain Python.

Both sides get the same files, the same REMI tokenizer, no augmentation and no style tokens, so they produce (nearly)
the same tokens; the token and block counts are printed to check. The MIDI folder is made by exporting N melodies of
a music21 corpus (`Melody.to_score().dump_midi`) into a temporary folder.

Repetitions alternate between the two sides (ABBA...) in one process; each side's median is reported, and the ratio.

    .venv/bin/python benchmarks/speed/data_throughput.py --num-files 500 --reps 7
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def export_midi_folder(corpus: str, num_files: int, folder: Path) -> int:
    """Write up to `num_files` melodies of the music21 corpus spec(s) `corpus` (comma-separated) as .mid files."""
    from hf_melody.data.corpora import load_melodies

    melodies, _ = load_melodies([c.strip() for c in corpus.split(",")], progress=False)
    melodies = melodies[:num_files]
    for i, m in enumerate(melodies):
        m.to_score().dump_midi(str(folder / f"{i:05d}.mid"))
    return len(melodies)


# ------------------------------------------------------------------------------------------------------------------
# the two sides
# ------------------------------------------------------------------------------------------------------------------
def run_hf_melody(folder: Path, block_size: int, num_proc: int | None) -> dict:
    from hf_melody import MelodyTokenizer
    from hf_melody.data.arguments import DataConfig
    from hf_melody.data.corpora import iter_midi_folder
    from hf_melody.data.dataset import build_dataset
    from hf_melody.data.melody import SkipReport

    t0 = time.perf_counter()
    report = SkipReport()
    melodies = list(iter_midi_folder(folder, report, progress=False))
    t1 = time.perf_counter()
    tokenizer = MelodyTokenizer()
    config = DataConfig(max_length=block_size, augment_semitones=0, use_style_tokens=False)
    dsd = build_dataset(melodies, tokenizer, config, num_proc=num_proc, cache=False)
    t2 = time.perf_counter()
    blocks = sum(len(ds) for ds in dsd.values())
    tokens = sum(sum(sum(m) for m in ds["attention_mask"]) for ds in dsd.values())
    return {"seconds": t2 - t0, "read_s": t1 - t0, "tokenize_pack_s": t2 - t1, "melodies": len(melodies),
            "skipped": len(report.skipped), "blocks": blocks, "tokens": int(tokens)}


def _mido_notes(path: Path) -> tuple[int, list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """ticks per beat, notes `(onset, duration, pitch)` of the first non-drum track with notes, time signatures."""
    import mido

    mid = mido.MidiFile(str(path))
    time_sigs: list[tuple[int, int, int]] = []
    notes: list[tuple[int, int, int]] | None = None
    for track in mid.tracks:
        tick, pending, track_notes, drum = 0, {}, [], False
        for msg in track:
            tick += msg.time
            if msg.type == "time_signature":
                time_sigs.append((tick, msg.numerator, msg.denominator))
            elif msg.type == "note_on" and msg.velocity > 0:
                drum |= msg.channel == 9
                pending[(msg.channel, msg.note)] = tick
            elif msg.type in ("note_off", "note_on"):
                start = pending.pop((msg.channel, msg.note), None)
                if start is not None:
                    track_notes.append((start, tick - start, msg.note))
        if notes is None and track_notes and not drum:
            notes = sorted(track_notes)
    return mid.ticks_per_beat, notes or [], time_sigs or [(0, 4, 4)]


def run_naive(folder: Path, block_size: int) -> dict:
    from miditok import REMI
    from symusic import Note, Score, TimeSignature, Track

    from hf_melody.tokenizer import melody_tokenizer_config

    t0 = time.perf_counter()
    remi = REMI(melody_tokenizer_config())
    bos, eos, pad = remi["BOS_None"], remi["EOS_None"], remi["PAD_None"]
    sequences, read_s = [], 0.0
    for path in sorted(folder.glob("*.mid")):
        r0 = time.perf_counter()
        tpq, notes, time_sigs = _mido_notes(path)
        read_s += time.perf_counter() - r0
        if len(notes) < 2:
            continue
        score = Score(tpq)
        for tick, num, den in time_sigs:
            score.time_signatures.append(TimeSignature(tick, num, den))
        track = Track(name="melody", program=0, is_drum=False)
        for onset, dur, pitch in notes:
            track.notes.append(Note(onset, dur, pitch, 90))
        score.tracks.append(track)
        seqs = remi.encode(score)
        seq = seqs[0] if isinstance(seqs, list) else seqs
        sequences.append([bos, *seq.ids, eos])
    # pack: concatenate and cut into fixed blocks (tail padded, labels -100), as `data.pack` does
    flat = [t for seq in sequences for t in seq]
    blocks = []
    for start in range(0, len(flat), block_size):
        chunk = flat[start:start + block_size]
        if len(chunk) < 2:
            continue
        pad_n = block_size - len(chunk)
        blocks.append({"input_ids": chunk + [pad] * pad_n, "labels": chunk + [-100] * pad_n,
                       "attention_mask": [1] * len(chunk) + [0] * pad_n})
    t1 = time.perf_counter()
    tokens = sum(sum(b["attention_mask"]) for b in blocks)
    return {"seconds": t1 - t0, "read_s": read_s, "tokenize_pack_s": t1 - t0 - read_s, "melodies": len(sequences),
            "skipped": 0, "blocks": len(blocks), "tokens": int(tokens)}


def summarize(name: str, runs: list[dict], args: argparse.Namespace, extra: dict) -> dict:
    rates = [r["melodies"] / r["seconds"] for r in runs]
    last = runs[-1]
    record = {
        "benchmark": "data_throughput", "impl": name, "num_files": extra["num_files"],
        "corpus": str(args.folder) if args.folder is not None else args.corpus,
        "block_size": args.block_size, "reps": len(runs),
        "melodies_per_s_median": round(statistics.median(rates), 1),
        "melodies_per_s_reps": [round(x, 1) for x in rates],
        "seconds_median": round(statistics.median(r["seconds"] for r in runs), 3),
        "read_s_median": round(statistics.median(r["read_s"] for r in runs), 3),
        "tokenize_pack_s_median": round(statistics.median(r["tokenize_pack_s"] for r in runs), 3),
        "melodies": last["melodies"], "skipped": last["skipped"], "blocks": last["blocks"], "tokens": last["tokens"],
        "tokens_per_s_median": round(statistics.median(r["tokens"] / r["seconds"] for r in runs)),
    }
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-files", type=int, default=500, help="MIDI files to export and read (default 500).")
    parser.add_argument("--corpus", default="essen/han1",
                        help="music21 corpus spec(s) to export, comma-separated (default essen/han1: 554 tunes).")
    parser.add_argument("--folder", type=Path, default=None,
                        help="Use this folder of .mid files instead of exporting a corpus (the naive loop reads "
                             "only its top-level *.mid files).")
    parser.add_argument("--block-size", type=int, default=256, help="Tokens per packed block (default 256).")
    parser.add_argument("--reps", type=int, default=7, help="Timed repetitions per side, interleaved (default 7).")
    parser.add_argument("--num-proc", type=int, default=None,
                        help="Processes for hf_melody's datasets.map (default: none, one process like the naive "
                             "loop; the map only goes parallel from 200 melodies).")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both sides (default 1).")
    args = parser.parse_args(argv)

    import datasets
    import torch

    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    logging.getLogger("hf_melody").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="hf_melody_bench_") as tmp:
        if args.folder is not None:
            folder = args.folder
            num_files = len(list(folder.glob("*.mid")))
        else:
            folder = Path(tmp) / "midi"
            folder.mkdir()
            num_files = export_midi_folder(args.corpus, args.num_files, folder)

        sides = {"hf_melody": lambda: run_hf_melody(folder, args.block_size, args.num_proc),
                 "naive_mido_loop": lambda: run_naive(folder, args.block_size)}
        for run in sides.values():  # warm-up: imports, first-call costs (not timed)
            run()
        runs: dict[str, list[dict]] = {name: [] for name in sides}
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for name in order:
                runs[name].append(sides[name]())

    extra = {"num_files": num_files}
    records = {name: summarize(name, r, args, extra) for name, r in runs.items()}
    for rec in records.values():
        emit(rec)
    ours, naive = records["hf_melody"], records["naive_mido_loop"]
    emit({"benchmark": "data_throughput", "impl": "comparison", "num_files": num_files,
          "speedup_hf_melody_vs_naive": round(statistics.median(  # median of the paired ratios
              n["seconds"] / o["seconds"] for o, n in zip(runs["hf_melody"], runs["naive_mido_loop"], strict=True)), 2),
          "ratio_of_medians": round(ours["melodies_per_s_median"] / naive["melodies_per_s_median"], 2),
          "paired_speedup_reps": [round(n["seconds"] / o["seconds"], 2) for o, n in
                                  zip(runs["hf_melody"], runs["naive_mido_loop"], strict=True)],
          "token_count_ratio": round(ours["tokens"] / max(1, naive["tokens"]), 4),
          "threads": args.threads, "cpu_count": os.cpu_count(), "python": platform.python_version(),
          "torch": torch.__version__, "datasets": datasets.__version__})


if __name__ == "__main__":
    main()
