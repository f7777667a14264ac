"""Regenerating bars of a melody with a pipeline (`MelodyPipeline.infill`): the prompt in the infilling format,
exactly the gap's bars from the decoder, the new bars clipped to the gap and spliced between the kept ones.

Examples:
    >>> from hf_melody import MelodyPipeline
    >>> pipe = MelodyPipeline.from_pretrained("original")
    >>> [m] = pipe.infill("tests/fixtures/kinder0_0.mid", bars=(2, 3), seed=0)        # doctest: +SKIP
"""

from __future__ import annotations

from ..errors import ConfigError
from ..generation.configuration import MelodyGenerationConfig
from ..generation.infill import check_bars, infill_ids
from ..generation.prompts import prompt_ids
from .output import GeneratedMelody

FILE_OPTIONS = ("tempo_qpm", "program")
"""Options of an infill call that shape the files (written into them), not the sampling."""


def infill_melodies(pipe, melody, bars, config: MelodyGenerationConfig) -> list[GeneratedMelody]:
    """`MelodyPipeline.infill`: `config.num_return_sequences` versions of `melody` with `bars` regenerated.

    `melody` is a MIDI path, a `symusic.Score`, a `Melody` record or token ids; `bars` is 1-based and inclusive
    (`(5, 6)`, or `5` for one bar). Candidate `i` uses seed `config.seed + i`; the other infill options of `config`
    (temperature, top_k, top_p, key, pitch_range, constrained, ...) go to `hf_melody.generation.decoding.generate_ids`.
    Returns `GeneratedMelody` objects whose `settings` record the bars, the seed and the options given.

    Examples:
        >>> config = MelodyGenerationConfig.from_options({"seed": 0, "key": "G major"}, infill=True)  # doctest: +SKIP
        >>> [new] = infill_melodies(pipe, "tune.mid", (5, 6), config)                               # doctest: +SKIP
    """
    tok = pipe.melody_tokenizer
    body = tok.encode(melody) if hasattr(melody, "to_score") else prompt_ids(tok, melody)
    if not body:
        raise ConfigError("infill needs a melody with at least one bar; give a MIDI file, a Score or token ids")
    head = [tok.bos_token_id] + ([tok.style_token_id(config.style)] if config.style is not None else [])
    ids = head + [i for i in body if i not in (tok.bos_token_id, tok.eos_token_id)]
    n = config.num_return_sequences
    n_bars = sum(1 for t in ids if t == tok.bar_token_id)
    check_bars(bars, n_bars)  # one clear error before any sampling
    seed = config.with_seed().seed
    given = {k: v for k, v in config.to_options().items() if k not in ("num_return_sequences", "seed", "style")}
    results = []
    for i in range(n):
        sampling = {k: v for k, v in given.items() if k not in FILE_OPTIONS}  # tempo, instrument: the files'
        new_ids, (start, stop) = infill_ids(pipe.model, tok, ids, bars, seed=seed + i, **sampling)
        settings = {"model": getattr(pipe, "model_name", pipe.model.name_or_path), "task": "infill",
                    "bars": [start + 1, stop], "seed": seed, "melody_seed": seed + i, "style": config.style, **given}
        results.append(GeneratedMelody.from_ids(tok, new_ids, 0, 0, settings, clip_bars=(start, stop, n_bars)))
    return results
