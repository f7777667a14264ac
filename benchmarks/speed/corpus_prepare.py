"""Cold `hf-melody prepare` of the four folk corpora: from an empty cache to packed training blocks.

Each run is a fresh Python process with an empty `$HF_MELODY_CACHE` and `$HF_DATASETS_CACHE` (a cold start on a new
machine, as a user or CI would see it), running what `hf-melody prepare --dataset essen,oneills1850,ryansMammoth,
airdsAirs --num-proc 2` and every training recipe run: `load_melodies` (the packaged conversions, checked against
the installed music21 files by SHA-1), then `build_dataset` (split by melody, transposition by -5..5, tokenizing,
packing into 512-token blocks). Side by side, in the same run: music21's own conversion of a sample of tunes, the
route that the packs replace, timed per tune and extrapolated to the whole corpus.

    .venv/bin/python benchmarks/speed/corpus_prepare.py --reps 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from hf_melody import MelodyTokenizer
from hf_melody.data.corpora import FOLK_CORPORA, load_melodies
from hf_melody.data.dataset import DataConfig, build_dataset, dataset_stats
t1 = time.perf_counter()
melodies, report = load_melodies(list(FOLK_CORPORA), progress=False, num_proc=2)
t2 = time.perf_counter()
dsd = build_dataset(melodies, MelodyTokenizer(), DataConfig(max_length=512, augment_semitones=5), num_proc=2)
t3 = time.perf_counter()
stats = dataset_stats(dsd)
print(json.dumps({"import_s": t1 - t0, "load_melodies_s": t2 - t1, "build_dataset_s": t3 - t2,
                  "total_s": t3 - t0, "kept": report.kept, "total": report.total,
                  "train_tokens": stats["train"]["tokens"]}))
"""


def cold_prepare() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_MELODY_CACHE": f"{tmp}/hfm", "HF_DATASETS_CACHE": f"{tmp}/ds",
               "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
        record = json.loads(out.stdout.strip().splitlines()[-1])
        record["wall_s"] = time.perf_counter() - t
        return record


def music21_per_tune(num_tunes: int) -> float:
    """Seconds per tune of music21's ABC conversion (the route the packs replace), on the first tunes of oneills."""
    from hf_melody.data.music21_corpora import _convert_music21_file, music21_files

    files = music21_files("oneills1850")[:3]
    t = time.perf_counter()
    tunes = 0
    for f in files:
        mels, skips = _convert_music21_file((str(f), "oneills1850", "irish"))
        tunes += len(mels) + len(skips)
        if tunes >= num_tunes:
            break
    return (time.perf_counter() - t) / max(1, tunes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--music21-tunes", type=int, default=100)
    args = parser.parse_args()
    runs = [cold_prepare() for _ in range(args.reps)]
    per_tune = music21_per_tune(args.music21_tunes)
    tunes = runs[0]["total"]
    summary = {
        "benchmark": "corpus_prepare", "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "reps": args.reps, "tunes": tunes, "kept": runs[0]["kept"], "train_tokens": runs[0]["train_tokens"],
        **{f"median_{k}": round(statistics.median(r[k] for r in runs), 2)
           for k in ("import_s", "load_melodies_s", "build_dataset_s", "total_s", "wall_s")},
        "music21_s_per_tune": round(per_tune, 4),
        "music21_estimate_s_2proc": round(per_tune * tunes / 2, 1),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
