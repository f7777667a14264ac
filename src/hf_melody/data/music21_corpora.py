"""The music21 corpora (Essen, O'Neill's, Ryan's Mammoth, Aird's Airs, Bach chorales) as `Melody` records, in seconds.

Parsing ABC with music21 costs ~0.1 s a tune (about 13 minutes for the four folk corpora on 2 cores), so the
converted melodies ship inside the package as compressed packs (`corpus_packs/<corpus>.json.gz`, built by
`hf-melody corpora --rebuild`). A pack entry is used only when the music21 file it was converted from is
byte-identical to the installed one (SHA-1); otherwise, or when a pack is missing or corrupt, that file is converted
with music21 and cached under `cache_dir()`. Octave placement into the tokenizer range happens at load time, so a
changed range never needs a new conversion.

Examples:
    >>> from hf_melody.data.music21_corpora import load_music21_corpus
    >>> melodies = load_music21_corpus("essen/kinder0")          # doctest: +SKIP
    >>> len(melodies)                                            # doctest: +SKIP
    213
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import ConfigError, CorpusError, NoMelodyError
from ..music import TPQ
from ..utils import atomic_write_bytes, atomic_write_text
from .melody import Melody, SkipReport, _clean_time_signatures, _one_line, fit_pitch_range, skyline

logger = logging.getLogger(__name__)

CONVERTER_VERSION = "2"
"""Bump when the music21 conversion changes, so cached corpora and packs are rebuilt (2: raw pitches)."""
PACK_FORMAT = 1
PACK_DIR = Path(__file__).parent / "corpus_packs"
"""Where the packaged conversions live (one gzipped JSON per corpus)."""

# name -> (music21 corpus sub-folder, style label). `bach-chorales` is handled on its own.
MUSIC21_CORPORA: dict[str, tuple[str, str]] = {
    "essen": ("essenFolksong", "german-folk"),
    "oneills1850": ("oneills1850", "irish"),
    "ryansMammoth": ("ryansMammoth", "american-fiddle"),
    "airdsAirs": ("airdsAirs", "scottish-airs"),
    "bach-chorales": ("bach", "chorale"),
}
FOLK_CORPORA = ("essen", "oneills1850", "ryansMammoth", "airdsAirs")
"""The corpora of the bundled checkpoints (minus the held-out benchmark `essen/kinder0`)."""


def cache_dir() -> Path:
    """Cache folder for converted corpora and prepared datasets (`$HF_MELODY_CACHE`, else ~/.cache/hf_melody)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hf_melody"
    path = Path(os.environ.get("HF_MELODY_CACHE") or default)
    where = "$HF_MELODY_CACHE=" + str(path) if os.environ.get("HF_MELODY_CACHE") else str(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where} is a file, not a folder; point HF_MELODY_CACHE at a folder (or unset it)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{where}: the cache folder cannot be made ({e.strerror}); point HF_MELODY_CACHE at a "
                          "writable folder") from e
    return path


def corpus_names() -> str:
    """The dataset specs users can give, for error messages."""
    return ", ".join([*MUSIC21_CORPORA, "essen/<file> e.g. essen/kinder0", "a MIDI folder"])


def _music21_root() -> Path:
    try:
        import music21
    except ImportError as e:
        raise CorpusError(
            "the built-in corpora need music21; install it with `pip install 'hf_melody[corpus]'`"
        ) from e
    return Path(music21.__file__).parent / "corpus"


def music21_files(name: str) -> list[Path]:
    """The files of a music21 corpus spec such as `essen`, `essen/kinder0` or `oneills1850`."""
    base, _, sub = name.partition("/")
    if base not in MUSIC21_CORPORA:
        raise CorpusError(f"unknown corpus {name!r}; choose one of: {corpus_names()}")
    folder = _music21_root() / MUSIC21_CORPORA[base][0]
    pattern = "*.mxl" if base == "bach-chorales" else "*.abc"
    files = sorted(folder.glob(pattern))
    if sub:
        files = [f for f in files if f.stem == sub]
        if not files:
            stems = ", ".join(sorted(f.stem for f in folder.glob(pattern))[:12])
            raise CorpusError(f"corpus {base!r} has no file {sub!r}; files include: {stems}, ...")
    return files


def _m21_melody(score, melody_id: str, source: str, style: str, where: str | None = None) -> Melody:
    """Convert one music21 score (its first part) straight to a `Melody`, without writing MIDI.

    `where` names the tune in error messages (default: `melody_id`).
    """
    from music21 import key as m21key
    from music21 import meter

    where = where or melody_id
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    part = parts[0]
    measures = list(part.getElementsByClass("Measure"))
    shift = float(measures[0].paddingLeft) if measures else 0.0  # anacrusis: align bars properly
    flat = part.stripTies().flatten()
    raw = []
    for n in flat.notes:
        if n.duration.isGrace or n.quarterLength <= 0:
            continue
        pitch = n.pitch.midi if n.isNote else max(p.midi for p in n.pitches)
        onset = round((float(n.offset) + shift) * TPQ)
        raw.append((onset, round(float(n.quarterLength) * TPQ), pitch))
    line = skyline(raw)
    if len(line) < 2:
        raise NoMelodyError(f"{where}: the tune has {len(line)} note(s); at least 2 are needed (fix or remove it)")
    tss = []
    for ts in flat.getElementsByClass(meter.TimeSignature):
        tick = round((float(ts.offset) + shift) * TPQ) if ts.offset > 0 else 0
        tss.append([tick, int(ts.numerator), int(ts.denominator)])
    tss = _clean_time_signatures(tss, where)
    if tss[0][0] != 0:
        tss.insert(0, [0, *tss[0][1:]])
    keys = list(flat.getElementsByClass(m21key.KeySignature))
    key = ""
    if keys:
        k = keys[0]
        key = str(k) if isinstance(k, m21key.Key) else str(k.asKey())
    md = score.metadata
    title = (md.title or "") if md is not None else ""
    return Melody(melody_id, source, line, tss, title=title, key=key, style=style)


def _convert_music21_file(args: tuple[str, str, str]) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """Worker: parse one corpus file (possibly many tunes). Returns melodies and (item, error, reason) skips."""
    path, source, style = args

    from music21 import converter

    stem = Path(path).stem
    base = source.split("/")[0]
    try:
        parsed = converter.parse(path)
    except Exception as e:  # music21 raises many unrelated types for bad ABC
        reason = f"{path}: music21 could not parse it ({type(e).__name__}: {_one_line(e, 120)}); fix or remove the file"
        return [], [(f"{base}/{stem}", "ParseError", reason)]
    melodies, skips = parsed_melodies(parsed, f"{base}/{stem}", base, style, path)
    return [m.to_dict() for m in melodies], skips


def parsed_melodies(parsed, prefix: str, source: str, style: str, where: str) -> tuple[list[Melody],
                                                                                      list[tuple[str, str, str]]]:
    """The melodies of a parsed music21 file or text (one per tune, ids `prefix/<i>`) and `(id, error, reason)`
    skips; shared by the corpora and the user's ABC files (`hf_melody.data.abc`).

    Examples:
        >>> from music21 import converter
        >>> melodies, skips = parsed_melodies(converter.parse("X:1\\nK:G\\nGABc|d2d2|\\n", format="abc"),
        ...                                   "mine/tune", "mine", "", "tune.abc")         # doctest: +SKIP
    """
    from music21 import meter

    melodies, skips = [], []
    scores = list(parsed.scores) if hasattr(parsed, "scores") and len(parsed.scores) else [parsed]
    for i, score in enumerate(scores):
        mid = f"{prefix}/{i}"
        try:
            # meter changes may reuse one TimeSignature object (see STACK-NOTES): copy duplicates
            seen = set()
            for ts in score.recurse().getElementsByClass(meter.TimeSignature):
                if id(ts) in seen:
                    ts.activeSite.replace(ts, copy.deepcopy(ts))
                seen.add(id(ts))
            melodies.append(_m21_melody(score, mid, source, style, where=f"{where} tune {i} ({mid})"))
        except NoMelodyError as e:
            skips.append((mid, "NoMelodyError", _one_line(e, 300)))
        except Exception as e:  # noqa: BLE001 - one broken tune must not stop a corpus
            skips.append((mid, type(e).__name__, f"{where} tune {i} ({mid}): conversion failed ({type(e).__name__}: "
                                                 f"{_one_line(e, 120)}); fix or remove the tune"))
    return melodies, skips


# --------------------------------------------------------------------------------------------------------------
# packs and cache
# --------------------------------------------------------------------------------------------------------------
def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@functools.cache
def read_pack(base: str, pack_dir: str | None = None) -> dict[str, Any] | None:
    """The pack of corpus `base` (`{"files": {stem: {"sha1", "melodies", "skipped"}}, ...}`), or None.

    A missing, corrupt or outdated pack (other format or converter version) gives None: the caller then converts
    with music21.
    """
    path = Path(pack_dir or PACK_DIR) / f"{base}.json.gz"
    if not path.is_file():
        return None
    try:
        body = json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, EOFError, ValueError) as e:
        logger.warning("%s is corrupt (%s); converting with music21 instead", path, _one_line(e, 80))
        return None
    if body.get("format") != PACK_FORMAT or body.get("converter_version") != CONVERTER_VERSION:
        logger.info("%s was built by another converter version; converting with music21 instead", path)
        return None
    return body


def _cache_path(f: Path, base: str, digest: str) -> Path:
    import music21

    out_dir = cache_dir() / "corpora" / f"music21-{music21.__version__}-v{CONVERTER_VERSION}"
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir / f"{base}-{f.stem}-{digest[:16]}.json"


def _read_cached(path: Path) -> dict[str, Any] | None:
    """A cached conversion, or None when missing; a corrupt one is deleted (and converted again)."""
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text())
        if isinstance(body.get("melodies"), list) and isinstance(body.get("skipped"), list):
            return body
    except (OSError, ValueError, AttributeError):
        pass
    logger.warning("%s is corrupt; converting the file again", path)
    path.unlink(missing_ok=True)
    return None


def _convert_files(todo: list[tuple[Path, str]], name: str, style: str, num_proc: int | None,
                   progress: bool) -> dict[str, dict[str, Any]]:
    """Convert `(file, sha1)` pairs with music21 in `num_proc` processes; results cached and returned by stem."""
    from tqdm.auto import tqdm

    base = name.split("/")[0]
    jobs = [(str(f), name, style) for f, _ in todo]
    num_proc = num_proc or min(len(todo), os.cpu_count() or 1)
    bar = tqdm(total=len(todo), desc=f"converting {name} with music21 (once; cached after)", unit="file",
               disable=not progress)
    pool = ProcessPoolExecutor(num_proc) if num_proc > 1 else None
    results: Iterable = pool.map(_convert_music21_file, jobs) if pool else map(_convert_music21_file, jobs)
    out = {}
    try:
        for (f, digest), (mels, skips) in zip(todo, results, strict=True):
            body = {"melodies": mels, "skipped": skips}
            atomic_write_text(_cache_path(f, base, digest), json.dumps(body))
            out[f.stem] = body
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return out


def _file_bodies(files: list[Path], pack: dict | None, name: str, style: str, num_proc: int | None,
                 progress: bool) -> dict[str, dict[str, Any]]:
    """The converted melodies of each corpus file by stem: from the pack when its sha1 matches, else from the
    cache, else converted with music21 now."""
    base = name.split("/")[0]
    bodies = {}
    todo = []
    for f in files:
        digest = _sha1(f)
        entry = pack["files"].get(f.stem) if pack else None
        if entry is not None and entry.get("sha1") == digest:
            bodies[f.stem] = entry
            continue
        cached = _read_cached(_cache_path(f, base, digest))
        if cached is not None:
            bodies[f.stem] = cached
        else:
            todo.append((f, digest))
    if todo:
        if pack is not None:
            logger.warning("%d %s file(s) differ from the packaged conversion (another music21 version?); "
                           "converting them with music21", len(todo), base)
        bodies.update(_convert_files(todo, name, style, num_proc, progress))
    return bodies


def load_music21_corpus(name: str, num_proc: int | None = None, progress: bool = True,
                        report: SkipReport | None = None, use_packs: bool = True) -> list[Melody]:
    """Melodies of a music21 corpus spec (`essen`, `essen/kinder0`, `oneills1850`, ...).

    Served from the packaged conversion when it matches the installed music21 files (about a second for all four
    folk corpora), else converted with music21 (in `num_proc` processes) and cached. Melodies are placed by octaves
    into the tokenizer range; a tune that cannot fit is skipped into `report`. Without music21 installed, the packs
    are used as they are.
    """
    base, _, sub = name.partition("/")
    if base not in MUSIC21_CORPORA:
        raise CorpusError(f"unknown corpus {name!r}; choose one of: {corpus_names()}")
    style = MUSIC21_CORPORA[base][1]
    report = report if report is not None else SkipReport()
    pack = read_pack(base) if use_packs else None
    try:
        files = music21_files(name)
    except CorpusError:
        if pack is None or (sub and sub not in pack["files"]):
            raise
        logger.info("music21 is not installed: using the packaged %s conversion as it is", base)
        stems = [sub] if sub else sorted(pack["files"])
        bodies = {s: pack["files"][s] for s in stems}
        files = []
    if files:
        bodies = _file_bodies(files, pack, name, style, num_proc, progress)
        stems = [f.stem for f in files]
    melodies: list[Melody] = []
    for stem in stems:
        body = bodies[stem]
        for item, err, reason in body["skipped"]:
            report.total += 1
            report.skipped.append({"item": item, "error": err, "reason": reason})
        for d in body["melodies"]:
            report.total += 1
            m = Melody.from_dict({**d, "source": base, "style": style})
            try:
                m.notes = fit_pitch_range(m.notes, m.id)
            except NoMelodyError as e:
                report.skipped.append({"item": m.id, "error": "NoMelodyError", "reason": _one_line(e, 300)})
                continue
            report.kept += 1
            melodies.append(m)
    return melodies


def build_packs(names: Iterable[str] = (*FOLK_CORPORA, "bach-chorales"), out_dir: str | os.PathLike = PACK_DIR,
                num_proc: int | None = None, progress: bool = True) -> dict[str, Path]:
    """Convert whole corpora with music21 (or take them from the conversion cache) and write their packs.

    This is what `hf-melody corpora --rebuild` runs; the slow test suite checks the packs against music21.
    Returns the written pack paths by corpus name.
    """
    import music21

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for base in names:
        style = MUSIC21_CORPORA[base][1]
        files = music21_files(base)
        todo, bodies = [], {}
        for f in files:
            digest = _sha1(f)
            cached = _read_cached(_cache_path(f, base, digest))
            if cached is None:
                todo.append((f, digest))
            else:
                bodies[f.stem] = cached
        if todo:
            bodies.update(_convert_files(todo, base, style, num_proc, progress))
        entries = {}
        for f in files:
            body = bodies[f.stem]
            mels = [{k: v for k, v in m.items() if k not in ("source", "style")} for m in body["melodies"]]
            entries[f.stem] = {"sha1": _sha1(f), "melodies": mels, "skipped": body["skipped"]}
        pack = {
            "format": PACK_FORMAT,
            "converter_version": CONVERTER_VERSION,
            "corpus": base,
            "music21_version": music21.__version__,
            "music21_folder": MUSIC21_CORPORA[base][0],
            "provenance": f"music21 {music21.__version__} corpus/{MUSIC21_CORPORA[base][0]}, converted by "
                          f"hf_melody.data.music21_corpora (converter v{CONVERTER_VERSION}): notes, meters, keys, "
                          "titles only; see corpus_packs/README.md for sources and terms",
            "files": entries,
        }
        data = gzip.compress(json.dumps(pack, separators=(",", ":")).encode(), compresslevel=9, mtime=0)
        written[base] = atomic_write_bytes(out_dir / f"{base}.json.gz", data)
    read_pack.cache_clear()
    return written
