"""Tracking that shows music: at each evaluation, the validation loss as bits per note, and a few melodies sampled
from the model being trained (audio and piano roll), sent to whichever trackers the run reports to
(`--report_to tensorboard`, `wandb` with `WANDB_MODE=offline`, `trackio`, ...).

Bits per note go to every tracker (they ride on the Trainer's own evaluation log as `eval_bits_per_note`); the
melodies go to TensorBoard (audio + image), Weights & Biases and trackio when they are active. Sampling is off
unless `log_melodies` > 0 (a few seconds per evaluation for small models).

Examples:
    >>> hf_melody.train("tiny-debug", report_to="tensorboard", log_melodies=2)          # doctest: +SKIP
"""

from __future__ import annotations

import io
import logging
import math
from typing import Any

from transformers import TrainerCallback

from ..errors import HFMelodyError
from ..export.render import audio_bytes, piano_roll_png
from ..grammar.remi import REMIGrammar
from ..pipelines.melody_generation import MelodyPipeline

logger = logging.getLogger(__name__)

SAMPLE_BARS = 4
"""Bars of each melody sampled at an evaluation: short, so that logging stays cheap."""


def tokens_per_note(dataset, tokenizer) -> float | None:
    """Predicted tokens per note of packed blocks (`labels`, the first token of each block given): the factor that
    turns the Trainer's loss per token into bits per note. None for an empty split or one without notes."""
    if dataset is None or not hasattr(dataset, "__len__") or "labels" not in dataset.column_names:
        return None  # no validation split, or a stream (no length to count)
    notes_per_token = REMIGrammar.for_tokenizer(tokenizer).notes_per_token
    tokens = notes = 0
    for labels in dataset["labels"]:
        scored = [t for t in labels[1:] if t >= 0]
        tokens += len(scored)
        notes += sum(notes_per_token[t] for t in scored)
    return tokens / notes if notes else None


class MelodyTrackingCallback(TrainerCallback):
    """Adds `eval_bits_per_note` to every evaluation log and, with `num_melodies`, logs sampled melodies.

    Put it first in the Trainer's callbacks (`trainer.callback_handler.callbacks.insert(0, ...)`, as `train()`
    does) so the trackers' own callbacks see the bits per note in the same log.

    Examples:
        >>> per_note = tokens_per_note(dsd["validation"], tokenizer)                     # doctest: +SKIP
        >>> callback = MelodyTrackingCallback(tokenizer, per_note, num_melodies=2)          # doctest: +SKIP
    """

    def __init__(self, tokenizer, tokens_per_note: float | None, num_melodies: int = 0, seed: int = 0):
        self.tokenizer = tokenizer
        self.tokens_per_note = tokens_per_note
        self.num_melodies = num_melodies
        self.seed = seed
        self.trackers: list = []  # the reporting callbacks of the Trainer, set by `train()`
        self.logged: list[dict[str, Any]] = []  # what was sent, per evaluation (for tests and notebooks)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "eval_loss" in logs and self.tokens_per_note:
            logs["eval_bits_per_note"] = logs["eval_loss"] / math.log(2) * self.tokens_per_note
            # the Trainer appended a copy of this log to its history already: the training log gets it too
            if state.log_history and state.log_history[-1].get("eval_loss") == logs["eval_loss"]:
                state.log_history[-1]["eval_bits_per_note"] = logs["eval_bits_per_note"]

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if not self.num_melodies or model is None or not state.is_world_process_zero:
            return
        melodies = self._sample(model)
        media = [self._media(m) for m in melodies]
        for tracker in self.trackers:
            try:
                _send(tracker, media, state.global_step)
            except Exception as e:  # noqa: BLE001 - a tracker failing must not stop training
                logger.warning("could not log melodies to %s: %s", type(tracker).__name__, e)
        self.logged.append({"step": state.global_step, "melodies": media})

    def _sample(self, model) -> list:
        was_training = model.training
        try:
            pipe = MelodyPipeline(model=model, melody_tokenizer=self.tokenizer)
            # `generate()`: the model's weights change between evaluations, the lean decoder's cache would not know
            return pipe(num_return_sequences=self.num_melodies, seed=self.seed, num_bars=SAMPLE_BARS,
                        decoder="generate")
        finally:
            model.train(was_training)

    @staticmethod
    def _media(melody) -> dict[str, Any]:
        out: dict[str, Any] = {"notes": melody.num_notes, "png": piano_roll_png(melody.score, title=melody.title)}
        try:
            out["wav"] = audio_bytes(melody.score, "wav")
        except HFMelodyError as e:  # no soundfont: the piano roll still goes out
            logger.info("no audio for the tracked melodies: %s", e)
        return out


def _send(tracker, media: list[dict[str, Any]], step: int) -> None:
    """Send the melodies to one reporting callback of the Trainer, by its kind."""
    import numpy as np
    from PIL import Image

    images = [np.asarray(Image.open(io.BytesIO(m["png"])).convert("RGB")) for m in media]
    waves = [_wave(m["wav"]) for m in media if "wav" in m]
    kind = type(tracker).__name__
    if kind == "TensorBoardCallback" and getattr(tracker, "tb_writer", None) is not None:
        for i, image in enumerate(images):
            tracker.tb_writer.add_image(f"melodies/piano_roll_{i}", image, step, dataformats="HWC")
        for i, (rate, wave) in enumerate(waves):
            tracker.tb_writer.add_audio(f"melodies/audio_{i}", wave[None, :], step, sample_rate=rate)
        tracker.tb_writer.flush()
    elif kind == "WandbCallback" and getattr(tracker, "_wandb", None) is not None:
        wandb = tracker._wandb
        wandb.log({"melodies/piano_roll": [wandb.Image(image) for image in images],
                   "melodies/audio": [wandb.Audio(wave, sample_rate=rate) for rate, wave in waves],
                   "train/global_step": step})
    elif kind == "TrackioCallback" and getattr(tracker, "_initialized", False):
        trackio = tracker._trackio
        trackio.log({**{f"melodies/piano_roll_{i}": trackio.Image(image) for i, image in enumerate(images)},
                     **{f"melodies/audio_{i}": trackio.Audio((wave * 32767).astype("int16"), sample_rate=rate)
                        for i, (rate, wave) in enumerate(waves)}}, step=step)


def _wave(data: bytes) -> tuple[int, Any]:
    """A WAV file's sample rate and its mono float samples in [-1, 1]."""
    import wave

    import numpy as np

    with wave.open(io.BytesIO(data)) as w:
        rate, channels, frames = w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())
    samples = np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0
    return rate, samples.reshape(-1, channels).mean(axis=1)
