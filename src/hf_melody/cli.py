"""The `hf-melody` command: prepare data, train, evaluate, generate melodies (MIDI + WAV + PNG), list models.

    hf-melody generate --model folk-base --num 4 --out out/ --seed 0
    hf-melody prepare --dataset path/to/midi --out out/data
    hf-melody train --config recipes/original.yaml --max_steps 300
    hf-melody evaluate --models original folk-base --dataset essen/kinder0 --out out/eval
    hf-melody demo                      # a local web app: generate, listen, download
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import HFMelodyError
from .music import pitch_range_text
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


def cmd_prepare(args: argparse.Namespace) -> int:
    from .corpora import load_melodies
    from .data import DataConfig, build_dataset, dataset_stats
    from .tokenizer import MelodyTokenizer

    out = check_out_folder("--out", args.out)
    specs = [s.strip() for s in args.dataset.split(",") if s.strip()]
    melodies, report = load_melodies(specs, num_proc=args.num_proc,
                                     exclude=[e for e in (args.exclude or "").split(",") if e])
    report_path = report.save(out / "skip_report.json")
    tokenizer = MelodyTokenizer()
    config = DataConfig(max_length=args.max_length, augment_semitones=args.augment_semitones)
    if args.bpe_vocab_size:
        from .data import split_melodies

        tokenizer.train_bpe(args.bpe_vocab_size, split_melodies(melodies)["train"])
    dsd = build_dataset(melodies, tokenizer, config, num_proc=args.num_proc)
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


def cmd_train(argv: list[str]) -> int:
    from .training import make_parser, parse_args, train

    if "-h" in argv or "--help" in argv:
        make_parser().print_help()
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import EvaluationArguments, evaluate_models, parse_evaluation_args, results_table

    config = parse_evaluation_args(["--config", args.config] if args.config else [])
    overrides = {k: v for k, v in vars(args).items() if k in EvaluationArguments.__dataclass_fields__
                 and v is not None}
    config = EvaluationArguments(**{**config.__dict__, **overrides})
    results = evaluate_models(**config.to_kwargs(), progress=args.verbose)
    _echo(results_table(results))
    _echo(f"wrote {Path(config.out_dir) / 'results.json'} and {len(results['plots'])} plots")
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
                   help=f"keep pitches within LO..HI (MIDI numbers, within {pitch_range_text()})")
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

    p = sub.add_parser("prepare", help="read a corpus or MIDI folder into a tokenized, packed dataset on disk",
                       description="Corpus or MIDI folder -> datasets.DatasetDict on disk, with a skip report.")
    p.add_argument("--dataset", required=True, help="corpus name (essen, essen/kinder0, oneills1850, ...), "
                   "MIDI folder, or a comma-separated list")
    p.add_argument("--out", default="out/data", help="output folder (default: out/data)")
    p.add_argument("--exclude", default=None, help="comma-separated melody-id prefixes to drop")
    p.add_argument("--max-length", dest="max_length", type=int, default=256, help="tokens per block")
    p.add_argument("--augment-semitones", dest="augment_semitones", type=int, default=5,
                   help="transpose training melodies by -k..k semitones (default: 5)")
    p.add_argument("--bpe-vocab-size", dest="bpe_vocab_size", type=int, default=None, help="train BPE")
    p.add_argument("--num-proc", dest="num_proc", type=int, default=None, help="worker processes")

    e = sub.add_parser("evaluate", help="compare models on a dataset: results.json and plots",
                       description="Score models (bits per note, pitch bits, perplexity) against n-gram baselines.")
    e.add_argument("--models", nargs="+", default=None, help="bundled names, folders or Hub ids "
                   "(default: original deeper-thinner wider-shallower folk-base)")
    e.add_argument("--dataset", default=None, help="corpus spec of the evaluation melodies (default: essen/kinder0)")
    e.add_argument("--out", dest="out_dir", default=None, help="output folder (default: out/eval)")
    e.add_argument("--config", default=None, help="a YAML like recipes/evaluate.yaml; flags override it")
    e.add_argument("--split", default=None, help="all, train, validation, test or auto (default: auto)")
    e.add_argument("--num-samples", dest="num_samples", type=int, default=None,
                   help="sampled melodies per model for BLEU and music statistics (default: 0)")
    e.add_argument("--ngram-order", dest="ngram_order", type=int, default=None, help="n-gram context (default: 2)")
    e.add_argument("--max-melodies", dest="max_melodies", type=int, default=None, help="quick runs: cap melodies")
    e.add_argument("--device", default=None, help="cpu, cuda ... (default: cpu)")
    e.add_argument("--no-fair-pitch", dest="fair_pitch", action="store_false", default=None,
                   help="skip the past-only pitch measure (the IDyOM-comparable one; it costs about 10 s per "
                   "1,000 notes for folk-base on one CPU thread)")

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
                   help=f"keep new pitches within LO..HI (MIDI numbers, within {pitch_range_text()})")
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

    sub.add_parser("train", help="train a model (same options as recipes/train.py; see `train --help`)",
                   add_help=False)
    sub.add_parser("models", help="list the bundled pretrained checkpoints")
    c = sub.add_parser("cards", help="regenerate the model cards of the bundled checkpoints from results.json",
                       description="Render model_cards/<name>.md and each bundle's README.md from its training "
                                   "info and an evaluation results.json (written by `hf-melody evaluate`).")
    c.add_argument("--results", default="model_cards/eval/results.json", help="evaluation results.json")
    c.add_argument("--out", default="model_cards", help="folder for the cards (default: model_cards)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "train":
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        try:
            return cmd_train(argv[1:])
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
    commands = {"prepare": cmd_prepare, "generate": cmd_generate, "evaluate": cmd_evaluate, "models": cmd_models,
                "cards": cmd_cards, "demo": cmd_demo, "infill": cmd_infill, "corpora": cmd_corpora}
    try:
        return commands[args.command](args)
    except HFMelodyError as e:
        sys.stderr.write(f"hf-melody: error: {e}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
