"""Print a melody's notes in time while the model writes it (real-time streaming).

    python examples/stream_notes.py --model folk-base --key "D minor" --num-bars 8 --tempo 100 --seed 0

Each note is printed at its onset (the script sleeps until then), so the output scrolls like a player piano; with
`--no-wait` they are printed as fast as they come.
"""

from __future__ import annotations

import argparse
import time

from hf_melody import MelodyPipeline
from hf_melody.music import note_name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="folk-base", help="bundled name, bundle folder or Hub id (default folk-base)")
    p.add_argument("--prompt", default=None, help="a MIDI file to continue")
    p.add_argument("--tempo", type=float, default=120.0, help="quarter notes per minute")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--key", default=None, help='e.g. "D minor"')
    p.add_argument("--num-bars", type=int, default=8)
    p.add_argument("--time-signature", default=None, help='e.g. "3/4"')
    p.add_argument("--style", default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--no-wait", action="store_true", help="print notes as soon as they are generated")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pipe = MelodyPipeline.from_pretrained(args.model)
    options = {"seed": args.seed, "key": args.key, "num_bars": args.num_bars, "time_signature": args.time_signature,
               "style": args.style, "temperature": args.temperature}
    options = {k: v for k, v in options.items() if v is not None}
    started = time.perf_counter()
    clock = None  # wall-clock time of beat 0
    for note in pipe.stream(args.prompt, tempo_qpm=args.tempo, **options):
        now = time.perf_counter()
        if clock is None:
            clock = now - note.onset_seconds
            print(f"first note after {now - started:.3f} s")
        if not args.no_wait and clock + note.onset_seconds > now:
            time.sleep(clock + note.onset_seconds - now)
        print(f"bar {note.bar + 1:3d}  {note.onset_seconds:7.2f} s  {note_name(note.pitch):>4}  "
              f"{note.duration:g} beats", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
