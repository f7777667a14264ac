"""Likelihood of real melodies under a model: token perplexity, bits per note, pitch bits per note (sliding window).

Example:
    >>> from hf_melody.likelihood import score_melodies
    >>> from hf_melody import load_melodies, load_model, load_tokenizer
    >>> melodies, _ = load_melodies("essen/kinder0")                                        # doctest: +SKIP
    >>> score_melodies(load_model("folk-base"), load_tokenizer("folk-base"), melodies).bits_per_note  # doctest: +SKIP
    5.1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .corpora import Melody
from .errors import ConfigError


@dataclass
class LikelihoodResult:
    """How well a model predicts a set of melodies.

    Attributes:
        token_perplexity: exp(mean negative log-likelihood per scored token); comparable only between models
            sharing a tokenizer.
        bits_per_note: total -log2 likelihood of the melodies (every token after BOS and the style token, EOS
            included) divided by their number of notes (all notes pooled); comparable across tokenizations.
        pitch_bits_per_note: -log2 P(Pitch token | everything before), summed over the notes, divided by the notes;
            None for BPE tokenizers.
        token_accuracy: share of scored tokens that are the model's most likely next token.
        loss: mean negative log-likelihood per scored token (nats), as the Trainer reports it.
        bits_per_note_melody_mean: the mean over melodies of each melody's own bits per note.
        per_melody: `id`, `num_notes`, `num_tokens`, `bits`, `pitch_bits` of each melody.
        window: how melodies longer than the context were scored.
    """

    token_perplexity: float
    bits_per_note: float
    pitch_bits_per_note: float | None
    token_accuracy: float
    loss: float
    bits_per_note_melody_mean: float
    num_melodies: int
    num_notes: int
    num_tokens: int
    window: str
    per_melody: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, per_melody: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not per_melody:
            d.pop("per_melody")
        return d


def _windows(length: int, first_target: int, n_positions: int, stride: int) -> list[tuple[int, int, int]]:
    """`(begin, end, first_target)` windows covering targets `first_target..length-1` once each.

    Sliding window (as in the transformers perplexity guide): windows of `n_positions` tokens moving by
    `stride`; each window scores only the targets the previous ones did not, so every token after the first
    window is predicted from at least `n_positions - stride` tokens of context.
    """
    if length <= n_positions:
        return [(0, length, first_target)]
    out, begin, prev_end = [], 0, first_target
    while True:
        end = min(begin + n_positions, length)
        out.append((begin, end, max(prev_end, begin + 1)))
        if end == length:
            return out
        prev_end = end
        begin += stride


def pitch_token_ids(tokenizer) -> set[int]:
    """Ids of the `Pitch_*` tokens of a plain (non-BPE) tokenizer; a `ConfigError` for BPE tokenizers."""
    if tokenizer.is_bpe:
        raise ConfigError("pitch bits per note need a plain REMI tokenizer: with BPE a token can hold several "
                          "notes, so P(pitch) is not a single token's probability; pass pitch_bits=False and use "
                          "bits_per_note, which is comparable across tokenizations")
    return {i for t, i in tokenizer.base_vocab.items() if t.startswith("Pitch_")}


def score_melodies(model, tokenizer, melodies: Sequence[Melody], use_style_tokens: bool = True,
                   pitch_bits: bool = True, stride: int | None = None, batch_size: int = 16,
                   device: str | None = None, progress: bool = False) -> LikelihoodResult:
    """Likelihood of real melodies under a causal LM bundle.

    Each melody is encoded as the model was trained (`BOS [style] ... EOS`); BOS and the style token are given,
    every later token is scored. Melodies longer than the model's context (`n_positions`) are scored with a
    sliding window moving by `stride` tokens (default: half the context); shorter ones in one pass.

    Example:
        >>> r = score_melodies(load_model("folk-base"), load_tokenizer("folk-base"), melodies)   # doctest: +SKIP
        >>> r.bits_per_note, r.pitch_bits_per_note                                            # doctest: +SKIP
        (5.02, 2.35)
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from .data import melody_style

    if not melodies:
        raise ConfigError("no melodies to score")
    pitch_ids = pitch_token_ids(tokenizer) if pitch_bits else set()
    n_pos = int(model.config.n_positions)
    stride = stride or max(1, n_pos // 2)
    if not 0 < stride <= n_pos - 1:
        raise ConfigError(f"stride={stride}; use 1..{n_pos - 1} (the context is {n_pos} tokens)")
    device = device or str(next(model.parameters()).device)
    model = model.to(device).eval()

    # 1. encode and cut into windows
    seqs, jobs = [], []
    for k, m in enumerate(melodies):
        ids = tokenizer.encode(m, bos=True, eos=True, style=melody_style(m) if use_style_tokens else None)
        seqs.append(ids)
        for begin, end, first in _windows(len(ids), 2 if use_style_tokens else 1, n_pos, stride):
            jobs.append((k, begin, end, first))
    jobs.sort(key=lambda j: j[2] - j[1], reverse=True)

    # 2. run the model over batches of windows
    nats = np.zeros(len(seqs))
    pitch_nats = np.zeros(len(seqs))
    correct = np.zeros(len(seqs))
    with torch.no_grad():
        for s in tqdm(range(0, len(jobs), batch_size), desc="scoring", disable=not progress, unit="batch"):
            batch = jobs[s:s + batch_size]
            width = max(end - begin for _, begin, end, _ in batch)
            input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (k, begin, end, _) in enumerate(batch):
                input_ids[r, :end - begin] = torch.tensor(seqs[k][begin:end])
                mask[r, :end - begin] = 1
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            targets = input_ids[:, 1:]
            token_lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            best = logp.argmax(-1)
            for r, (k, begin, end, first) in enumerate(batch):
                sl = slice(first - begin - 1, end - begin - 1)
                lp, tg = token_lp[r, sl], targets[r, sl]
                nats[k] -= float(lp.sum())
                correct[k] += float((best[r, sl] == tg).sum())
                if pitch_ids:
                    is_pitch = torch.tensor([int(t) in pitch_ids for t in tg], dtype=torch.bool)
                    pitch_nats[k] -= float(lp[is_pitch].sum())

    # 3. aggregate
    prefix = 2 if use_style_tokens else 1
    per = []
    for m, ids, nat, pnat in zip(melodies, seqs, nats, pitch_nats, strict=True):
        n_notes = (sum(int(t) in pitch_ids for t in ids) if pitch_ids
                   else sum(t.startswith("Pitch_") for t in tokenizer.to_base_tokens(ids)))
        per.append({"id": m.id, "num_notes": int(n_notes), "num_tokens": len(ids) - prefix,
                    "bits": float(nat / math.log(2)), "pitch_bits": float(pnat / math.log(2)) if pitch_ids else None})
    num_tokens = sum(p["num_tokens"] for p in per)
    num_notes = sum(p["num_notes"] for p in per)
    if num_notes == 0:
        raise ConfigError("the melodies hold no notes")
    loss = float(nats.sum() / num_tokens)
    return LikelihoodResult(
        token_perplexity=math.exp(loss),
        bits_per_note=sum(p["bits"] for p in per) / num_notes,
        pitch_bits_per_note=sum(p["pitch_bits"] for p in per) / num_notes if pitch_ids else None,
        token_accuracy=float(correct.sum() / num_tokens),
        loss=loss,
        bits_per_note_melody_mean=float(np.mean([p["bits"] / p["num_notes"] for p in per if p["num_notes"]])),
        num_melodies=len(per), num_notes=num_notes, num_tokens=num_tokens,
        window=f"sliding window of {n_pos} tokens, stride {stride}", per_melody=per)


def melodies_from_notes(notes: Sequence[Sequence[Sequence[int]]],
                        time_signatures: Sequence[Sequence[Sequence[int]]] | None = None,
                        styles: Sequence[str] | str | None = None, ids: Sequence[str] | None = None) -> list[Melody]:
    """`Melody` records from plain note lists (what the `evaluate` metrics receive).

    Example:
        >>> melodies_from_notes([[[0, 480, 60]]], styles="german-folk")[0].style
        'german-folk'
    """
    n = len(notes)
    tss = time_signatures or [[[0, 4, 4]]] * n
    styles = [styles] * n if styles is None or isinstance(styles, str) else list(styles)
    if len(tss) != n or len(styles) != n:
        raise ConfigError(f"{n} melodies but {len(tss)} time-signature lists and {len(styles)} styles")
    return [Melody(ids[i] if ids else f"melody/{i}", "input", [list(map(int, x)) for x in notes[i]],
                   [list(map(int, t)) for t in tss[i]] or [[0, 4, 4]], style=styles[i] or "")
            for i in range(n)]


def notes_of_score(score) -> tuple[list[list[int]], list[list[int]]]:
    """`(notes, time_signatures)` of a decoded `symusic.Score` (480 ticks per quarter)."""
    notes = sorted([n.time, n.duration, n.pitch] for t in score.tracks for n in t.notes)
    tss = [[t.time, t.numerator, t.denominator] for t in score.time_signatures] or [[0, 4, 4]]
    return notes, tss
