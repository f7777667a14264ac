"""Same seed, same bytes: the bundled checkpoints give the MIDI recorded in `fixtures/reproducible_midi.json`.

The record was taken before the package was restructured into subpackages (issue 21) and guards every road into
decoding: the pipeline's lean and `generate()` decoders, prompts, constraints, infilling, `generate_ids` and the CLI.
After an intended change of the sampled music, rewrite it with `HF_MELODY_RECORD=1 pytest tests/test_reproducible.py`
and say why in the commit.

`fixtures/reproducible_notes.json` records the notes of the same files as the musician sees them: each note's onset
relative to the first note, its duration and pitch. A change of the files alone (meta events, a pickup moved to time
0) re-records the bytes and must leave the notes record as it is; a change of the sampled music rewrites that too,
with `HF_MELODY_RECORD=notes`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hf_melody import MelodyPipeline

FIXTURES = Path(__file__).parent / "fixtures"
RECORD = FIXTURES / "reproducible_midi.json"
NOTES_RECORD = FIXTURES / "reproducible_notes.json"
TUNE = FIXTURES / "kinder0_0.mid"


def _sha_of(data: bytes | list[int]) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return hashlib.sha256(raw).hexdigest()


def _relative_notes(midi: bytes) -> list[tuple[int, int, int]]:
    """(onset from the first note, duration, pitch) of every note of a MIDI file, in ticks."""
    from symusic import Score

    notes = sorted((n.time, n.duration, n.pitch) for t in Score.from_midi(midi).tracks for n in t.notes)
    first = notes[0][0] if notes else 0
    return [(t - first, d, p) for t, d, p in notes]


def _outputs(tmp_path: Path, midis: dict[str, bytes] | None = None) -> dict[str, str]:
    folk, original = MelodyPipeline.from_pretrained("folk-base"), MelodyPipeline.from_pretrained("original")
    tok = original.melody_tokenizer
    out: dict[str, str] = {}
    midis = {} if midis is None else midis

    def _sha(data: bytes | list[int], name: str = "") -> str:
        if isinstance(data, bytes) and name:
            midis[name] = data
        return _sha_of(data)
    for i, m in enumerate(folk(num_return_sequences=2, seed=0)):
        out[f"folk-base default seed 0 #{i}"] = _sha(m.to_midi_bytes(), f"folk-base default seed 0 #{i}")
    [m] = original(seed=3, key="D minor", pitch_range=(60, 81), num_bars=8, end_on_tonic=True,
                   time_signature="3/4", style="german-folk")
    out["original constrained"] = _sha(m.to_midi_bytes(), "original constrained")
    [m] = original(seed=5, num_bars=4, decoder="generate", top_k=20)
    out["original generate() decoder"] = _sha(m.to_midi_bytes(), "original generate() decoder")
    [m] = original(seed=5, max_new_notes=30, constrained=False, temperature=0.9)
    out["original unconstrained"] = _sha(m.to_midi_bytes(), "original unconstrained")
    [m] = folk(str(TUNE), seed=7, num_bars=4, top_p=0.9)
    out["folk-base continuation of kinder0_0"] = _sha(m.to_midi_bytes(), "folk-base continuation of kinder0_0")
    for i, m in enumerate(original.infill(str(TUNE), bars=(2, 3), num_return_sequences=2, seed=11, key="G major")):
        out[f"original infill bars 2-3 #{i}"] = _sha(m.to_midi_bytes(), f"original infill bars 2-3 #{i}")
    new = original.generate_ids([tok.bos_token_id], exact_bars=2, key="D minor", seed=13)
    out["original generate_ids exact_bars=2"] = _sha(new)
    notes = [(n.pitch, n.onset, n.duration, n.bar) for n in folk.stream(seed=17, num_bars=4)]
    out["folk-base stream"] = _sha(json.dumps(notes).encode())
    from hf_melody.cli import main
    main(["generate", "--model", "original", "--num", "2", "--seed", "19", "--out", str(tmp_path / "cli"),
          "--formats", "mid"])
    for f in sorted((tmp_path / "cli").glob("*.mid")):
        out[f"cli generate {f.name}"] = _sha(f.read_bytes(), f"cli generate {f.name}")
    return out


def test_bundled_checkpoints_give_the_recorded_midi(tmp_path):
    midis: dict[str, bytes] = {}
    out = _outputs(tmp_path, midis)
    notes = {name: _sha_of(json.dumps(_relative_notes(data)).encode()) for name, data in sorted(midis.items())}
    if os.environ.get("HF_MELODY_RECORD") == "notes":
        NOTES_RECORD.write_text(json.dumps(notes, indent=1) + "\n")
    assert NOTES_RECORD.is_file(), f"{NOTES_RECORD.name} is missing: it is the record, never written by the test itself"
    # every recorded file has the recorded notes (relative onsets, durations, pitches), whatever its meta events
    assert notes == json.loads(NOTES_RECORD.read_text()), "the notes of a seed changed"
    from symusic import Score

    from hf_melody.export.render import pickup_ticks

    # no file starts with a silent lead-in: a pickup is written from time 0 (issue 23)
    assert all(pickup_ticks(Score.from_midi(data))[0] == 0 for data in midis.values())
    if os.environ.get("HF_MELODY_RECORD") == "1":
        RECORD.write_text(json.dumps(out, indent=1) + "\n")
        pytest.skip(f"recorded {len(out)} outputs in {RECORD.name}")
    recorded = json.loads(RECORD.read_text())
    assert sorted(out) == sorted(recorded)
    changed = [name for name in recorded if out[name] != recorded[name]]
    assert not changed, f"different bytes for the same seed: {changed}"
