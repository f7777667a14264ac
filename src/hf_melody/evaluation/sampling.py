"""Metrics of sampled melodies: continuation BLEU against the real continuations, self-BLEU, music statistics
against the real melodies and novelty against the training corpus. Every sample is drawn through the seeded
decoding path of the pipeline (`hf_melody.generation.decoding`), so the numbers do not depend on torch's global RNG.

Examples:
    >>> from hf_melody.evaluation.sampling import sample_metrics
    >>> sample_metrics(model, tok, melodies, num_samples=16, seed=0)["self_bleu"]           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..data.dataset import melody_style
from ..data.melody import Melody
from ..generation.decoding import generate_ids
from ..grammar.remi import REMIGrammar
from ..pipelines.melody_generation import MelodyPipeline
from .likelihood import notes_of_score
from .similarity import corpus_bleu, novelty, self_bleu
from .statistics import compare_sets


def continuation(model, tokenizer, prompt: list[int], max_new_notes: int, seed: int) -> list[int]:
    """New ids continuing `prompt` for at most `max_new_notes` notes, sampled at temperature 1 without truncation
    or grammar (the model's own distribution), reproducibly from `seed`; cut at EOS and before the note past
    `max_new_notes`. Plain REMI tokenizers only (one base token per id). The prompt and the continuation fit the
    model's context.

    Examples:
        >>> new = continuation(model, tok, ids[:cut], max_new_notes=12, seed=0)                 # doctest: +SKIP
    """
    room = int(model.config.n_positions) - len(prompt)
    new = generate_ids(model, tokenizer, prompt, seed=seed, temperature=1.0, constrained=False,
                       max_new_tokens=room)
    return new[:REMIGrammar.for_tokenizer(tokenizer).keep_within(new, max_notes=max_new_notes)]


def _continuations(model, tokenizer, melodies: Sequence[Melody], prompt_bars: int, use_style_tokens: bool, seed: int,
                   progress: bool) -> tuple[list[list[str]], list[list[str]]]:
    """`(generated, real)` continuations as base REMI tokens: melody k's first `prompt_bars` bars continued by
    `continuation` (seed `seed + k`) for as many notes as it really has; melodies too short (or whose prompt does
    not fit the context) are left out."""
    from tqdm.auto import tqdm

    n_pos = int(model.config.n_positions)
    grammar = REMIGrammar.for_tokenizer(tokenizer)
    preds, refs = [], []
    for k, m in enumerate(tqdm(melodies, desc="continuations", disable=not progress)):
        ids = tokenizer.encode(m, bos=True, eos=True, style=melody_style(m) if use_style_tokens else None)
        bar_pos = [j for j, i in enumerate(ids) if grammar.bars_per_token[i]]
        if len(bar_pos) <= prompt_bars + 1 or bar_pos[prompt_bars] >= n_pos - 8:
            continue
        cut = bar_pos[prompt_bars]
        ref_notes = sum(grammar.notes_per_token[i] for i in ids[cut:])
        gen = continuation(model, tokenizer, ids[:cut], ref_notes, seed + k)
        preds.append(tokenizer.to_base_tokens(gen))
        refs.append(tokenizer.to_base_tokens(ids[cut:-1]))
    return preds, refs


def sample_metrics(model, tokenizer, melodies: Sequence[Melody], num_samples: int = 32, prompt_bars: int = 4,
                   use_style_tokens: bool = True, training_notes: Sequence | None = None, seed: int = 0,
                   progress: bool = False) -> dict[str, Any]:
    """Metrics of sampled melodies: continuations from the model's raw distribution, unconditional samples as users
    get them.

    - `continuation_bleu`: for up to `num_samples` melodies, the first `prompt_bars` bars are the prompt; the
      model continues for as many notes as the real continuation has (`continuation`: melody k seeded with
      `seed + k`); corpus BLEU over base REMI tokens (plain REMI tokenizers only: BPE ids cannot be cut at a
      bar line).
    - `self_bleu` and `music_statistics` (`compare_sets` against `melodies`) of `num_samples` unconditional
      samples from `MelodyPipeline` with its defaults (BOS + style token, grammar on, whole tunes, the bundle's
      `generation_config` temperature: 0.8 for folk-base); `sample_temperature` records it.
    - `novelty` of those samples against `training_notes`, when given.

    Examples:
        >>> sample_metrics(model, tok, melodies, num_samples=16)["continuation_bleu"]["bleu"]   # doctest: +SKIP
        0.21
    """
    model.eval()
    # BPE ids cannot be cut at a bar line, so continuation BLEU is only measured for plain REMI tokenizers
    prompts = [] if tokenizer.is_bpe else melodies[:num_samples]
    preds, refs = _continuations(model, tokenizer, prompts, prompt_bars, use_style_tokens, seed, progress)
    out: dict[str, Any] = {"num_prompts": len(preds), "prompt_bars": prompt_bars}
    out["continuation_bleu"] = corpus_bleu(preds, refs) if preds else None

    # unconditional samples go through the pipeline, as users get them: grammar on, whole tunes that end by themselves
    samples, sample_ts, sample_tokens, temperatures = [], [], [], set()
    style = melody_style(melodies[0]) if use_style_tokens else None
    if num_samples:
        pipe = MelodyPipeline(model=model, melody_tokenizer=tokenizer)
        for melody in pipe(num_return_sequences=num_samples, seed=seed + 10_000, style=style):
            temperatures.add(melody.settings.get("temperature"))
            notes, tss = notes_of_score(melody.score)
            if notes:
                samples.append(notes)
                sample_ts.append(tss)
                sample_tokens.append(tokenizer.to_base_tokens(melody.token_ids))
    out["num_samples"] = len(samples)
    out["sample_temperature"] = temperatures.pop() if len(temperatures) == 1 else None
    out["self_bleu"] = self_bleu(sample_tokens) if len(sample_tokens) > 1 else None
    if samples:
        stats = compare_sets(samples, [m.notes for m in melodies], sample_ts, [m.time_signatures for m in melodies])
        stats.pop("per_melody")
        out["music_statistics"] = stats
        if training_notes is not None:
            nov = novelty(samples, training_notes, sample_ts)
            out["novelty"] = {k: nov[k] for k in ("copy_rate", "mean_longest_shared", "max_longest_shared")}
    return out
