"""Bounded fuzzing of `read_midi`: mutated real MIDI files give a `Melody` or a typed hf_melody error, nothing else.

Mutations of the fixtures in `tests/fixtures/`: byte flips, truncations, chunk duplication, deletions, insertions
and header tweaks (one to three per input, seeded). Every returned melody is also checked for the invariants the
tokenizer relies on (sorted, non-overlapping, positive durations, pitches in range, a supported meter at tick 0).

    python tests/test_midi_fuzz.py --n 2000 --seed 0      # prints a JSON summary; exit status 1 on any crash
    pytest -m slow tests/test_midi_fuzz.py
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def _chunks(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte spans of the chunks after the header, as far as they can be walked."""
    spans, pos = [], 14
    while pos + 8 <= len(data):
        end = pos + 8 + int.from_bytes(data[pos + 4:pos + 8], "big")
        spans.append((pos, min(end, len(data))))
        pos = end
    return spans


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of `data`; returns the new bytes and the mutation's name."""
    kind = rng.choice(["flip", "flip_bits", "truncate", "duplicate_chunk", "delete", "insert", "header"])
    buf = bytearray(data)
    if kind == "flip":  # set 1-8 random bytes to random values
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == "flip_bits":  # flip single bits, mostly inside the track data
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(min(14, len(buf) - 1), len(buf))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        buf = buf[:rng.randrange(len(buf))]
    elif kind == "duplicate_chunk":  # repeat one track chunk, with or without fixing the header's track count
        spans = _chunks(data)
        if spans:
            start, end = rng.choice(spans)
            at = rng.choice([end, len(buf), start])
            buf[at:at] = data[start:end]
            if rng.random() < 0.5 and len(buf) >= 12:
                buf[10:12] = ((int.from_bytes(buf[10:12], "big") + 1) % 65536).to_bytes(2, "big")
    elif kind == "delete":
        start = rng.randrange(len(buf))
        del buf[start:start + rng.randint(1, 32)]
    elif kind == "insert":
        at = rng.randrange(len(buf) + 1)
        buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    elif kind == "header":  # format, track count or division set to an odd value
        field = rng.choice([(8, 10), (10, 12), (12, 14)])
        value = rng.choice([0, 1, 2, 3, 0x7FFF, 0x8000, 0xE728, 0xFFFF, rng.randrange(65536)])
        if len(buf) >= field[1]:
            buf[field[0]:field[1]] = value.to_bytes(2, "big")
    return bytes(buf), kind


def check_melody(melody) -> str | None:
    """The first broken invariant of a melody, or None."""
    from hf_melody.music import PITCH_RANGE, TIME_SIGNATURE_RANGE

    notes = melody.notes
    if len(notes) < 2:
        return f"{len(notes)} notes"
    for (o, d, p), nxt in zip(notes, [*notes[1:], None], strict=True):
        if d <= 0 or o < 0:
            return f"bad note {[o, d, p]}"
        if not PITCH_RANGE[0] <= p <= PITCH_RANGE[1]:
            return f"pitch {p} out of range"
        if nxt is not None and o + d > nxt[0]:
            return f"overlap {[o, d, p]} {nxt}"
    tss = melody.time_signatures
    if not tss or tss[0][0] != 0:
        return f"time signatures {tss[:3]} do not start at tick 0"
    for _, num, den in tss:
        if num not in TIME_SIGNATURE_RANGE.get(den, []):
            return f"unsupported time signature {num}/{den}"
    return None


def _read_one(path: Path) -> tuple[str, str | None]:
    """Outcome name (`Melody`, an error class, or `crash:<type>`) and the problem found, if any."""
    from hf_melody.data.corpora import read_midi
    from hf_melody.errors import HFMelodyError

    try:
        melody = read_midi(path)
    except HFMelodyError as e:
        message = str(e)
        if "\n" in message or str(path) not in message:
            return f"crash:BadMessage:{type(e).__name__}", f"message is not one line naming the file: {message!r}"
        return type(e).__name__, None
    except Exception as e:  # noqa: BLE001 - anything else is the crash we look for
        return f"crash:{type(e).__name__}", f"{type(e).__name__}: {str(e)[:200]}"
    broken = check_melody(melody)
    return ("Melody", None) if broken is None else ("crash:InvalidMelody", f"invalid melody: {broken}")


def _worker(folder: Path, start: int, n: int) -> None:
    """Read inputs `start..n-1` of `folder`, one JSON line each (run in a child: symusic may kill the process)."""
    import hf_melody.data.corpora  # noqa: F401 - imported before timing the first input

    for i in range(start, n):
        t0 = time.perf_counter()
        outcome, problem = _read_one(folder / f"{i:05d}.mid")
        line = {"i": i, "outcome": outcome, "problem": problem, "seconds": round(time.perf_counter() - t0, 4)}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def _results_in_process(folder: Path, n: int):
    import hf_melody.data.corpora  # noqa: F401 - imported before timing the first input

    for i in range(n):
        t0 = time.perf_counter()
        outcome, problem = _read_one(folder / f"{i:05d}.mid")
        yield {"i": i, "outcome": outcome, "problem": problem, "seconds": time.perf_counter() - t0}


def run_fuzz(n: int = 2000, seed: int = 0, workdir: str | Path | None = None, max_crashes: int = 20,
             isolate: bool = True, fail_fast: bool = False) -> dict:
    """Feed `n` mutated fixtures to `read_midi`; count outcomes by type (with `fail_fast`, as the tests run it:
    raise `AssertionError` at the first crashing input instead, naming it, its mutations and its kept file).

    With `isolate` (the default) the inputs are read in a child process: a child killed by a signal (a crash
    inside symusic) is counted as `crash:signal<N>` for the input it was reading and restarted after it. Without
    it they are read in this process (fast, but a native crash takes the caller down). Crashing inputs stay in
    `workdir/inputs/` to reproduce them.
    """
    rng = random.Random(seed)
    seeds = [p.read_bytes() for p in sorted(FIXTURES.glob("*.mid"))]
    folder = Path(workdir or tempfile.mkdtemp(prefix="hf_melody_fuzz_")) / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    mutations: Counter[str] = Counter()
    applied = []
    for i in range(n):
        data, names = rng.choice(seeds), []
        for _ in range(rng.choice([1, 1, 2, 3])):
            data, kind = mutate(data, rng) if data else (data, "empty")
            names.append(kind)
        mutations.update(names)
        applied.append(names)
        (folder / f"{i:05d}.mid").write_bytes(data)

    outcomes: Counter[str] = Counter()
    crashes: list[dict] = []

    def crashed(i: int, problem: str) -> None:
        crashes.append({"input": i, "mutations": applied[i], "problem": problem})
        if fail_fast:
            raise AssertionError(f"input {i} (mutations {applied[i]}, kept in {folder / f'{i:05d}.mid'}): {problem}")
    slowest, slowest_i, restarts, next_i = 0.0, -1, 0, 0
    start = time.perf_counter()
    if not isolate:
        for r in _results_in_process(folder, n):
            outcomes[r["outcome"]] += 1
            if r["seconds"] > slowest:
                slowest, slowest_i = r["seconds"], r["i"]
            if r["problem"]:
                crashed(r["i"], r["problem"])
        next_i = n
    while next_i < n:
        child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(folder),
                                "--start", str(next_i), "--n", str(n)], capture_output=True, text=True)
        for line in child.stdout.splitlines():
            r = json.loads(line)
            outcomes[r["outcome"]] += 1
            if r["seconds"] > slowest:
                slowest, slowest_i = r["seconds"], r["i"]
            if r["problem"]:
                crashed(r["i"], r["problem"])
            next_i = r["i"] + 1
        if child.returncode > 0:  # a Python error outside read_midi (e.g. the import): the harness is broken
            raise RuntimeError(f"fuzz worker failed: {child.stderr.strip()[-2000:]}")
        if child.returncode < 0 and next_i < n:  # killed by a signal while reading input `next_i`
            restarts += 1
            outcomes[f"crash:signal{-child.returncode}"] += 1
            crashed(next_i, f"child exited with {child.returncode}: {child.stderr.strip()[-300:]}")
            next_i += 1
    keep = {c["input"] for c in crashes} | {slowest_i}
    for i in range(n):
        if i not in keep:
            (folder / f"{i:05d}.mid").unlink()
    for c in crashes:
        c["file"] = str(folder / f"{c['input']:05d}.mid")
    return {
        "inputs": n,
        "seed": seed,
        "fixtures": len(seeds),
        "outcomes": dict(sorted(outcomes.items())),
        "mutations": dict(sorted(mutations.items())),
        "num_crashes": sum(v for k, v in outcomes.items() if k.startswith("crash:")),
        "crashes": crashes[:max_crashes],
        "child_restarts": restarts,
        "seconds": round(time.perf_counter() - start, 2),
        "slowest_input_seconds": round(slowest, 3),
        "slowest_input": {"input": slowest_i, "mutations": applied[slowest_i] if slowest_i >= 0 else []},
    }


def test_fuzz_smoke(tmp_path):
    """A quick run in the default suite: 300 mutants read in this process (seeded, so known not to crash)."""
    summary = run_fuzz(300, seed=1, workdir=tmp_path, isolate=False, fail_fast=True)
    assert summary["num_crashes"] == 0, json.dumps(summary, indent=1)


@pytest.mark.slow
def test_fuzz_read_midi(tmp_path):
    summary = run_fuzz(2000, seed=0, workdir=tmp_path, fail_fast=True)  # the first crashing input fails the test
    assert summary["num_crashes"] == 0, json.dumps(summary, indent=1)
    assert summary["outcomes"].get("Melody", 0) > 0 and summary["outcomes"].get("MidiReadError", 0) > 0
    assert summary["slowest_input_seconds"] < 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="how many mutated inputs (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--workdir", default=None, help="where crashing inputs are kept (default: a temp folder)")
    parser.add_argument("--in-process", action="store_true", help="read in this process (no crash isolation)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(Path(args.worker), args.start, args.n)
        return 0
    summary = run_fuzz(args.n, args.seed, args.workdir, isolate=not args.in_process)
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 1 if summary["num_crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
