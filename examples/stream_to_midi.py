"""Write a MIDI file that grows note by note while the model generates (open it in a player that reloads).

    python examples/stream_to_midi.py --model folk-base --out out/live.mid --key "G major" --num-bars 16 --seed 0

The file is rewritten atomically after every note, so a reader never sees a half-written file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hf_melody import Melody, MelodyPipeline
from hf_melody.export.render import save_midi


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="folk-base", help="bundled name, bundle folder or Hub id (default folk-base)")
    p.add_argument("--out", default="out/live.mid", help="the MIDI file to (re)write")
    p.add_argument("--prompt", default=None, help="a MIDI file to continue (its notes are not included)")
    p.add_argument("--tempo", type=float, default=120.0, help="quarter notes per minute")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--key", default=None, help='e.g. "G major"')
    p.add_argument("--num-bars", type=int, default=16)
    p.add_argument("--time-signature", default=None, help='e.g. "6/8"')
    p.add_argument("--style", default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pipe = MelodyPipeline.from_pretrained(args.model)
    options = {"seed": args.seed, "key": args.key, "num_bars": args.num_bars, "time_signature": args.time_signature,
               "style": args.style}
    options = {k: v for k, v in options.items() if v is not None}
    out = Path(args.out)
    notes, meter = [], None
    tpq = 480
    for note in pipe.stream(args.prompt, tempo_qpm=args.tempo, **options):
        if meter is None:
            num, den = (int(x) for x in note.time_signature.split("/"))
            meter = [(0, num, den)]
        notes.append((round(note.onset * tpq), round(note.duration * tpq), note.pitch))
        save_midi(Melody("live", "stream", list(notes), meter).to_score(tempo_qpm=args.tempo), out)
        print(f"{len(notes):3d} notes, {note.end:6.2f} beats -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
