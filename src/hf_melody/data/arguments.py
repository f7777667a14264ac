"""The configuration of training, evaluation and data preparation: one dataclass per concern, each field with its
help, and checks in `__post_init__` so a bad value fails the same way from Python, a YAML recipe or a flag.

The recipes, `hf-melody train|evaluate|prepare` and `hf_melody.train` / `hf_melody.evaluate` all fill these through
`MelodyArgumentParser` (in `hf_melody.parser`).

Examples:
    >>> from hf_melody.data.arguments import DataArguments
    >>> DataArguments(dataset="essen/kinder0,oneills1850", exclude="essen/kinder0/3").dataset
    ['essen/kinder0', 'oneills1850']
    >>> DataArguments(max_length=4)
    Traceback (most recent call last):
    ...
    hf_melody.errors.ConfigError: max_length=4 is too small; use at least 8 (256 is usual)
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..parser import MelodyArgumentParser
from .melody import Melody

SPLIT_CHOICES = ("all", "train", "validation", "test", "auto")
MAX_LENGTH_LIMIT = 8_192
"""The longest training block `max_length` may ask for (32 times the usual 256; a melody of 32 bars is about 300
tokens): attention memory grows with its square, so 10**6 would try to allocate terabytes. Raise it with the
`HF_MELODY_MAX_LENGTH_LIMIT` environment variable."""


def max_length_limit() -> int:
    """`MAX_LENGTH_LIMIT`, or the `HF_MELODY_MAX_LENGTH_LIMIT` environment variable when it is set.

    Examples:
        >>> max_length_limit()
        8192
    """
    text = os.environ.get("HF_MELODY_MAX_LENGTH_LIMIT", "").strip()
    if not text:
        return MAX_LENGTH_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"HF_MELODY_MAX_LENGTH_LIMIT={text!r} must be a positive integer (the cap on max_length; "
                          f"default {MAX_LENGTH_LIMIT})")
    return int(text)


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """A list-valued field from a list, a comma-separated string (older recipes and flags) or None.

    Examples:
        >>> split_list(["essen/kinder0,oneills1850", " airdsAirs "])
        ['essen/kinder0', 'oneills1850', 'airdsAirs']
    """
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]




@dataclass
class DataArguments:
    """Where melodies come from and how they become training blocks (the data keys of a recipe, and the settings
    of `build_dataset`).

    Args:
        dataset: corpus names (`essen`, `essen/kinder0`, `oneills1850`, ...), folders of MIDI and/or ABC files,
            `.mid`/`.abc` files, parquet/arrow/jsonl/csv files, `save_to_disk` folders and Hub dataset ids
            (`load_melodies`); a comma-separated string is split.
        dataset_columns: for dataset inputs, `role=column` pairs naming the columns (`midi=file_bytes`, `path=`,
            `abc=`, `id=`, `title=`, `style=`); by default the columns of those names are used.
        exclude: melody-id prefixes to hold out (e.g. `essen/kinder0`); a comma-separated string is split.
        max_length: tokens per training block.
        augment_semitones: transpose training melodies by -k..k semitones (0 turns augmentation off); from Python
            also a list of shifts.
        bpe_vocab_size: train BPE to this vocabulary size (unset: plain REMI).
        validation_ratio: share of melodies held out for validation, split by a hash of each melody's id.
        test_ratio: share of melodies held out for testing, split the same way.
        split_seed: seed of that hash (unset: the training arguments' `data_seed`, else 0).
        use_style_tokens: prefix each melody with its style token.
        num_proc: processes for corpus conversion and tokenizing.
        streaming: tokenize on the fly (an `IterableDataset`); needs `max_steps`.
        infill_ratio: share of training melodies in the fill-in-the-middle form (`hf_melody.generation.infill`).

    Examples:
        >>> from hf_melody import MelodyTokenizer, build_dataset
        >>> data = DataArguments(max_length=128, augment_semitones=2)
        >>> build_dataset(melodies, MelodyTokenizer(), data)                      # doctest: +SKIP
    """

    dataset: list[str] = field(default_factory=lambda: ["essen"], metadata={
        "help": "Corpus names ('essen', 'essen/kinder0', 'oneills1850', ...) and MIDI folders (space- or "
                "comma-separated)."})
    dataset_columns: list[str] = field(default_factory=list, metadata={
        "help": "For datasets inputs (parquet/arrow/jsonl/csv files, save_to_disk folders, Hub ids): role=column "
                "pairs, e.g. midi=file_bytes id=tune_id (roles: midi, path, abc, id, title, style)."})
    exclude: list[str] = field(default_factory=list, metadata={
        "help": "Melody-id prefixes to hold out, e.g. essen/kinder0 (space- or comma-separated)."})
    max_length: int = field(default=256, metadata={"help": "Tokens per packed training block."})
    augment_semitones: int = field(default=5, metadata={"help": "Transpose training melodies by -k..k semitones "
                                                        "(0: no augmentation)."})
    bpe_vocab_size: int | None = field(default=None, metadata={"help": "Train BPE to this vocabulary size."})
    validation_ratio: float = field(default=0.05, metadata={"help": "Share of melodies held out for validation."})
    test_ratio: float = field(default=0.05, metadata={"help": "Share of melodies held out for testing."})
    split_seed: int | None = field(default=None, metadata={"help": "Seed of the split by melody id (default: "
                                                           "data_seed, else 0)."})
    use_style_tokens: bool = field(default=True, metadata={"help": "Prefix each melody with its style token."})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for corpus conversion and tokenizing."})
    streaming: bool = field(default=False, metadata={"help": "Tokenize on the fly (IterableDataset); needs "
                                                     "max_steps."})
    infill_ratio: float = field(default=0.0, metadata={"help": "Share of training melodies written in the "
                                                       "fill-in-the-middle form that teaches infilling (0.2 in the "
                                                       "bundled recipes)."})

    def __post_init__(self):
        self.dataset = split_list(self.dataset)
        self.exclude = split_list(self.exclude)
        self.dataset_columns = split_list(self.dataset_columns)
        _ = self.column_map  # checks the pairs now, before any work
        if not self.dataset:
            raise ConfigError("dataset is empty; give a corpus name such as essen, or a MIDI folder")
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, numbers.Integral):
            raise ConfigError(f"max_length={self.max_length!r} must be an integer (256 is usual)")
        if self.max_length < 8:
            raise ConfigError(f"max_length={self.max_length} is too small; use at least 8 (256 is usual)")
        if self.max_length > (cap := max_length_limit()):
            raise ConfigError(f"max_length={self.max_length} is over the limit of {cap}; give at most {cap} (256 is "
                              f"usual), or set HF_MELODY_MAX_LENGTH_LIMIT={self.max_length} to raise the limit")
        if self.split_seed is not None and (isinstance(self.split_seed, bool)
                                            or not isinstance(self.split_seed, numbers.Integral)
                                            or self.split_seed < 0):
            raise ConfigError(f"split_seed={self.split_seed!r} must be an integer >= 0 (or unset)")
        if self.augment_semitones is None:
            self.augment_semitones = 0
        shifts = self.augment_semitones  # k (-k..k) or, from Python, a list of shifts
        in_range = 0 <= shifts <= 12 if isinstance(shifts, int) else all(abs(int(s)) <= 12 for s in shifts)
        if not in_range:
            raise ConfigError(f"augment_semitones={shifts}; use 0..12 (5 is the classic recipe)")
        if not (0 <= self.validation_ratio < 1 and 0 <= self.test_ratio < 1
                and self.validation_ratio + self.test_ratio < 1):
            raise ConfigError("validation_ratio and test_ratio must be in [0, 1) and sum to less than 1")
        if self.num_proc is not None and self.num_proc < 1:
            raise ConfigError(f"num_proc={self.num_proc} must be at least 1 (or unset)")
        if not 0 <= self.infill_ratio < 1:
            raise ConfigError(f"infill_ratio={self.infill_ratio} must be in [0, 1) (0.2 is the bundled recipes')")
        if self.bpe_vocab_size is not None and self.bpe_vocab_size < 1:
            raise ConfigError(f"bpe_vocab_size={self.bpe_vocab_size} must be positive (or unset: no BPE)")

    @property
    def column_map(self) -> dict[str, str]:
        """`dataset_columns` as role -> column (`load_melodies(columns=...)`).

        Examples:
            >>> DataArguments(dataset_columns="midi=file_bytes,id=tune").column_map
            {'midi': 'file_bytes', 'id': 'tune'}
        """
        pairs = {}
        for item in self.dataset_columns:
            role, sep, column = item.partition("=")
            if not sep or not role.strip() or not column.strip():
                raise ConfigError(f"dataset_columns: {item!r} is not role=column; write e.g. midi=file_bytes")
            pairs[role.strip()] = column.strip()
        return pairs

    @property
    def seed(self) -> int:
        """The seed of the split by melody id in effect (`split_seed`, 0 when unset)."""
        return self.split_seed or 0

    def fingerprint(self, melodies: Sequence[Melody], tokenizer) -> str:
        """A hash of the melodies, the tokenizer and the settings that shape the packed blocks (the cache key of
        `build_dataset`)."""
        # "format": 2 since blocks list the melodies they hold (melody_ids, titles, styles, transpositions); 3 since
        # a split asked for is never empty (split_melodies moves one melody into it)
        shaping = {"format": 3, "max_length": self.max_length, "augment_semitones": self.augment_semitones,
                   "validation_ratio": self.validation_ratio, "test_ratio": self.test_ratio, "seed": self.seed,
                   "use_style_tokens": self.use_style_tokens, "infill_ratio": self.infill_ratio}
        h = hashlib.sha256()
        h.update(json.dumps(shaping, sort_keys=True).encode())
        h.update(json.dumps(tokenizer.miditok.config.to_dict(serialize=True), sort_keys=True,
                            default=str).encode())
        h.update(str(tokenizer.vocab_size).encode())
        for m in melodies:
            h.update(m.id.encode("utf-8", "surrogateescape"))
            h.update(json.dumps(m.notes).encode())
            h.update(json.dumps(m.time_signatures).encode())
            h.update(m.style.encode())
        return h.hexdigest()[:20]


class DataConfig(DataArguments):
    """`DataArguments` under the name `build_dataset` callers have always used; takes the split seed as `seed`.

    Examples:
        >>> DataConfig(max_length=128, augment_semitones=2, seed=1).seed
        1
    """

    def __init__(self, *args, seed: int | None = None, **kwargs):
        if seed is not None:
            kwargs["split_seed"] = seed
        super().__init__(*args, **kwargs)




@dataclass
class PrepareArguments:
    """Where `hf-melody prepare` writes the packed dataset (`dataset/`), its `miditok.json` and the skip report.

    Examples:
        >>> PrepareArguments(output_dir="out/data").output_dir
        'out/data'
    """

    output_dir: str = field(default="out/data", metadata={"help": "Output folder.", "aliases": ["--out"]})


def prepare_parser(prog: str | None = None) -> MelodyArgumentParser:
    """The parser of `hf-melody prepare` (data arguments and the output folder).

    Examples:
        >>> data, prep = prepare_parser().parse_args_and_config(["--dataset", "essen/kinder0", "--out", "out/d"])
        >>> data.dataset, prep.output_dir
        (['essen/kinder0'], 'out/d')
    """
    return MelodyArgumentParser((DataArguments, PrepareArguments), prog=prog,
                                description="Corpus or MIDI folder -> tokenized, packed datasets.DatasetDict on "
                                            "disk, with its miditok.json and a skip report.")
