"""Musical facts every module shares: ticks per quarter, the pitch range, meters and bar lengths, note names, keys.

Written once here; the tokenizer, the corpora, the grammar, the generation options, the files we write (MIDI key
signatures, ABC) and the CLI help read them from this module.

Examples:
    >>> from hf_melody.music import PITCH_RANGE, bar_ticks, note_name, parse_key
    >>> bar_ticks(6, 8), note_name(PITCH_RANGE[0]), parse_key("Am").name
    (1440, 'G2', 'A minor')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ConfigError

__all__ = [
    "GM_PROGRAMS",
    "GRID",
    "MODES",
    "NOTE_NAMES",
    "PITCH_RANGE",
    "PLACEMENT_RANGE",
    "TIME_SIGNATURE_RANGE",
    "TPQ",
    "Key",
    "bar_start_ticks",
    "bar_ticks",
    "estimate_key",
    "key_name_of_signature",
    "key_signature",
    "note_name",
    "parse_key",
    "pitch_range_text",
    "program_number",
    "spell_pitch",
    "tokenizer_pitch_range",
]

# ---- time -----------------------------------------------------------------------------------------------------------

TPQ = 480
"""Ticks per quarter note of every melody record and of every score we build."""
GRID = TPQ // 4
"""Onsets are quantized to sixteenth notes, the finest position of the tokenizer."""

TIME_SIGNATURE_RANGE: dict[int, list[int]] = {
    1: [3, 4],
    2: [2, 3, 4, 6],
    4: list(range(1, 13)),
    8: list(range(1, 13)),
    16: [3, 5, 6, 7, 9, 12],
}
"""Supported meters, denominator -> numerators. Wider than miditok's default: the folk corpora use 3/2, 4/2, 6/4,
3/1 ... (see STACK-NOTES)."""
DEFAULT_TIME_SIGNATURE = (4, 4)
"""The meter of a score (or of its beginning) that states none, as MIDI and miditok's decoder assume."""


def bar_ticks(numerator: int, denominator: int, tpq: int = TPQ) -> int:
    """Length of one bar of `numerator/denominator` in ticks (`tpq` per quarter note).

    Examples:
        >>> bar_ticks(3, 4), bar_ticks(6, 8, tpq=8)
        (1440, 24)
    """
    return numerator * tpq * 4 // denominator


def bar_start_ticks(score, n_bars: int | None = None) -> list[int]:
    """Ticks at which the bars of a `symusic.Score` start, following its time signatures (4/4 before the first).

    With `n_bars`, the starts of bars 0..n_bars (the last one is the end of bar n_bars-1); without, every bar
    start up to the end of the score plus the bar line after it.

    Examples:
        >>> bar_start_ticks(score, 2)          # a 3/4 tune at 480 ticks per quarter   # doctest: +SKIP
        [0, 1440, 2880]
    """
    tss = sorted((int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures)
    if not tss or tss[0][0] > 0:
        tss.insert(0, (0, *DEFAULT_TIME_SIGNATURE))
    tpq = score.ticks_per_quarter
    end = max(score.end(), 1)
    starts, tick, k = [0], 0, 0
    while (len(starts) <= n_bars) if n_bars is not None else tick <= end:
        while k + 1 < len(tss) and tss[k + 1][0] <= tick:
            k += 1
        tick += bar_ticks(tss[k][1], tss[k][2], tpq)
        starts.append(tick)
    return starts


# ---- pitch ----------------------------------------------------------------------------------------------------------

PITCH_RANGE: tuple[int, int] = (43, 91)
"""Inclusive MIDI pitch range of the melody tokenizer (G2..G6): every tune of the folk corpora fits by octaves (the
widest need 44..88), with room to transpose."""
PLACEMENT_RANGE: tuple[int, int] = (48, 84)
"""Melodies are first placed by whole octaves into C3..C6, the register of the folk corpora; only a tune that
cannot fit there uses the wider `PITCH_RANGE` (so the corpora's tunes keep the octave they always had)."""

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Pitch-class names, sharps and flats as folk tunes most often spell them."""


def note_name(pitch: int) -> str:
    """`60` -> `"C4"` (scientific pitch notation, MIDI 60 = middle C).

    Examples:
        >>> note_name(60), note_name(70)
        ('C4', 'Bb4')
    """
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def tokenizer_pitch_range(tokenizer) -> tuple[int, int]:
    """The lowest and highest pitch a tokenizer has a `Pitch_` token for (a `MelodyTokenizer`, or anything with a
    `base_vocab` of token strings).

    Examples:
        >>> tokenizer_pitch_range(MelodyTokenizer()) == PITCH_RANGE                       # doctest: +SKIP
        True
    """
    pitches = [int(t[6:]) for t in tokenizer.base_vocab if t.startswith("Pitch_")]
    return min(pitches), max(pitches)


def pitch_range_text(pitch_range: tuple[int, int] = PITCH_RANGE) -> str:
    """How help texts show a pitch range.

    Examples:
        >>> pitch_range_text()
        '43..91 (G2..G6)'
    """
    lo, hi = pitch_range
    return f"{lo}..{hi} ({note_name(lo)}..{note_name(hi)})"


# ---- keys -----------------------------------------------------------------------------------------------------------

MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic minor": (0, 2, 3, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
}
"""Scales by name, as semitones above the tonic. Aliases: ionian = major, aeolian / natural minor = minor."""
MODE_ALIASES = {"ionian": "major", "aeolian": "minor", "natural minor": "minor", "maj": "major", "min": "minor",
                "pentatonic": "major pentatonic"}
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_MAJOR_OFFSET = {"major": 0, "minor": 9, "harmonic minor": 9, "melodic minor": 9, "dorian": 2, "phrygian": 4,
                 "lydian": 5, "mixolydian": 7, "locrian": 11, "major pentatonic": 0, "minor pentatonic": 9}
"""Semitones from a mode's tonic down to the tonic of the major scale with the same key signature."""
MAJOR_BY_SHARPS = {-7: "Cb", -6: "Gb", -5: "Db", -4: "Ab", -3: "Eb", -2: "Bb", -1: "F", 0: "C", 1: "G", 2: "D",
                   3: "A", 4: "E", 5: "B", 6: "F#", 7: "C#"}
"""The major key of each key signature (sharps > 0, flats < 0)."""
MINOR_BY_SHARPS = {-7: "Ab", -6: "Eb", -5: "Bb", -4: "F", -3: "C", -2: "G", -1: "D", 0: "A", 1: "E", 2: "B",
                   3: "F#", 4: "C#", 5: "G#", 6: "D#", 7: "A#"}
"""The minor key of each key signature (sharps > 0, flats < 0)."""


@dataclass(frozen=True)
class Key:
    """A tonic and the pitch classes of its scale (0 = C).

    Examples:
        >>> parse_key("D minor")
        Key(name='D minor', tonic=2, pitch_classes=frozenset({0, 2, 4, 5, 7, 9, 10}))
    """

    name: str
    tonic: int
    pitch_classes: frozenset[int]

    @property
    def mode(self) -> str:
        """The mode's name, e.g. "minor" for "D minor"."""
        return self.name.split(" ", 1)[1]


def parse_key(key: str) -> Key:
    """A `Key` from a name like "D minor", "F# major", "Bb dorian", "Am" or "G" (major by default).

    Raises:
        ConfigError: a name that is not a tonic A-G (with # or b) followed by a mode of `MODES`.

    Examples:
        >>> parse_key("Am").pitch_classes == parse_key("C major").pitch_classes
        True
    """
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"key={key!r}: give a key name such as 'D minor' or 'F# major'")
    words = key.replace("_", " ").replace("-", " ").split()
    head, mode = words[0], " ".join(w.lower() for w in words[1:])
    letter = head[:1].upper()
    if letter not in _LETTERS:
        raise ConfigError(f"key={key!r}: the tonic must be a note name A-G (with # or b), e.g. 'D minor'")
    rest = head[1:]
    accidental = 0
    while rest[:1] in ("#", "b", "♯", "♭"):
        accidental += 1 if rest[0] in "#♯" else -1
        rest = rest[1:]
    if rest in ("m", "min"):
        mode = mode or "minor"
    elif rest:
        raise ConfigError(f"key={key!r}: cannot read the tonic {head!r}; write e.g. 'F#', 'Bb' or 'Am'")
    mode = MODE_ALIASES.get(mode or "major", mode or "major")
    if mode not in MODES:
        raise ConfigError(f"key={key!r}: unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    tonic = (_LETTERS[letter] + accidental) % 12
    return Key(f"{head[0].upper()}{head[1:len(head) - len(rest)]} {mode}", tonic,
               frozenset((tonic + step) % 12 for step in MODES[mode]))


def key_signature(key: str) -> tuple[int, int]:
    """`(sharps, tonality)` of a key name for a MIDI key signature: flats are negative, tonality 1 is minor.

    Examples:
        >>> key_signature("D minor"), key_signature("Bb major"), key_signature("G mixolydian")
        ((-1, 1), (-2, 0), (0, 0))
    """
    parsed = parse_key(key)
    major_pc = (parsed.tonic - _MAJOR_OFFSET[parsed.mode]) % 12
    sharps = (major_pc * 7) % 12
    if sharps > 6 or (sharps == 6 and "b" in parsed.name.split(" ")[0][1:]):
        sharps -= 12
    return sharps, int(parsed.mode.endswith("minor"))


def key_name_of_signature(sharps: int, minor: bool = False) -> str:
    """The key a key signature stands for, written as ABC does ("D", "Bbm").

    Examples:
        >>> key_name_of_signature(-1, minor=True), key_name_of_signature(2)
        ('Dm', 'D')
    """
    return MINOR_BY_SHARPS[sharps] + "m" if minor else MAJOR_BY_SHARPS[sharps]


KEY_PROFILES = ((0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
                (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330))
"""Major and minor key profiles (Temperley's Kostka-Payne weights, tonic first) that `estimate_key` correlates
with a melody: the best of four profiles on the corpora's annotated keys (`benchmarks/RESULTS.md` section 23)."""
FINAL_NOTE_WEIGHT = 0.1
"""What `estimate_key` adds to the correlation of the keys whose tonic is the melody's last note (folk tunes end on
their tonic): Essen tonics 0.870 -> 0.872, O'Neill's major/minor keys 0.894 -> 0.926 (RESULTS.md section 23)."""
_TONIC_NAMES = {"major": ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"),
                "minor": ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")}
"""How `estimate_key` names each tonic: the spelling with the fewer accidentals in its key signature."""
_STEPS = "CDEFGAB"
_CHROMATIC_DEGREE = (0, 0, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6)
"""Scale degree (0 = tonic) that spells each interval above the tonic outside the mode's scale: #1 (b2 in modes
with a minor third), b3, #4, b6, b7 (and the major 3rd, 6th, 7th in minor)."""


def _correlation(xs: list[float], ys: tuple[float, ...]) -> float:
    mx, my = sum(xs) / 12, sum(ys) / 12
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / (sxx * syy) ** 0.5 if sxx and syy else 0.0


def estimate_key(notes: Iterable[tuple[int, int, int]], profiles: tuple[tuple[float, ...], ...] = KEY_PROFILES,
                 final_note_weight: float = FINAL_NOTE_WEIGHT) -> str | None:
    """The major or minor key of a melody, from `(onset, duration, pitch)` notes: the duration-weighted pitch-class
    histogram correlated with the major and minor `profiles` in each of the 24 keys (Krumhansl-Schmuckler), the
    keys on the last note's pitch class favoured by `final_note_weight`. None for no notes.

    Examples:
        >>> estimate_key([(0, 480, 62), (480, 480, 66), (960, 480, 69), (1440, 960, 62)])
        'D major'
        >>> estimate_key([(0, 480, 69), (480, 480, 72), (960, 480, 76), (1440, 480, 71), (1920, 960, 69)])
        'A minor'
    """
    histogram = [0.0] * 12
    last = None
    for onset, duration, pitch in notes:
        histogram[pitch % 12] += duration
        if last is None or onset >= last[0]:
            last = (onset, pitch % 12)
    if last is None:
        return None
    best = None
    for minor, profile in enumerate(profiles):
        for tonic in range(12):
            rotated = tuple(profile[(pc - tonic) % 12] for pc in range(12))
            r = _correlation(histogram, rotated) + (final_note_weight if tonic == last[1] else 0.0)
            if best is None or r > best[0]:
                best = (r, tonic, "minor" if minor else "major")
    _, tonic, mode = best
    return f"{_TONIC_NAMES[mode][tonic]} {mode}"


def spell_pitch(pitch: int, key: str) -> tuple[str, int, int]:
    """`(letter, alter, octave)` of a MIDI pitch written in `key`: the notes of the mode's scale by their degree,
    the others as #1 (b2 in minor modes), b3, #4, b6, b7 above the tonic (so D minor's leading tone is C#, never
    Db; F major's fourth is Bb).

    Examples:
        >>> spell_pitch(61, "D minor"), spell_pitch(70, "F major"), spell_pitch(63, "E major")
        (('C', 1, 4), ('B', -1, 4), ('D', 1, 4))
    """
    parsed = parse_key(key)
    steps = MODES[parsed.mode]
    interval = (pitch - parsed.tonic) % 12
    if len(steps) == 7 and interval in steps:
        degree = steps.index(interval)
    else:
        degree = 1 if interval == 1 and 3 in steps else _CHROMATIC_DEGREE[interval]
    letter = _STEPS[(_STEPS.index(parsed.name[0]) + degree) % 7]
    alter = (pitch - _LETTERS[letter] + 6) % 12 - 6
    return letter, alter, (pitch - alter) // 12 - 1


# ---- instruments ----------------------------------------------------------------------------------------------------

GM_PROGRAMS = tuple("""acoustic grand piano|bright acoustic piano|electric grand piano|honky-tonk piano|
electric piano 1|electric piano 2|harpsichord|clavinet|celesta|glockenspiel|music box|vibraphone|marimba|xylophone|
tubular bells|dulcimer|drawbar organ|percussive organ|rock organ|church organ|reed organ|accordion|harmonica|
tango accordion|acoustic guitar (nylon)|acoustic guitar (steel)|electric guitar (jazz)|
electric guitar (clean)|electric guitar (muted)|overdriven guitar|distortion guitar|guitar harmonics|
acoustic bass|electric bass (finger)|electric bass (pick)|fretless bass|slap bass 1|slap bass 2|synth bass 1|
synth bass 2|violin|viola|cello|contrabass|tremolo strings|pizzicato strings|orchestral harp|timpani|
string ensemble 1|string ensemble 2|synth strings 1|synth strings 2|choir aahs|voice oohs|synth voice|
orchestra hit|trumpet|trombone|tuba|muted trumpet|french horn|brass section|synth brass 1|synth brass 2|
soprano sax|alto sax|tenor sax|baritone sax|oboe|english horn|bassoon|clarinet|piccolo|flute|recorder|
pan flute|blown bottle|shakuhachi|whistle|ocarina|lead 1 (square)|lead 2 (sawtooth)|lead 3 (calliope)|
lead 4 (chiff)|lead 5 (charang)|lead 6 (voice)|lead 7 (fifths)|lead 8 (bass + lead)|pad 1 (new age)|
pad 2 (warm)|pad 3 (polysynth)|pad 4 (choir)|pad 5 (bowed)|pad 6 (metallic)|pad 7 (halo)|pad 8 (sweep)|
fx 1 (rain)|fx 2 (soundtrack)|fx 3 (crystal)|fx 4 (atmosphere)|fx 5 (brightness)|fx 6 (goblins)|fx 7 (echoes)|
fx 8 (sci-fi)|sitar|banjo|shamisen|koto|kalimba|bagpipe|fiddle|shanai|tinkle bell|agogo|steel drums|woodblock|
taiko drum|melodic tom|synth drum|reverse cymbal|guitar fret noise|breath noise|seashore|bird tweet|
telephone ring|helicopter|applause|gunshot"""
                    .replace("\n", "").split("|"))
"""The 128 General MIDI instruments by program number (0 = acoustic grand piano, 40 = violin, 73 = flute)."""
_PROGRAM_ALIASES = {"piano": 0, "grand piano": 0, "guitar": 24, "nylon guitar": 24, "steel guitar": 25, "bass": 32,
                    "strings": 48, "harp": 46, "organ": 19, "sax": 65, "saxophone": 65, "horn": 60, "voice": 52,
                    "choir": 52, "whistle": 78, "tin whistle": 78, "uilleann pipes": 109, "pipes": 109}
"""Short names `program_number` accepts besides `GM_PROGRAMS` (fiddle is 110, the folk fiddle patch)."""


def program_number(program: int | str) -> int:
    """The General MIDI program (0-127) of a number or an instrument name ("flute", "Violin", "acoustic grand
    piano", "piano"); anything else is a `ConfigError` naming a few names.

    Examples:
        >>> program_number("flute"), program_number("Violin"), program_number(71), program_number("piano")
        (73, 40, 71, 0)
    """
    if isinstance(program, bool) or not isinstance(program, int | str):
        raise ConfigError(f"program={program!r}: give a General MIDI number 0-127 or a name like 'flute'")
    if isinstance(program, str) and program.strip().isdigit():
        program = int(program.strip())
    if isinstance(program, int):
        if not 0 <= program <= 127:
            raise ConfigError(f"program={program!r} is outside General MIDI's 0-127 (0 = piano, 40 = violin, 73 = "
                              "flute)")
        return program
    name = " ".join(program.lower().replace("_", " ").split())
    if name in _PROGRAM_ALIASES:
        return _PROGRAM_ALIASES[name]
    if name in GM_PROGRAMS:
        return GM_PROGRAMS.index(name)
    close = [n for n in GM_PROGRAMS if name and name in n][:6]
    raise ConfigError(f"program={program!r} is not a General MIDI instrument; try "
                      f"{', '.join(repr(n) for n in close or ('piano', 'violin', 'flute', 'clarinet', 'fiddle'))}"
                      " or a number 0-127")
