"""Likelihood of real melodies under a model: perplexity, bits per note, both pitch measures, dynamic evaluation.

Examples:
    >>> from hf_melody.evaluation.likelihood import score_melodies
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

from ..data.dataset import melody_style
from ..data.melody import Melody
from ..errors import ConfigError
from ..grammar.remi import REMIGrammar
from .fair_pitch import fair_pitch_notes


@dataclass
class LikelihoodResult:
    """How well a model predicts a set of melodies.

    Attributes:
        token_perplexity: exp(mean negative log-likelihood per scored token); comparable only between models
            sharing a tokenizer.
        bits_per_note: total -log2 likelihood of the melodies (every token after BOS and the style token, EOS
            included) divided by their number of notes (all notes pooled); comparable across tokenizations.
        pitch_bits_per_note: -log2 P(Pitch token | everything before), summed over the notes, divided by the notes;
            None for BPE tokenizers. In REMI the note's own Position/Rest/Bar tokens come before its Pitch, so
            this pitch is predicted knowing when the note starts (see `fair_pitch_bits_per_note`).
        fair_pitch_bits_per_note: -log2 P(pitch | past only) per note, the note's own onset tokens marginalised
            (`hf_melody.evaluation.fair_pitch`): what IDyOM's pitch model predicts, so the measure to compare with it.
            None unless `fair_pitch=True`.
        fair_pitch_explored_mass: mean share of each note's onset-path probability the fair measure explored
            (1.0 = exact; the rest was pruned, see `fair_pitch_logprobs`).
        token_accuracy: share of scored tokens that are the model's most likely next token.
        loss: mean negative log-likelihood per scored token (nats), as the Trainer reports it.
        bits_per_note_melody_mean: the mean over melodies of each melody's own bits per note.
        per_melody: `id`, `num_notes`, `num_tokens`, `bits`, `pitch_bits` of each melody, and per scored token
            `token_bits` and `token_entropy` (bits of the model's next-token distribution), and with `fair_pitch`
            `fair_pitch_notes` (one `FairPitchNote` per note; what `evaluation.analysis` reads).
        window: how melodies longer than the context were scored.
        dynamic: how the model was adapted while scoring (`DynamicEvaluation` as a string), None if not.
        grammar_bits_per_note: bits per note with each step's distribution renormalised over the tokens the REMI
            grammar allows there (what the model + grammar system predicts, as generation samples it; never more
            than `bits_per_note`: the difference is the mass the model puts on impossible tokens). None unless
            `grammar_bits=True`.
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
    fair_pitch_bits_per_note: float | None = None
    fair_pitch_explored_mass: float | None = None
    dynamic: str | None = None
    grammar_bits_per_note: float | None = None
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
    """Ids of the `Pitch_*` tokens of a plain (non-BPE) tokenizer; a `ConfigError` for BPE tokenizers.

    Examples:
        >>> len(pitch_token_ids(MelodyTokenizer()))          # one per pitch of music.PITCH_RANGE
        49
    """
    if tokenizer.is_bpe:
        raise ConfigError("pitch bits per note need a plain REMI tokenizer: with BPE a token can hold several "
                          "notes, so P(pitch) is not a single token's probability; pass pitch_bits=False and use "
                          "bits_per_note, which is comparable across tokenizations")
    return {i for t, i in tokenizer.base_vocab.items() if t.startswith("Pitch_")}


@dataclass(frozen=True)
class DynamicEvaluation:
    """Adapt a copy of the model to each melody while scoring it (IDyOM's short-term model, done by SGD).

    The melody is scored chunk by chunk (a chunk is a bar: it starts at a `Bar` token); after a chunk is scored,
    the copy takes `steps` SGD steps on the melody's tokens scored so far, never on what comes next. Each melody
    starts again from the original weights.

    Examples:
        >>> score_melodies(model, tok, melodies, dynamic=DynamicEvaluation(steps=1, lr=1e-3))   # doctest: +SKIP
    """

    steps: int = 1
    lr: float = 1e-3

    def __post_init__(self):
        if self.steps < 1 or not self.lr > 0:
            raise ConfigError(f"dynamic evaluation with steps={self.steps}, lr={self.lr}; use steps >= 1 and lr > 0")

    def __str__(self) -> str:
        return f"{self.steps} SGD step(s) at lr {self.lr:g} after each bar, on the melody's past tokens only"


def score_melodies(model, tokenizer, melodies: Sequence[Melody], use_style_tokens: bool = True,
                   pitch_bits: bool = True, stride: int | None = None, batch_size: int = 16,
                   device: str | None = None, progress: bool = False, fair_pitch: bool = False,
                   dynamic: DynamicEvaluation | None = None, grammar_bits: bool = False) -> LikelihoodResult:
    """Likelihood of real melodies under a causal LM bundle.

    Each melody is encoded as the model was trained (`BOS [style] ... EOS`); BOS and the style token are given,
    every later token is scored. Melodies longer than the model's context (`n_positions`) are scored with a
    sliding window moving by `stride` tokens (default: half the context); shorter ones in one pass. With
    `fair_pitch=True` the pitch of each note is also scored from the past only (`fair_pitch_bits_per_note`);
    with `dynamic` a copy of the model learns each melody as it is scored (`DynamicEvaluation`); with
    `grammar_bits=True` each token is also scored against the grammar's legal tokens only (`grammar_bits_per_note`).

    Examples:
        >>> model, tok = load_model("folk-base"), load_tokenizer("folk-base")                  # doctest: +SKIP
        >>> r = score_melodies(model, tok, melodies, fair_pitch=True)                         # doctest: +SKIP
        >>> r.bits_per_note, r.pitch_bits_per_note, r.fair_pitch_bits_per_note               # doctest: +SKIP
        (5.02, 2.35, 2.36)
    """
    import numpy as np
    from tqdm.auto import tqdm

    # 1. check the options before any model work: a bad stride or an empty set fails in one line, at once
    if not melodies:
        raise ConfigError("no melodies to score")
    if fair_pitch and not pitch_bits:
        raise ConfigError("fair_pitch=True needs pitch_bits=True (and a plain REMI tokenizer)")
    if grammar_bits and dynamic is not None:
        raise ConfigError("grammar_bits=True scores a fixed model; drop it or dynamic=")
    pitch_ids = pitch_token_ids(tokenizer) if pitch_bits else set()
    n_pos = int(model.config.n_positions)
    stride = stride or max(1, n_pos // 2)
    if not 0 < stride <= n_pos - 1:
        raise ConfigError(f"stride={stride}; use 1..{n_pos - 1} (the context is {n_pos} tokens)")
    device = device or str(next(model.parameters()).device)
    model = model.to(device).eval()
    prefix = 2 if use_style_tokens else 1

    # 2. encode as the model was trained (BOS, the style token, EOS), so the scores are those of its own format
    seqs = [tokenizer.encode(m, bos=True, eos=True, style=melody_style(m) if use_style_tokens else None)
            for m in melodies]

    # 3. log-probability and argmax hit of every scored token (targets prefix..len-1): batched sliding windows when
    #    the model stays fixed; melody by melody when dynamic evaluation updates a copy of it as it goes (the past
    #    only, so each melody must be scored in order)
    if dynamic is None:
        legal = [_legal_masks(tokenizer, ids, prefix) for ids in seqs] if grammar_bits else None
        token_lp, hits, token_h, grammar_lp = _score_windows(model, tokenizer, seqs, prefix, stride, batch_size,
                                                             device, progress, legal)
        fair = [[] for _ in seqs]
        if fair_pitch:
            for k in tqdm(range(len(seqs)), desc="fair pitch", disable=not progress, unit="melody"):
                fair[k] = fair_pitch_notes(model, tokenizer, seqs[k], batch_size=batch_size * 4, device=device)
    else:
        token_lp, hits, token_h, fair, grammar_lp = [], [], [], [], None
        for ids in tqdm(seqs, desc="dynamic scoring", disable=not progress, unit="melody"):
            lp, hit, h, fp = _score_dynamic(model, tokenizer, ids, prefix, dynamic, fair_pitch, batch_size, device)
            token_lp.append(lp)
            hits.append(hit)
            token_h.append(h)
            fair.append(fp)

    # 4. aggregate per melody, then per note over the whole set: bits per *note* (not per token) so that tokenizers
    #    with different tokens per note (BPE, rests) compare fairly
    notes_per_token = REMIGrammar.for_tokenizer(tokenizer).notes_per_token
    per = [_melody_scores(m, ids, prefix, lp, hit, h, fp, pitch_ids, notes_per_token, fair_pitch)
           for m, ids, lp, hit, h, fp in zip(melodies, seqs, token_lp, hits, token_h, fair, strict=True)]
    num_tokens = sum(p["num_tokens"] for p in per)
    num_notes = sum(p["num_notes"] for p in per)
    if num_notes == 0:
        raise ConfigError("the melodies hold no notes")
    loss = float(sum(p["bits"] for p in per) * math.log(2) / num_tokens)
    explored = [e for p in per for e in (p.pop("explored_mass") or [])]
    return LikelihoodResult(
        token_perplexity=math.exp(loss),
        bits_per_note=sum(p["bits"] for p in per) / num_notes,
        pitch_bits_per_note=sum(p["pitch_bits"] for p in per) / num_notes if pitch_ids else None,
        token_accuracy=sum(p.pop("correct") for p in per) / num_tokens,
        loss=loss,
        bits_per_note_melody_mean=float(np.mean([p["bits"] / p["num_notes"] for p in per if p["num_notes"]])),
        num_melodies=len(per), num_notes=num_notes, num_tokens=num_tokens,
        window=f"sliding window of {n_pos} tokens, stride {stride}",
        fair_pitch_bits_per_note=sum(p["fair_pitch_bits"] for p in per) / num_notes if fair_pitch else None,
        fair_pitch_explored_mass=float(np.mean(explored)) if fair_pitch else None,
        dynamic=str(dynamic) if dynamic else None, per_melody=per,
        grammar_bits_per_note=(float(-sum(g.sum() for g in grammar_lp) / math.log(2) / num_notes)
                               if grammar_lp is not None else None))


def _legal_masks(tokenizer, ids: list[int], prefix: int) -> list:
    """The grammar's legal-token mask before each target `prefix..len-1` of `ids` (shared cached tensors: a list of
    references, no copy per token)."""
    from ..grammar.state import GrammarRules

    grammar = REMIGrammar.for_tokenizer(tokenizer)
    rules = GrammarRules(allow_style=False)
    state = grammar.prompt_state(ids[:prefix])
    masks = []
    for target in ids[prefix:]:
        masks.append(grammar.allowed_mask(state, rules))
        grammar.feed(state, [target])
    return masks


def _score_windows(model, tokenizer, seqs: list[list[int]], prefix: int, stride: int, batch_size: int, device: str,
                   progress: bool, legal: list[list] | None = None):
    """`(token log-probs, argmax hits, entropies in bits, log-probs renormalised over `legal` or None)` per melody,
    targets `prefix..len-1`, by batches of sliding windows (longest first)."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    n_pos = int(model.config.n_positions)
    jobs = [(k, begin, end, first) for k, ids in enumerate(seqs)
            for begin, end, first in _windows(len(ids), prefix, n_pos, stride)]
    jobs.sort(key=lambda j: j[2] - j[1], reverse=True)
    token_lp = [np.zeros(len(ids) - prefix) for ids in seqs]
    hits = [np.zeros(len(ids) - prefix) for ids in seqs]
    entropy = [np.zeros(len(ids) - prefix) for ids in seqs]
    renorm = [np.zeros(len(ids) - prefix) for ids in seqs] if legal is not None else None
    with torch.no_grad():
        for s in tqdm(range(0, len(jobs), batch_size), desc="scoring", disable=not progress, unit="batch"):
            batch = jobs[s:s + batch_size]
            masks = None
            if legal is not None:  # row r, column c predicts token begin + c + 1: its target index is that - prefix
                width = max(e - b for _, b, e, _ in batch) - 1
                masks = torch.ones((len(batch), width, tokenizer.vocab_size), dtype=torch.bool)
                for r, (k, begin, end, first) in enumerate(batch):
                    masks[r, first - begin - 1:end - begin - 1] = torch.stack(legal[k][first - prefix:end - prefix])
            lps, best, targets, ent, legal_lps = _forward(model, tokenizer, [seqs[k][b:e] for k, b, e, _ in batch],
                                                          device, masks)
            for r, (k, begin, end, first) in enumerate(batch):
                sl = slice(first - begin - 1, end - begin - 1)
                token_lp[k][first - prefix:end - prefix] = lps[r, sl].numpy()
                hits[k][first - prefix:end - prefix] = (best[r, sl] == targets[r, sl]).numpy()
                entropy[k][first - prefix:end - prefix] = ent[r, sl].numpy()
                if renorm is not None:
                    renorm[k][first - prefix:end - prefix] = legal_lps[r, sl].numpy()
    return token_lp, hits, entropy, renorm


def _melody_scores(melody: Melody, ids: list[int], prefix: int, lp, hit, entropy, fair: list, pitch_ids: set[int],
                   notes_per_token: list[int], fair_pitch: bool) -> dict[str, Any]:
    """One melody's entry of `LikelihoodResult.per_melody` (with `correct` and `explored_mass`, taken out later)."""
    import numpy as np

    targets = ids[prefix:]
    is_pitch = np.array([int(t) in pitch_ids for t in targets], dtype=bool)
    return {"id": melody.id, "num_notes": int(sum(notes_per_token[int(t)] for t in ids)), "num_tokens": len(targets),
            "bits": float(-lp.sum() / math.log(2)), "correct": float(hit.sum()),
            "pitch_bits": float(-lp[is_pitch].sum() / math.log(2)) if pitch_ids else None,
            "fair_pitch_bits": float(-sum(n.logprob for n in fair) / math.log(2)) if fair_pitch else None,
            "explored_mass": [n.explored for n in fair] if fair_pitch else None,
            "token_bits": (-lp / math.log(2)).tolist(), "token_entropy": entropy.tolist(),
            "fair_pitch_notes": list(fair) if fair_pitch else None}


def _forward(model, tokenizer, rows: list[list[int]], device: str, masks=None):
    """`(log P(target), argmax, targets, entropy in bits, log P(target | legal) or None)` for right-padded `rows`,
    each `[batch, width - 1]` on the CPU; `masks` (`[batch, width - 1, vocab]`, True = legal) renormalises."""
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        input_ids[r, :len(row)] = torch.tensor(row)
        mask[r, :len(row)] = 1
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    targets = input_ids[:, 1:]
    entropy = -(logp.exp() * logp).nan_to_num().sum(-1) / math.log(2)
    target_lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    legal_lp = None
    if masks is not None:
        legal_lp = target_lp - torch.logsumexp(logp.masked_fill(~masks, float("-inf")), -1)
    return target_lp, logp.argmax(-1), targets, entropy, legal_lp


def _score_dynamic(model, tokenizer, ids: list[int], prefix: int, dynamic: DynamicEvaluation, fair_pitch: bool,
                   batch_size: int, device: str):
    """Token log-probs, hits, entropies and fair pitch notes of one melody, a copy of `model` adapted bar by bar."""
    import copy

    import numpy as np
    import torch

    n_pos = int(model.config.n_positions)
    bar = tokenizer.base_vocab.get("Bar_None")
    starts = [prefix] + [j for j in range(prefix + 1, len(ids)) if ids[j] == bar]
    # chunks of at most n_pos - 1 targets, so a chunk and its first context token fit one window
    bounds = [(s, min(b, s + n_pos - 1)) for a, b in zip(starts, [*starts[1:], len(ids)], strict=True)
              for s in range(a, b, n_pos - 1)]
    local = copy.deepcopy(model).to(device)
    local.eval()  # no dropout: the adaptation is deterministic
    optimizer = torch.optim.SGD(local.parameters(), lr=dynamic.lr)
    pitch_cols = pitch_token_ids(tokenizer) if fair_pitch else set()
    lp_all, hit_all, fair = np.zeros(len(ids) - prefix), np.zeros(len(ids) - prefix), []
    h_all = np.zeros(len(ids) - prefix)
    for a, b in bounds:
        # score targets a..b-1 with what was learnt from targets before a (windows of at most n_pos tokens)
        w0 = max(0, b - n_pos)
        with torch.no_grad():
            lps, best, targets, ent, _ = _forward(local, tokenizer, [ids[w0:b]], device)
        sl = slice(a - w0 - 1, b - w0 - 1)
        lp_all[a - prefix:b - prefix] = lps[0, sl].numpy()
        hit_all[a - prefix:b - prefix] = (best[0, sl] == targets[0, sl]).numpy()
        h_all[a - prefix:b - prefix] = ent[0, sl].numpy()
        if fair_pitch:
            positions = [j for j in range(a, b) if ids[j] in pitch_cols]
            if positions:
                fair += fair_pitch_notes(local, tokenizer, ids[:b], positions, batch_size=batch_size * 4,
                                         device=device)
        # then learn from everything scored so far (never from tokens at or after b)
        window = torch.tensor([ids[max(0, b - n_pos):b]], device=device)
        for _ in range(dynamic.steps):
            optimizer.zero_grad()
            local(input_ids=window, labels=window).loss.backward()
            optimizer.step()
    return lp_all, hit_all, h_all, fair


def melodies_from_notes(notes: Sequence[Sequence[Sequence[int]]],
                        time_signatures: Sequence[Sequence[Sequence[int]]] | None = None,
                        styles: Sequence[str] | str | None = None, ids: Sequence[str] | None = None) -> list[Melody]:
    """`Melody` records from plain note lists (what the `evaluate` metrics receive).

    Examples:
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
    """`(notes, time_signatures)` of a decoded `symusic.Score` (`music.TPQ` = 480 ticks per quarter).

    Examples:
        >>> notes, tss = notes_of_score(tok.decode(ids))                                   # doctest: +SKIP
    """
    notes = sorted([n.time, n.duration, n.pitch] for t in score.tracks for n in t.notes)
    tss = [[t.time, t.numerator, t.denominator] for t in score.time_signatures] or [[0, 4, 4]]
    return notes, tss
