"""`GeneratedMelody`: one generated melody and every file a musician may want from it (MIDI, audio, notation, PNG).

Examples:
    >>> melody = pipe(seed=0, key="D minor", num_bars=8)[0]                              # doctest: +SKIP
    >>> melody.save("out/tune", ("mid", "wav", "musicxml", "abc", "png"))                 # doctest: +SKIP
    >>> pipe(seed=0, chords="C G Am F")[0].save("out/song", ("mid", "wav"), chord_track=True)  # doctest: +SKIP

A melody generated over `chords` carries them into every file: markers in the MIDI (and, with `chord_track=True`,
a second track of block chords, heard in the audio too), `<harmony>` in the MusicXML and the SVG, `"Am"` in the ABC,
the symbols along the piano roll's top. Its first bar is then a full bar under the first chord, also when the first
note comes late (a late entry, not a pickup; `hf_melody.export.chords`).
    >>> melody          # in Jupyter: an audio player and the piano roll                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, HFMelodyError
from ..export.display import melody_html
from ..export.notation import save_abc, save_musicxml, save_svg
from ..export.render import (
    AUDIO_FORMATS,
    check_formats,
    midi_bytes,
    save_audio,
    save_midi,
    save_piano_roll,
    save_wav,
    with_metadata,
)
from ..generation.configuration import SHOWN_SETTINGS
from ..generation.infill import clip_to_bars
from ..harmony.chords import chord_events
from ..music import MAJOR_BY_SHARPS, MINOR_BY_SHARPS, estimate_key, program_number


@dataclass
class GeneratedMelody:
    """One generated melody.

    Attributes:
        score: the melody as a one-track `symusic.Score` (`music.TPQ` = 480 ticks per quarter), prompt included.
        token_ids: all token ids (prompt + generated), BOS first.
        prompt_length: how many of `token_ids` came from the prompt.
        num_prompt_notes: how many of the score's notes came from the prompt.
        settings: the generation settings (`MelodyGenerationConfig.settings()` of the call, resolved), for
            reproducibility: `seed` is the call's seed (the drawn one when none was given), `melody_seed` the seed
            this melody's sampler used (`seed + i` for the i-th melody; None when decoding was greedy) and
            `decoder` the decoder that ran, so `pipe(**MelodyGenerationConfig.from_settings(m.settings).to_options())`
            regenerates it alone.

    Examples:
        >>> melody = MelodyPipeline.from_pretrained("folk-base")(seed=0, key="D minor", num_bars=8)[0]
        >>> melody
        GeneratedMelody(27 notes, 0 from the prompt, 99 tokens, key='D minor', seed=0)
        >>> melody.save("out/tune", ("mid", "wav", "musicxml"))                              # doctest: +SKIP
    """

    score: Any
    token_ids: list[int]
    prompt_length: int = 0
    num_prompt_notes: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_ids(cls, tokenizer, ids: list[int], prompt_length: int = 0, num_prompt_notes: int = 0,
                 settings: dict[str, Any] | None = None, clip_bars: tuple[int, int, int] | None = None
                 ) -> GeneratedMelody:
        """The finished melody of token ids: decoded, and its score carrying the key/time signature, tempo and title
        as meta events, so every file made from it has them (the one constructor of the pipeline and infilling).

        `clip_bars=(start, stop, n_bars)`: infilling's new notes in bars `start..stop-1` are cut to end by bar `stop`
        (`hf_melody.generation.infill.clip_to_bars`).

        Examples:
            >>> m = GeneratedMelody.from_ids(tok, ids, settings={"key": "D minor", "melody_seed": 0})  # doctest: +SKIP
            >>> m.score.key_signatures                                                       # doctest: +SKIP
        """
        try:
            score = tokenizer.decode(ids)
        except Exception as e:  # miditok raises on some malformed sequences
            raise HFMelodyError(f"could not decode the generated tokens ({e})") from e
        if clip_bars is not None:
            score = clip_to_bars(score, *clip_bars)
        melody = cls(score, ids, prompt_length, num_prompt_notes, dict(settings or {}))
        key = melody.key
        if key is None and melody.chords is not None:  # over chords, the key is heard in the harmony too
            key = estimate_key([*((e.time, e.duration, 60 + pc) for e in melody.chord_events
                                  for pc in sorted(e.chord.pitch_classes)), *melody.notes])
        melody.score = with_metadata(score, key=key, title=melody.title, tempo_qpm=melody.tempo_qpm,
                                     pickup=False, program=melody.program)  # the model's grid; files start at a pickup
        return melody

    @property
    def notes(self) -> list[tuple[int, int, int]]:
        """`(onset, duration, pitch)` in ticks (`music.TPQ` = 480 per quarter)."""
        return [(n.time, n.duration, n.pitch) for t in self.score.tracks for n in t.notes]

    @property
    def num_notes(self) -> int:
        return len(self.notes)

    @property
    def key(self) -> str | None:
        """The key asked for (e.g. "D minor"), written into the files as a key signature; None without one."""
        key = self.settings.get("key")
        return key if isinstance(key, str) and not key.startswith("scale") else None

    @property
    def written_key(self) -> str | None:
        """The key the files are written in: the asked `key`, else the one `hf_melody.music.estimate_key` hears
        (e.g. "Eb major"), None without notes."""
        sigs = self.score.key_signatures
        if self.key or not len(sigs):
            return self.key
        return f"{(MINOR_BY_SHARPS if sigs[0].tonality else MAJOR_BY_SHARPS)[sigs[0].key]} " \
               f"{'minor' if sigs[0].tonality else 'major'}"

    @property
    def chords(self) -> str | None:
        """The progression the melody was generated over (`chords=`, `--chords`), e.g. "C G Am F"; None without."""
        chords = self.settings.get("chords")
        return chords if isinstance(chords, str) and chords.strip() else None

    @property
    def chord_events(self) -> list | None:
        """The chords placed in the score's ticks (`hf_melody.harmony.chord_events`), as the files write them: from
        bar 0 (the first chord there, as the generation had it), or after a continued prompt from the first bar the
        generation wrote in (the prompt's unfinished last bar, else the bar after it); None without chords.

        Examples:
            >>> [(e.time, e.symbol) for e in pipe(seed=0, chords="C G")[0].chord_events]  # doctest: +SKIP
            [(0, 'C'), (1920, 'G')]
        """
        if self.chords is None:
            return None
        first_bar = 0
        if self.num_prompt_notes and self.settings.get("task") != "infill":  # infill: bar b has chord b
            from ..music import bar_start_ticks

            notes = sorted((n.time, n.time + n.duration) for t in self.score.tracks[:1] for n in t.notes)
            end = max(stop for _, stop in notes[:self.num_prompt_notes])
            first_bar = sum(1 for start in bar_start_ticks(self.score)[1:] if start <= end)
        return chord_events(self.score, self.chords, first_bar=first_bar)

    def _chords(self, chord_track: bool) -> list | None:
        if chord_track and self.chords is None:
            raise ConfigError("chord_track=True needs a melody generated over chords; add chords='C G Am F' to the "
                              "call (or --chords)")
        return self.chord_events

    @property
    def program(self) -> int | None:
        """The General MIDI instrument asked for (`program=`, `--program`); None: the score's (piano)."""
        program = self.settings.get("program")
        return program_number(program) if program is not None else None

    @property
    def tempo_qpm(self) -> float | None:
        """The tempo asked for (`tempo_qpm=`, `--tempo`) in quarter notes per minute; None: 120."""
        tempo = self.settings.get("tempo_qpm")
        return float(tempo) if tempo is not None else None

    @property
    def composer(self) -> str:
        """Who the files name as composer: "hf_melody <model>"."""
        model = self.settings.get("model")
        return "hf_melody" + (f" {Path(str(model)).name}" if model else "")

    @property
    def title(self) -> str:
        """A short title for files and players: the model and this melody's seed."""
        model, seed = self.settings.get("model"), self.settings.get("melody_seed")
        return "hf_melody" + (f": {Path(str(model)).name}" if model else "") + (f", seed {seed}" if seed is not None
                                                                                else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain values for `datasets` (`Dataset.map`, `Dataset.from_list`): MIDI bytes, token ids, counts and the
        settings as JSON text (their keys vary by call, which a dataset column cannot hold).

        Examples:
            >>> ds = ds.map(lambda row: pipe(row["prompt"], seed=0, output_type="dict")[0])  # doctest: +SKIP
        """
        import json

        return {"midi": self.to_midi_bytes(), "token_ids": list(self.token_ids), "num_notes": self.num_notes,
                "num_prompt_notes": self.num_prompt_notes, "prompt_length": self.prompt_length,
                "settings": json.dumps(self.settings, default=str)}

    def to_midi_bytes(self, tempo_qpm: float | None = None, chord_track: bool = False) -> bytes:
        """The Standard MIDI File (key/time signature, tempo, track name, instrument and composer included, a pickup
        at time 0; the chords as markers, and as a second track with `chord_track`) as bytes."""
        return midi_bytes(self.score, key=self.key, title=self.title, tempo_qpm=tempo_qpm, composer=self.composer,
                          chords=self._chords(chord_track), chord_track=chord_track)

    def save_midi(self, path: str | os.PathLike, tempo_qpm: float | None = None, chord_track: bool = False) -> Path:
        """Write a Standard MIDI File with key signature (the asked key, else the one heard in the notes), time
        signature, tempo, title as track name, instrument and composer; a pickup starts at time 0 under a short first
        time signature (`hf_melody.export.render.with_metadata`). Over chords: a marker at each chord change, and
        with `chord_track` a second track "Chords" of block chords.

        Examples:
            >>> melody.save_midi("out/song.mid", chord_track=True)                           # doctest: +SKIP
        """
        return save_midi(self.score, path, key=self.key, title=self.title, tempo_qpm=tempo_qpm,
                         composer=self.composer, chords=self._chords(chord_track), chord_track=chord_track)

    def save_wav(self, path: str | os.PathLike, soundfont: str | os.PathLike | None = None,
                 sample_rate: int = 22050, tempo_qpm: float | None = None, chord_track: bool = False) -> Path:
        """Render to a WAV file with a General MIDI soundfont (system one, `soundfont=`, or $HF_MELODY_SOUNDFONT);
        with `chord_track` the block chords play under the melody."""
        return save_wav(self.score, path, soundfont=soundfont, sample_rate=sample_rate, tempo_qpm=tempo_qpm,
                        chords=self._chords(chord_track), chord_track=chord_track)

    def save_audio(self, path: str | os.PathLike, soundfont: str | os.PathLike | None = None,
                   sample_rate: int = 22050, tempo_qpm: float | None = None, chord_track: bool = False) -> Path:
        """Render to .wav, .flac, .ogg or .mp3 (by extension; all but WAV need the `audio` extra); with
        `chord_track` the block chords play under the melody."""
        return save_audio(self.score, path, soundfont=soundfont, sample_rate=sample_rate, tempo_qpm=tempo_qpm,
                          chords=self._chords(chord_track), chord_track=chord_track)

    def save_musicxml(self, path: str | os.PathLike, tempo_qpm: float | None = None) -> Path:
        """Write sheet music as MusicXML (MuseScore, Finale, Sibelius...; needs the `corpus` extra: music21), the
        chords as `<harmony>` symbols."""
        return save_musicxml(self.score, path, key=self.key, title=self.title, tempo_qpm=tempo_qpm,
                             composer=self.composer, program=self.program, chords=self.chord_events)

    def save_abc(self, path: str | os.PathLike, tempo_qpm: float | None = None) -> Path:
        """Write the melody as an ABC tune (needs the `corpus` extra: music21), the chords as `"Am"`."""
        return save_abc(self.score, path, key=self.key, title=self.title, tempo_qpm=tempo_qpm,
                        composer=self.composer, chords=self.chord_events)

    def save_svg(self, path: str | os.PathLike, tempo_qpm: float | None = None) -> Path:
        """Write the engraved score as SVG (verovio from the MusicXML; the `score` extra).

        Examples:
            >>> melody.save_svg("out/tune.svg")                                               # doctest: +SKIP
        """
        return save_svg(self.score, path, key=self.key, title=self.title, tempo_qpm=tempo_qpm,
                        composer=self.composer, program=self.program, chords=self.chord_events)

    def save(self, stem: str | os.PathLike, formats: tuple[str, ...] = ("mid", "wav", "png"),
             soundfont: str | os.PathLike | None = None, tempo_qpm: float | None = None,
             chord_track: bool = False) -> list[Path]:
        """Write `stem.<ext>` for each format of `hf_melody.export.render.FORMATS` (mid, wav, flac, ogg, mp3, png,
        musicxml, abc, svg), at `tempo_qpm` (default: the generation's `tempo_qpm`, else 120). Over chords every
        file names them; `chord_track=True` adds the block chords to the MIDI and the audio (`ConfigError` for a
        melody without chords).

        Examples:
            >>> melody.save("out/tune", ("mid", "musicxml", "flac"), tempo_qpm=96)           # doctest: +SKIP
            >>> melody.save("out/song", ("mid", "wav", "musicxml"), chord_track=True)        # doctest: +SKIP
        """
        stem = Path(stem)
        formats = check_formats(formats)
        self._chords(chord_track)  # before any file is written
        written = []
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            if fmt == "mid":
                written.append(self.save_midi(path, tempo_qpm=tempo_qpm, chord_track=chord_track))
            elif fmt in AUDIO_FORMATS:
                written.append(self.save_audio(path, soundfont=soundfont, tempo_qpm=tempo_qpm, chord_track=chord_track))
            elif fmt == "png":
                written.append(self.save_piano_roll(path, title=self.title))
            elif fmt == "musicxml":
                written.append(self.save_musicxml(path, tempo_qpm=tempo_qpm))
            elif fmt == "svg":
                written.append(self.save_svg(path, tempo_qpm=tempo_qpm))
            else:
                written.append(self.save_abc(path, tempo_qpm=tempo_qpm))
        return written

    def _shown_settings(self) -> dict[str, Any]:
        """The settings a piano roll's title shows (`SHOWN_SETTINGS`: the config fields marked `shown`)."""
        return {k: v for k, v in self.settings.items() if k in SHOWN_SETTINGS and v is not None}

    def save_piano_roll(self, path: str | os.PathLike, title: str = "") -> Path:
        """Draw a piano-roll PNG (prompt notes in grey, the chord symbols along the top)."""
        return save_piano_roll(self.score, path, title=title, settings=self._shown_settings(),
                               prompt_notes=self.num_prompt_notes, chords=self.chord_events)

    def _repr_html_(self) -> str:
        """Jupyter display: an audio player (WAV, when a soundfont is found) above the piano roll."""
        return melody_html(self)

    def __repr__(self) -> str:
        return (f"GeneratedMelody({self.num_notes} notes, {self.num_prompt_notes} from the prompt, "
                f"{len(self.token_ids)} tokens, key={self.key!r}, seed={self.settings.get('melody_seed')})")
