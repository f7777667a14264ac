"""A folder written by `hf-melody prepare` (`dataset/` + `miditok.json`): recognise it and load it for training.

Examples:
    >>> from hf_melody.data.prepared import find_prepared, load_prepared
    >>> folder = find_prepared(["out/data"])                                             # doctest: +SKIP
    >>> dsd, tokenizer = load_prepared(folder)                                           # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError, ModelLoadError
from ..tokenizer import MelodyTokenizer

DATASET_DIR = "dataset"
"""Where `hf-melody prepare` saves the `DatasetDict`, beside its `miditok.json`."""


def is_prepared(path: str | os.PathLike) -> bool:
    """True for a folder written by `hf-melody prepare` (or its `dataset/` subfolder)."""
    p = Path(path)
    if p.name == DATASET_DIR and (p.parent / "miditok.json").is_file():
        p = p.parent
    return (p / DATASET_DIR / "dataset_dict.json").is_file() and (p / "miditok.json").is_file()


def find_prepared(specs: list[str]) -> Path | None:
    """The prepared folder among the dataset specs, or None; a prepared folder cannot be mixed with other specs."""
    prepared = [s for s in specs if is_prepared(s)]
    if not prepared:
        return None
    if len(specs) > 1:
        raise ConfigError(f"dataset {','.join(specs)}: {prepared[0]} is already tokenized (hf-melody prepare); "
                          "train on it alone, or prepare all sources together")
    p = Path(prepared[0])
    return p.parent if p.name == DATASET_DIR and not (p / DATASET_DIR).is_dir() else p


def load_prepared(folder: str | os.PathLike, tokenizer=None, bpe_vocab_size: int | None = None,
                  streaming: bool = False):
    """`(DatasetDict, MelodyTokenizer)` of a prepared folder.

    `tokenizer` (e.g. the one of an `init_from` model) must be the folder's: the ids were made with it.
    """
    from datasets import load_from_disk

    folder = Path(folder)
    if bpe_vocab_size:
        raise ConfigError(f"{folder} is already tokenized; drop bpe_vocab_size (pass --bpe-vocab-size to "
                          "`hf-melody prepare` instead)")
    if streaming:
        raise ConfigError(f"{folder} is a prepared dataset on disk; drop streaming")
    try:
        prepared_tok = MelodyTokenizer.from_pretrained(folder)
    except ModelLoadError as e:
        raise ConfigError(f"{folder}: its miditok.json cannot be read ({e}); run `hf-melody prepare` again") from e
    if tokenizer is not None and (tokenizer.vocab_size != prepared_tok.vocab_size
                                  or tokenizer.miditok.vocab != prepared_tok.miditok.vocab):
        raise ConfigError(f"{folder} was tokenized with another vocabulary than the model to fine-tune; prepare the "
                          "data with that model's tokenizer, or train from scratch")
    dsd = load_from_disk(str(folder / DATASET_DIR))
    if "train" not in dsd:
        raise ConfigError(f"{folder / DATASET_DIR} has no train split (splits: {list(dsd)}); run `hf-melody prepare`")
    return dsd, tokenizer or prepared_tok


def block_length(dsd) -> int:
    """Tokens per block of a prepared `DatasetDict` (the context the model needs)."""
    return len(dsd["train"][0]["input_ids"])
