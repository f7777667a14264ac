"""GPT-2 presets for melodies: the three classic architectures plus `small` and `base` for quality.

Examples:
    >>> from hf_melody import MelodyTokenizer, build_model
    >>> model = build_model("original", MelodyTokenizer(), n_positions=256)
    >>> sum(p.numel() for p in model.parameters()) < 60_000
    True
"""

from __future__ import annotations

from ..errors import ConfigError
from ..tokenizer import MelodyTokenizer

PRESETS: dict[str, dict[str, int]] = {
    # the three architectures of the original study (~23k-31k parameters there, with its smaller vocabulary)
    "original": {"n_embd": 32, "n_head": 2, "n_layer": 2},
    "deeper-thinner": {"n_embd": 24, "n_head": 3, "n_layer": 3},
    "wider-shallower": {"n_embd": 48, "n_head": 2, "n_layer": 1},
    # stronger models for real use
    "small": {"n_embd": 128, "n_head": 4, "n_layer": 4},
    "base": {"n_embd": 256, "n_head": 8, "n_layer": 6},
}
"""GPT-2 sizes by preset name (`build_model(preset, ...)`, `ModelArguments.preset`)."""


def preset_config(preset: str, tokenizer: MelodyTokenizer, n_positions: int = 512, dropout: float = 0.1,
                  activation_function: str = "gelu"):
    """A `GPT2Config` for `preset`, with vocabulary size and special ids from `tokenizer`.

    `activation_function` defaults to the exact `gelu`: the same function as GPT-2's tanh approximation `gelu_new`
    to within 1e-3, and one fused kernel on CPU instead of four.
    """
    from transformers import GPT2Config

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    if n_positions < 8:
        raise ConfigError(f"n_positions={n_positions} is too small; use at least 8 (256 is usual)")
    return GPT2Config(
        vocab_size=tokenizer.vocab_size,
        n_positions=n_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        tie_word_embeddings=True,
        activation_function=activation_function,
        **PRESETS[preset],
    )


def build_model(preset: str, tokenizer: MelodyTokenizer, n_positions: int = 512, dropout: float = 0.1,
                seed: int | None = None, activation_function: str = "gelu"):
    """A freshly initialised `GPT2LMHeadModel` of a preset (seeded when `seed` is given).

    Examples:
        >>> model = build_model("original", MelodyTokenizer(), n_positions=256, seed=0)
        >>> model.config.n_layer, sum(p.numel() for p in model.parameters())
        (2, 39232)
    """
    import torch
    from transformers import GPT2LMHeadModel

    if seed is not None:
        torch.manual_seed(seed)
    model = GPT2LMHeadModel(preset_config(preset, tokenizer, n_positions, dropout, activation_function))
    model.config.hf_melody_preset = preset
    return model


def num_parameters(model) -> int:
    """Distinct trainable parameters (tied embeddings counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total
