"""The melody REMI tokenizer: its configuration, optional BPE, and save/load beside the model as `miditok.json`.

Examples:
    >>> from hf_melody import MelodyTokenizer
    >>> tok = MelodyTokenizer()
    >>> tok.vocab_size, tok.bos_token_id
    (174, 1)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .bundle import TOKENIZER_FILE, read_json, resolve_file
from .errors import ConfigError, ModelLoadError
from .music import PITCH_RANGE, TIME_SIGNATURE_RANGE, TPQ, tokenizer_pitch_range
from .utils import atomic_write_text

"""miditok's own `tokenizer.json` would clash with transformers' fast-tokenizer file of the same name."""

STYLES: tuple[str, ...] = ("german-folk", "irish", "american-fiddle", "scottish-airs", "chorale", "other")
"""Style control tokens (`Style-<name>_None`), placed right after BOS; `other` is for user folders."""


INFILL_TOKENS: tuple[str, ...] = ("Infill", "InfillSuffix", "InfillMiddle")
"""Fill-in-the-middle markers: `BOS Style Infill <prefix bars> InfillSuffix <suffix bars> InfillMiddle <middle bars>
EOS` teaches the same causal model to regenerate bars between a given prefix and suffix (see
`hf_melody.data.infill_format`)."""


def style_token(style: str) -> str:
    """The token string of a style control token.

    Examples:
        >>> style_token("irish")
        'Style-irish_None'
    """
    return f"Style-{style}_None"


def melody_tokenizer_config(bpe_vocab_size: int | None = None):
    """The REMI `TokenizerConfig` for monophonic melodies: 16th-note grid, time signatures, styles, infill markers."""
    from miditok import TokenizerConfig

    return TokenizerConfig(
        pitch_range=PITCH_RANGE,  # inclusive in miditok 3
        beat_res={(0, 4): 4, (4, 16): 1},
        use_velocities=False,
        use_programs=False,
        use_chords=False,
        use_pitchdrum_tokens=False,
        # No Rest tokens: with them miditok drops the Bar token of every bar a rest runs into, so bars become
        # implicit; without them every bar opens with Bar + TimeSig and a rest is the gap before the next Position.
        use_rests=False,
        use_time_signatures=True,
        use_tempos=False,
        special_tokens=["PAD", "BOS", "EOS", *(f"Style-{s}" for s in STYLES), *INFILL_TOKENS],
        time_signature_range=TIME_SIGNATURE_RANGE,
    )


class MelodyTokenizer:
    """A REMI tokenizer for melodies, with the ids a GPT-2 model needs.

    Wraps a `miditok.REMI` (available as `.miditok`). Token ids are BPE ids once `train_bpe` has run.

    Examples:
        >>> tok = MelodyTokenizer()
        >>> ids = tok.encode(melody)                        # doctest: +SKIP
        >>> score = tok.decode(ids)                         # doctest: +SKIP
    """

    def __init__(self, miditok_tokenizer=None):
        from miditok import REMI

        self.miditok = miditok_tokenizer if miditok_tokenizer is not None else REMI(melody_tokenizer_config())

    # ---- ids -------------------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.miditok)

    @property
    def pad_token_id(self) -> int:
        return self.miditok["PAD_None"]

    @property
    def bos_token_id(self) -> int:
        return self.miditok["BOS_None"]

    @property
    def eos_token_id(self) -> int:
        return self.miditok["EOS_None"]

    @property
    def bar_token_id(self) -> int:
        """Id of `Bar_None`, which opens every bar (no BPE merges cross it in our melodies)."""
        return self.miditok["Bar_None"]

    @property
    def style_token_ids(self) -> list[int]:
        return [self.miditok[style_token(s)] for s in STYLES]

    @property
    def infill_token_ids(self) -> dict[str, int]:
        """`{"Infill": id, "InfillSuffix": id, "InfillMiddle": id}`; a `ModelLoadError` for an older vocabulary."""
        try:
            return {name: self.miditok[f"{name}_None"] for name in INFILL_TOKENS}
        except KeyError as e:
            raise ModelLoadError("this tokenizer has no infill tokens (a bundle made before hf_melody 0.2); "
                                 "use a bundled checkpoint or retrain to infill") from e

    @property
    def is_bpe(self) -> bool:
        return bool(self.miditok.is_trained)

    def style_token_id(self, style: str) -> int:
        """Id of the control token of `style` (one of `STYLES`)."""
        if style not in STYLES:
            raise ConfigError(f"unknown style {style!r}; choose one of: {', '.join(STYLES)}")
        return self.miditok[style_token(style)]

    @property
    def base_vocab(self) -> dict[str, int]:
        """Token string -> base (pre-BPE) id."""
        return self.miditok.vocab

    # ---- encode / decode -------------------------------------------------------------------------------------
    def encode(self, melody_or_score, bos: bool = False, eos: bool = False, style: str | None = None) -> list[int]:
        """Token ids of a `Melody` or one-track `symusic.Score` (BPE applied if trained).

        With `bos`/`eos` the sequence is framed by BOS (then the style token, if `style` is given) and EOS.
        """
        score = melody_or_score.to_score() if hasattr(melody_or_score, "to_score") else melody_or_score
        seqs = self.miditok.encode(score)
        seq = seqs[0] if isinstance(seqs, list) else seqs
        ids = list(seq.ids)
        head = [self.bos_token_id] if bos else []
        if style is not None:
            head.append(self.style_token_id(style))
        return head + ids + ([self.eos_token_id] if eos else [])

    def decode(self, ids: Sequence[int]):
        """A `symusic.Score` (`music.TPQ` = 480 ticks per quarter) from token ids; special tokens are ignored."""
        specials = set(self.miditok.special_tokens_ids)
        body = [int(i) for i in ids if int(i) not in specials]
        score = self.miditok.decode([body])
        return score.resample(TPQ, min_dur=1) if score.ticks_per_quarter != TPQ else score

    def encode_base_tokens(self, tokens: Sequence[str]) -> list[int]:
        """Model ids of base token strings such as `["Bar_None", "TimeSig_3/4"]` (BPE applied if trained)."""
        from miditok import TokSequence

        seq = TokSequence(tokens=list(tokens))
        self.miditok.complete_sequence(seq)
        if self.is_bpe:
            self.miditok.encode_token_ids(seq)
        return list(seq.ids)

    def to_base_tokens(self, ids: Sequence[int]) -> list[str]:
        """Base token strings of `ids` (BPE ids expanded)."""
        from miditok import TokSequence

        seq = TokSequence(ids=[int(i) for i in ids], are_ids_encoded=self.is_bpe)
        if self.is_bpe:
            self.miditok.decode_token_ids(seq)
        self.miditok.complete_sequence(seq)
        return list(seq.tokens)

    def tokens_errors(self, ids: Sequence[int]) -> float:
        """miditok's token-syntax error rate of one generated sequence (0.0 means fully valid)."""
        from miditok import TokSequence

        specials = set(self.miditok.special_tokens_ids)
        seq = TokSequence(ids=[int(i) for i in ids if int(i) not in specials], are_ids_encoded=self.is_bpe)
        if self.is_bpe:
            self.miditok.decode_token_ids(seq)
        self.miditok.complete_sequence(seq)
        return float(self.miditok.tokens_errors(seq))

    def transpose_ids(self, ids: Sequence[int], semitones: int) -> list[int]:
        """`ids` with every `Pitch` token moved by `semitones` (plain REMI ids only; the caller keeps the range)."""
        table = self._pitch_shift_table()
        return [table[int(i)] + semitones if table[int(i)] >= 0 else int(i) for i in ids]

    def _pitch_shift_table(self) -> list[int]:
        """Per id: the id itself for a `Pitch` token, -1 for any other token. miditok numbers pitches consecutively
        (checked here), so a pitch id plus k is the id of the pitch k semitones higher."""
        if getattr(self, "_shift_table", None) is None:
            if self.is_bpe:
                raise ValueError("transpose_ids works on plain REMI ids, not BPE ids; transpose the melody instead")
            vocab = self.miditok.vocab
            table = [-1] * len(vocab)
            for token, i in vocab.items():
                if token.startswith("Pitch_"):
                    table[i] = i
            lo, hi = tokenizer_pitch_range(self)
            pitch_ids = sorted(vocab[f"Pitch_{p}"] for p in range(lo, hi + 1))
            if pitch_ids != list(range(pitch_ids[0], pitch_ids[0] + len(pitch_ids))):
                raise ValueError("miditok's Pitch ids are not consecutive; transpose the melody instead")
            self._shift_table = table
        return self._shift_table

    # ---- BPE -------------------------------------------------------------------------------------------------
    def train_bpe(self, vocab_size: int, melodies: Sequence) -> None:
        """Train BPE on melodies (Melody records) to `vocab_size` tokens (must exceed the base vocabulary)."""
        import tempfile

        if vocab_size <= len(self.miditok.vocab):
            raise ConfigError(
                f"bpe_vocab_size={vocab_size} must be larger than the base vocabulary ({len(self.miditok.vocab)}); "
                "raise it (e.g. 500) or set it to null to train without BPE"
            )
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i, m in enumerate(melodies):
                p = Path(tmp) / f"{i}.mid"
                m.to_score().dump_midi(str(p))
                paths.append(p)
            self.miditok.train(vocab_size=vocab_size, model="BPE", files_paths=paths)

    # ---- the calls Hugging Face users try ------------------------------------------------------------------------
    @property
    def id_to_token(self) -> list[str]:
        """The token string of every id (BPE tokens as miditok writes them)."""
        vocab = self.miditok.vocab_model if self.is_bpe else self.miditok.vocab
        out = [""] * self.vocab_size
        for token, i in vocab.items():
            out[int(i)] = token
        return out

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """Token strings of `ids`, e.g. `['BOS_None', 'Bar_None', 'TimeSig_4/4', ...]`."""
        table = self.id_to_token
        return [table[int(i)] for i in ids]

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of token strings; `ConfigError` naming an unknown one."""
        vocab = self.miditok.vocab_model if self.is_bpe else self.miditok.vocab
        unknown = [t for t in tokens if t not in vocab]
        if unknown:
            raise ConfigError(f"unknown token {unknown[0]!r}; see MelodyTokenizer.id_to_token for the vocabulary")
        return [int(vocab[t]) for t in tokens]

    def __call__(self, melody, style: str | None = None) -> dict[str, list[int]]:
        """`{"input_ids", "attention_mask"}` of a MIDI path or bytes, a `Melody` or a `symusic.Score`, framed as
        the models were trained (BOS, the style token if given, EOS).

        Examples:
            >>> MelodyTokenizer()("tests/fixtures/kinder0_0.mid")["input_ids"][:3]            # doctest: +SKIP
            [1, 4, 151]
        """
        if isinstance(melody, str | os.PathLike | bytes | bytearray):
            from .data.corpora import read_midi  # lazily: the tokenizer sits below the data package

            melody = read_midi(melody if not isinstance(melody, bytearray) else bytes(melody))
        ids = self.encode(melody, bos=True, eos=True, style=style)
        return {"input_ids": ids, "attention_mask": [1] * len(ids)}

    def batch_decode(self, sequences: Sequence[Sequence[int]]) -> list:
        """One `symusic.Score` per id sequence (what `decode` gives for each)."""
        return [self.decode(ids) for ids in sequences]

    def hf_tokenizer(self):
        """The same vocabulary as a `transformers.PreTrainedTokenizerFast` (token strings <-> ids, no MIDI):
        what `AutoTokenizer.from_pretrained(bundle)` loads. MIDI in and out stays with this class.

        Examples:
            >>> fast = MelodyTokenizer().hf_tokenizer()
            >>> fast.convert_tokens_to_ids(["BOS_None", "Bar_None"]) == MelodyTokenizer().convert_tokens_to_ids(
            ...     ["BOS_None", "Bar_None"])
            True
        """
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        vocab = {token: i for i, token in enumerate(self.id_to_token)}
        core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="PAD_None"))
        core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins the tokens with spaces
        return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="BOS_None", eos_token="EOS_None",
                                       pad_token="PAD_None", unk_token="PAD_None",
                                       model_input_names=["input_ids", "attention_mask"])

    # ---- save / load -----------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write `miditok.json` (the music tokenizer) and the Hugging Face view of its vocabulary
        (`tokenizer.json`, `tokenizer_config.json`, for `AutoTokenizer`) into `save_directory`."""
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        tmp = save_directory / f".{TOKENIZER_FILE}.partial"
        self.miditok.save(tmp)
        text = tmp.read_text()
        tmp.unlink()
        self.hf_tokenizer().save_pretrained(str(save_directory))
        return atomic_write_text(save_directory / TOKENIZER_FILE, text)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **hub_kwargs) -> MelodyTokenizer:
        """Load `miditok.json` from a bundle folder, a bundled checkpoint name, or a Hub id (via the HF cache)."""
        from miditok import REMI

        path = resolve_file(name_or_path, TOKENIZER_FILE, **hub_kwargs)
        check_tokenizer_file(path)
        try:
            return cls(REMI(params=path))
        except Exception as e:
            raise ModelLoadError(f"{path}: not a valid miditok tokenizer file ({e})") from e


MAX_BEAT_RES_TOKENS = 4096
"""The most position and duration steps a `miditok.json`'s `beat_res` may describe (the bundled 16th-note grid over
16 beats has 28): a huge one would build a vocabulary of millions of tokens before the model sees it."""
MAX_NUM_VELOCITIES = 128


def check_tokenizer_file(path: str | os.PathLike) -> dict:
    """The JSON of a `miditok.json`, checked before miditok builds from it: `ModelLoadError` naming the file, the
    key and the fix for a `beat_res`, `pitch_range` or `num_velocities` of the wrong type or beyond its limit.

    Examples:
        >>> check_tokenizer_file(resolve_file("folk-base", TOKENIZER_FILE))["config"]["beat_res"]
        {'0_4': 4, '4_16': 1}
    """
    fix = "restore the bundle's own miditok.json (MelodyTokenizer().save_pretrained writes one)"
    data = read_json(path, fix)
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path}: no \"config\" object; {fix}")
    beat_res, steps = config.get("beat_res", {}), 0
    if not isinstance(beat_res, dict):
        raise ModelLoadError(f"{path}: beat_res is {beat_res!r}; give an object such as {{\"0_4\": 4}}: {fix}")
    for span, res in beat_res.items():
        bounds = span.split("_")
        if (len(bounds) != 2 or not all(b.isdigit() for b in bounds) or int(bounds[0]) >= int(bounds[1])
                or isinstance(res, bool) or not isinstance(res, int) or res < 1):
            raise ModelLoadError(f"{path}: beat_res entry {span!r}: {res!r} is not \"start_end\": resolution "
                                 f"(integers, start < end, resolution >= 1); {fix}")
        steps += (int(bounds[1]) - int(bounds[0])) * res
        if steps > MAX_BEAT_RES_TOKENS:
            raise ModelLoadError(f"{path}: beat_res {span!r}: {res!r} makes over {MAX_BEAT_RES_TOKENS} time steps "
                                 f"(hf_melody.tokenizer.MAX_BEAT_RES_TOKENS; the usual grid has 28); {fix}")
    pitch_range = config.get("pitch_range", [0, 127])
    if (not isinstance(pitch_range, list) or len(pitch_range) != 2
            or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 127 for p in pitch_range)
            or pitch_range[0] > pitch_range[1]):
        raise ModelLoadError(f"{path}: pitch_range is {pitch_range!r}; give [low, high], MIDI pitches 0-127: {fix}")
    velocities = config.get("num_velocities", 1)
    if isinstance(velocities, bool) or not isinstance(velocities, int) or not 1 <= velocities <= MAX_NUM_VELOCITIES:
        raise ModelLoadError(f"{path}: num_velocities is {velocities!r}; give an integer from 1 to "
                             f"{MAX_NUM_VELOCITIES}: {fix}")
    return data
