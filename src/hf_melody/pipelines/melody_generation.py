"""`MelodyPipeline`: sample or continue melodies and get MIDI, audio and a piano roll (task `melody-generation`).

Examples:
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

import functools
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import transformers
import transformers.pipelines
from transformers import AutoModelForCausalLM, Pipeline, StoppingCriteriaList
from transformers.pipelines import PIPELINE_REGISTRY

from ..bundle import (
    CHECKPOINTS_DIR,
    DEFAULT_MODEL,
    TRAINING_INFO,
    bundled_checkpoints,
    bundled_name,
    resolve_bundle,
)
from ..errors import ConfigError, ModelLoadError
from ..generation.configuration import MelodyGenerationConfig, options_doc
from ..generation.decoding import MelodyDecoder, generate_ids
from ..generation.logits_process import DecodingPlan, MelodyConstraints, decoding_plan, melody_constraints
from ..generation.prompts import check_start, is_token_ids, prompt_ids, start_inputs
from ..generation.stopping_criteria import MusicalLengthCriteria
from ..generation.streamers import NoteStreamer, StreamedNote
from ..grammar.remi import REMIGrammar
from ..hub import load_model, load_tokenizer, push_bundle_to_hub, save_bundle
from ..tokenizer import MelodyTokenizer
from .infilling import infill_melodies
from .output import GeneratedMelody

logger = logging.getLogger(__name__)


class MelodyPipeline(Pipeline):
    """Generate melodies with a GPT-2 melody model.

    Inputs (the first argument): nothing for unconditional generation; a prompt to continue, given as a MIDI
    path, a `symusic.Score` or a list of token ids; or a list of prompts (a batch). The output of each melody starts
    with its prompt.

    Examples:
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
        # generation options given here are the defaults of every call (the rest go to transformers' Pipeline)
        self._default_options = {k: kwargs.pop(k) for k in list(kwargs) if k in MelodyGenerationConfig.option_names()}
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

        Examples:
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

        Examples:
            >>> pipe.save_pretrained("out/my-bundle")                                         # doctest: +SKIP
        """
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

        Examples:
            >>> pipe.push_to_hub("me/folk-melodies", private=True)                            # doctest: +SKIP
        """
        if kwargs:
            raise ConfigError(f"push_to_hub() does not take {sorted(kwargs)}; it accepts commit_message, private "
                              "and token")
        with tempfile.TemporaryDirectory(prefix="hf_melody-push-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "bundle")
            return push_bundle_to_hub(folder, repo_id, private=bool(private), token=token,
                                      commit_message=commit_message or "Upload hf_melody bundle")

    def _training_info(self) -> dict[str, Any] | None:
        """The loaded bundle's `training_info.json` (so a re-saved card stays truthful), if it has one."""
        source = resolve_bundle(getattr(self.model, "name_or_path", "") or ".")
        path = Path(source) / TRAINING_INFO
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    # ---- parameters ----------------------------------------------------------------------------------------------
    def _sanitize_parameters(self, **options):
        """Parse the options of a call (over the pipeline's defaults) into one `MelodyGenerationConfig`, checked
        against the model and its tokenizer before any work."""
        config = MelodyGenerationConfig.from_options({**self._default_options, **options}).resolve(self.model)
        check_start(self.melody_tokenizer, config.style, config.time_signature)
        constraints = melody_constraints(self.melody_tokenizer, config)
        return {"config": config}, {"config": config, "constraints": constraints}, {"config": config}

    def __call__(self, inputs: Any = None, **kwargs):
        """Generate melodies.

        Args:
            inputs: None (unconditional), a prompt (MIDI path, MIDI bytes, `symusic.Score`, token ids), a list of
                prompts, or any iterable of prompts: a generator, `transformers.pipelines.pt_utils.KeyDataset`, a
                `datasets.Dataset` column (`ds["prompt"]`); an iterable gives an iterator of results, in order.
            batch_size: accepted as in transformers; the melodies are decoded one after another whatever its
                value, because a melody must not depend on its batch neighbours (same seed, same bytes; a batch
                of rows measured 1.7-2.9x faster here, but batched arithmetic changed 14 of 16 melodies:
                benchmarks/RESULTS.md section 20).
            **kwargs: the fields of `MelodyGenerationConfig` (`hf_melody.generation.configuration`), checked before
                any work (`ConfigError` naming the option and the fix):
{options}

        Returns:
            A list with one result per melody (see `output_type`; `"dict"` gives plain dicts for `Dataset.map`);
            for a list of prompts, a list of such lists. Each `GeneratedMelody.settings` records the resolved
            options (`MelodyGenerationConfig.from_settings` rebuilds them).

        Examples:
            >>> pipe(num_return_sequences=2, key="D minor", pitch_range=(60, 81), num_bars=8, end_on_tonic=True,
            ...      seed=0)                                                                  # doctest: +SKIP
            >>> for melodies in pipe(KeyDataset(ds, "prompt"), num_bars=8, seed=0):          # doctest: +SKIP
            ...     melodies[0].save_midi(...)
        """
        batch_size = kwargs.pop("batch_size", None)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise ConfigError(f"batch_size={batch_size!r} must be a positive integer")
        if isinstance(inputs, list | tuple) and not is_token_ids(inputs):
            return super().__call__([{"prompt": p} for p in inputs], **kwargs)
        if _is_prompt_stream(inputs):
            self._sanitize_parameters(**kwargs)  # bad options fail here, before the first prompt is read
            return (super(MelodyPipeline, self).__call__({"prompt": p}, **kwargs) for p in inputs)
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

        Examples:
            >>> for note in pipe.stream(seed=0, key="G major", num_bars=8, tempo_qpm=100):    # doctest: +SKIP
            ...     print(note.pitch, note.onset_seconds, note.duration_seconds)
        """
        if isinstance(prompt, list | tuple) and prompt and not is_token_ids(prompt):
            raise ConfigError("stream() takes one prompt; loop over your prompts")
        if kwargs.get("num_return_sequences", 1) != 1 or kwargs.get("output_type") is not None:
            raise ConfigError("stream() yields the notes of one melody: drop num_return_sequences / output_type")
        pre, fwd, _ = self._sanitize_parameters(**kwargs)
        streamer = NoteStreamer(self.melody_tokenizer, tempo_qpm=tempo_qpm)
        model_inputs = self._ensure_tensor_on_device(self.preprocess({"prompt": prompt}, **pre), device=self.device)
        return self._stream(streamer, model_inputs, fwd)

    def _stream(self, streamer: NoteStreamer, model_inputs: dict[str, Any], fwd: dict[str, Any]):
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
    def preprocess(self, inputs: dict[str, Any], config: MelodyGenerationConfig) -> dict[str, Any]:
        body = prompt_ids(self.melody_tokenizer, inputs["prompt"])
        return start_inputs(self.melody_tokenizer, body, config.style, config.time_signature,
                            self.model.config.n_positions)

    def generate_ids(self, prompt_ids: list[int], **options) -> list[int]:
        """New token ids continuing raw `prompt_ids` (no BOS added; special tokens in it start new segments), with
        `exact_bars=k` for an exact bar budget: see `hf_melody.generation.decoding.generate_ids` for the options.

        Examples:
            >>> new = pipe.generate_ids([tok.bos_token_id], exact_bars=4, key="D minor", seed=0)   # doctest: +SKIP
        """
        return generate_ids(self.model, self.melody_tokenizer, prompt_ids, **options)

    def infill(self, melody: Any, bars: tuple[int, int] | int, **options) -> list[GeneratedMelody]:
        """Regenerate `bars` of `melody` (1-based, inclusive) knowing the bars before and after them.

        The rest of the melody is kept note for note; the new bars fill exactly their bars (same meter, nothing
        spills into the next bar). `melody` is a MIDI path, a `symusic.Score`, a `Melody` or token ids. `options`
        are the fields of `MelodyGenerationConfig` marked for infilling (`option_names(infill=True)`:
        `num_return_sequences`, `seed`, `style`, `temperature`, `top_k`, `top_p`, `key`, `pitch_range`,
        `constrained`, ...); candidate `i` uses seed `seed + i`. Needs a bundle trained with infilling (every
        bundled checkpoint of hf_melody 0.2).

        Examples:
            >>> [a, b] = pipe.infill("tune.mid", bars=(5, 6), num_return_sequences=2, seed=0)   # doctest: +SKIP
            >>> a.save_midi("tune_new_bars_5_6.mid")                                          # doctest: +SKIP
        """
        return infill_melodies(self, melody, bars, MelodyGenerationConfig.from_options(options, infill=True))

    def _forward(self, model_inputs: dict[str, Any], config: MelodyGenerationConfig,
                 constraints: MelodyConstraints, streamer: NoteStreamer | None = None) -> dict[str, Any]:
        input_ids = model_inputs["input_ids"]
        prompt_length = input_ids.shape[1]
        config = config.with_seed()
        beams = config.num_beams is not None
        if beams and streamer is not None:
            raise ConfigError("stream() cannot use num_beams > 1 (beam search keeps no single running melody)")
        # 1. what ends a melody: a cancelled stream, the note/bar limits without the grammar (the token cap and the
        #    grammar's limits are in the plan of step 2)
        criteria = StoppingCriteriaList()
        if streamer is not None:
            criteria.append(streamer.stopping_criteria())
        if not config.constrained and (config.max_new_notes is not None or config.max_bars is not None):
            criteria.append(MusicalLengthCriteria(self.melody_tokenizer, prompt_length, config.max_new_notes,
                                                  config.max_bars))
        # 2. one melody at a time, melody i seeded with seed + i: a batch equals the single calls it stands for
        sequences, seeds, ran = [], [], set()
        for i in range(config.num_return_sequences):
            plan = decoding_plan(self.melody_tokenizer, config, prompt_length, i,
                                 n_positions=self.model.config.n_positions, allow_style=model_inputs["style"] is None,
                                 constraints=constraints)
            sample = self._sample_fast if config.decoder == "fast" else self._sample_generate
            sequence, ended, decoder = sample(i, input_ids, plan, criteria, config, streamer)
            sequences.append(sequence)
            seeds.append(plan.seed)  # the sampler's own seed: what was used, not recomputed from the call's
            ran.add(decoder)
            cancelled = streamer is not None and streamer.cancelled.is_set()
            if (config.num_bars or config.end_on_tonic) and not ended and not cancelled:
                logger.warning("melody %d: max_new_tokens=%s (or the model's context) ran out before the asked-for "
                               "ending (num_bars=%s, end_on_tonic=%s) could be reached; it ends early", i,
                               plan.token_cap, config.num_bars, config.end_on_tonic)
        settings = {"model": getattr(self, "model_name", self.model.name_or_path), **config.settings(),
                    "decoder": ran.pop() if len(ran) == 1 else config.decoder}  # the decoder that ran
        return {"sequences": sequences, "prompt_length": prompt_length, "settings": settings,
                "melody_seeds": seeds, "num_prompt_notes": model_inputs["num_prompt_notes"],
                "full_prompt_ids": model_inputs.get("full_prompt_ids")}

    def _sample_fast(self, i: int, input_ids: torch.Tensor, plan: DecodingPlan, criteria: StoppingCriteriaList,
                     config: MelodyGenerationConfig, streamer: NoteStreamer | None) -> tuple[list[int], bool, str]:
        """The lean decoder: the same processors, the grammar from tables, a window sliding past the context."""
        result = MelodyDecoder.for_model(self.model, self.melody_tokenizer).sample(
            input_ids.tolist(), plan.fast_processors(), plan.rules, plan.limits, plan.token_cap,
            stopping_criteria=criteria, streamer=streamer)
        if result.short[0]:
            logger.warning("melody %d ended before min_bars=%s / min_new_notes=%s: the other limits (max_bars, "
                           "max_new_notes) left no room", i, config.min_bars, config.min_new_notes)
        return result.sequences[0], result.ended[0], "fast"

    def _sample_generate(self, i: int, input_ids: torch.Tensor, plan: DecodingPlan, criteria: StoppingCriteriaList,
                         config: MelodyGenerationConfig, streamer: NoteStreamer | None) -> tuple[list[int], bool, str]:
        """`model.generate`: greedy decoding over the seeded sampler's Gumbel-perturbed scores == seeded sampling."""
        tok, prompt_length = self.melody_tokenizer, input_ids.shape[1]
        grammar = plan.grammar
        beams = config.num_beams is not None
        output = self.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
            max_new_tokens=plan.token_cap, logits_processor=plan.processors, stopping_criteria=criteria,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, streamer=streamer,
            **config.generate_kwargs())
        sequence = output[0].tolist()
        ended = grammar.ended_properly(output[:1])[0] if grammar is not None and not beams else \
            tok.eos_token_id in sequence[prompt_length:]
        asked = {k: getattr(config, k) for k in ("num_bars", "max_new_notes", "min_new_notes")
                 if getattr(config, k) is not None}
        room = self.model.config.n_positions - prompt_length
        cut = not ended and len(sequence) >= room + prompt_length
        steered = grammar is not None and grammar.steered  # the context forced a hasty ending
        if asked and config.max_new_tokens is None and (cut or steered) \
                and (streamer is None or not streamer.cancelled.is_set()):
            raise ConfigError(
                f"melody {i} filled the model's context ({self.model.config.n_positions} tokens) before "
                f"{', '.join(f'{k}={v}' for k, v in asked.items())} was reached; the generate() decoder (used for "
                f"{sorted(config.generate_kwargs()) or 'decoder=generate'}) cannot slide its window: drop those "
                "options or ask for a shorter melody")
        return sequence, ended, "generate"

    def _trim(self, ids: list[int], prompt_length: int, max_new_notes: int | None, max_bars: int | None) -> list[int]:
        """Cut a generated sequence at EOS/padding and before the note or bar that exceeds the limits."""
        keep = REMIGrammar.for_tokenizer(self.melody_tokenizer).keep_within(ids[prompt_length:], max_new_notes,
                                                                            max_bars)
        return ids[:prompt_length + keep]

    def postprocess(self, model_outputs: dict[str, Any], config: MelodyGenerationConfig):
        settings = model_outputs["settings"]
        prompt_length, full = model_outputs["prompt_length"], model_outputs.get("full_prompt_ids")
        results = []
        for i, seq in enumerate(model_outputs["sequences"]):
            # the grammar enforces the limits itself; the unconstrained path stops one note or bar late
            limits = (None, None) if config.constrained else (config.max_new_notes, config.max_bars)
            ids = self._trim(seq, prompt_length, *limits)
            length = prompt_length
            if full is not None:  # a long prompt was continued from its last bars: the whole prompt goes back in front
                ids, length = [*full, *ids[prompt_length:]], len(full)
            if config.output_type == "ids":
                results.append(ids)
                continue
            melody = GeneratedMelody.from_ids(self.melody_tokenizer, ids, length,
                                              model_outputs["num_prompt_notes"],
                                              {**settings, "melody_seed": model_outputs["melody_seeds"][i]})
            if config.output_type == "score":
                results.append(melody.score)
            elif config.output_type == "midi":
                results.append(melody.to_midi_bytes())
            elif config.output_type == "dict":
                results.append(melody.to_dict())
            else:
                results.append(melody)
        return results


def _is_prompt_stream(inputs: Any) -> bool:
    """An iterable of prompts that is not itself one prompt (a path, bytes, a score, token ids) nor a list."""
    if inputs is None or isinstance(inputs, str | bytes | bytearray | os.PathLike | dict | list | tuple):
        return False
    if hasattr(inputs, "tracks") and hasattr(inputs, "ticks_per_quarter"):  # a symusic.Score
        return False
    return hasattr(inputs, "__iter__") or (hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__"))


MelodyPipeline.__call__.__doc__ = MelodyPipeline.__call__.__doc__.replace("{options}", options_doc(16))

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
    wrapped = _with_bundled_names(transformers.pipelines.pipeline)
    transformers.pipelines.pipeline = wrapped
    transformers.pipeline = wrapped


_install_bundled_names()
