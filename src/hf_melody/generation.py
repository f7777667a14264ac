"""Generation helpers: musical-length stopping criteria and per-token note/bar counts (BPE aware)."""

from __future__ import annotations

from functools import lru_cache

import torch
from transformers import StoppingCriteria

from .tokenizer import MelodyTokenizer


@lru_cache(maxsize=8)
def _counts(tokenizer_id: int, tokenizer: MelodyTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    pitches = torch.zeros(tokenizer.vocab_size, dtype=torch.long)
    bars = torch.zeros(tokenizer.vocab_size, dtype=torch.long)
    for i in range(tokenizer.vocab_size):
        toks = tokenizer.to_base_tokens([i]) if tokenizer.is_bpe else [tokenizer.miditok[i]]
        pitches[i] = sum(t.startswith("Pitch_") for t in toks)
        bars[i] = sum(t.startswith("Bar_") for t in toks)
    return pitches, bars


def token_counts(tokenizer: MelodyTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Two vocabulary-sized tensors: notes (Pitch tokens) and bars (Bar tokens) each token id stands for."""
    return _counts(id(tokenizer), tokenizer)


class MusicalLengthCriteria(StoppingCriteria):
    """Stops each sequence once it has gone past `max_new_notes` new notes or `max_bars` new bars.

    The sequence is allowed to start the next note or bar (so the last kept note is complete); the pipeline trims
    that extra start when decoding.
    """

    def __init__(self, tokenizer: MelodyTokenizer, prompt_length: int, max_new_notes: int | None = None,
                 max_bars: int | None = None):
        self.pitch_counts, self.bar_counts = token_counts(tokenizer)
        self.prompt_length = prompt_length
        self.max_new_notes = max_new_notes
        self.max_bars = max_bars

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_length:].cpu()
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        if self.max_new_notes is not None:
            done |= self.pitch_counts[new].sum(-1) > self.max_new_notes
        if self.max_bars is not None:
            done |= self.bar_counts[new].sum(-1) > self.max_bars
        return done.to(input_ids.device)
