"""Generate four melodies with the bundled `folk-base` model and save MIDI, WAV and piano-roll PNG files.

    python examples/generate.py --out out/examples
"""

import argparse
from pathlib import Path

from hf_melody import MelodyPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="folk-base", help="bundled name, folder or Hub id")
    parser.add_argument("--out", default="out/examples", help="output folder")
    args = parser.parse_args()

    pipe = MelodyPipeline.from_pretrained(args.model)
    out = Path(args.out)
    for i, melody in enumerate(pipe(num_return_sequences=4, max_new_notes=48, seed=0, time_signature="3/4")):
        melody.save_midi(out / f"waltz_{i}.mid")
        melody.save_wav(out / f"waltz_{i}.wav")
        melody.save_piano_roll(out / f"waltz_{i}.png", title=f"{args.model} waltz {i}")
        print(f"waltz_{i}: {melody.num_notes} notes")


if __name__ == "__main__":
    main()
