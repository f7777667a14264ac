"""Expectation analysis: information content and entropy of every note, IDyOM-style columns, a PPM beside it.

`analyze(model, dataset)` returns one row per note (a pandas DataFrame) with IDyOM's column names: `dataset.id`,
`melody.id`, `note.id`, `melody.name`, `onset` (quarter-note beats), `onset.seconds`, `cpitch`,
`cpitch.information.content`, `cpitch.entropy`, `cpitch.probability` (the pitch from the past only, the note's onset
marginalised: `evaluation.fair_pitch`, the measure of `fair_pitch_bits_per_note`), then what the REMI model also
gives: `onset.information.content` / `onset.entropy` (the note's Bar/TimeSig/Position/Rest tokens),
`cpitch.onset_known.information.content`, `dur.information.content` / `dur.entropy`, and the whole note's
`information.content` (every token of the note; the last note also carries the end-of-melody token) and `entropy`
(the onset, pitch and duration entropies summed). With `model="ppm"` the cpitch columns come from the PPM of
`evaluation.ppm` (IDyOM's LTM / STM / both) and the rhythm columns are absent. All information in bits.

Examples:
    >>> from hf_melody.evaluation.analysis import analyze
    >>> df = analyze("folk-base", "essen/kinder0")                                       # doctest: +SKIP
    >>> df["cpitch.information.content"].mean()   # score_melodies(...).fair_pitch_bits_per_note  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..music import TPQ, bar_ticks
from .fair_pitch import ONSET_TOKEN_TYPES

CPITCH_COLUMNS = ("cpitch.information.content", "cpitch.entropy", "cpitch.probability")
ID_COLUMNS = ("dataset.id", "melody.id", "note.id", "melody.name", "onset", "onset.seconds", "bar",
              "metrical.position", "cpitch")
REMI_COLUMNS = ("onset.information.content", "onset.entropy", "cpitch.onset_known.information.content",
                "dur.information.content", "dur.entropy", "information.content", "entropy")


def _metrical(onset: int, tss: list[list[int]]) -> tuple[int, float]:
    """`(bar number from 1, position in the bar in quarter-note beats)` of a tick."""
    bar, start, num, den, t0 = 1, 0, 4, 4, 0
    for t, n, d in tss:
        if t > onset:
            break
        bar += (t - t0) // bar_ticks(num, den) if t > t0 else 0
        start = t0 = t
        num, den = n, d
    length = bar_ticks(num, den)
    k = (onset - start) // length
    return bar + k, (onset - start - k * length) / TPQ


def _id_rows(melodies, dataset_id: str, tempo_qpm: float) -> list[list[dict[str, Any]]]:
    rows = []
    for m in melodies:
        out = []
        for k, (onset, _, pitch) in enumerate(sorted(m.notes)):
            bar, pos = _metrical(onset, m.time_signatures)
            out.append({"dataset.id": dataset_id, "melody.id": m.id, "note.id": k + 1, "melody.name": m.title,
                        "onset": onset / TPQ, "onset.seconds": onset / TPQ * 60.0 / tempo_qpm, "bar": bar,
                        "metrical.position": pos, "cpitch": int(pitch)})
        rows.append(out)
    return rows


def _remi_columns(tokenizer, ids: list[int], prefix: int, per: dict[str, Any]) -> list[dict[str, float]]:
    """The per-note columns of one melody from its token bits/entropies and its fair pitch notes."""
    inv = {i: t.split("_")[0] for t, i in tokenizer.base_vocab.items()}
    bits, ent, fair = per["token_bits"], per["token_entropy"], per["fair_pitch_notes"]
    notes: list[dict[str, float]] = []
    onset_bits = 0.0
    for j in range(prefix, len(ids)):
        kind, b, h = inv.get(int(ids[j]), ""), bits[j - prefix], ent[j - prefix]
        if kind in ONSET_TOKEN_TYPES:
            onset_bits += b
        elif kind == "Pitch":
            f = fair[len(notes)]
            ic = -f.logprob / math.log(2)
            notes.append({"cpitch.information.content": ic, "cpitch.entropy": f.entropy,
                          "cpitch.probability": 2.0 ** -ic, "onset.information.content": onset_bits,
                          "onset.entropy": f.onset_entropy, "cpitch.onset_known.information.content": b,
                          "information.content": onset_bits + b, "fair.explored.mass": f.explored})
            onset_bits = 0.0
        elif kind == "Duration" and notes:
            notes[-1].update({"dur.information.content": b, "dur.entropy": h})
            notes[-1]["information.content"] += b
        elif notes:  # EOS (and anything after the last note): the end of the melody, on its last note
            notes[-1]["information.content"] += onset_bits + b
            onset_bits = 0.0
    for n in notes:
        n["entropy"] = n["onset.entropy"] + n["cpitch.entropy"] + n.get("dur.entropy", 0.0)
    return notes


def analyze(model, dataset, style: str | None = None, dynamic=None, window: int | None = None,
            ppm_model: str = "both", ppm_train=None, tempo_qpm: float = 120.0, device: str | None = None,
            progress: bool = False, combine_stm: bool = False, dataset_id: str | None = None,
            ppm_viewpoints: str | Sequence[str] | None = None):
    """One row per note of `dataset` with its information content and entropy under `model`.

    `model`: a bundle name / folder / Hub id, a loaded `(model, tokenizer)` pair, or `"ppm"` (IDyOM's PPM:
    `ppm_model` in `evaluation.ppm.PPM_MODELS`, the LTM trained on `ppm_train` melodies or spec; default: each
    melody is predicted by an LTM trained on all the other melodies of `dataset`, leave-one-out;
    `ppm_viewpoints`, e.g. `"cpint,cpintfref"`: through those derived viewpoints, `evaluation.viewpoints`).
    `dataset`: a corpus spec or folder (`load_melodies`) or a list of `Melody`. `style`: the style token to
    condition on (default: each melody's own). `dynamic`: a `DynamicEvaluation` (the model adapts to each melody
    as it goes). `window`: the sliding-window stride for melodies longer than the context. `combine_stm`: combine
    the neural pitch distribution with a PPM short-term model, entropy-weighted as IDyOM combines LTM and STM
    (adds `cpitch.combined.*` columns; the neural side is the unadapted model even with `dynamic`).

    Examples:
        >>> df = analyze("original", "essen/kinder0", style="german-folk")                # doctest: +SKIP
        >>> df.groupby("metrical.position")["cpitch.information.content"].mean()          # doctest: +SKIP
    """
    import pandas as pd

    from ..data.corpora import load_melodies

    if isinstance(dataset, (str, os.PathLike)):
        dataset_id = dataset_id or str(dataset)
        melodies, _ = load_melodies(str(dataset), progress=False)
    else:
        melodies = list(dataset)
    dataset_id = dataset_id or "melodies"
    melodies = [m for m in melodies if m.notes]
    if not melodies:
        raise ConfigError("no melodies with notes to analyze")
    if style is not None:
        melodies = [replace(m, style=style) for m in melodies]
    is_ppm = isinstance(model, str) and model == "ppm"
    if ppm_viewpoints is not None and not is_ppm:
        raise ConfigError(f"ppm_viewpoints={ppm_viewpoints!r} needs model='ppm' (--model ppm); the neural model "
                          "predicts pitch by itself")
    rows = _id_rows(melodies, dataset_id, tempo_qpm)
    if is_ppm:
        _ppm_columns(rows, melodies, ppm_model, ppm_train, ppm_viewpoints)
    else:
        _neural_columns(rows, melodies, model, dynamic, window, device, progress, combine_stm)
    return pd.DataFrame([r for melody_rows in rows for r in melody_rows])


def _neural_columns(rows, melodies, model, dynamic, window, device, progress, combine_stm) -> None:
    from ..data.dataset import melody_style
    from ..hub import load_model, load_tokenizer
    from .likelihood import score_melodies

    if isinstance(model, (tuple, list)):
        model, tokenizer = model
    else:
        model, tokenizer = load_model(str(model)), load_tokenizer(str(model))
    r = score_melodies(model, tokenizer, melodies, fair_pitch=True, dynamic=dynamic, stride=window, device=device,
                       progress=progress)
    for m, melody_rows, per in zip(melodies, rows, r.per_melody, strict=True):
        ids = tokenizer.encode(m, bos=True, eos=True, style=melody_style(m))
        cols = _remi_columns(tokenizer, ids, 2, per)
        if len(cols) != len(melody_rows):
            raise ConfigError(f"{m.id}: {len(melody_rows)} notes but {len(cols)} Pitch tokens; the tokenizer "
                              "dropped or merged notes")
        for row, c in zip(melody_rows, cols, strict=True):
            row.update(c)
    if combine_stm:
        _combine_with_stm(rows, melodies, model, tokenizer, device)


def _combine_with_stm(rows, melodies, model, tokenizer, device) -> None:
    """`cpitch.combined.*`: the neural past-only pitch distribution combined with a PPM STM (IDyOM's weighting)."""
    from ..data.dataset import melody_style
    from .fair_pitch import _marginals, _pitch_vocab, onset_starts, onset_token_ids
    from .ppm import cpitch_predictions

    pitches = [int(t.split("_")[1]) for t in sorted((t for t in tokenizer.base_vocab if t.startswith("Pitch_")),
                                                    key=lambda t: int(t.split("_")[1]))]
    pitch_ids = set(_pitch_vocab(tokenizer))
    for m, melody_rows in zip(melodies, rows, strict=True):
        ids = [int(i) for i in tokenizer.encode(m, bos=True, eos=True, style=melody_style(m))]
        positions = [j for j, t in enumerate(ids) if t in pitch_ids]
        starts = onset_starts(ids, positions, set(onset_token_ids(tokenizer)))
        log_marginal, _ = _marginals(model, tokenizer, [ids[:s] for s in starts], 1e-3, 6, 256, device,
                                     shared=ids[:max(starts)])
        ic, h = cpitch_predictions([row["cpitch"] for row in melody_rows], alphabet=pitches,
                                   ltm_dists=log_marginal.exp().numpy())
        for row, x, e in zip(melody_rows, ic, h, strict=True):
            row.update({"cpitch.combined.information.content": x, "cpitch.combined.entropy": e})


def _ppm_columns(rows, melodies, ppm_model: str, ppm_train, viewpoints=None) -> None:
    from ..data.corpora import load_melodies
    from .ppm import IDYOM_LTM, PPM, PPM_MODELS, cpitch_predictions, ppm_alphabet
    from .viewpoints import ViewpointSystem, melody_pitches

    if ppm_model not in PPM_MODELS:
        raise ConfigError(f"ppm_model={ppm_model!r}; choose from {', '.join(PPM_MODELS)}")
    if isinstance(ppm_train, (str, os.PathLike)):
        ppm_train, _ = load_melodies(str(ppm_train), progress=False)
    train = list(ppm_train) if ppm_train is not None else None
    alphabet = ppm_alphabet(melodies + (train or []))
    seqs = {m.id: [p for _, _, p in sorted(m.notes)] for m in melodies + (train or [])}
    uses_ltm = ppm_model != "stm"
    if viewpoints is not None:  # a multiple-viewpoint system: one LTM and STM per viewpoint
        shared = ViewpointSystem(viewpoints, alphabet)
        if uses_ltm and train is not None:
            shared.fit(melody_pitches(m) for m in train)
        for k, (m, melody_rows) in enumerate(zip(melodies, rows, strict=True)):
            system = shared
            if uses_ltm and train is None:  # leave-one-out, as below
                system = ViewpointSystem(viewpoints, alphabet).fit(
                    melody_pitches(o) for i, o in enumerate(melodies) if i != k)
            ic, h = system.predict(*melody_pitches(m), models=(ppm_model,))[ppm_model]
            for row, x, e in zip(melody_rows, ic, h, strict=True):
                row.update({"cpitch.information.content": x, "cpitch.entropy": e, "cpitch.probability": 2.0 ** -x})
        return
    shared = PPM(alphabet, **IDYOM_LTM).fit(seqs[m.id] for m in train) if uses_ltm and train is not None else None
    for k, (m, melody_rows) in enumerate(zip(melodies, rows, strict=True)):
        ltm = shared
        if uses_ltm and shared is None:  # leave-one-out: every other melody of the set
            ltm = PPM(alphabet, **IDYOM_LTM).fit(seqs[o.id] for i, o in enumerate(melodies) if i != k)
        ic, h = cpitch_predictions(seqs[m.id], ltm=ltm, stm=ppm_model in ("stm", "both", "both+"),
                                   alphabet=alphabet, ltm_learns=ppm_model.endswith("+"))
        for row, x, e in zip(melody_rows, ic, h, strict=True):
            row.update({"cpitch.information.content": x, "cpitch.entropy": e, "cpitch.probability": 2.0 ** -x})


def plot_analysis(df, out_dir: str | os.PathLike, melodies: Sequence[str] | None = None) -> list[Path]:
    """`profile_<k>.png`: IC and entropy over the notes of the first melodies (or `melodies`), and
    `ic_by_metrical_position.png`: the mean pitch (and whole-note) IC by position in the bar.

    Examples:
        >>> plot_analysis(df, "out/analysis")                                            # doctest: +SKIP
    """
    from .plots import _pyplot, _save

    plt = _pyplot()
    out = Path(out_dir)
    paths = []
    ids = list(melodies) if melodies else list(dict.fromkeys(df["melody.id"]))[:3]
    for k, mid in enumerate(ids):
        d = df[df["melody.id"] == mid]
        fig, ax = plt.subplots(figsize=(9, 3.2))
        ax.plot(d["note.id"], d["cpitch.information.content"], "o-", label="pitch IC (past only)")
        ax.plot(d["note.id"], d["cpitch.entropy"], "s--", label="pitch entropy")
        if "information.content" in d:
            ax.plot(d["note.id"], d["information.content"], "^:", alpha=0.6, label="whole-note IC")
        ax.set_xlabel("note")
        ax.set_ylabel("bits")
        ax.set_title(f"{mid} {d['melody.name'].iloc[0]}"[:80])
        ax.legend(fontsize=8)
        paths.append(_save(fig, out / f"profile_{k}.png"))
    pos = df.groupby("metrical.position")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    cols = [c for c in ("cpitch.information.content", "onset.information.content", "information.content")
            if c in df]
    mean = pos[cols].mean()
    for c in cols:
        ax.plot(mean.index, mean[c], "o-", label=c)
    ax.set_xlabel("position in the bar (quarter-note beats)")
    ax.set_ylabel("mean bits")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out / "ic_by_metrical_position.png"))
    return paths


def write_analysis(df, out_dir: str | os.PathLike, plots: bool = True) -> list[Path]:
    """`notes.csv`, `notes.parquet` and the plots of `plot_analysis` in `out_dir`; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "notes.csv", index=False)
    paths = [out / "notes.csv"]
    try:
        df.to_parquet(out / "notes.parquet", index=False)
        paths.append(out / "notes.parquet")
    except ImportError:  # no pyarrow: the CSV is the record
        pass
    return paths + (plot_analysis(df, out) if plots else [])


def add_analyze_arguments(parser) -> None:
    """The flags of `hf-melody analyze` (kept here so the command and the function stay one concept)."""
    parser.add_argument("--model", default="folk-base", help="bundled name, folder or Hub id, or `ppm` for "
                        "IDyOM's PPM (default: folk-base)")
    parser.add_argument("--dataset", default="essen/kinder0", help="corpus spec or MIDI folder")
    parser.add_argument("--output-dir", "--output_dir", "--out", dest="output_dir", default="out/analysis",
                        metavar="DIR", help="folder for notes.csv, notes.parquet and the plots")
    parser.add_argument("--style", default=None, help="style token to condition on (default: each melody's own)")
    parser.add_argument("--dynamic-steps", type=int, default=0, help="dynamic evaluation: SGD steps after each bar "
                        "of the melody (default: 0, off)")
    parser.add_argument("--dynamic-lr", type=float, default=1e-3, help="dynamic evaluation learning rate")
    parser.add_argument("--window", type=int, default=None, help="sliding-window stride in tokens for melodies "
                        "longer than the context (default: half the context)")
    parser.add_argument("--ppm-model", default="both", help="with --model ppm: ltm, ltm+, stm, both or both+ "
                        "(default: both)")
    parser.add_argument("--ppm-train", default=None, help="with --model ppm: corpus for the LTM (default: "
                        "leave-one-out on --dataset)")
    parser.add_argument("--viewpoints", default=None, help="with --model ppm: predict through these viewpoints, "
                        "e.g. cpitch,cpint,cpintfref,cpint*cpintfref (default: cpitch alone)")
    parser.add_argument("--combine-stm", action="store_true", help="also combine the model's pitch with a PPM "
                        "short-term model (cpitch.combined.* columns)")
    parser.add_argument("--tempo", type=float, default=120.0, help="qpm for onset.seconds (default: 120)")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cpu)")


def run_analyze(args) -> str:
    """`hf-melody analyze`: analyze and write the files; returns the line the command prints."""
    from .likelihood import DynamicEvaluation

    dynamic = DynamicEvaluation(args.dynamic_steps, args.dynamic_lr) if args.dynamic_steps else None
    df = analyze(args.model, args.dataset, style=args.style, dynamic=dynamic, window=args.window,
                 ppm_model=args.ppm_model, ppm_train=args.ppm_train, tempo_qpm=args.tempo, device=args.device,
                 progress=True, combine_stm=args.combine_stm, ppm_viewpoints=args.viewpoints)
    paths = write_analysis(df, args.output_dir, plots=not args.no_plots)
    return (f"{len(df)} notes: mean pitch IC {df['cpitch.information.content'].mean():.3f} bits/note; wrote "
            + ", ".join(map(str, paths)))
