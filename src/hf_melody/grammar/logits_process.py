"""`REMIGrammarProcessor`: the REMI grammar as a transformers logits processor (legal tokens only, length limits,
endings), and the score arithmetic the fast decoder shares with it.

Examples:
    >>> from transformers import LogitsProcessorList
    >>> from hf_melody.grammar.logits_process import REMIGrammarProcessor
    >>> processor = REMIGrammarProcessor(tok, num_bars=8)                                  # doctest: +SKIP
    >>> model.generate(ids, logits_processor=LogitsProcessorList([processor]))            # doctest: +SKIP
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from ..errors import ConfigError
from ..tokenizer import MelodyTokenizer
from .remi import REMIGrammar
from .state import FINISH_HORIZON, GrammarRules, LengthLimits

__all__ = ["REMIGrammarProcessor", "grammar_scores", "mask_early_eos"]


class REMIGrammarProcessor(LogitsProcessor):
    """Masks every token that cannot legally follow in REMI, so each sample decodes without errors.

    The rules (see `hf_melody.grammar.remi`) come from the tokenizer vocabulary, BPE included: a merged token is allowed
    only if its whole expansion is a legal continuation. Each row's state is updated with the tokens added since the
    last call and its mask comes from a cache per state class. It also enforces musical limits: `num_bars` (end
    exactly on that bar line), `max_bars`, `max_new_notes` (EOS forced when reached) and `tonic` (the last note).
    Give `max_length` (prompt + new tokens) so that an ending asked for (`tonic`, `num_bars`) is reached before
    the tokens run out: in the last few tokens only continuations that can still end properly are allowed.

    With `preserve_eos` (default) EOS keeps the probability the model gives it wherever it is legal, and the mass
    of the masked tokens goes to the other legal tokens only: the grammar decides *how* a melody goes on, the
    model still decides *when* it ends. (Plain renormalisation would inflate EOS wherever the model puts much mass
    on illegal tokens; an undertrained model then writes melodies several times shorter.)
    Place it before temperature / top-k / top-p.

    Examples:
        >>> processor = REMIGrammarProcessor(tok, num_bars=4)                               # doctest: +SKIP
        >>> model.generate(ids, do_sample=True, logits_processor=LogitsProcessorList([processor]))  # doctest: +SKIP
    """

    def __init__(self, tokenizer: MelodyTokenizer, num_bars: int | None = None, max_bars: int | None = None,
                 max_new_notes: int | None = None, tonic: int | None = None, allow_style: bool = True,
                 max_length: int | None = None, preserve_eos: bool = True, min_new_notes: int | None = None,
                 min_bars: int | None = None, exact_bars: int | None = None, refeed: bool = False):
        if num_bars is not None and max_bars is not None:
            raise ConfigError("num_bars fixes the length exactly; drop max_bars")
        self.grammar = REMIGrammar.for_tokenizer(tokenizer)
        self.rules = GrammarRules(tonic=tonic, exact_end=num_bars is not None, allow_style=allow_style)
        self.limits = LengthLimits(num_bars=num_bars, max_bars=max_bars, exact_bars=exact_bars,
                                   max_new_notes=max_new_notes, min_bars=min_bars, min_new_notes=min_new_notes)
        self.max_length = max_length
        self.preserve_eos = preserve_eos
        self.refeed = refeed  # beam search reorders rows: rebuild each row's state from its tokens every step
        self.eos_token_id = tokenizer.eos_token_id
        self.states = None
        self.steered = False  # True once the token budget narrowed a mask (the ending was forced to fit)
        self.minimums: list[tuple[int, int]] = []
        self._seen = 0
        self._prompt_length = 0

    def _start(self, row: list[int]):
        g = self.grammar
        s = g.prompt_state(row)
        _, _, min_bar, min_notes = g.length_limits(s, self.limits)
        return s, (min_bar, min_notes)

    def ended_properly(self, sequences: torch.LongTensor) -> list[bool]:
        """After `generate`: whether each row ends with an EOS the rules allow there (exact bar line, tonic).

        False for a row cut by the token limit, or closed by the fallback EOS when no legal ending fit.
        """
        g = self.grammar
        out = []
        for row, s in zip(sequences.tolist(), self.states or [], strict=False):
            body = row[self._seen:]
            while body and body[-1] == g.pad_token_id:
                body.pop()
            if not body or body[-1] != g.eos_token_id:
                out.append(False)
                continue
            state = s.copy()
            g.feed(state, body[:-1])
            out.append(g.can_end(state, self.rules))
        return out

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        g = self.grammar
        if self.states is None or self.refeed:
            if self.states is None:
                self._prompt_length = input_ids.shape[1]
            started = [self._start(row) for row in input_ids[:, :self._prompt_length].tolist()]
            self.states = [s for s, _ in started]
            self.minimums = [m for _, m in started]
            if self.refeed:
                for s, row in zip(self.states, input_ids[:, self._prompt_length:].tolist(), strict=True):
                    g.feed(s, row)
        else:
            for s, row in zip(self.states, input_ids[:, self._seen:].tolist(), strict=True):
                g.feed(s, row)
        self._seen = input_ids.shape[1]
        budget = None if self.max_length is None else self.max_length - input_ids.shape[1]
        masks = torch.stack([g.allowed_mask(s, self.rules, budget) for s in self.states]).to(scores.device)
        if budget is not None and budget <= FINISH_HORIZON and not self.steered:
            self.steered = any(not torch.equal(m, g.allowed_mask(s, self.rules))
                               for m, s in zip(masks, self.states, strict=True))
        early = [i for i, (s, (min_bar, min_notes)) in enumerate(zip(self.states, self.minimums, strict=True))
                 if s.bar < min_bar or s.notes < min_notes]
        if early:
            masks = mask_early_eos(masks, torch.tensor(early), self.eos_token_id)
        return grammar_scores(scores, masks, self.eos_token_id, self.preserve_eos)


def mask_early_eos(masks: torch.Tensor, rows: torch.Tensor, eos: int) -> torch.Tensor:
    """Masks EOS in `rows` (the melody is not long enough yet) unless it is their only legal token."""
    masks = masks.clone()
    keep = masks[rows].sum(-1) == 1
    masks[rows, eos] &= keep
    return masks


def grammar_scores(scores: torch.Tensor, masks: torch.Tensor, eos: int, preserve_eos: bool = True) -> torch.Tensor:
    """Log-probabilities with illegal tokens at -inf (see `REMIGrammarProcessor` for `preserve_eos`)."""
    logp = scores.log_softmax(-1)
    masked = logp.masked_fill(~masks, float("-inf"))
    if not preserve_eos:
        return masked
    others = masks.clone()
    others[:, eos] = False
    rows = masks[:, eos] & others.any(-1)
    if not bool(rows.any()):
        return masked
    # EOS keeps its own log-probability; the other legal tokens share the rest in the model's proportions
    p_eos = logp[:, eos].exp().clamp(max=1 - 1e-6)
    shift = torch.log1p(-p_eos) - torch.logsumexp(logp.masked_fill(~others, float("-inf")), -1)
    kept = (logp + shift[:, None]).masked_fill(~others, float("-inf"))
    kept[:, eos] = logp[:, eos]
    return torch.where(rows[:, None], kept, masked)
