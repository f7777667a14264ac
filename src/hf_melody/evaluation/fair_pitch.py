"""Pitch bits per note from the past only: the note's own onset tokens (Bar/TimeSig/Position/Rest) marginalised.

In REMI a note is `[Bar TimeSig] [Rest ...] Position Pitch Duration`: the tokens that place the note in time come
before its `Pitch`. Scoring `P(Pitch | everything before)` therefore tells the model *when* the note starts
before it guesses *which* pitch it is, which IDyOM's pitch model is never told. The fair measure sums over
the onset paths the model could take from the end of the previous note:

    P(pitch | past) = sum over onset paths o of P(o | past) * P(pitch | past, o)  /  P(a note follows | past)

Examples:
    >>> from hf_melody import load_melodies, load_model, load_tokenizer
    >>> from hf_melody.evaluation.fair_pitch import fair_pitch_logprobs
    >>> model, tok = load_model("folk-base"), load_tokenizer("folk-base")                  # doctest: +SKIP
    >>> melody = load_melodies("essen/kinder0")[0][0]                                     # doctest: +SKIP
    >>> ids = tok.encode(melody, bos=True, eos=True, style="german-folk")                 # doctest: +SKIP
    >>> [round(lp, 2) for lp, _ in fair_pitch_logprobs(model, tok, ids)][:3]               # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..music import tokenizer_pitch_range

ONSET_TOKEN_TYPES: tuple[str, ...] = ("Bar", "TimeSig", "Position", "Rest")
"""Token types that place a note in time; they sit between the previous note's Duration and the note's Pitch."""


def onset_token_ids(tokenizer) -> list[int]:
    """Ids of the `Bar`, `TimeSig_*`, `Position_*` and `Rest_*` tokens of a plain (non-BPE) tokenizer."""
    if tokenizer.is_bpe:
        raise ConfigError("the fair pitch measure needs a plain REMI tokenizer (one token per onset step); "
                          "pass fair_pitch=False for BPE tokenizers")
    return sorted(i for t, i in tokenizer.base_vocab.items() if t.split("_")[0] in ONSET_TOKEN_TYPES)


def onset_starts(ids: Sequence[int], pitch_positions: Sequence[int], onset_ids: set[int]) -> list[int]:
    """For each Pitch position `j`, the index where its run of onset tokens begins (`j` when there is none)."""
    starts = []
    for j in pitch_positions:
        s = j
        while s > 0 and int(ids[s - 1]) in onset_ids:
            s -= 1
        starts.append(s)
    return starts


def fair_pitch_logprobs(model, tokenizer, ids: Sequence[int], pitch_positions: Sequence[int] | None = None,
                        min_path_prob: float = 1e-3, max_onset_tokens: int = 6, batch_size: int = 64,
                        device: str | None = None) -> list[tuple[float, float]]:
    """`(log P(pitch | past), explored mass)` of each note of one token sequence, onset tokens marginalised.

    For the note whose `Pitch` sits at index `j`, the past is `ids[:s]`, where `s` is the start of the run of
    onset tokens right before `j` (the end of the previous note). From there the onset paths form a tree: each
    node is a path of onset tokens `o`; one forward pass gives `P(next | past, o)`, whose `Pitch_*` entries add
    `P(o | past) * P(pitch | past, o)` to the pitch marginal, whose onset entries open child nodes, and whose
    remaining entries (EOS, Duration, ...) are mass on "no note follows". The tree is expanded level by level,
    every node of every note of the sequence batched into one forward pass per level.

    What is approximated: paths whose probability `P(o | past)` falls below `min_path_prob`, or longer than
    `max_onset_tokens` tokens, are not expanded. The pitch marginal is normalised over the paths that were
    expanded, i.e. the pruned mass is assumed to distribute over pitches like the explored mass. The second
    value of each pair is the explored mass (pitch + no-note mass found, 1.0 when nothing was pruned) so the
    approximation can be reported. With `min_path_prob=0` and a depth bound the computation is exact for onset
    paths up to that length. Contexts longer than the model's window keep their last
    `n_positions - max_onset_tokens` tokens.

    Examples:
        >>> pairs = fair_pitch_logprobs(model, tok, ids)                                  # doctest: +SKIP
        >>> -sum(lp for lp, _ in pairs) / len(pairs) / math.log(2)   # fair pitch bits per note  # doctest: +SKIP
    """
    return [(n.logprob, n.explored) for n in fair_pitch_notes(model, tokenizer, ids, pitch_positions, min_path_prob,
                                                              max_onset_tokens, batch_size, device)]


@dataclass(frozen=True)
class FairPitchNote:
    """One note's fair pitch prediction (`fair_pitch_notes`).

    Attributes:
        logprob: log P(pitch | past) in nats, the note's onset marginalised.
        explored: the explored share of the onset paths' mass (1.0 = exact).
        entropy: entropy in bits of the pitch distribution `P(. | past)` the logprob was taken from.
        onset_entropy: entropy in bits of the distribution over the onset paths that lead to this note (each path
            of Bar/TimeSig/Position/Rest tokens ending at a pitch counts as one outcome, every way of not placing a
            note as another), over the explored paths.
    """

    logprob: float
    explored: float
    entropy: float
    onset_entropy: float


def fair_pitch_notes(model, tokenizer, ids: Sequence[int], pitch_positions: Sequence[int] | None = None,
                     min_path_prob: float = 1e-3, max_onset_tokens: int = 6, batch_size: int = 64,
                     device: str | None = None) -> list[FairPitchNote]:
    """`fair_pitch_logprobs` with each note's pitch entropy and onset entropy too (one `FairPitchNote` per note).

    Examples:
        >>> [round(n.entropy, 2) for n in fair_pitch_notes(model, tok, ids)][:3]            # doctest: +SKIP
    """
    ids = [int(i) for i in ids]
    pitch_col = {v: c for c, v in enumerate(_pitch_vocab(tokenizer))}
    if pitch_positions is None:
        pitch_positions = [j for j, t in enumerate(ids) if t in pitch_col]
    if not pitch_positions:
        return []
    starts = onset_starts(ids, pitch_positions, set(onset_token_ids(tokenizer)))
    log_marginal, explored, onset_h = _marginals(model, tokenizer, [ids[:s] for s in starts], min_path_prob,
                                                 max_onset_tokens, batch_size, device, shared=ids[:max(starts)],
                                                 onset_entropy=True)
    p = log_marginal.exp()
    entropy = (-(p * log_marginal).nan_to_num().sum(-1) / math.log(2)).tolist()
    return [FairPitchNote(float(log_marginal[k, pitch_col[ids[j]]]), explored[k], entropy[k], onset_h[k])
            for k, j in enumerate(pitch_positions)]


def _pitch_vocab(tokenizer) -> list[int]:
    """Ids of the `Pitch_*` tokens in ascending MIDI pitch."""
    return [i for _, i in sorted((int(t.split("_")[1]), i) for t, i in tokenizer.base_vocab.items()
                                 if t.startswith("Pitch_"))]


def _marginals(model, tokenizer, contexts: list[list[int]], min_path_prob: float, max_onset_tokens: int,
               batch_size: int, device: str | None, shared: list[int] | None = None, onset_entropy: bool = False):
    """`(log P(pitch | context) [contexts x pitches], explored mass per context)` by the tree of onset paths (with
    `onset_entropy=True` a third value: the entropy in bits of each context's onset-path distribution).

    When every context is a prefix of `shared` (the notes of one melody) and it fits the window, one forward pass
    over `shared` gives every context's keys and values, and each node then runs only its own onset path on top
    of them (a KV cache); otherwise each node re-runs its whole context.
    """
    import torch

    if not 0.0 <= min_path_prob < 1.0 or max_onset_tokens < 1:
        raise ConfigError(f"min_path_prob={min_path_prob}, max_onset_tokens={max_onset_tokens}; use "
                          "0 <= min_path_prob < 1 and max_onset_tokens >= 1")
    onset = onset_token_ids(tokenizer)
    pitch_vocab = _pitch_vocab(tokenizer)
    n_pos = int(model.config.n_positions)
    keep = n_pos - max_onset_tokens
    if keep < 1:
        raise ConfigError(f"max_onset_tokens={max_onset_tokens} leaves no context in a {n_pos}-token window")
    if any(not c for c in contexts):
        raise ConfigError("a note has no past to predict from; encode melodies with bos=True")
    contexts = [c[-keep:] for c in contexts]
    device = device or str(next(model.parameters()).device)
    if shared is not None and (len(shared) > keep or any(c != shared[:len(c)] for c in contexts)):
        shared = None
    step = _cached_step(model, shared, device) if shared else _plain_step(model, tokenizer.pad_token_id, device)

    onset_t = torch.tensor(onset)
    pitch_t = torch.tensor(pitch_vocab)
    other = torch.ones(int(model.config.vocab_size), dtype=torch.bool)
    other[onset_t] = False
    other[pitch_t] = False
    log_min = math.log(min_path_prob) if min_path_prob > 0 else -math.inf
    pitch_mass = torch.full((len(contexts), len(pitch_vocab)), -math.inf, dtype=torch.float64)
    explored = [0.0] * len(contexts)
    onset_h = [0.0] * len(contexts)  # entropy (nats) of the path distribution, by the chain rule over the tree
    frontier: list[tuple[int, tuple[int, ...], float]] = [(k, (), 0.0) for k in range(len(contexts))]
    depth = 0
    with torch.no_grad():
        while frontier:
            children = []
            frontier.sort(key=lambda node: len(contexts[node[0]]))  # similar lengths share a batch: less padding
            for b in range(0, len(frontier), batch_size):
                batch = frontier[b:b + batch_size]
                logp = step([contexts[k] for k, _, _ in batch], [list(path) for _, path, _ in batch])
                for r, (k, path, lp_path) in enumerate(batch):
                    row = logp[r] + lp_path
                    pitch_mass[k] = torch.logaddexp(pitch_mass[k], row[pitch_t])
                    explored[k] += float(row[pitch_t].exp().sum() + row[other].exp().sum())
                    # this node's step: each onset token, "a pitch follows" (one outcome) and each other token
                    step_lp = logp[r]
                    outcomes = torch.cat([step_lp[onset_t], step_lp[other], step_lp[pitch_t].logsumexp(0, True)])
                    onset_h[k] -= math.exp(lp_path) * float((outcomes.exp() * outcomes).nan_to_num().sum())
                    if depth < max_onset_tokens:
                        child_lp = row[onset_t]
                        for c in torch.nonzero(child_lp >= log_min).flatten().tolist():
                            children.append((k, (*path, onset[c]), float(child_lp[c])))
            frontier, depth = children, depth + 1
    log_marginal = pitch_mass - torch.logsumexp(pitch_mass, dim=-1, keepdim=True)
    if not onset_entropy:
        return log_marginal, explored
    return log_marginal, explored, [h / max(e, 1e-12) / math.log(2) for h, e in zip(onset_h, explored, strict=True)]


def _plain_step(model, pad_id: int, device: str):
    """`step(contexts, paths) -> log P(next | context + path)` (rows on the CPU, float64): one full forward pass."""
    import torch

    def step(contexts: list[list[int]], paths: list[list[int]]):
        seqs = [c + p for c, p in zip(contexts, paths, strict=True)]
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            input_ids[r, :len(s)] = torch.tensor(s)
            mask[r, :len(s)] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        last = torch.tensor([len(s) - 1 for s in seqs], device=logits.device)
        return torch.log_softmax(logits[torch.arange(len(seqs), device=logits.device), last].double(), -1).cpu()

    return step


def _cached_step(model, shared: list[int], device: str):
    """Like `_plain_step` for contexts that are prefixes of `shared`: their keys/values come from one pass."""
    import torch
    from transformers import DynamicCache

    out = model(input_ids=torch.tensor([shared], device=device), use_cache=True)
    cache = getattr(out, "cache", None) or out.past_key_values
    layers = [(layer.keys, layer.values) for layer in cache.layers]
    root = torch.log_softmax(out.logits[0].double(), -1).cpu()  # log P(next | shared[:i + 1]) for every i

    def step(contexts: list[list[int]], paths: list[list[int]]):
        lengths = [len(c) for c in contexts]
        depth = len(paths[0])
        if depth == 0:
            return root[[n - 1 for n in lengths]]
        rows, width = len(paths), max(lengths)
        past = DynamicCache([(k[:, :, :width].expand(rows, -1, -1, -1), v[:, :, :width].expand(rows, -1, -1, -1))
                             for k, v in layers])
        mask = torch.zeros((rows, width + depth), dtype=torch.long)
        for r, n in enumerate(lengths):  # each row sees its own context (a prefix of `shared`), then its path
            mask[r, :n] = 1
        mask[:, width:] = 1
        positions = torch.tensor(lengths).unsqueeze(1) + torch.arange(depth)
        logits = model(input_ids=torch.tensor(paths, device=device), cache=past, attention_mask=mask.to(device),
                       position_ids=positions.to(device)).logits
        return torch.log_softmax(logits[:, -1].double(), -1).cpu()

    return step


def pitch_marginal(model, tokenizer, context: Sequence[int], min_path_prob: float = 1e-3,
                   max_onset_tokens: int = 6, batch_size: int = 64, device: str | None = None) -> dict[int, float]:
    """P(pitch | context) over every MIDI pitch of the vocabulary, the next note's onset tokens marginalised.

    `context` ends where the next note's onset tokens begin (after BOS and the style token, or after a Duration).
    The values sum to 1 (see `fair_pitch_logprobs` for what is approximated).

    Examples:
        >>> dist = pitch_marginal(model, tok, tok.encode(melody, bos=True, style="german-folk"))  # doctest: +SKIP
        >>> max(dist, key=dist.get)                                                           # doctest: +SKIP
        67
    """
    lo, hi = tokenizer_pitch_range(tokenizer)
    pitches = range(lo, hi + 1)
    log_marginal, _ = _marginals(model, tokenizer, [[int(i) for i in context]], min_path_prob, max_onset_tokens,
                                 batch_size, device)
    return dict(zip(pitches, log_marginal[0].exp().tolist(), strict=True))
