"""`MelodyPipeline`: sample or continue melodies and get MIDI, audio and a piano roll (task `melody-generation`).

Example:
    >>> from hf_melody import MelodyPipeline
    >>> pipe = MelodyPipeline.from_pretrained("folk-base")
    >>> melodies = pipe(num_return_sequences=2, max_new_notes=32, seed=0)
    >>> melodies[0].save_midi("out/melody.mid")                       # doctest: +SKIP

    >>> import transformers, hf_melody
    >>> pipe = transformers.pipeline("melody-generation", model="path/to/bundle")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .errors import ConfigError, HFMelodyError, MidiReadError
from .generation import MusicalLengthCriteria, token_counts
from .hub import DEFAULT_MODEL, load_model, load_tokenizer
from .tokenizer import STYLES, MelodyTokenizer

OUTPUT_TYPES = ("melody", "score", "ids", "midi")


@dataclass
class GeneratedMelody:
    """One generated melody.

    Attributes:
        score: the melody as a one-track `symusic.Score` (480 ticks per quarter), prompt included.
        token_ids: all token ids (prompt + generated), BOS first.
        prompt_length: how many of `token_ids` came from the prompt.
        num_prompt_notes: how many of the score's notes came from the prompt.
        settings: the generation settings, for reproducibility.
    """

    score: Any
    token_ids: list[int]
    prompt_length: int = 0
    num_prompt_notes: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def notes(self) -> list[tuple[int, int, int]]:
        """`(onset, duration, pitch)` in ticks (480 per quarter)."""
        return [(n.time, n.duration, n.pitch) for t in self.score.tracks for n in t.notes]

    @property
    def num_notes(self) -> int:
        return len(self.notes)

    def to_midi_bytes(self) -> bytes:
        return self.score.dumps_midi()

    def save_midi(self, path: str | os.PathLike) -> Path:
        """Write a Standard MIDI File."""
        from .render import save_midi

        return save_midi(self.score, path)

    def save_wav(self, path: str | os.PathLike, soundfont: str | os.PathLike | None = None,
                 sample_rate: int = 22050) -> Path:
        """Render to a WAV file with a General MIDI soundfont (system one, `soundfont=`, or $HF_MELODY_SOUNDFONT)."""
        from .render import save_wav

        return save_wav(self.score, path, soundfont=soundfont, sample_rate=sample_rate)

    def save_piano_roll(self, path: str | os.PathLike, title: str = "") -> Path:
        """Draw a piano-roll PNG (prompt notes in grey)."""
        from .render import save_piano_roll

        shown = {k: v for k, v in self.settings.items() if k in ("model", "seed", "temperature", "top_k", "top_p",
                                                                  "style", "time_signature")}
        return save_piano_roll(self.score, path, title=title, settings=shown, prompt_notes=self.num_prompt_notes)


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
        super().__init__(model=model, **kwargs)
        if melody_tokenizer is None:
            source = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", "")
            melody_tokenizer = load_tokenizer(source)
        self.melody_tokenizer = melody_tokenizer
        self.model.eval()

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = DEFAULT_MODEL, device: int | str | None = None,
                        allow_pickle: bool = False, **kwargs) -> MelodyPipeline:
        """Load a bundle by bundled name (`folk-base`, `original`, ...), local folder or Hub id (HF cache)."""
        model = load_model(name_or_path, allow_pickle=allow_pickle)
        tokenizer = load_tokenizer(name_or_path)
        pipe = cls(model=model, melody_tokenizer=tokenizer, device=device if device is not None else -1, **kwargs)
        pipe.model_name = str(name_or_path)
        return pipe

    # ---- parameters ----------------------------------------------------------------------------------------------
    def _sanitize_parameters(self, num_return_sequences: int | None = None, max_new_notes: int | None = None,
                             max_bars: int | None = None, max_new_tokens: int | None = None,
                             temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                             seed: int | None = None, time_signature: str | None = None, style: str | None = None,
                             output_type: str | None = None, **kwargs):
        if kwargs:
            raise ConfigError(f"unknown generation option(s) {sorted(kwargs)}; see help(MelodyPipeline.__call__)")
        pre, fwd, post = {}, {}, {}
        if time_signature is not None:
            pre["time_signature"] = time_signature
        if style is not None:
            if style not in STYLES:
                raise ConfigError(f"unknown style {style!r}; choose one of: {', '.join(STYLES)}")
            pre["style"] = style
        for name, value in (("num_return_sequences", num_return_sequences), ("max_new_notes", max_new_notes),
                            ("max_bars", max_bars), ("max_new_tokens", max_new_tokens), ("top_k", top_k)):
            if value is not None:
                if int(value) != value or value < (0 if name == "top_k" else 1):
                    raise ConfigError(f"{name}={value} must be a positive integer")
                fwd[name] = int(value)
        if temperature is not None:
            if temperature <= 0:
                raise ConfigError(f"temperature={temperature} must be > 0 (use a small value like 0.1 for "
                                  "near-greedy output)")
            fwd["temperature"] = float(temperature)
        if top_p is not None:
            if not 0 < top_p <= 1:
                raise ConfigError(f"top_p={top_p} must be in (0, 1]")
            fwd["top_p"] = float(top_p)
        if seed is not None:
            fwd["seed"] = int(seed)
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
            max_new_notes: stop after this many new notes.
            max_bars: stop after this many new bars.
            max_new_tokens: hard cap on new tokens (default: the model's remaining context).
            temperature, top_k, top_p: sampling settings (defaults from the bundle's generation config).
            seed: makes the output reproducible (same seed and settings -> identical bytes).
            time_signature: e.g. "3/4", for unconditional starts.
            style: style token to start with (one of `hf_melody.tokenizer.STYLES`).
            output_type: "melody" (default, `GeneratedMelody`), "score" (`symusic.Score`), "ids" or "midi" (bytes).

        Returns:
            A list with one result per melody; for a list of prompts, a list of such lists.
        """
        if isinstance(inputs, list | tuple) and not _is_token_ids(inputs):
            return super().__call__([{"prompt": p} for p in inputs], **kwargs)
        return super().__call__({"prompt": inputs}, **kwargs)

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

    def _forward(self, model_inputs: dict[str, Any], num_return_sequences: int = 1,
                 max_new_notes: int | None = None, max_bars: int | None = None, max_new_tokens: int | None = None,
                 temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                 seed: int | None = None):
        from transformers import StoppingCriteriaList

        tok = self.melody_tokenizer
        input_ids = model_inputs["input_ids"]
        prompt_length = input_ids.shape[1]
        room = self.model.config.n_positions - prompt_length
        max_new_tokens = min(max_new_tokens or room, room)
        gen = self.model.generation_config
        settings = {
            "model": getattr(self, "model_name", self.model.name_or_path),
            "seed": seed,
            "temperature": temperature if temperature is not None else gen.temperature,
            "top_k": top_k if top_k is not None else gen.top_k,
            "top_p": top_p if top_p is not None else gen.top_p,
            "max_new_notes": max_new_notes,
            "max_bars": max_bars,
            "style": model_inputs["style"],
            "time_signature": model_inputs["time_signature"],
        }
        criteria = StoppingCriteriaList()
        if max_new_notes is not None or max_bars is not None:
            criteria.append(MusicalLengthCriteria(tok, prompt_length, max_new_notes, max_bars))
        if seed is not None:
            torch.manual_seed(seed)
        output = self.model.generate(
            input_ids=input_ids.repeat(num_return_sequences, 1),
            attention_mask=torch.ones_like(input_ids).repeat(num_return_sequences, 1),
            do_sample=True,
            temperature=settings["temperature"],
            top_k=settings["top_k"],
            top_p=settings["top_p"],
            max_new_tokens=max_new_tokens,
            stopping_criteria=criteria,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        return {"sequences": output, "prompt_length": prompt_length, "settings": settings,
                "num_prompt_notes": model_inputs["num_prompt_notes"]}

    def _trim(self, ids: list[int], prompt_length: int, max_new_notes: int | None, max_bars: int | None) -> list[int]:
        """Cut a generated sequence at EOS/padding and before the note or bar that exceeds the limits."""
        tok = self.melody_tokenizer
        pitch_counts, bar_counts = token_counts(tok)
        out = ids[:prompt_length]
        notes = bars = 0
        for i in ids[prompt_length:]:
            if i in (tok.eos_token_id, tok.pad_token_id):
                break
            notes += int(pitch_counts[i])
            bars += int(bar_counts[i])
            if (max_new_notes is not None and notes > max_new_notes) or (max_bars is not None and bars > max_bars):
                break
            out.append(i)
        return out

    def postprocess(self, model_outputs: dict[str, Any], output_type: str = "melody"):
        tok = self.melody_tokenizer
        settings = model_outputs["settings"]
        results = []
        for seq in model_outputs["sequences"].tolist():
            ids = self._trim(seq, model_outputs["prompt_length"], settings["max_new_notes"], settings["max_bars"])
            if output_type == "ids":
                results.append(ids)
                continue
            try:
                score = tok.decode(ids)
            except Exception as e:  # miditok raises on some malformed sequences
                raise HFMelodyError(f"could not decode the generated tokens ({e})") from e
            if score.tracks:
                score.tracks[0].name = "hf_melody"
            if output_type == "score":
                results.append(score)
            elif output_type == "midi":
                results.append(score.dumps_midi())
            else:
                results.append(GeneratedMelody(score, ids, model_outputs["prompt_length"],
                                               model_outputs["num_prompt_notes"], dict(settings)))
        return results


PIPELINE_REGISTRY.register_pipeline(
    "melody-generation",
    pipeline_class=MelodyPipeline,
    pt_model=AutoModelForCausalLM,
    type="multimodal",
)
