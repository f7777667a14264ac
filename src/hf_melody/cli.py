"""The `hf-melody` command: prepare data, train, evaluate, generate melodies (MIDI + WAV + PNG), list models.

    hf-melody generate --model folk-base --num 4 --out out/ --seed 0
    hf-melody prepare --dataset path/to/midi --output-dir out/data
    hf-melody train --config recipes/original.yaml --max-steps 300
    hf-melody evaluate --models original folk-base --dataset essen/kinder0 --output-dir out/eval
    hf-melody demo                      # a local web app: generate, listen, download
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import ConfigError, HFMelodyError
from .music import PITCH_RANGE
from .render import FORMATS  # noqa: E402,F401 - what `generate --formats` can write

logger = logging.getLogger("hf_melody")


def _echo(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()




def check_out_folder(flag: str, path: str) -> Path:
    """`ConfigError` (before any work) if `path`, or a folder above it, is an existing file."""
    from .errors import ConfigError

    out = Path(path)
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"{flag} {path}: {p} is a file, not a folder; give a folder path")
            break
    return out


def parse_formats(text: str) -> list[str]:
    """`--formats mid,wav` -> `["mid", "wav"]`; `ConfigError` naming an unknown or missing format."""
    from .errors import ConfigError

    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        what = f"unknown format(s) {', '.join(map(repr, unknown))}" if unknown else "no format given"
        raise ConfigError(f"--formats {text!r}: {what}; choose a comma-separated subset of {','.join(FORMATS)}")
    return formats


def cmd_prepare(argv: list[str], verbose: bool = False) -> int:
    """`hf-melody prepare`: corpus or MIDI folder -> packed `DatasetDict`, `miditok.json` and a skip report."""
    from .corpora import load_melodies
    from .data import build_dataset, dataset_stats, split_melodies
    from .parser import prepare_parser
    from .tokenizer import MelodyTokenizer

    parser = prepare_parser("hf-melody prepare")
    if _wants_help(argv):
        parser.print_help()
        return 0
    if not any(a.split("=")[0] in ("--dataset", "--config") for a in argv):
        raise ConfigError("prepare needs --dataset (a corpus name, a MIDI folder or a comma-separated list), "
                          "e.g. --dataset path/to/midi")
    data, prep = parser.parse_args_and_config(argv)
    if data.streaming:
        raise ConfigError("prepare writes the blocks to disk; streaming does not apply (train with --streaming "
                          "true on the corpus instead)")
    out = check_out_folder("--output_dir", prep.output_dir)
    melodies, report = load_melodies(data.dataset, num_proc=data.num_proc, exclude=data.exclude)
    report_path = report.save(out / "skip_report.json")
    tokenizer = MelodyTokenizer()
    if data.bpe_vocab_size:
        parts = split_melodies(melodies, data.validation_ratio, data.test_ratio, data.seed)
        tokenizer.train_bpe(data.bpe_vocab_size, parts["train"])
    dsd = build_dataset(melodies, tokenizer, data, num_proc=data.num_proc)
    dsd.save_to_disk(str(out / "dataset"))
    tokenizer.save_pretrained(out)
    _echo(f"melodies: {report.summary()}")
    for item in report.skipped[:20]:
        _echo(f"  skipped {item['item']}: {item['reason']}")
    if len(report.skipped) > 20:
        _echo(f"  ... and {len(report.skipped) - 20} more (see the report)")
    _echo(f"blocks: {json.dumps(dataset_stats(dsd))}")
    _echo(f"wrote {out / 'dataset'}, {out / 'miditok.json'} and {report_path}")
    return 0


def _wants_help(argv: list[str]) -> bool:
    return "-h" in argv or "--help" in argv


def cmd_train(argv: list[str], verbose: bool = False) -> int:
    """`hf-melody train`: the options of `recipes/train.py` (a recipe via --config, any key as a flag)."""
    from .parser import training_parser
    from .training import parse_args, train

    if _wants_help(argv):
        training_parser("hf-melody train").print_help()
        return 0
    model_args, data_args, training_args = parse_args(argv)
    metrics = train(model_args, data_args, training_args)
    _echo(json.dumps({k: v for k, v in metrics.items() if isinstance(v, int | float)}, indent=1))
    _echo(f"bundle written to {training_args.output_dir}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import random

    from tqdm.auto import tqdm

    from .pipeline import MelodyPipeline
    from .render import check_formats

    formats = check_formats(parse_formats(args.formats))  # before loading anything: a typo fails at once
    check_out_folder("--out", args.out)
    pipe = MelodyPipeline.from_pretrained(args.model, device=args.device)
    kwargs = {"temperature": args.temperature,
              "top_k": args.top_k, "top_p": args.top_p, "max_new_notes": args.max_new_notes,
              "max_bars": args.max_bars, "time_signature": args.time_signature, "style": args.style,
              "key": args.key, "key_strictness": args.key_strictness, "num_bars": args.num_bars,
              "end_on_tonic": args.end_on_tonic or None, "constrained": False if args.no_grammar else None,
              "pitch_range": tuple(args.pitch_range) if args.pitch_range else None}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    # melody i of a call with seed s is exactly the single call with seed s + i, so one melody at a time gives the
    # same files and lets one progress bar cover the whole job (generation and rendering)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31 - 1 - args.num)
    out = Path(args.out)
    written = []
    for i in tqdm(range(args.num), desc="generating", unit="melody", disable=args.num < 2):
        [m] = pipe(args.prompt, seed=seed + i, **kwargs)
        written += m.save(out / f"melody_{i}", tuple(formats), soundfont=args.soundfont)
        tqdm.write(f"melody {i}: {m.num_notes} notes ({m.num_prompt_notes} from the prompt)", file=sys.stdout)
    _echo(f"wrote {len(written)} files to {out}/:")
    for p in written:
        _echo(f"  {p}")
    return 0


def parse_bars(text: str) -> tuple[int, int]:
    """`"5-6"` -> `(5, 6)`, `"5"` -> `(5, 5)`; `ConfigError` for anything else."""
    from .errors import ConfigError

    first, sep, last = text.partition("-")
    try:
        return (int(first), int(last) if sep else int(first))
    except ValueError:
        raise ConfigError(f"--bars {text!r}: give a bar or a range of bars, e.g. --bars 5 or --bars 5-6") from None


def cmd_infill(args: argparse.Namespace) -> int:
    import random

    from tqdm.auto import tqdm

    from .pipeline import MelodyPipeline
    from .render import check_formats

    bars = parse_bars(args.bars)
    formats = check_formats(parse_formats(args.formats))
    out = check_out_folder("--out", args.out)
    pipe = MelodyPipeline.from_pretrained(args.model, device=args.device)
    options = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p, "key": args.key,
               "pitch_range": tuple(args.pitch_range) if args.pitch_range else None, "style": args.style}
    options = {k: v for k, v in options.items() if v is not None}
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31 - 1 - args.num)
    written = []
    for i in tqdm(range(args.num), desc="infilling", unit="melody", disable=args.num < 2):
        [m] = pipe.infill(args.prompt, bars=bars, seed=seed + i, **options)
        written += m.save(Path(out) / f"infill_{i}", tuple(formats), soundfont=args.soundfont)
        tqdm.write(f"melody {i}: bars {bars[0]}-{bars[1]} regenerated, {m.num_notes} notes", file=sys.stdout)
    _echo(f"wrote {len(written)} files to {out}/:")
    for p in written:
        _echo(f"  {p}")
    return 0


def cmd_corpora(args: argparse.Namespace) -> int:
    from .music21_corpora import FOLK_CORPORA, MUSIC21_CORPORA, PACK_DIR, build_packs, read_pack

    if args.rebuild is not None:
        names = args.rebuild or [*FOLK_CORPORA, "bach-chorales"]
        unknown = [n for n in names if n not in MUSIC21_CORPORA]
        if unknown:
            from .errors import CorpusError

            raise CorpusError(f"unknown corpus {unknown[0]!r}; choose among {', '.join(MUSIC21_CORPORA)}")
        for name, path in build_packs(names, out_dir=args.out or PACK_DIR, num_proc=args.num_proc).items():
            _echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) for {name}")
        return 0
    for name in MUSIC21_CORPORA:
        pack = read_pack(name)
        if pack is None:
            _echo(f"{name}: no usable pack (converted with music21 on first use, then cached)")
        else:
            tunes = sum(len(f["melodies"]) + len(f["skipped"]) for f in pack["files"].values())
            _echo(f"{name}: {len(pack['files'])} files, {tunes} tunes, from music21 {pack['music21_version']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import launch

    _echo(f"starting the demo on http://{args.host}:{args.port} (Ctrl+C to stop)")
    launch(args.models, host=args.host, port=args.port, share=args.share, soundfont=args.soundfont)
    return 0


def cmd_evaluate(argv: list[str], verbose: bool = False) -> int:
    """`hf-melody evaluate`: the options of `recipes/evaluate.py` (a recipe via --config, any key as a flag)."""
    from .evaluation import evaluate_models, results_table
    from .parser import evaluation_parser

    parser = evaluation_parser("hf-melody evaluate")
    if _wants_help(argv):
        parser.print_help()
        return 0
    [config] = parser.parse_args_and_config(argv)
    results = evaluate_models(**config.to_kwargs(), progress=verbose)
    _echo(results_table(results))
    _echo(f"wrote {Path(config.output_dir) / 'results.json'} and {len(results['plots'])} plots")
    return 0


def cmd_cards(args: argparse.Namespace) -> int:
    from .cards import generate_model_cards

    for path in generate_model_cards(args.results, args.out):
        _echo(f"wrote {path}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .hub import CHECKPOINTS_DIR, TRAINING_INFO, bundled_checkpoints

    for name in bundled_checkpoints():
        info_path = CHECKPOINTS_DIR / name / TRAINING_INFO
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        _echo(f"{name:18s} {info.get('preset', '?'):16s} {info.get('num_parameters', 0):>9,} params  "
              f"val loss {info.get('final_eval_loss', float('nan')):.3f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-melody",
        description="Train, evaluate and sample small GPT-2 melody models on MIDI.",
        epilog="Run `hf-melody COMMAND --help` for the options of a command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (INFO level)")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="sample melodies and write MIDI, WAV and piano-roll PNG files",
                       description="Sample melodies (or continue a MIDI prompt) and write melody_<i>.mid/.wav/.png.")
    g.add_argument("--model", default="folk-base", help="bundled name, local folder or Hub id (default: folk-base)")
    g.add_argument("--num", type=int, default=4, help="how many melodies (default: 4)")
    g.add_argument("--out", default="out", help="output folder (default: out)")
    g.add_argument("--prompt", default=None, help="a MIDI file whose melody is continued")
    g.add_argument("--seed", type=int, default=None, help="random seed; the same seed gives identical files")
    g.add_argument("--max-new-notes", dest="max_new_notes", type=int, default=None,
                   help="exactly this many new notes (default: a whole tune of 8-32 bars that ends by itself)")
    g.add_argument("--max-bars", dest="max_bars", type=int, default=None, help="stop after this many new bars")
    g.add_argument("--num-bars", dest="num_bars", type=int, default=None,
                   help="exactly this many new bars, ending on the bar line")
    g.add_argument("--key", default=None, help='keep to a key, e.g. "D minor" or "G mixolydian"')
    g.add_argument("--key-strictness", dest="key_strictness", default=None,
                   help='"hard" (default with --key: only in-key pitches) or a number (a soft penalty in logits)')
    g.add_argument("--pitch-range", dest="pitch_range", type=int, nargs=2, metavar=("LO", "HI"), default=None,
                   help=f"keep pitches within LO..HI (MIDI numbers, within {PITCH_RANGE[0]}..{PITCH_RANGE[1]})")
    g.add_argument("--end-on-tonic", dest="end_on_tonic", action="store_true", help="end on the key's tonic")
    g.add_argument("--no-grammar", dest="no_grammar", action="store_true",
                   help="turn off the REMI grammar that keeps every output valid (for comparisons)")
    g.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: 1.0)")
    g.add_argument("--top-k", dest="top_k", type=int, default=None, help="sample among the k likeliest tokens")
    g.add_argument("--top-p", dest="top_p", type=float, default=None, help="nucleus sampling threshold")
    g.add_argument("--time-signature", dest="time_signature", default=None, help="meter to start in, e.g. 3/4")
    g.add_argument("--style", default=None, help="style token: german-folk, irish, american-fiddle, "
                   "scottish-airs, chorale, other")
    g.add_argument("--formats", default="mid,wav,png",
                   help="comma-separated subset of mid, wav, flac, ogg, mp3, png, musicxml, abc (default: mid,wav,png)")
    g.add_argument("--soundfont", default=None, help="a .sf2/.sf3 file for the WAV (default: a system one)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cpu)")

    # train, evaluate and prepare take the options of their dataclasses (`hf_melody.parser`); main() hands them over
    sub.add_parser("prepare", help="read a corpus or MIDI folder into a tokenized, packed dataset on disk "
                   "(see `prepare --help`)", add_help=False)
    sub.add_parser("evaluate", help="compare models on a dataset: results.json and plots (see `evaluate --help`)",
                   add_help=False)

    f = sub.add_parser("infill", help="regenerate chosen bars of a MIDI melody, keeping the rest",
                       description="Regenerate bars of a melody (e.g. --bars 5-6) knowing the bars before and after "
                                   "them; writes infill_<i>.mid/.wav/.png, one per candidate.")
    f.add_argument("--prompt", required=True, help="the MIDI file whose bars are regenerated")
    f.add_argument("--bars", required=True, help="the bar or bars to regenerate, 1-based: 5 or 5-6")
    f.add_argument("--model", default="folk-base", help="bundled name, local folder or Hub id (default: folk-base)")
    f.add_argument("--num", type=int, default=1, help="how many candidates (default: 1)")
    f.add_argument("--out", default="out", help="output folder (default: out)")
    f.add_argument("--seed", type=int, default=None, help="random seed; candidate i uses seed + i")
    f.add_argument("--key", default=None, help='keep the new bars in a key, e.g. "D minor"')
    f.add_argument("--pitch-range", dest="pitch_range", type=int, nargs=2, metavar=("LO", "HI"), default=None,
                   help=f"keep new pitches within LO..HI (MIDI numbers, within {PITCH_RANGE[0]}..{PITCH_RANGE[1]})")
    f.add_argument("--style", default=None, help="style token: german-folk, irish, american-fiddle, "
                   "scottish-airs, chorale, other")
    f.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: 1.0)")
    f.add_argument("--top-k", dest="top_k", type=int, default=None, help="sample among the k likeliest tokens")
    f.add_argument("--top-p", dest="top_p", type=float, default=None, help="nucleus sampling threshold")
    f.add_argument("--formats", default="mid,wav,png", help="comma-separated subset of " + ", ".join(FORMATS))
    f.add_argument("--soundfont", default=None, help="a .sf2/.sf3 file for the audio (default: a system one)")
    f.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cpu)")

    k = sub.add_parser("corpora", help="list the packaged corpus conversions, or rebuild them from music21",
                       description="The music21 corpora ship converted (corpus_packs/*.json.gz) so they load in "
                                   "seconds. Without options: list them. --rebuild converts with music21 again "
                                   "(~13 minutes on 2 cores for the four folk corpora).")
    k.add_argument("--rebuild", nargs="*", default=None, metavar="CORPUS",
                   help="rebuild these packs (default with no names: every corpus)")
    k.add_argument("--out", default=None, help="folder for the rebuilt packs (default: inside the package)")
    k.add_argument("--num-proc", dest="num_proc", type=int, default=None, help="worker processes")

    d = sub.add_parser("demo", help="start the local web demo (Gradio): generate, listen, download",
                       description="Serve a Gradio app to pick a model, key, meter, bars, style, temperature, seed "
                                   "and a MIDI prompt, then listen and download MIDI/MusicXML. Needs the demo extra.")
    d.add_argument("--models", nargs="+", default=None, help="models to offer (default: the bundled checkpoints)")
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    d.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    d.add_argument("--share", action="store_true", help="ask Gradio for a public link (needs the network)")
    d.add_argument("--soundfont", default=None, help="a .sf2/.sf3 file for the audio (default: a system one)")

    sub.add_parser("train", help="train a model (the options of recipes/train.py; see `train --help`)",
                   add_help=False)
    sub.add_parser("models", help="list the bundled pretrained checkpoints")
    c = sub.add_parser("cards", help="regenerate the model cards of the bundled checkpoints from results.json",
                       description="Render model_cards/<name>.md and each bundle's README.md from its training "
                                   "info and an evaluation results.json (written by `hf-melody evaluate`).")
    c.add_argument("--results", default="model_cards/eval/results.json", help="evaluation results.json")
    c.add_argument("--out", default="model_cards", help="folder for the cards (default: model_cards)")
    return parser


DATACLASS_COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "prepare": cmd_prepare}
"""Commands whose options come from the argument dataclasses (`hf_melody.arguments`) through one parser."""


def main(argv: list[str] | None = None) -> int:
    """The `hf-melody` command; returns the exit status (2 with a one-line error for bad input).

    Example:
        >>> main(["train", "--config", "recipes/tiny-debug.yaml", "--max-steps", "20"])     # doctest: +SKIP
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    verbose = bool(argv) and argv[0] in ("-v", "--verbose")
    rest = argv[1:] if verbose else argv
    if rest and rest[0] in DATACLASS_COMMANDS:
        level = logging.INFO if verbose or rest[0] == "train" else logging.WARNING
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        try:
            return DATACLASS_COMMANDS[rest[0]](rest[1:], verbose)
        except HFMelodyError as e:
            sys.stderr.write(f"hf-melody: error: {e}\n")
            return 2
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command == "generate" and args.key_strictness not in (None, "hard"):
        try:
            args.key_strictness = float(args.key_strictness)
        except ValueError:
            parser.error(f'--key-strictness must be "hard" or a number, got {args.key_strictness!r}')
    commands = {"generate": cmd_generate, "models": cmd_models, "cards": cmd_cards, "demo": cmd_demo,
                "infill": cmd_infill, "corpora": cmd_corpora}
    try:
        return commands[args.command](args)
    except HFMelodyError as e:
        sys.stderr.write(f"hf-melody: error: {e}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
