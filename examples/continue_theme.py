"""Continue a MIDI theme: the output starts with the theme's melody and goes on for a few bars.

    python examples/continue_theme.py tests/fixtures/kinder0_0.mid --bars 8
"""

import argparse
from pathlib import Path

from hf_melody import MelodyPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("theme", help="a MIDI file; its melody track is the prompt")
    parser.add_argument("--model", default="folk-base", help="bundled name, folder or Hub id")
    parser.add_argument("--bars", type=int, default=8, help="new bars to add")
    parser.add_argument("--num", type=int, default=3, help="how many continuations")
    parser.add_argument("--out", default="out/continuations", help="output folder")
    args = parser.parse_args()

    pipe = MelodyPipeline.from_pretrained(args.model)
    for i, melody in enumerate(pipe(args.theme, max_bars=args.bars, num_return_sequences=args.num, seed=0)):
        stem = Path(args.out) / f"{Path(args.theme).stem}_continued_{i}"
        melody.save_midi(stem.with_suffix(".mid"))
        melody.save_piano_roll(stem.with_suffix(".png"), title=f"{Path(args.theme).name}, continuation {i}")
        print(f"{stem}.mid: {melody.num_prompt_notes} theme notes + {melody.num_notes - melody.num_prompt_notes} new")


if __name__ == "__main__":
    main()
