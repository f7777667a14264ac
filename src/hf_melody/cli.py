"""The `hf-melody` command: prepare data, train, evaluate, generate melodies (MIDI + WAV + PNG), list models.

    hf-melody generate --model folk-base --num 4 --output-dir out/ --seed 0
    hf-melody prepare --dataset path/to/midi --output-dir out/data
    hf-melody train --config recipes/original.yaml --max-steps 300
    hf-melody evaluate --models original folk-base --dataset essen/kinder0 --output-dir out/eval
    hf-melody analyze --model folk-base --dataset essen/kinder0 --output-dir out/analysis
    hf-melody demo                      # a local web app: generate, listen, download
    hf-melody live --osc-in 127.0.0.1:9000 --osc-out 127.0.0.1:9001   # call-and-response in time (docs/live.md)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import fields
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .bundle import CHECKPOINTS_DIR, TRAINING_INFO, bundled_checkpoints
from .cards import generate_model_cards
from .data.arguments import prepare_parser
from .data.corpora import load_melodies
from .data.dataset import build_dataset, dataset_stats, split_melodies
from .data.music21_corpora import FOLK_CORPORA, MUSIC21_CORPORA, PACK_DIR, build_packs, read_pack
from .demo import DemoLimits, check_port, launch
from .errors import ConfigError, CorpusError, HFMelodyError
from .evaluation.analysis import add_analyze_arguments, run_analyze
from .evaluation.arguments import evaluation_parser
from .export.render import FORMATS, check_formats  # FORMATS: what `generate --formats` can write
from .generation.checks import check_int
from .generation.configuration import DECODERS, MelodyGenerationConfig
from .generation.infill import parse_bars
from .live.command import LIVE_DESCRIPTION, add_live_arguments, run_live
from .parser import accelerate_configs, bundled_recipes
from .pipelines.melody_generation import MelodyPipeline
from .tokenizer import MelodyTokenizer
from .training.arguments import training_parser
from .utils import lock_folder

logger = logging.getLogger("hf_melody")


def _echo(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def check_out_folder(flag: str, path: str) -> Path:
    """`path` as a `Path`; `ConfigError` (before any work) if it, or a folder above it, is an existing file.

    Examples:
        >>> check_out_folder("--out", "README.md/melodies")                            # doctest: +ELLIPSIS
        Traceback (most recent call last):
        hf_melody.errors.ConfigError: --out README.md/melodies: README.md is a file, not a folder; give a folder path
    """
    out = Path(path)
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"{flag} {path}: {p} is a file, not a folder; give a folder path")
            break
    return out


@contextlib.contextmanager
def lock_out_folder(out: Path) -> Iterator[None]:
    """Hold a lock on the output folder while files are written into it (created if missing): another run into the
    same folder fails at once with `OutputError` naming the holder, instead of mixing its files with ours. Nothing
    is written into the folder for the lock (`hf_melody.utils.lock_folder(..., record=False)`).

    Examples:
        >>> with lock_out_folder(Path("out/melodies")):                                    # doctest: +SKIP
        ...     melody.save("out/melodies/melody_0", ("mid",))
    """
    created = not out.exists()
    lock = lock_folder(out, f"--output-dir {out} is in use by another hf-melody run",
                       "wait for it to finish or choose another --output-dir", record=False)
    try:
        yield
    finally:
        if lock is not None:
            lock.close()
        if created and out.is_dir() and not any(out.iterdir()):  # failed before writing (a bad --model): leave
            out.rmdir()                                              # no empty folder behind


def parse_formats(text: str) -> list[str]:
    """`--formats mid,wav` -> `["mid", "wav"]`; `ConfigError` naming an unknown or missing format.

    Examples:
        >>> parse_formats("mid, wav,PNG")
        ['mid', 'wav', 'png']
    """
    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        what = f"unknown format(s) {', '.join(map(repr, unknown))}" if unknown else "no format given"
        raise ConfigError(f"--formats {text!r}: {what}; choose a comma-separated subset of {','.join(FORMATS)}")
    return formats


def cmd_prepare(argv: list[str], verbose: bool = False) -> int:
    """`hf-melody prepare`: corpus or MIDI folder -> packed `DatasetDict`, `miditok.json` and a skip report."""
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
    melodies, report = load_melodies(data.dataset, num_proc=data.num_proc, exclude=data.exclude,
                                     columns=data.column_map)
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
    from .training.trainer import parse_args, train  # the Trainer (~0.3 s): only for the commands that train

    if _wants_help(argv):
        training_parser("hf-melody train").print_help()
        return 0
    model_args, data_args, training_args = parse_args(argv)
    metrics = train(model_args, data_args, training_args)
    _echo(json.dumps({k: v for k, v in metrics.items() if isinstance(v, int | float)}, indent=1))
    _echo(f"bundle written to {training_args.output_dir}")
    return 0


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: give true or false")


def _strictness(text: str) -> str | float:
    if text == "hard":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be "hard" or a number, got {text!r}') from None


_FLAG_KINDS: dict[str, dict] = {
    "int | None": {"type": int},
    "float | None": {"type": float},
    "str | None": {"type": str},
    "str": {"type": str},
    "bool | None": {"type": _boolean, "metavar": "{true,false}"},
    "str | float | None": {"type": _strictness},
    "int | str | None": {"type": str, "metavar": "PROGRAM"},
    "tuple[int, int] | None": {"type": int, "nargs": 2, "metavar": ("LO", "HI")},
    "list[int] | None": {"type": int, "nargs": "+", "metavar": "PC"},
}
"""argparse settings by field annotation (`HfArgumentParser` cannot read `str | float` or fixed-length tuples)."""


def add_generation_flags(parser, infill: bool = False) -> None:
    """Add one flag per `MelodyGenerationConfig` field (those `infill` takes, with `infill=True`), spelled both
    `--num-bars` and `--num_bars`, with the field's help text; unset flags stay None (the pipeline's default).

    Examples:
        >>> parser = argparse.ArgumentParser(allow_abbrev=False); add_generation_flags(parser)
        >>> generation_options(parser.parse_args(["--num_bars", "8", "--key", "D minor"]))
        {'key': 'D minor', 'num_bars': 8}
    """
    for f in fields(MelodyGenerationConfig):
        if f.metadata.get("cli") is False or (infill and not f.metadata.get("infill")):
            continue
        names = dict.fromkeys((f"--{f.metadata.get('flag', f.name).replace('_', '-')}",
                               f"--{f.metadata.get('flag', f.name).replace('-', '_')}"))
        text = f.metadata.get("flag_help", f.metadata["help"]).replace("%", "%%")
        if f.type == "bool":  # a switch away from the default: --end-on-tonic, --no-grammar
            action = "store_false" if f.default else "store_true"
            parser.add_argument(*names, dest=f.name, action=action, default=None, help=text)
        elif f.name == "decoder":
            parser.add_argument(*names, dest=f.name, choices=DECODERS, default=None, help=text)
        else:
            parser.add_argument(*names, dest=f.name, default=None, help=text, **_FLAG_KINDS[f.type])


def generation_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `MelodyGenerationConfig` options given on the command line (flags left out are not in the dict).

    Examples:
        >>> generation_options(build_parser().parse_args(["generate", "--pitch_range", "60", "72"]))
        {'pitch_range': (60, 72)}
    """
    names = MelodyGenerationConfig.option_names()
    options = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if "pitch_range" in options:
        options["pitch_range"] = tuple(options["pitch_range"])
    return options


def _check_num(args: argparse.Namespace) -> None:
    """`--num` and `--seed` checked before any work: at least 1, at most the `num_return_sequences` limit, and the
    seeds `--seed + i` below 2**63 (`ConfigError` naming the fix)."""
    if args.num < 1:
        raise ConfigError(f"--num={args.num} must be an integer >= 1; give how many melodies to write, e.g. --num 4")
    check_int("--num", args.num, 1, capped="num_return_sequences")
    MelodyGenerationConfig(seed=args.seed, num_return_sequences=args.num)


def _seed(args: argparse.Namespace) -> int:
    """`--seed`, or a fresh one with room for `--num` melodies (`MelodyGenerationConfig.with_seed`)."""
    return MelodyGenerationConfig(seed=args.seed, num_return_sequences=args.num).with_seed().seed


def _check_chord_track(args: argparse.Namespace, options: dict) -> None:
    """`--chord-track` needs `--chords` (`ConfigError` before the model loads)."""
    if args.chord_track and not options.get("chords"):
        raise ConfigError("--chord-track writes the chords as a second MIDI track and into the audio; add "
                          "--chords 'C G Am F'")


def cmd_generate(args: argparse.Namespace) -> int:
    """`hf-melody generate`: sample `--num` melodies (melody i with seed `--seed + i`) and write their files."""
    formats = check_formats(parse_formats(args.formats))  # before loading anything: a typo fails at once
    out = check_out_folder("--output-dir", args.output_dir)
    kwargs = generation_options(args)
    kwargs.pop("seed", None)  # melody i gets seed + i below
    _check_num(args)
    _check_chord_track(args, kwargs)
    MelodyGenerationConfig.from_options(kwargs)  # a bad option fails before the model loads
    with lock_out_folder(out):  # a second run into the same folder would mix its files with ours: refused
        pipe = MelodyPipeline.from_pretrained(args.model, device=args.device)
        # melody i of a call with seed s is exactly the single call with seed s + i, so one melody at a time gives
        # the same files and lets one progress bar cover the whole job (generation and rendering)
        seed = _seed(args)
        written = []
        for i in tqdm(range(args.num), desc="generating", unit="melody", disable=args.num < 2):
            [m] = pipe(args.prompt, seed=seed + i, **kwargs)
            written += m.save(out / f"melody_{i}", tuple(formats), soundfont=args.soundfont,
                              chord_track=args.chord_track)
            tqdm.write(f"melody {i}: {m.num_notes} notes ({m.num_prompt_notes} from the prompt)", file=sys.stdout)
    _echo(f"wrote {len(written)} files to {out}/:")
    for p in written:
        _echo(f"  {p}")
    return 0


def cmd_infill(args: argparse.Namespace) -> int:
    """`hf-melody infill`: regenerate `--bars` of the `--prompt` melody, `--num` candidates, and write their files."""
    bars = parse_bars(args.bars)
    formats = check_formats(parse_formats(args.formats))
    out = check_out_folder("--output-dir", args.output_dir)
    options = generation_options(args)
    options.pop("seed", None)  # candidate i gets seed + i below
    _check_num(args)
    _check_chord_track(args, options)
    MelodyGenerationConfig.from_options(options, infill=True)  # a bad option fails before the model loads
    with lock_out_folder(out):
        pipe = MelodyPipeline.from_pretrained(args.model, device=args.device)
        seed = _seed(args)
        written = []
        for i in tqdm(range(args.num), desc="infilling", unit="melody", disable=args.num < 2):
            [m] = pipe.infill(args.prompt, bars=bars, seed=seed + i, **options)
            written += m.save(Path(out) / f"infill_{i}", tuple(formats), soundfont=args.soundfont,
                              chord_track=args.chord_track)
            tqdm.write(f"melody {i}: bars {bars[0]}-{bars[1]} regenerated, {m.num_notes} notes", file=sys.stdout)
    _echo(f"wrote {len(written)} files to {out}/:")
    for p in written:
        _echo(f"  {p}")
    return 0


def cmd_corpora(args: argparse.Namespace) -> int:
    """`hf-melody corpora`: list the packaged music21 corpus conversions, or rebuild them (`--rebuild`)."""
    if args.rebuild is not None:
        names = args.rebuild or [*FOLK_CORPORA, "bach-chorales"]
        unknown = [n for n in names if n not in MUSIC21_CORPORA]
        if unknown:
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
    """`hf-melody demo`: serve the Gradio demo until Ctrl+C."""
    limits = DemoLimits(**{k: getattr(args, k) for k in DEMO_LIMITS})
    check_port(args.host, args.port)
    _echo(f"starting the demo on http://{args.host}:{args.port} (Ctrl+C to stop)")
    launch(args.models, host=args.host, port=args.port, share=args.share, soundfont=args.soundfont, limits=limits)
    return 0


def cmd_evaluate(argv: list[str], verbose: bool = False) -> int:
    """`hf-melody evaluate`: the options of `recipes/evaluate.py` (a recipe via --config, any key as a flag)."""
    from .evaluation import evaluate_models, results_table  # with the Trainer (~0.3 s): only for this command

    parser = evaluation_parser("hf-melody evaluate")
    if _wants_help(argv):
        parser.print_help()
        return 0
    [config] = parser.parse_args_and_config(argv)
    results = evaluate_models(**config.to_kwargs(), progress=verbose)
    _echo(results_table(results))
    _echo(f"wrote {Path(config.output_dir) / 'results.json'} and {len(results['plots'])} plots")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """`hf-melody analyze`: information content and entropy of every note (`evaluation.analysis.run_analyze`)."""
    _echo(run_analyze(args))
    return 0


def cmd_cards(args: argparse.Namespace) -> int:
    """`hf-melody cards`: render the model cards of the bundled checkpoints from an evaluation `results.json`."""
    for path in generate_model_cards(args.results, args.out):
        _echo(f"wrote {path}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """`hf-melody models`: one line per bundled checkpoint (preset, parameters, validation loss)."""
    for name in bundled_checkpoints():
        info_path = CHECKPOINTS_DIR / name / TRAINING_INFO
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        _echo(f"{name:18s} {info.get('preset', '?'):16s} {info.get('num_parameters', 0):>9,} params  "
              f"val loss {info.get('final_eval_loss', float('nan')):.3f}")
    return 0


_OUTPUT_DIR = ("--output-dir", "--output_dir", "--out")
"""The output folder flag of `generate` and `infill`, spelled as `train` / `evaluate` / `prepare` spell it."""


def _add_generate(sub) -> None:
    g = sub.add_parser("generate", help="sample melodies and write MIDI, WAV and piano-roll PNG files",
                       description="Sample melodies (or continue a MIDI prompt) and write melody_<i>.mid/.wav/.png. "
                                   "Melody i uses seed --seed + i.", allow_abbrev=False)
    g.add_argument("--model", default="folk-base", help="bundled name, local folder or Hub id (default: folk-base)")
    g.add_argument("--num", type=int, default=4, help="how many melodies (default: 4)")
    g.add_argument(*_OUTPUT_DIR, dest="output_dir", default="out", metavar="DIR",
                   help="folder for the files (default: out; --out is the older spelling)")
    g.add_argument("--prompt", default=None, help="a MIDI file whose melody is continued")
    g.add_argument("--formats", default="mid,wav,png",
                   help="comma-separated subset of " + ", ".join(FORMATS) + " (default: mid,wav,png)")
    g.add_argument("--soundfont", default=None, help="a .sf2/.sf3 file for the WAV (default: a system one)")
    g.add_argument("--chord-track", action="store_true",
                   help="with --chords: add the block chords as a second MIDI track, heard in the audio too (the "
                        "chord symbols are in every file whenever --chords is given)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cpu)")
    add_generation_flags(g.add_argument_group("generation options (MelodyGenerationConfig)"))


def _add_infill(sub) -> None:
    f = sub.add_parser("infill", help="regenerate chosen bars of a MIDI melody, keeping the rest",
                       description="Regenerate bars of a melody (e.g. --bars 5-6) knowing the bars before and after "
                                   "them; writes infill_<i>.mid/.wav/.png, one per candidate (seed --seed + i).",
                       allow_abbrev=False)
    f.add_argument("--prompt", required=True, help="the MIDI file whose bars are regenerated")
    f.add_argument("--bars", required=True, help="the bar or bars to regenerate, 1-based: 5 or 5-6")
    f.add_argument("--model", default="folk-base", help="bundled name, local folder or Hub id (default: folk-base)")
    f.add_argument("--num", type=int, default=1, help="how many candidates (default: 1)")
    f.add_argument(*_OUTPUT_DIR, dest="output_dir", default="out", metavar="DIR",
                   help="folder for the files (default: out; --out is the older spelling)")
    f.add_argument("--formats", default="mid,wav,png", help="comma-separated subset of " + ", ".join(FORMATS))
    f.add_argument("--soundfont", default=None, help="a .sf2/.sf3 file for the audio (default: a system one)")
    f.add_argument("--chord-track", action="store_true",
                   help="with --chords: add the block chords as a second MIDI track, heard in the audio too")
    f.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cpu)")
    add_generation_flags(f.add_argument_group("generation options (MelodyGenerationConfig, those infill takes)"),
                         infill=True)


def _add_corpora(sub) -> None:
    k = sub.add_parser("corpora", help="list the packaged corpus conversions, or rebuild them from music21",
                       description="The music21 corpora ship converted (corpus_packs/*.json.gz) so they load in "
                                   "seconds. Without options: list them. --rebuild converts with music21 again "
                                   "(~13 minutes on 2 cores for the four folk corpora).")
    k.add_argument("--rebuild", nargs="*", default=None, metavar="CORPUS",
                   help="rebuild these packs (default with no names: every corpus)")
    k.add_argument(*_OUTPUT_DIR, dest="out", default=None,
                   help="folder for the rebuilt packs (default: inside the package)")
    k.add_argument("--num-proc", dest="num_proc", type=int, default=None, help="worker processes")


DEMO_LIMITS = {"max_upload_bytes": "largest MIDI prompt accepted, in bytes",
               "max_prompt_notes": "most notes a MIDI prompt may hold",
               "max_bars": "most bars one request may ask for",
               "queue_size": "requests waiting at most (more are refused at once)",
               "cache_size": "models kept loaded",
               "keep_runs": "requests whose output files are kept",
               "keep_seconds": "seconds the served files are kept",
               "max_candidates": "most melodies one request may ask for",
               "max_seconds": "seconds one request may generate for (then it stops with a message)"}
"""The `hf-melody demo` options that set `hf_melody.demo.DemoLimits` fields."""


def _add_demo(sub) -> None:
    d = sub.add_parser("demo", help="start the local web demo (Gradio): generate, listen, download",
                       description="Serve a Gradio app to pick a model, key, meter, bars, style, temperature, seed "
                                   "and a MIDI prompt, then listen and download MIDI/MusicXML. Needs the demo extra.")
    d.add_argument("--models", nargs="+", default=None, help="models to offer (default: the bundled checkpoints)")
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    d.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    d.add_argument("--share", action="store_true", help="ask Gradio for a public link (needs the network)")
    d.add_argument("--soundfont", default=None, help="a .sf2/.sf3 file for the audio (default: a system one)")
    defaults = DemoLimits()
    for name, text in DEMO_LIMITS.items():
        d.add_argument(f"--{name.replace('_', '-')}", dest=name, type=type(getattr(defaults, name)),
                       default=getattr(defaults, name), metavar="N",
                       help=f"{text} (default: {getattr(defaults, name):,})")


def _add_live(sub) -> None:
    add_live_arguments(sub.add_parser("live", help="play live over OSC / MIDI: call-and-response, endless, trigger",
                                      description=LIVE_DESCRIPTION, allow_abbrev=False))


def _add_cards(sub) -> None:
    c = sub.add_parser("cards", help="regenerate the model cards of the bundled checkpoints from results.json",
                       description="Render model_cards/<name>.md and each bundle's README.md from its training "
                                   "info and an evaluation results.json (written by `hf-melody evaluate`).")
    c.add_argument("--results", default="model_cards/eval/results.json", help="evaluation results.json")
    c.add_argument(*_OUTPUT_DIR, dest="out", default="model_cards", help="folder for the cards (default: model_cards)")


def _add_recipes(sub) -> None:
    r = sub.add_parser("recipes", help="list the shipped training recipes and accelerate configs",
                       description="The YAML recipes ship inside the package: `hf-melody train --config NAME` (or "
                                   "recipes/train.py) finds them by name from any folder; a path to a file wins. "
                                   "--path NAME prints the file of a recipe or accelerate config, e.g. for "
                                   "`accelerate launch --config_file $(hf-melody recipes --path cpu-2proc)`.")
    r.add_argument("--path", metavar="NAME", default=None, help="print the path of this recipe or accelerate config")


def cmd_recipes(args: argparse.Namespace) -> int:
    """`hf-melody recipes`: one line per shipped recipe (its first comment line) and accelerate config."""
    recipes, configs = bundled_recipes(), accelerate_configs()
    if args.path is not None:
        found = recipes.get(args.path) or configs.get(args.path)
        if found is None:
            raise ConfigError(f"no shipped recipe or accelerate config {args.path!r}; choose from "
                              f"{', '.join([*recipes, *configs])}")
        _echo(str(found))
        return 0
    for name, path in recipes.items():
        first = next((line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")),
                     "")
        _echo(f"{name:18s} {first}")
    _echo("accelerate configs (accelerate launch --config_file PATH): " + ", ".join(configs))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `hf-melody` argument parser: one sub-command per job (train, evaluate and prepare are only listed here:
    `main` hands their flags to the dataclass parser of `hf_melody.parser`).

    Examples:
        >>> build_parser().parse_args(["generate", "--num", "2"]).num
        2
    """
    parser = argparse.ArgumentParser(
        prog="hf-melody",
        description="Train, evaluate and sample small GPT-2 melody models on MIDI.",
        epilog="Run `hf-melody COMMAND --help` for the options of a command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (INFO level)")
    parser.add_argument("--version", action="version", version=f"hf-melody {version('hf_melody')}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    # train, evaluate and prepare take the options of their dataclasses (`hf_melody.parser`); main() hands them over
    sub.add_parser("prepare", help="read a corpus or MIDI folder into a tokenized, packed dataset on disk "
                   "(see `prepare --help`)", add_help=False)
    sub.add_parser("evaluate", help="compare models on a dataset: results.json and plots (see `evaluate --help`)",
                   add_help=False)
    _add_infill(sub)
    _add_corpora(sub)
    _add_demo(sub)
    _add_live(sub)
    sub.add_parser("train", help="train a model (the options of recipes/train.py; see `train --help`)",
                   add_help=False)
    sub.add_parser("models", help="list the bundled pretrained checkpoints")
    _add_cards(sub)
    _add_recipes(sub)
    add_analyze_arguments(sub.add_parser("analyze", help="information content and entropy of every note: CSV, "
                                         "parquet, plots", allow_abbrev=False))
    return parser


DATACLASS_COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "prepare": cmd_prepare}
"""Commands whose options come from the argument dataclasses (`hf_melody.data.arguments`) through one parser."""


def main(argv: list[str] | None = None) -> int:
    """The `hf-melody` command; returns the exit status (2 with a one-line error for bad input).

    Examples:
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
    commands = {"generate": cmd_generate, "models": cmd_models, "cards": cmd_cards, "demo": cmd_demo,
                "infill": cmd_infill, "corpora": cmd_corpora, "recipes": cmd_recipes, "analyze": cmd_analyze,
                "live": run_live}
    try:
        return commands[args.command](args)
    except HFMelodyError as e:
        sys.stderr.write(f"hf-melody: error: {e}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
