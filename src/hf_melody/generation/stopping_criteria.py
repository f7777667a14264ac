"""Melody length in notes and bars, counted from token ids: stopping criteria and a minimum-length processor.

These serve generation *without* the grammar (`constrained=False`) and plain `model.generate` calls; the grammar
(`REMIGrammarProcessor`, the fast decoder's tables) enforces the same limits itself. The counting lives on the
grammar (`REMIGrammar.count_tensors`, `REMIGrammar.keep_within`), so every path counts a BPE token's notes alike.

Examples:
    >>> from transformers import StoppingCriteriaList
    >>> from hf_melody.generation.stopping_criteria import MusicalLengthCriteria
    >>> criteria = StoppingCriteriaList([MusicalLengthCriteria(tok, 3, max_new_notes=32)])   # doctest: +SKIP
    >>> model.generate(ids, stopping_criteria=criteria)                                  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor, StoppingCriteria

from ..grammar.remi import REMIGrammar
from ..tokenizer import MelodyTokenizer

__all__ = ["MinLengthProcessor", "MusicalLengthCriteria", "token_counts"]


def token_counts(tokenizer: MelodyTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Two vocabulary-sized tensors: notes (Pitch tokens) and bars (Bar tokens) each token id stands for.

    Examples:
        >>> notes, bars = token_counts(tok)
        >>> int(notes[ids].sum())                     # the notes in `ids`                  # doctest: +SKIP
    """
    return REMIGrammar.for_tokenizer(tokenizer).count_tensors()


class MusicalLengthCriteria(StoppingCriteria):
    """Stops each sequence once it has gone past `max_new_notes` new notes or `max_bars` new bars.

    Used with `constrained=False`; the grammar enforces these limits itself otherwise. The sequence is allowed to
    start the next note or bar (so the last kept note is complete); the pipeline trims that extra start.

    Examples:
        >>> criteria = MusicalLengthCriteria(tok, prompt_length=3, max_new_notes=32)        # doctest: +SKIP
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


class MinLengthProcessor(LogitsProcessor):
    """Masks EOS until `min_new_notes` notes and `min_bars` Bar tokens follow the prompt (for `constrained=False`;
    the grammar processor does this itself, counting bars like `num_bars`). The prompt is the first call's ids.

    Examples:
        >>> procs = LogitsProcessorList([MinLengthProcessor(tok, min_bars=8)])          # doctest: +SKIP
    """

    def __init__(self, tokenizer: MelodyTokenizer, min_new_notes: int | None = None, min_bars: int | None = None):
        self.pitch_counts, self.bar_counts = token_counts(tokenizer)
        self.min_new_notes = min_new_notes or 0
        self.min_bars = min_bars or 0
        self.eos_token_id = tokenizer.eos_token_id
        self.prompt_length: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        new = input_ids[:, self.prompt_length:].cpu()
        early = (self.pitch_counts[new].sum(-1) < self.min_new_notes) | (self.bar_counts[new].sum(-1) < self.min_bars)
        if not bool(early.any()):
            return scores
        scores = scores.clone()
        scores[early.to(scores.device), self.eos_token_id] = float("-inf")
        return scores
