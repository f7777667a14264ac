"""`MelodyPipeline`: sample or continue melodies and get MIDI, audio and a piano roll (task `melody-generation`).

Example:
    >>> from hf_melody import MelodyPipeline
    >>> pipe = MelodyPipeline.from_pretrained("folk-base")
    >>> melodies = pipe(num_return_sequences=2, max_new_notes=32, seed=0)
    >>> melodies[0].save_midi("out/melody.mid")                       # doctest: +SKIP
    >>> pipe(key="D minor", pitch_range=(60, 81), num_bars=8, end_on_tonic=True, seed=1)   # doctest: +SKIP
    >>> for note in pipe.stream(seed=2, tempo_qpm=100):                  # doctest: +SKIP
    ...     print(note.pitch, note.onset_seconds)

    >>> import transformers, hf_melody
    >>> pipe = transformers.pipeline("melody-generation", model="path/to/bundle")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, LogitsProcessorList, Pipeline, StoppingCriteriaList
from transformers.pipelines import PIPELINE_REGISTRY

from .decoding import MelodyDecoder, generate_ids
from .errors import ConfigError, HFMelodyError, MidiReadError, ModelLoadError
from .generation import MelodyConstraints, melody_logits_processors
from .generation_options import DEFAULT_MAX_BARS, DEFAULT_MIN_BARS, check_generation_options
from .grammar import LengthLimits, REMIGrammar
from .hub import CHECKPOINTS_DIR, DEFAULT_MODEL, bundled_checkpoints, bundled_name, load_model, load_tokenizer
from .lengths import MusicalLengthCriteria
from .output import GeneratedMelody
from .render import with_metadata
from .streaming import NoteStreamer, StreamedNote
from .tokenizer import STYLES, MelodyTokenizer

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("melody", "score", "ids", "midi")


def _is_token_ids(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return x.dim() == 1
    return isinstance(x, list | tuple) and len(x) > 0 and all(isinstance(i, int) for i in x)


class MelodyPipeline(Pipeline):
    """Generate melodies with a GPT-2 melody model.

    Inputs (the first argument): nothing for unconditional generation; a prompt to continue, given as a MIDI
    path, a `symusic.Score` or a list of token ids; or a list of prompts (a batch). The output of each melody starts
    with its prompt.

    Example:
        >>> pipe = MelodyPipeline.from_pretrained("folk-base")
        >>> [m] = pipe(seed=0, max_new_notes=48)
        >>> [m] = pipe("theme.mid", max_bars=8, seed=1)             # doctest: +SKIP
        >>> m.save_midi("out.mid"); m.save_wav("out.wav"); m.save_piano_roll("out.png")   # doctest: +SKIP
    """

    _load_tokenizer = False
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, model, melody_tokenizer: MelodyTokenizer | None = None, **kwargs):
        kwargs.setdefault("task", "melody-generation")
        if melody_tokenizer is None:
            source = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", "")
            melody_tokenizer = load_tokenizer(source)
        if melody_tokenizer.vocab_size != model.config.vocab_size:
            raise ModelLoadError(f"the tokenizer has {melody_tokenizer.vocab_size} tokens but the model expects "
                                 f"{model.config.vocab_size}; miditok.json does not belong to this model")
        self.melody_tokenizer = melody_tokenizer  # before super().__init__, which validates default options
        super().__init__(model=model, **kwargs)
        self.model.eval()
        self.model_name = bundled_name(getattr(model, "name_or_path", "")) or getattr(model, "name_or_path", "")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = DEFAULT_MODEL, device: int | str | None = None,
                        allow_pickle: bool = False, revision: str | None = None, token: str | bool | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        **kwargs) -> MelodyPipeline:
        """Load a bundle by bundled name (`folk-base`, `original`, ...), local folder or Hub id (HF cache).

        `revision`, `token`, `cache_dir` and `local_files_only` mean what they mean in transformers; other keyword
        arguments go to the pipeline (e.g. default generation options).

        Example:
            >>> pipe = MelodyPipeline.from_pretrained("user/my-melody-model", revision="v1.0")   # doctest: +SKIP
        """
        hub_kwargs = {k: v for k, v in (("revision", revision), ("token", token), ("cache_dir", cache_dir),
                                        ("local_files_only", local_files_only)) if v}
        model = load_model(name_or_path, allow_pickle=allow_pickle, **hub_kwargs)
        tokenizer = load_tokenizer(name_or_path, **hub_kwargs)
        pipe = cls(model=model, melody_tokenizer=tokenizer, device=device if device is not None else -1, **kwargs)
        pipe.model_name = str(name_or_path)
        return pipe

    # ---- saving --------------------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> Path:
        """Write the same bundle as training does: safetensors weights, config, generation config, `miditok.json`,
        `training_info.json` (carried over from the loaded bundle) and a model card; no code is copied, so
        `MelodyPipeline.from_pretrained(d)` and `transformers.pipeline("melody-generation", model=d)` reload it
        without `trust_remote_code`.

        Example:
            >>> pipe.save_pretrained("out/my-bundle")                                         # doctest: +SKIP
        """
        from .hub import save_bundle

        if kwargs:
            raise ConfigError(f"save_pretrained() takes no option(s) {sorted(kwargs)}; it writes the whole bundle")
        if Path(save_directory).is_file():
            raise ConfigError(f"{save_directory}: is a file; give a folder to save the bundle into")
        self.model.config.__dict__.pop("custom_pipelines", None)
        return save_bundle(self.model, self.melody_tokenizer, save_directory, training_info=self._training_info(),
                           generation_config=self.model.generation_config)

    def push_to_hub(self, repo_id: str, *, commit_message: str | None = None, private: bool | None = None,
                    token: str | None = None, **kwargs) -> str:
        """Save the bundle (as `save_pretrained`) and upload it to the Hub repo `repo_id`; returns the commit URL.

        Example:
            >>> pipe.push_to_hub("me/folk-melodies", private=True)                            # doctest: +SKIP
        """
        import tempfile

        from .hub import push_bundle_to_hub

        if kwargs:
            raise ConfigError(f"push_to_hub() does not take {sorted(kwargs)}; it accepts commit_message, private "
                              "and token")
        with tempfile.TemporaryDirectory(prefix="hf_melody-push-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "bundle")
            return push_bundle_to_hub(folder, repo_id, private=bool(private), token=token,
                                      commit_message=commit_message or "Upload hf_melody bundle")

    def _training_info(self) -> dict[str, Any] | None:
        """The loaded bundle's `training_info.json` (so a re-saved card stays truthful), if it has one."""
        import json

        from .hub import TRAINING_INFO, resolve_bundle

        source = resolve_bundle(getattr(self.model, "name_or_path", "") or ".")
        path = Path(source) / TRAINING_INFO
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    # ---- parameters ----------------------------------------------------------------------------------------------
    def _sanitize_parameters(self, num_return_sequences: int | None = None, max_new_notes: int | None = None,
                             max_bars: int | None = None, max_new_tokens: int | None = None,
                             min_new_notes: int | None = None, min_bars: int | None = None,
                             temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                             seed: int | None = None, do_sample: bool | None = None,
                             time_signature: str | None = None, style: str | None = None,
                             output_type: str | None = None, constrained: bool | None = None, key: str | None = None,
                             scale: list[int] | None = None, key_strictness: str | float | None = None,
                             pitch_range: tuple[int, int] | None = None, num_bars: int | None = None,
                             end_on_tonic: bool | None = None, decoder: str | None = None,
                             generation_config: Any = None, **kwargs):
        pre, fwd, post = {}, {}, {}
        if time_signature is not None:
            pre["time_signature"] = time_signature
        if style is not None:
            if style not in STYLES:
                raise ConfigError(f"unknown style {style!r}; choose one of: {', '.join(STYLES)}")
            pre["style"] = style
        fwd.update(check_generation_options(
            self.model, num_return_sequences=num_return_sequences, max_new_notes=max_new_notes, max_bars=max_bars,
            max_new_tokens=max_new_tokens, min_new_notes=min_new_notes, min_bars=min_bars, temperature=temperature,
            top_k=top_k, top_p=top_p, seed=seed, do_sample=do_sample, num_bars=num_bars, constrained=constrained,
            decoder=decoder, generation_config=generation_config, **kwargs))
        constraints = MelodyConstraints.build(
            self.melody_tokenizer, key=key, scale=scale,
            key_strictness="hard" if key_strictness is None else key_strictness, pitch_range=pitch_range,
            num_bars=num_bars, end_on_tonic=bool(end_on_tonic))
        if constraints != MelodyConstraints(key_strictness=constraints.key_strictness):
            fwd["constraints"] = constraints
        if constraints.needs_grammar and constrained is False:
            raise ConfigError("num_bars and end_on_tonic need the grammar; drop constrained=False")
        if key_strictness is not None and constraints.pitch_classes is None:
            raise ConfigError("key_strictness applies to a key: add key='D minor' (or scale=[...])")
        if output_type is not None:
            if output_type not in OUTPUT_TYPES:
                raise ConfigError(f"output_type={output_type!r}; choose one of {OUTPUT_TYPES}")
            post["output_type"] = output_type
        return pre, fwd, post

    def __call__(self, inputs: Any = None, **kwargs):
        """Generate melodies.

        Args:
            inputs: None (unconditional), a prompt (MIDI path, `symusic.Score`, token ids) or a list of prompts.
            num_return_sequences: melodies per prompt (default 1).
            max_new_notes: exactly this many new notes (the grammar then ends the melody; with `min_new_notes=0`
                at most this many).
            max_bars: at most this many new bars (the prompt's unfinished last bar counts as the first).
            min_new_notes, min_bars: EOS is masked until the melody has this many new notes / bars.
                Without any length option a call writes a complete tune: `min_bars=8`, `max_bars=32`.
            max_new_tokens: hard cap on new tokens (default: none; past the model's context the window slides).
            temperature, top_k, top_p: sampling settings (defaults from the bundle's generation config).
            do_sample: False decodes greedily (default from the bundle's generation config).
            seed: makes the output reproducible. Melody i of a call uses seed `seed + i` and is generated on its
                own, so `pipe(seed=s, num_return_sequences=n)[i]` is byte-identical to `pipe(seed=s + i)[0]`.
                Without a seed one is drawn from torch's global RNG and recorded in `settings["seed"]`.
            decoder: "auto" (default: the fast lean decoder, or `generate` when an option below asks for it),
                "fast" or "generate". Both give the same tokens for the same seed and options.
            num_beams, repetition_penalty, no_repeat_ngram_size, length_penalty, early_stopping, bad_words_ids:
                passed to `model.generate` (they select it; beam search ignores the seed).
            generation_config: a `transformers.GenerationConfig` or dict: its sampling fields act as the options
                above, its `generate` options are passed through; options `MelodyPipeline` cannot honour
                (e.g. `typical_p`) raise `ConfigError`.
            time_signature: e.g. "3/4", for unconditional starts.
            style: style token to start with (one of `hf_melody.tokenizer.STYLES`); without it the model picks one.
            constrained: only sample tokens that are legal REMI for a one-voice melody (default True), so every
                melody decodes without token errors; False samples freely (as the raw model would).
            key: keep notes in a key, e.g. "D minor", "F# major", "Bb dorian" (see `hf_melody.generation.MODES`).
            scale: or give the allowed pitch classes directly (0 = C; the first one is the tonic).
            key_strictness: "hard" (default: only in-key notes) or a float penalty per out-of-key note (e.g. 3.0).
            pitch_range: (low, high) MIDI pitches, inclusive, e.g. (60, 79).
            num_bars: the generated part fills exactly this many bars (the prompt's unfinished last bar counts as
                the first) and ends on the bar line. Only a `max_new_tokens` cap can run short: the grammar then
                closes the melody with the shortest legal ending (long notes or rests), and if even that cannot
                fit, the melody comes back shorter, with a warning. (The `generate` decoder, which cannot slide
                past the context, raises `ConfigError` instead of padding when the context runs short.)
            end_on_tonic: the last note is the tonic of `key` (or the first degree of `scale`).
            output_type: "melody" (default, `GeneratedMelody`), "score" (`symusic.Score`), "ids" or "midi" (bytes).

        Returns:
            A list with one result per melody; for a list of prompts, a list of such lists.

        Example:
            >>> pipe(num_return_sequences=2, key="D minor", pitch_range=(60, 81), num_bars=8, end_on_tonic=True,
            ...      seed=0)                                                                  # doctest: +SKIP
        """
        if isinstance(inputs, list | tuple) and not _is_token_ids(inputs):
            return super().__call__([{"prompt": p} for p in inputs], **kwargs)
        return super().__call__({"prompt": inputs}, **kwargs)

    def stream(self, prompt: Any = None, tempo_qpm: float = 120.0, **kwargs) -> Iterator[StreamedNote]:
        """Yield the notes of one melody as soon as each is generated (a transformers streamer; generation runs in
        a background thread once iteration starts).

        Takes the options of `__call__` (one melody: no `num_return_sequences` > 1, no `output_type`); bad options
        raise here, before anything runs. With the same seed and options the notes are exactly those of
        `pipe(prompt, ...)` after its prompt notes. Leaving the loop early stops the generation.

        Args:
            prompt: as `inputs` of `__call__` (one prompt).
            tempo_qpm: quarter notes per minute, for the notes' times in seconds.

        Example:
            >>> for note in pipe.stream(seed=0, key="G major", num_bars=8, tempo_qpm=100):    # doctest: +SKIP
            ...     print(note.pitch, note.onset_seconds, note.duration_seconds)
        """
        if isinstance(prompt, list | tuple) and prompt and not _is_token_ids(prompt):
            raise ConfigError("stream() takes one prompt; loop over your prompts")
        pre, fwd, post = self._sanitize_parameters(**kwargs)
        if fwd.get("num_return_sequences", 1) != 1 or post:
            raise ConfigError("stream() yields the notes of one melody: drop num_return_sequences / output_type")
        streamer = NoteStreamer(self.melody_tokenizer, tempo_qpm=tempo_qpm)
        model_inputs = self._ensure_tensor_on_device(self.preprocess({"prompt": prompt}, **pre), device=self.device)
        return self._stream(streamer, model_inputs, fwd)

    def _stream(self, streamer: NoteStreamer, model_inputs: dict[str, Any], fwd: dict[str, Any]):
        import threading

        def work():
            try:
                with torch.no_grad():
                    self._forward(model_inputs, streamer=streamer, **fwd)
            except BaseException as e:  # re-raised in the consuming thread
                streamer.fail(e)

        thread = threading.Thread(target=work, name="hf_melody-stream", daemon=True)
        thread.start()
        try:
            yield from streamer
        finally:
            streamer.cancel()
            thread.join()

    # ---- steps ---------------------------------------------------------------------------------------------------
    def _prompt_ids(self, prompt: Any) -> list[int]:
        from .corpora import melody_from_score, read_midi

        tok = self.melody_tokenizer
        if prompt is None:
            return []
        if _is_token_ids(prompt):
            ids = [int(i) for i in (prompt.tolist() if isinstance(prompt, torch.Tensor) else prompt)]
            bad = [i for i in ids if not 0 <= i < tok.vocab_size]
            if bad:
                raise ConfigError(f"prompt token ids {bad[:5]} are outside the vocabulary (0..{tok.vocab_size - 1})")
            return [i for i in ids if i not in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)]
        if isinstance(prompt, str | os.PathLike):
            melody = read_midi(prompt)
        elif hasattr(prompt, "tracks") and hasattr(prompt, "ticks_per_quarter"):
            melody = melody_from_score(prompt, "prompt", "prompt", where="prompt score")
        else:
            raise MidiReadError(f"cannot use a {type(prompt).__name__} as a prompt; give a MIDI path, a "
                                "symusic.Score or a list of token ids")
        return tok.encode(melody)

    def preprocess(self, inputs: dict[str, Any], time_signature: str | None = None, style: str | None = None):
        tok = self.melody_tokenizer
        body = self._prompt_ids(inputs["prompt"])
        head = [tok.bos_token_id]
        if style is not None:
            head.append(tok.style_token_id(style))
        if not body and time_signature is not None:
            ts_token = f"TimeSig_{time_signature}"
            if ts_token not in tok.base_vocab:
                meters = sorted(t[8:] for t in tok.base_vocab if t.startswith("TimeSig_"))
                raise ConfigError(f"time_signature={time_signature!r} is not in the vocabulary; use one of "
                                  f"{', '.join(meters)}")
            body = tok.encode_base_tokens(["Bar_None", ts_token])
        ids = head + body
        n_pos = self.model.config.n_positions
        if len(ids) >= n_pos - 8:
            raise ConfigError(f"the prompt has {len(ids)} tokens but the model's context is {n_pos}; "
                              "use a shorter prompt (a few bars)")
        num_prompt_notes = sum(len(t.notes) for t in tok.decode(body).tracks) if body else 0
        return {"input_ids": torch.tensor([ids]), "num_prompt_notes": num_prompt_notes,
                "time_signature": time_signature, "style": style}

    def _settings(self, model_inputs: dict[str, Any], **options) -> dict[str, Any]:
        gen = self.model.generation_config
        constraints = options.get("constraints") or MelodyConstraints()

        def pick(name):
            return options[name] if options.get(name) is not None else getattr(gen, name, None)

        lengths = {name: options.get(name) for name in ("max_new_notes", "max_bars", "max_new_tokens")}
        min_bars, min_new_notes = options.get("min_bars"), options.get("min_new_notes")
        if constraints.num_bars is None and not any(v is not None for v in lengths.values()):
            if min_new_notes is None:  # a complete tune: 8 to 32 bars (or min_bars), ending by itself
                lengths["max_bars"] = max(DEFAULT_MAX_BARS, min_bars or 0)
            if min_bars is None and min_new_notes is None:
                min_bars = DEFAULT_MIN_BARS
        elif lengths["max_new_notes"] is not None and min_new_notes is None and min_bars is None:
            min_new_notes = lengths["max_new_notes"]  # max_new_notes=400 gives 400 notes (min_new_notes=0: fewer)
        return {
            "model": getattr(self, "model_name", self.model.name_or_path),
            "seed": options.get("seed"),
            "do_sample": pick("do_sample") is not False,
            "temperature": pick("temperature"),
            "top_k": pick("top_k"),
            "top_p": pick("top_p"),
            **lengths,
            "min_new_notes": min_new_notes,
            "min_bars": min_bars,
            "style": model_inputs["style"],
            "time_signature": model_inputs["time_signature"],
            "constrained": options.get("constrained", True),
            "key": constraints.key_name,
            "key_strictness": constraints.key_strictness if constraints.pitch_classes is not None else None,
            "pitch_range": constraints.pitch_range,
            "num_bars": constraints.num_bars,
            "end_on_tonic": constraints.end_on_tonic,
            "decoder": options.get("decoder", "fast"),
            **(options.get("generate_kwargs") or {}),
        }

    def generate_ids(self, prompt_ids: list[int], **options) -> list[int]:
        """New token ids continuing raw `prompt_ids` (no BOS added; special tokens in it start new segments), with
        `exact_bars=k` for an exact bar budget: see `hf_melody.decoding.generate_ids` for the options.

        Example:
            >>> new = pipe.generate_ids([tok.bos_token_id], exact_bars=4, key="D minor", seed=0)   # doctest: +SKIP
        """
        return generate_ids(self.model, self.melody_tokenizer, prompt_ids, **options)

    def infill(self, melody: Any, bars: tuple[int, int] | int, *, num_return_sequences: int = 1,
               seed: int | None = None, style: str | None = None, **options) -> list[GeneratedMelody]:
        """Regenerate `bars` of `melody` (1-based, inclusive) knowing the bars before and after them.

        The rest of the melody is kept note for note; the new bars fill exactly their bars (same meter, nothing
        spills into the next bar). `melody` is a MIDI path, a `symusic.Score`, a `Melody` or token ids. Every
        sampling and musical option of `__call__` applies (`temperature`, `top_k`, `top_p`, `key`, `pitch_range`,
        `constrained`, ...); candidate `i` uses seed `seed + i`. Needs a bundle trained with infilling (every
        bundled checkpoint of hf_melody 0.2).

        Example:
            >>> [a, b] = pipe.infill("tune.mid", bars=(5, 6), num_return_sequences=2, seed=0)   # doctest: +SKIP
            >>> a.save_midi("tune_new_bars_5_6.mid")                                          # doctest: +SKIP
        """
        from .infill import infill_melodies

        return infill_melodies(self, melody, bars, num_return_sequences=num_return_sequences, seed=seed,
                               style=style, **options)

    def _melody_decoder(self) -> MelodyDecoder:
        decoder = getattr(self, "_decoder_cache", None)
        if decoder is None or decoder.model is not self.model:
            decoder = self._decoder_cache = MelodyDecoder(self.model, self.melody_tokenizer)
        return decoder

    def _forward(self, model_inputs: dict[str, Any], num_return_sequences: int = 1,
                 max_new_notes: int | None = None, max_bars: int | None = None, max_new_tokens: int | None = None,
                 min_new_notes: int | None = None, min_bars: int | None = None,
                 temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                 seed: int | None = None, do_sample: bool | None = None, constrained: bool = True,
                 constraints: MelodyConstraints | None = None, decoder: str = "fast",
                 generate_kwargs: dict[str, Any] | None = None, streamer: NoteStreamer | None = None):
        tok = self.melody_tokenizer
        input_ids = model_inputs["input_ids"]
        prompt_length = input_ids.shape[1]
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        st = self._settings(model_inputs, seed=seed, temperature=temperature, top_k=top_k, top_p=top_p,
                            do_sample=do_sample, max_new_notes=max_new_notes, max_bars=max_bars,
                            max_new_tokens=max_new_tokens, min_new_notes=min_new_notes, min_bars=min_bars,
                            constrained=constrained, constraints=constraints, decoder=decoder,
                            generate_kwargs=generate_kwargs)
        generate_kwargs = dict(generate_kwargs or {})
        beams = generate_kwargs.get("num_beams", 1) > 1
        if beams and streamer is not None:
            raise ConfigError("stream() cannot use num_beams > 1 (beam search keeps no single running melody)")
        criteria = StoppingCriteriaList()
        if streamer is not None:
            criteria.append(streamer.stopping_criteria())
        if not constrained and (st["max_new_notes"] is not None or st["max_bars"] is not None):
            criteria.append(MusicalLengthCriteria(tok, prompt_length, st["max_new_notes"], st["max_bars"]))
        room = self.model.config.n_positions - prompt_length
        token_cap = st["max_new_tokens"] if decoder == "fast" else min(st["max_new_tokens"] or room, room)
        limits = LengthLimits(num_bars=st["num_bars"], max_bars=st["max_bars"], max_new_notes=st["max_new_notes"],
                              min_bars=st["min_bars"], min_new_notes=st["min_new_notes"])
        # 1. one melody at a time, melody i seeded with seed + i: a batch equals the single calls it stands for
        sequences = []
        for i in range(num_return_sequences):
            sampled = st["do_sample"] and not beams
            processors = melody_logits_processors(
                tok, constraints=constraints, constrained=constrained, max_new_notes=st["max_new_notes"],
                max_bars=st["max_bars"], temperature=st["temperature"], top_k=st["top_k"], top_p=st["top_p"],
                seed=seed + i if sampled else None, allow_style=model_inputs["style"] is None,
                max_length=None if token_cap is None else prompt_length + token_cap,
                min_new_notes=st["min_new_notes"], min_bars=st["min_bars"], refeed=beams)
            grammar = processors[0] if constrained else None
            if decoder == "fast":
                # 2a. the lean decoder: the same processors, the grammar from tables, a window past the context
                result = self._melody_decoder().sample(
                    input_ids.tolist(), LogitsProcessorList(p for p in processors if p is not grammar),
                    grammar.rules if grammar is not None else None, limits, token_cap,
                    stopping_criteria=criteria, streamer=streamer)
                sequence, ended = result.sequences[0], result.ended[0]
                if result.short[0]:
                    logger.warning("melody %d ended before min_bars=%s / min_new_notes=%s: the other limits "
                                   "(max_bars, max_new_notes) left no room", i, st["min_bars"], st["min_new_notes"])
            else:
                # 2b. greedy decoding over the seeded sampler's Gumbel-perturbed scores == seeded sampling
                output = self.model.generate(
                    input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                    max_new_tokens=token_cap, logits_processor=processors, stopping_criteria=criteria,
                    pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, streamer=streamer,
                    **generate_kwargs)
                sequence = output[0].tolist()
                ended = grammar.ended_properly(output[:1])[0] if grammar is not None and not beams else \
                    tok.eos_token_id in sequence[prompt_length:]
                asked = [k for k in ("num_bars", "max_new_notes", "min_new_notes") if st[k] is not None]
                cut = not ended and len(sequence) >= room + prompt_length
                steered = grammar is not None and grammar.steered  # the context forced a hasty ending
                if asked and st["max_new_tokens"] is None and (cut or steered) \
                        and (streamer is None or not streamer.cancelled.is_set()):
                    raise ConfigError(
                        f"melody {i} filled the model's context ({self.model.config.n_positions} tokens) before "
                        f"{', '.join(f'{k}={st[k]}' for k in asked)} was reached; the generate() decoder (used for "
                        f"{sorted(generate_kwargs) or 'decoder=generate'}) cannot slide its window: drop those "
                        "options or ask for a shorter melody")
            sequences.append(sequence)
            cancelled = streamer is not None and streamer.cancelled.is_set()
            if (st["num_bars"] or st["end_on_tonic"]) and not ended and not cancelled:
                logger.warning("melody %d: max_new_tokens=%s (or the model's context) ran out before the asked-for "
                               "ending (num_bars=%s, end_on_tonic=%s) could be reached; it ends early", i,
                               token_cap, st["num_bars"], st["end_on_tonic"])
        return {"sequences": sequences, "prompt_length": prompt_length, "settings": st,
                "num_prompt_notes": model_inputs["num_prompt_notes"]}

    def _trim(self, ids: list[int], prompt_length: int, max_new_notes: int | None, max_bars: int | None) -> list[int]:
        """Cut a generated sequence at EOS/padding and before the note or bar that exceeds the limits."""
        new = ids[prompt_length:]
        return ids[:prompt_length + REMIGrammar.for_tokenizer(self.melody_tokenizer).keep_within(
            new, max_new_notes, max_bars)]

    def postprocess(self, model_outputs: dict[str, Any], output_type: str = "melody"):
        tok = self.melody_tokenizer
        settings = model_outputs["settings"]
        results = []
        for i, seq in enumerate(model_outputs["sequences"]):
            # the grammar enforces the limits itself; the unconstrained path stops one note or bar late
            limits = (None, None) if settings["constrained"] else (settings["max_new_notes"], settings["max_bars"])
            ids = self._trim(seq, model_outputs["prompt_length"], *limits)
            if output_type == "ids":
                results.append(ids)
                continue
            try:
                score = tok.decode(ids)
            except Exception as e:  # miditok raises on some malformed sequences
                raise HFMelodyError(f"could not decode the generated tokens ({e})") from e
            melody = GeneratedMelody(score, ids, model_outputs["prompt_length"], model_outputs["num_prompt_notes"],
                                     {**settings, "melody_seed": settings["seed"] + i})
            # key/time signature, tempo and title as meta events, so every file made from the score carries them
            melody.score = with_metadata(score, key=melody.key, title=melody.title)
            if output_type == "score":
                results.append(melody.score)
            elif output_type == "midi":
                results.append(melody.to_midi_bytes())
            else:
                results.append(melody)
        return results


TASK = "melody-generation"
PIPELINE_REGISTRY.register_pipeline(
    TASK,
    pipeline_class=MelodyPipeline,
    pt_model=AutoModelForCausalLM,
    # `pipeline("melody-generation")` loads the bundled folk-base: a local folder, so no network is needed
    default={"model": (str(CHECKPOINTS_DIR / DEFAULT_MODEL), None)},
    type="multimodal",
)


def _with_bundled_names(factory):
    """Wrap `transformers.pipeline` so that bundled names (`"folk-base"`) load the packaged checkpoint offline
    instead of being looked up on the Hub; everything else is passed through untouched."""
    import functools

    if getattr(factory, "_hf_melody_wrapped", False):
        return factory

    @functools.wraps(factory)
    def pipeline(task: str | None = None, model: Any = None, *args, **kwargs):
        if (isinstance(model, str) and task in (None, TASK) and model in bundled_checkpoints()
                and not Path(model).exists()):
            task, model = TASK, str(CHECKPOINTS_DIR / model)
        return factory(task, model, *args, **kwargs)

    pipeline._hf_melody_wrapped = True
    return pipeline


def _install_bundled_names() -> None:
    import transformers
    import transformers.pipelines

    wrapped = _with_bundled_names(transformers.pipelines.pipeline)
    transformers.pipelines.pipeline = wrapped
    transformers.pipeline = wrapped


_install_bundled_names()
