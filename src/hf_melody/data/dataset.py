"""Melodies -> `datasets.DatasetDict`: split by melody, augment by transposition, tokenize, pack into blocks.

Examples:
    >>> from hf_melody import MelodyTokenizer, load_melodies, build_dataset
    >>> melodies, _ = load_melodies("essen/kinder0")                           # doctest: +SKIP
    >>> ds = build_dataset(melodies, MelodyTokenizer(), max_length=256)       # doctest: +SKIP
    >>> ds["train"][0]["input_ids"][:3]                                       # doctest: +SKIP
    [1, 3, 5]
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..music import PITCH_RANGE
from ..tokenizer import STYLES, MelodyTokenizer
from .arguments import DataArguments
from .corpora import load_melodies
from .infill_format import random_infill_example
from .melody import Melody
from .music21_corpora import cache_dir

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def _position(melody_id: str, seed: int) -> float:
    """Where a melody's id falls in [0, 1): the hash that `split_of` cuts."""
    return int(hashlib.sha1(f"{seed}:{melody_id}".encode()).hexdigest()[:12], 16) / 16**12


def split_of(melody_id: str, validation_ratio: float = 0.05, test_ratio: float = 0.05, seed: int = 0) -> str:
    """The split of a melody, from a hash of its id: stable across runs, machines and corpus changes."""
    h = _position(melody_id, seed)
    if h < test_ratio:
        return "test"
    if h < test_ratio + validation_ratio:
        return "validation"
    return "train"


def split_melodies(melodies: Iterable[Melody], validation_ratio: float = 0.05, test_ratio: float = 0.05,
                   seed: int = 0) -> dict[str, list[Melody]]:
    """Group melodies into train/validation/test by `split_of` (never splitting a melody).

    A split asked for (ratio > 0) is never left empty while training keeps a melody: in a small folder where the
    hash put no melody there, the training melody whose hash lies nearest to it moves over (validation first), so
    the same folder always splits the same way.

    Examples:
        >>> melodies = [Melody(f"mine/{i}", "mine", [[0, 480, 60], [480, 480, 62]]) for i in range(20)]
        >>> {k: len(v) for k, v in split_melodies(melodies, 0.05, 0.0).items()}
        {'train': 19, 'validation': 1, 'test': 0}
    """
    out: dict[str, list[Melody]] = {s: [] for s in SPLITS}
    for m in melodies:
        out[split_of(m.id, validation_ratio, test_ratio, seed)].append(m)
    for split, ratio in (("validation", validation_ratio), ("test", test_ratio)):
        if ratio > 0 and not out[split] and len(out["train"]) >= 2:
            nearest = min(out["train"], key=lambda m: _position(m.id, seed))
            out["train"].remove(nearest)
            out[split].append(nearest)
            logger.info("%s split: no melody of %d fell in it by hash; %s moved there from training", split,
                        sum(map(len, out.values())), nearest.id)
    return out


def split_summary(parts: dict[str, list[Melody]]) -> str:
    """`"16 train / 3 validation / 1 test melodies"`: the sizes of a `split_melodies` result, for the run's card."""
    return " / ".join(f"{len(parts[s])} {s}" for s in SPLITS) + " melodies"


def semitone_shifts(augment_semitones: int | Sequence[int] | None) -> list[int]:
    """`5` -> `[-5, ..., 5]`; a list is taken as is (0 is always included); None/0 -> `[0]`."""
    if not augment_semitones:
        return [0]
    if isinstance(augment_semitones, int):
        k = abs(augment_semitones)
        return list(range(-k, k + 1))
    return sorted({0, *(int(s) for s in augment_semitones)})


def augment(melodies: Iterable[Melody], shifts: Sequence[int]) -> Iterator[Melody]:
    """Each melody at every shift that keeps it inside the pitch range (the untransposed one always)."""
    for m in melodies:
        for s in shifts:
            t = m if s == 0 else m.transposed(s)
            if t is not None:
                yield t


def melody_style(m: Melody) -> str:
    """The style token a melody is trained with: its own style when it is one of `STYLES`, else "other".

    Examples:
        >>> melody_style(Melody("mine/1", "mine", [[0, 480, 60]]))
        'other'
    """
    return m.style if m.style in STYLES else "other"


def _tokenize_batch(batch: dict[str, list], tokenizer: MelodyTokenizer, use_style: bool,
                    infill_ratio: float = 0.0, shifts: Sequence[int] = (0,)) -> dict[str, list]:
    """Tokenize each melody once and emit one row per transposition in `shifts` that stays in the pitch range.

    A transposition only renames `Pitch` tokens, so it is done on the ids (exact, and 10x faster than encoding
    every transposed melody); with BPE, whose merges hold pitches, each transposed melody is encoded instead.
    """
    ids, num_notes, melody_ids, titles, styles, transpositions = [], [], [], [], [], []
    lo_range, hi_range = PITCH_RANGE
    for mid, notes, tss, style, title in zip(batch["id"], batch["notes"], batch["time_signatures"], batch["style"],
                                             batch["title"], strict=True):
        m = Melody("", "", notes, tss, style=style)
        style_name = melody_style(m) if use_style else None
        seq = tokenizer.encode(m, bos=True, eos=True, style=style_name)
        pitches = [n[2] for n in notes] or [lo_range]
        for shift in shifts:
            if shift and not (lo_range <= min(pitches) + shift and max(pitches) + shift <= hi_range):
                continue
            if shift == 0:
                out = seq
            elif tokenizer.is_bpe:
                out = tokenizer.encode(m.transposed(shift), bos=True, eos=True, style=style_name)
            else:
                out = tokenizer.transpose_ids(seq, shift)
            if infill_ratio > 0:  # keyed by id and shift: each transposition draws its own gap
                out = random_infill_example(out, tokenizer, f"{mid}:{shift}", infill_ratio)
            ids.append(out)
            num_notes.append(len(notes))
            melody_ids.append(mid)
            titles.append(title)
            styles.append(style)
            transpositions.append(shift)
    return {"input_ids": ids, "num_notes": num_notes, "id": melody_ids, "title": titles, "style": styles,
            "transposition": transpositions}


def _pack_batch(batch: dict[str, list], block_size: int, pad_id: int) -> dict[str, Any]:
    """Concatenate sequences and cut them into `block_size` blocks; the tail block is padded (labels -100).

    Each block also lists the melodies it holds (`melody_ids`, `titles`, `styles`, `transpositions`, in order), so
    a prepared dataset still says where its tokens came from. Vectorised with numpy: several times faster than
    slicing Python lists.
    """
    import numpy as np

    lengths = [len(seq) for seq in batch["input_ids"]]
    flat = np.fromiter((t for seq in batch["input_ids"] for t in seq), dtype=np.int64, count=sum(lengths))
    n_blocks = -(-len(flat) // block_size)
    if n_blocks and len(flat) - (n_blocks - 1) * block_size < 2:  # a 1-token tail teaches nothing
        n_blocks -= 1
        flat = flat[:n_blocks * block_size]
    size = n_blocks * block_size
    blocks = np.full(size, pad_id, dtype=np.int64)
    blocks[:len(flat)] = flat
    labels = np.full(size, -100, dtype=np.int64)
    labels[:len(flat)] = flat
    masks = np.zeros(size, dtype=np.int64)
    masks[:len(flat)] = 1
    shape = (n_blocks, block_size)
    ends = np.cumsum(lengths)
    starts = ends - np.asarray(lengths)
    first = np.searchsorted(ends, np.arange(n_blocks) * block_size, side="right")
    last = np.searchsorted(starts, (np.arange(n_blocks) + 1) * block_size, side="left")
    held = [range(a, b) for a, b in zip(first.tolist(), last.tolist(), strict=True)]
    meta = {name: [[batch[key][i] for i in r] for r in held] for name, key in (
        ("melody_ids", "id"), ("titles", "title"), ("styles", "style"), ("transpositions", "transposition"))}
    return {"input_ids": blocks.reshape(shape).tolist(), "labels": labels.reshape(shape).tolist(),
            "attention_mask": masks.reshape(shape).tolist(), **meta}


def _records(melodies: Iterable[Melody]) -> Iterator[dict[str, Any]]:
    for m in melodies:
        yield {"id": m.id, "source": m.source, "title": m.title, "key": m.key, "style": m.style,
               "notes": m.notes, "time_signatures": m.time_signatures}


def tokenize_melodies(melodies: Sequence[Melody], tokenizer: MelodyTokenizer, use_style_tokens: bool = True,
                      num_proc: int | None = None, desc: str = "tokenizing", infill_ratio: float = 0.0,
                      shifts: Sequence[int] = (0,)):
    """A `datasets.Dataset` of one row per melody: metadata, `input_ids` (BOS [style] ... EOS), `num_notes`,
    `transposition`.

    With `shifts` (semitones, e.g. `semitone_shifts(5)`), one row per transposition that fits the pitch range,
    keeping `id`, `title` and `style` (not the notes). With `infill_ratio`, that share of the rows is written in
    the fill-in-the-middle form (`hf_melody.data.infill_format`).
    """
    from datasets import Dataset

    ds = Dataset.from_list(list(_records(melodies)))
    num_proc = num_proc if num_proc and len(ds) >= 200 else None
    shifts = list(shifts)
    remove = ds.column_names if shifts != [0] else None
    return ds.map(_tokenize_batch, batched=True, batch_size=200, num_proc=num_proc, desc=desc, remove_columns=remove,
                  fn_kwargs={"tokenizer": tokenizer, "use_style": use_style_tokens, "infill_ratio": infill_ratio,
                             "shifts": shifts})


def pack(ds, block_size: int, pad_id: int, num_proc: int | None = None):
    """Pack a tokenized dataset (column `input_ids`) into fixed `block_size` blocks with labels and masks."""
    num_proc = num_proc if num_proc and len(ds) >= 1000 else None
    return ds.map(_pack_batch, batched=True, batch_size=1000, num_proc=num_proc, remove_columns=ds.column_names,
                  fn_kwargs={"block_size": block_size, "pad_id": pad_id}, desc=f"packing into {block_size}-blocks")


def build_dataset(melodies: Sequence[Melody], tokenizer: MelodyTokenizer, config: DataArguments | None = None,
                  num_proc: int | None = None, cache: bool = True, streaming: bool = False):
    """Build the packed `DatasetDict` (train/validation/test) from melodies.

    Splits by melody first, then transposes the training melodies only, tokenizes and packs each split.
    With `cache`, the result is saved under the hf_melody cache keyed by a hash of the melodies, the tokenizer
    and `config`, so a changed input is never served stale. With `streaming`, returns an `IterableDatasetDict`
    that tokenizes on the fly (for corpora larger than memory).

    Examples:
        >>> melodies, _ = load_melodies("essen/kinder0")                                  # doctest: +SKIP
        >>> dsd = build_dataset(melodies, MelodyTokenizer(), DataArguments(max_length=256))   # doctest: +SKIP
        >>> dsd["train"].column_names                                                     # doctest: +SKIP
        ['input_ids', 'labels', 'attention_mask', 'melody_ids', 'titles', 'styles', 'transpositions']
    """
    from datasets import DatasetDict, load_from_disk

    config = config or DataArguments()
    if streaming:
        return build_streaming_dataset(melodies, tokenizer, config)
    path = cache_dir() / "datasets" / config.fingerprint(melodies, tokenizer)
    if cache and path.exists():
        logger.info("loading prepared dataset from cache %s", path)
        return load_from_disk(str(path))
    parts = split_melodies(melodies, config.validation_ratio, config.test_ratio, config.seed)
    logger.info("split: %s", split_summary(parts))
    shifts = semitone_shifts(config.augment_semitones)
    out = {}
    for split in SPLITS:
        mels = parts[split]
        if not mels:
            logger.warning("split %s is empty (%d melodies in all)", split, len(melodies))
            continue
        train = split == "train"
        tok = tokenize_melodies(mels, tokenizer, config.use_style_tokens, num_proc, desc=f"tokenizing {split}",
                                infill_ratio=config.infill_ratio if train else 0.0, shifts=shifts if train else [0])
        out[split] = pack(tok, config.max_length, tokenizer.pad_token_id, num_proc)
    dsd = DatasetDict(out)
    if cache:
        # a unique temporary folder, then a rename: concurrent builders (e.g. DDP ranks) never clash
        tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
        dsd.save_to_disk(str(tmp))
        try:
            os.replace(tmp, path)
        except OSError:  # another process finished first; its copy is identical
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return dsd


def build_streaming_dataset(melodies: Iterable[Melody] | Callable[[], Iterable[Melody]], tokenizer: MelodyTokenizer,
                            config: DataArguments):
    """`IterableDatasetDict` version of `build_dataset`: melodies are read, augmented, tokenized and packed lazily.

    `melodies` is a re-iterable collection or a zero-argument callable returning a fresh iterable, e.g.
    `lambda: iter_midi_folder(folder)`; it is iterated once per split and epoch, so files are read on the fly.
    """
    from datasets import IterableDataset, IterableDatasetDict

    shifts = semitone_shifts(config.augment_semitones)
    if not callable(melodies) and iter(melodies) is melodies:
        raise TypeError("streaming needs a re-iterable collection or a callable returning an iterable, not a "
                        "one-shot iterator (wrap it: lambda: iter_midi_folder(folder))")
    source = melodies if callable(melodies) else (lambda: melodies)

    def gen(split: str):
        for m in source():
            if split_of(m.id, config.validation_ratio, config.test_ratio, config.seed) != split:
                continue
            yield from _records([m])

    out = {}
    for split in SPLITS:
        ds = IterableDataset.from_generator(gen, gen_kwargs={"split": split})
        ds = ds.map(_tokenize_batch, batched=True, batch_size=64,
                    fn_kwargs={"tokenizer": tokenizer, "use_style": config.use_style_tokens,
                               "infill_ratio": config.infill_ratio if split == "train" else 0.0,
                               "shifts": shifts if split == "train" else [0]},
                    remove_columns=["id", "source", "title", "key", "style", "notes", "time_signatures"])
        ds = ds.map(_pack_batch, batched=True, batch_size=256,
                    remove_columns=["input_ids", "num_notes", "id", "title", "style", "transposition"],
                    fn_kwargs={"block_size": config.max_length, "pad_id": tokenizer.pad_token_id})
        # a stream feeds the Trainer directly: blocks only (a prepared dataset on disk keeps the melody columns)
        ds = ds.remove_columns(["melody_ids", "titles", "styles", "transpositions"])
        out[split] = ds
    return IterableDatasetDict(out)


def dataset_stats(dsd) -> dict[str, dict[str, int]]:
    """Blocks and real (non-pad) tokens per split of a packed `DatasetDict`."""
    stats = {}
    for split, ds in dsd.items():
        tokens = sum(sum(m) for m in ds["attention_mask"])
        stats[split] = {"blocks": len(ds), "tokens": int(tokens)}
    return stats


def prepare_dataset(dataset: Any, tokenizer: MelodyTokenizer | None = None,
                    config: DataArguments | None = None, exclude: Iterable[str] = (), num_proc: int | None = None,
                    progress: bool = True, bpe_vocab_size: int | None = None):
    """Load melodies from a dataset spec (anything `load_melodies` takes: corpora, folders, files, a
    `datasets.Dataset`, Hub ids) and build the packed dataset in one call.

    Returns `(dataset_dict, tokenizer, skip_report)`. Trains BPE on the training melodies when
    `bpe_vocab_size` is given and the tokenizer is not trained yet.

    Examples:
        >>> dsd, tokenizer, report = prepare_dataset("path/to/midi", bpe_vocab_size=512)     # doctest: +SKIP
        >>> report.summary()                                                                 # doctest: +SKIP
    """
    config = config or DataArguments()
    melodies, report = load_melodies(dataset, progress=progress, num_proc=num_proc, exclude=exclude,
                                     columns=config.column_map)
    tokenizer = tokenizer or MelodyTokenizer()
    if bpe_vocab_size and not tokenizer.is_bpe:
        train = split_melodies(melodies, config.validation_ratio, config.test_ratio, config.seed)["train"]
        tokenizer.train_bpe(bpe_vocab_size, train)
    dsd = build_dataset(melodies, tokenizer, config, num_proc=num_proc)
    return dsd, tokenizer, report
