"""The model bundle: model + `miditok.json` + generation config + model card; save, load (name, folder, Hub id), push.

Example:
    >>> from hf_melody.hub import load_model, load_tokenizer
    >>> model = load_model("folk-base")              # a bundled checkpoint, offline
    >>> tok = load_tokenizer("folk-base")
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .errors import HFMelodyError, ModelLoadError

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = Path(__file__).parent / "checkpoints"
TRAINING_INFO = "training_info.json"
DEFAULT_MODEL = "folk-base"
# what `from_pretrained` passes on to the HF cache, as in transformers
HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only")


def bundled_checkpoints() -> list[str]:
    """Names of the checkpoints shipped inside the package (loadable offline by name)."""
    if not CHECKPOINTS_DIR.is_dir():
        return []
    return sorted(p.name for p in CHECKPOINTS_DIR.iterdir() if (p / "config.json").is_file())


def bundled_name(path: str | os.PathLike) -> str | None:
    """`"folk-base"` for the folder of the bundled checkpoint folk-base (or the name itself), else None."""
    p = Path(path) if path else None
    if p is None:
        return None
    if str(path) in bundled_checkpoints():
        return str(path)
    if p.is_dir() and p.resolve().parent == CHECKPOINTS_DIR.resolve():
        return p.name
    return None


def resolve_bundle(name_or_path: str | os.PathLike) -> str:
    """A local folder for bundled names and folders; Hub ids are returned unchanged (resolved by the HF cache)."""
    p = Path(name_or_path)
    if p.is_dir():
        return str(p)
    if str(name_or_path) in bundled_checkpoints():
        return str(CHECKPOINTS_DIR / str(name_or_path))
    if p.exists():
        raise ModelLoadError(f"{p}: is a file; give the folder that holds config.json and model.safetensors")
    return str(name_or_path)


def resolve_file(name_or_path: str | os.PathLike, filename: str, **hub_kwargs) -> str:
    """Local path of `filename` inside a bundle given by name, folder or Hub id (HF cache; offline aware)."""
    where = resolve_bundle(name_or_path)
    if Path(where).is_dir():
        path = Path(where) / filename
        if not path.is_file():
            raise ModelLoadError(f"{where}: has no {filename}; is it a hf_melody bundle (save_bundle writes one)?")
        return str(path)
    from transformers.utils import cached_file

    try:
        path = cached_file(where, filename, **hub_kwargs)
    except Exception as e:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        raise ModelLoadError(
            f"{name_or_path!r}: not a folder, a bundled checkpoint ({', '.join(bundled_checkpoints()) or 'none'}) "
            f"or a Hub id with {filename} in the local HF cache"
            + (" (HF_HUB_OFFLINE is set; download it once online)" if offline else f" ({type(e).__name__})")
        ) from e
    if path is None:
        raise ModelLoadError(f"{name_or_path!r}: the Hub repo has no {filename}")
    return path


def load_tokenizer(name_or_path: str | os.PathLike, **hub_kwargs):
    """The `MelodyTokenizer` of a bundle."""
    from .tokenizer import MelodyTokenizer

    return MelodyTokenizer.from_pretrained(name_or_path, **hub_kwargs)


def load_model(name_or_path: str | os.PathLike, allow_pickle: bool = False, trust_remote_code: bool = False,
               **kwargs):
    """The GPT-2 model of a bundle. Only safetensors are read unless `allow_pickle=True`; no remote code by default."""
    from transformers import AutoModelForCausalLM

    where = resolve_bundle(name_or_path)
    hub_kwargs = {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}
    resolve_file(name_or_path, "config.json", **hub_kwargs)  # a clear error before transformers' long one
    from safetensors import SafetensorError

    try:
        return AutoModelForCausalLM.from_pretrained(where, use_safetensors=not allow_pickle or None,
                                                    trust_remote_code=trust_remote_code, **kwargs)
    except SafetensorError as e:
        raise ModelLoadError(f"{name_or_path}: model.safetensors is corrupt or truncated ({e}); re-download or "
                             "re-save the bundle") from e
    except OSError as e:
        raise ModelLoadError(
            f"{name_or_path}: could not load the model weights ({str(e).splitlines()[0][:160]}); only "
            "model.safetensors is read by default (pass allow_pickle=True to trust pickled weights)"
        ) from e


def default_generation_config(tokenizer, max_new_tokens: int = 512):
    """Sampling defaults stored in every bundle's `generation_config.json`."""
    from transformers import GenerationConfig

    return GenerationConfig(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)


def save_bundle(model, tokenizer, save_directory: str | os.PathLike, training_info: dict[str, Any] | None = None,
                generation_config=None, card: bool = True) -> Path:
    """Write the whole bundle into `save_directory`: safetensors weights, config, generation config,
    `miditok.json`, `training_info.json` and a model card (`README.md`)."""
    from .utils import atomic_write_text

    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    # No `custom_pipelines` entry: that would make transformers ask for remote code. The task is registered by
    # `import hf_melody`; the config only records which library and task the bundle belongs to.
    model.config.hf_melody = {"library": "hf_melody", "task": "melody-generation", "tokenizer_file": "miditok.json"}
    model.generation_config = generation_config or default_generation_config(tokenizer)
    model.save_pretrained(save_directory, safe_serialization=True)
    tokenizer.save_pretrained(save_directory)
    info_path = save_directory / TRAINING_INFO
    if training_info is not None:
        atomic_write_text(info_path, json.dumps(training_info, indent=2, default=str))
    if card:
        from .cards import render_model_card

        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        atomic_write_text(save_directory / "README.md", render_model_card(save_directory, info))
    return save_directory


def push_bundle_to_hub(folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None,
                       commit_message: str = "Upload hf_melody bundle") -> str:
    """Upload a saved bundle folder to the Hub; a clear `HFMelodyError` when offline or unauthorised."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    for required in ("config.json", "model.safetensors", "miditok.json"):
        if not (folder / required).is_file():
            raise HFMelodyError(f"{folder}: missing {required}; save the bundle with save_bundle() first")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise HFMelodyError(f"cannot push {folder} to {repo_id}: HF_HUB_OFFLINE is set; unset it and log in "
                            "with `hf auth login`")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message,
                                 allow_patterns=["*.json", "*.safetensors", "README.md", "*.png"])
    except Exception as e:
        raise HFMelodyError(f"pushing {folder} to {repo_id} failed ({type(e).__name__}: {str(e)[:160]}); "
                            "check your network and `hf auth login`") from e
    return str(getattr(info, "commit_url", info))
