"""Shared test set-up: offline, isolated caches, real fixtures, and a tiny seeded model trained in-session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="hf_melody_tests_"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HOME"] = str(_TMP / "hf_home")
os.environ["HF_DATASETS_CACHE"] = str(_TMP / "hf_datasets")
os.environ["MPLCONFIGDIR"] = str(_TMP / "mpl")
os.environ["MPLBACKEND"] = "Agg"
os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_MELODY_CACHE"] = str(_TMP / "hf_melody_cache")
os.environ.setdefault("MUSIC21_TMP", str(_TMP))
# One thread: tiny models gain little from two, and a busy 2-core machine slows 10x under oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tokenizer():
    from hf_melody import MelodyTokenizer

    return MelodyTokenizer()


@pytest.fixture(scope="session")
def kinder_melodies():
    """The 213 Kinderlieder of essen/kinder0 (real data from the music21 wheel)."""
    from hf_melody import load_melodies

    melodies, report = load_melodies("essen/kinder0", progress=False)
    assert report.kept == 213
    return melodies


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A 2-layer `original` model trained for 80 steps on essen/kinder0 through the real recipe code path."""
    from hf_melody.training.trainer import parse_args, train

    out = tmp_path_factory.mktemp("tiny_bundle")
    args = ["--config", str(Path(__file__).parents[1] / "recipes" / "tiny-debug.yaml"),
            "--output_dir", str(out), "--max_steps", "80", "--save_strategy", "no", "--eval_steps", "40",
            "--disable_tqdm", "true"]
    train(*parse_args(args))
    return out
