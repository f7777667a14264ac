"""The model bundle: model + `miditok.json` + generation config + model card; save, load (name, folder, Hub id), push.

Examples:
    >>> from hf_melody.hub import load_model, load_tokenizer
    >>> model = load_model("folk-base")              # a bundled checkpoint, offline
    >>> tok = load_tokenizer("folk-base")
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
from pathlib import Path
from typing import Any

from .bundle import (
    HUB_KWARGS,
    TOKENIZER_FILE,
    TRAINING_INFO,
    read_json,
    resolve_bundle,
    resolve_file,
)
from .cards import render_model_card
from .errors import HFMelodyError, ModelLoadError
from .tokenizer import MelodyTokenizer
from .utils import (
    atomic_write_text,
    check_utf8_path,
    disk_full_error,
    give_usual_permissions,
    link_tree,
    publish_folder,
    remove_stale_siblings,
    staging_folder,
)

logger = logging.getLogger(__name__)

MODEL_LIMITS = {"n_layer": 48, "n_head": 64, "n_embd": 4096, "n_positions": 8192, "vocab_size": 65_536,
                "n_inner": 16_384}
"""The largest dimensions a bundle's `config.json` may give (GPT-2 XL has 48 layers of 1600; the bundled models
4 of 128): beyond them building the model alone takes minutes and gigabytes. A bundle past them is refused
(`ModelLoadError`) before transformers builds it; raise an entry here to load a larger model on purpose."""
_GENERATION_TYPES = {"do_sample": bool, "early_stopping": bool, "temperature": numbers.Real, "top_p": numbers.Real,
                     "repetition_penalty": numbers.Real, "length_penalty": numbers.Real, "top_k": int,
                     "max_new_tokens": int, "num_beams": int, "num_return_sequences": int,
                     "no_repeat_ngram_size": int, "max_length": int, "min_new_tokens": int}
"""The types of the `generation_config.json` fields hf_melody reads (a string "false" would count as true)."""

def load_tokenizer(name_or_path: str | os.PathLike, **hub_kwargs):
    """The `MelodyTokenizer` of a bundle (a bundled name, a folder or a Hub id).

    Examples:
        >>> tok = load_tokenizer("folk-base")
        >>> tok.vocab_size, tok.is_bpe
        (174, False)
    """
    return MelodyTokenizer.from_pretrained(name_or_path, **hub_kwargs)


def check_model_config(name_or_path: str | os.PathLike, **hub_kwargs) -> dict[str, Any]:
    """Read a bundle's `config.json` and refuse what is not a GPT-2 melody model of its own `miditok.json`.

    Raises `ModelLoadError` naming the file and the fix: another architecture (`model_type` other than `gpt2`), or
    a `vocab_size` that differs from the bundle's tokenizer (which would load with new, random embeddings).

    Examples:
        >>> check_model_config("folk-base")["model_type"]
        'gpt2'
    """
    config_path = resolve_file(name_or_path, "config.json", **hub_kwargs)
    config = read_json(config_path)
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_path}: a model config is a JSON object; re-save the bundle")
    if config.get("model_type") != "gpt2":
        raise ModelLoadError(f"{config_path}: model_type is {config.get('model_type')!r}, but hf_melody bundles "
                             "are GPT-2 models; set it to \"gpt2\" or give a bundle written by save_bundle()")
    _check_dimensions(config_path, config)
    _check_generation_config(name_or_path, **hub_kwargs)
    where = resolve_bundle(name_or_path)
    tokenizer_path = Path(where) / TOKENIZER_FILE if Path(where).is_dir() else None
    if tokenizer_path is None:
        try:
            tokenizer_path = Path(resolve_file(name_or_path, TOKENIZER_FILE, **hub_kwargs))
        except ModelLoadError:
            tokenizer_path = None
    if tokenizer_path is not None and tokenizer_path.is_file():
        vocab = load_tokenizer(tokenizer_path.parent).vocab_size
        if config.get("vocab_size") != vocab:
            raise ModelLoadError(f"{config_path}: vocab_size is {config.get('vocab_size')!r} but "
                                 f"{tokenizer_path.name} has {vocab} tokens; the config and the tokenizer belong to "
                                 "different models: restore the bundle's own config.json or miditok.json")
    return config


def load_model(name_or_path: str | os.PathLike, allow_pickle: bool = False, trust_remote_code: bool = False,
               **kwargs):
    """The GPT-2 model of a bundle. Only safetensors are read unless `allow_pickle=True`; no remote code by default.

    Examples:
        >>> model = load_model("folk-base")
        >>> model.config.model_type
        'gpt2'
    """
    import pickle

    from transformers import AutoModelForCausalLM

    where = resolve_bundle(name_or_path)
    hub_kwargs = {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}
    check_model_config(name_or_path, **hub_kwargs)  # clear errors before transformers' long ones
    from safetensors import SafetensorError

    try:
        return AutoModelForCausalLM.from_pretrained(where, use_safetensors=not allow_pickle or None,
                                                    trust_remote_code=trust_remote_code, **kwargs)
    except SafetensorError as e:
        raise ModelLoadError(f"{name_or_path}: model.safetensors is corrupt or truncated ({e}); re-download or "
                             "re-save the bundle") from e
    except pickle.UnpicklingError as e:
        raise ModelLoadError(f"{name_or_path}: the pickled weights were refused by torch's safe loader "
                             f"({_first_line(e)}); use a bundle with model.safetensors") from e
    except RuntimeError as e:
        if "size mismatch" not in str(e) and "ignore_mismatched_sizes" not in str(e):
            raise
        raise ModelLoadError(f"{name_or_path}: the weights do not match config.json ({_first_line(e)}); restore "
                             "the bundle's own config.json") from e
    except OSError as e:
        raise ModelLoadError(
            f"{name_or_path}: could not load the model weights ({_first_line(e)}); only "
            "model.safetensors is read by default (pass allow_pickle=True to trust pickled weights)"
        ) from e


def _check_dimensions(config_path: str, config: dict[str, Any]) -> None:
    """`ModelLoadError` naming the key and the fix for a dimension of `config.json` that is not an integer in
    1..`MODEL_LIMITS[key]`, or an `n_embd` that `n_head` does not divide."""
    for key, cap in MODEL_LIMITS.items():
        value = config.get(key)
        if value is None and (key not in config or key == "n_inner"):
            continue  # absent: GPT2Config's default; n_inner None: 4 * n_embd
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= cap:
            raise ModelLoadError(f"{config_path}: {key} is {value!r}; it must be an integer from 1 to {cap} "
                                 f"(hf_melody.hub.MODEL_LIMITS): restore the bundle's own config.json")
    n_embd, n_head = config.get("n_embd", 768), config.get("n_head", 12)
    if n_embd % n_head:
        raise ModelLoadError(f"{config_path}: n_embd={n_embd} is not a multiple of n_head={n_head}; restore the "
                             "bundle's own config.json")
    for key in ("attn_pdrop", "embd_pdrop", "resid_pdrop", "layer_norm_epsilon", "initializer_range"):
        value = config.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise ModelLoadError(f"{config_path}: {key} is {value!r}; it must be a finite number >= 0: restore the "
                                 "bundle's own config.json")


def _check_generation_config(name_or_path: str | os.PathLike, **hub_kwargs) -> None:
    """`ModelLoadError` naming the key and the fix for a `generation_config.json` field of the wrong type (the
    bounds of its values are `MelodyGenerationConfig`'s, checked when a call uses them)."""
    try:
        path = resolve_file(name_or_path, "generation_config.json", **hub_kwargs)
    except ModelLoadError:
        return  # optional: the defaults apply
    config = read_json(path)
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path}: a generation config is a JSON object; re-save the bundle with save_bundle()")
    for key, kind in _GENERATION_TYPES.items():
        value = config.get(key)
        if value is None or (key == "early_stopping" and value == "never"):
            continue
        wrong = not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))
        if not wrong and kind is numbers.Real and not math.isfinite(value):
            wrong = True
        if wrong:
            what = {bool: "true or false", int: "an integer"}.get(kind, "a finite number")
            raise ModelLoadError(f"{path}: {key} is {value!r}; it must be {what} (JSON {json.dumps(value)} is not): "
                                 "fix generation_config.json or delete it to use the defaults")


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def default_generation_config(tokenizer, max_new_tokens: int = 512):
    """Sampling defaults stored in every bundle's `generation_config.json`."""
    from transformers import GenerationConfig

    return GenerationConfig(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)


def save_bundle(model, tokenizer, save_directory: str | os.PathLike, training_info: dict[str, Any] | None = None,
                generation_config=None, card: bool = True) -> Path:
    """Write the whole bundle into `save_directory`, atomically: safetensors weights, config, generation config,
    `miditok.json`, `training_info.json` and a model card (`README.md`).

    The bundle is written into a hidden sibling folder and swapped into place in one rename, so a crash or kill at
    any moment leaves either the old bundle or the new one, never a mix. Other entries of an existing folder
    (`checkpoint-*`, `training_log.json`, ...) are carried over as hard links.

    Examples:
        >>> save_bundle(model, tokenizer, "out/my-model", training_info={"preset": "original"})  # doctest: +SKIP
    """
    check_utf8_path(save_directory, "save_directory", "save into a folder whose name is UTF-8")
    save_directory = Path(save_directory)
    if save_directory.exists() and not save_directory.is_dir():
        raise HFMelodyError(f"{save_directory}: is a file, not a folder; give a folder path for the bundle")
    save_directory.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(save_directory)
    staging = staging_folder(save_directory)
    try:
        # No `custom_pipelines` entry: that would make transformers ask for remote code. The task is registered by
        # `import hf_melody`; the config only records which library and task the bundle belongs to.
        model.config.hf_melody = {"library": "hf_melody", "task": "melody-generation",
                                  "tokenizer_file": "miditok.json"}
        model.generation_config = generation_config or default_generation_config(tokenizer)
        # the saved config turns the KV cache on (a bundle is for generating: `model.generate` recomputes every
        # step without it); the model itself keeps its setting, which a training run turns off
        use_cache, model.config.use_cache = model.config.use_cache, True
        try:
            model.save_pretrained(staging, safe_serialization=True)
        finally:
            model.config.use_cache = use_cache
        tokenizer.save_pretrained(staging)
        if training_info is not None:
            atomic_write_text(staging / TRAINING_INFO, json.dumps(training_info, indent=2, default=str))
        give_usual_permissions(staging.iterdir())  # safetensors writes its file 0600: readable as any other file
        if save_directory.is_dir():  # keep what the new bundle does not replace (checkpoints, logs, old info)
            link_tree(save_directory, staging, skip={p.name for p in staging.iterdir()} | {"README.md"})
        if card:
            info_path = staging / TRAINING_INFO
            info = json.loads(info_path.read_text()) if info_path.is_file() else {}
            atomic_write_text(staging / "README.md", render_model_card(staging, info, name=save_directory.name))
        elif (save_directory / "README.md").is_file():
            link_tree(save_directory, staging, only={"README.md"})
        publish_folder(staging, save_directory)
    except BaseException as e:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        told = disk_full_error(e, save_directory) if isinstance(e, Exception) else None
        if told is not None:  # DiskFullError: the disk filled up; the old bundle (if any) is untouched
            raise told from e
        raise
    return save_directory


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def check_hub_access(repo_id: str, token: str | None = None) -> str:
    """Before any work: check that the Hub is reachable and the credentials may write `repo_id`.

    Returns the full repo id (`user/name` when `repo_id` has no namespace). Raises `HFMelodyError` in one line when
    offline, not logged in, or when the namespace belongs to someone else.

    Examples:
        >>> check_hub_access("my-melody-model")            # doctest: +SKIP
        'me/my-melody-model'
    """
    if _hub_offline():
        raise HFMelodyError(f"--push_to_hub to {repo_id}: HF_HUB_OFFLINE is set; unset it and log in with "
                            "`hf auth login`, or drop --push_to_hub")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import LocalTokenNotFoundError

    try:
        me = HfApi(token=token).whoami()
    except LocalTokenNotFoundError as e:
        raise HFMelodyError(f"--push_to_hub to {repo_id}: not logged in to the Hugging Face Hub; run `hf auth "
                            "login` or pass --hub_token") from e
    except Exception as e:  # connection errors, 401 on a bad token
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            raise HFMelodyError(f"--push_to_hub to {repo_id}: the Hub refused the token (HTTP {status}); run "
                                "`hf auth login` again or pass a valid --hub_token") from e
        raise HFMelodyError(f"--push_to_hub to {repo_id}: cannot reach the Hugging Face Hub ({type(e).__name__}); "
                            "check the network or drop --push_to_hub") from e
    user = me.get("name") if isinstance(me, dict) else None
    namespaces = {user} | {o.get("name") for o in (me.get("orgs") or []) if isinstance(o, dict)}
    namespace, _, name = repo_id.rpartition("/")
    if namespace and namespace not in namespaces:
        raise HFMelodyError(f"--push_to_hub to {repo_id}: the token belongs to {user!r}, which cannot write to "
                            f"{namespace!r}; set --hub_model_id to {user}/{name}")
    return repo_id if namespace else f"{user}/{repo_id}"


def push_bundle_to_hub(folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None,
                       commit_message: str = "Upload hf_melody bundle") -> str:
    """Upload a saved bundle folder to the Hub; a clear `HFMelodyError` when offline or unauthorised.

    Examples:
        >>> push_bundle_to_hub("out/my-model", "me/my-melody-model", private=True)           # doctest: +SKIP
        'https://huggingface.co/me/my-melody-model/commit/...'
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    for required in ("config.json", "model.safetensors", "miditok.json"):
        if not (folder / required).is_file():
            raise HFMelodyError(f"{folder}: missing {required}; save the bundle with save_bundle() first")
    if _hub_offline():
        raise HFMelodyError(f"cannot push {folder} to {repo_id}: HF_HUB_OFFLINE is set; unset it and log in "
                            "with `hf auth login`")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message,
                                 allow_patterns=["*.json", "*.safetensors", "README.md", "*.png"],
                                 ignore_patterns=["checkpoint-*", ".*"])  # the bundle, not the checkpoints
    except Exception as e:
        raise HFMelodyError(f"pushing {folder} to {repo_id} failed ({type(e).__name__}: {str(e)[:160]}); "
                            "check your network and `hf auth login`") from e
    return str(getattr(info, "commit_url", info))
