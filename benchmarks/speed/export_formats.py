"""Time and size of every file format a melody can be saved as (bundled folk-base, 8-bar melodies, one thread).

    python benchmarks/speed/export_formats.py --num 8
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hf_melody import MelodyPipeline
from hf_melody.export.render import FORMATS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=8)
    parser.add_argument("--model", default="folk-base")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = MelodyPipeline.from_pretrained(args.model)
    melodies = pipe(seed=0, num_return_sequences=args.num, num_bars=8, key="D minor")
    melodies[0].save(Path(tempfile.mkdtemp()) / "warm", FORMATS)  # imports (music21, matplotlib) out of the timing
    times: dict[str, list[float]] = {f: [] for f in FORMATS}
    sizes: dict[str, list[int]] = {f: [] for f in FORMATS}
    with tempfile.TemporaryDirectory() as tmp:
        for i, m in enumerate(melodies):
            for fmt in FORMATS:
                start = time.perf_counter()
                [path] = m.save(Path(tmp) / f"m{i}", (fmt,))
                times[fmt].append(time.perf_counter() - start)
                sizes[fmt].append(path.stat().st_size)
    notes = statistics.median(m.num_notes for m in melodies)
    print(f"{args.num} melodies of 8 bars (median {notes:.0f} notes), {args.model}")
    print("| format | median time (ms) | median size (bytes) |\n|---|---|---|")
    for fmt in FORMATS:
        print(f"| {fmt} | {1000 * statistics.median(times[fmt]):.1f} | {statistics.median(sizes[fmt]):,.0f} |")


if __name__ == "__main__":
    main()
