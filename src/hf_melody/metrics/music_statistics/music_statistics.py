"""Music statistics of generated melodies and their overlap with a reference set (Yang & Lerch 2020)."""

import evaluate

from hf_melody.evaluation.statistics import (
    CHORD_FEATURES,
    FEATURES,
    chord_statistics,
    compare_sets,
    melody_statistics,
    summarize,
)
from hf_melody.metrics import metric_info

_DESCRIPTION = """
Per melody: pitch-class entropy (bits), scale consistency (best share of notes in one major / natural-minor
scale), groove consistency (1 - Hamming distance of neighbouring bars' onset patterns on a 16th grid), empty-beat
rate (beats of the time signature in which no note sounds), pitch range, mean absolute interval, a 12-class
note-length histogram, and in-key ratio (share of notes in the scale of the Krumhansl-Schmuckler key).
With `chords`: the strong-beat chord-tone ratio and the chord-tone ratio (share of notes on a tone of the chord
sounding at their onset; strong beats: beat 1, and the middle of 2/4 and 4/4 bars), over the given progression or
over each melody's own inferred chords ("infer"), for the predictions and, with `reference_notes`, the references
(real tunes over their inferred chords: the reference value).

With `reference_notes`: for every feature the overlapping area (OA) of two Gaussian KDEs, Yang & Lerch (2020)
style: the intra-set distances of the references against the inter-set distances (generated x reference).
OA = 1: generated melodies sit as close to the references as the references to each other; 0: no overlap.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of melodies): generated melodies, each a list of `[onset, duration, pitch]` (480 tpq).
    time_signatures (`list`, optional): per generated melody, `[tick, num, den]` triples (default 4/4).
    reference_notes (`list`, optional): the reference melodies (any number).
    reference_time_signatures (`list`, optional): their time signatures.
    per_melody (`bool`): also return each generated melody's statistics (default False).
    chords (`str` or `list`, optional): a progression for every prediction ("C G Am F"), one per prediction, or
        "infer"; adds `chords` (mean chord-tone ratios) and, with references, `reference_chords` (theirs inferred).
Returns:
    `mean` (per feature mean over the generated melodies); with references also `reference`, `overlap`,
    `intra_overlap` and `mean_overlap`.
Examples:
    >>> import evaluate
    >>> from hf_melody.metrics import metric_path
    >>> stats = evaluate.load(metric_path("music_statistics"))
    >>> stats.compute(predictions=[[[0, 480, 60], [480, 480, 64]]])["mean"]["pitch_range"]
    4.0
"""

_CITATION = """
@article{yang2020evaluation, title={On the evaluation of generative models in music},
  author={Yang, Li-Chia and Lerch, Alexander}, journal={Neural Computing and Applications}, year={2020}}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MusicStatistics(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, reference_urls=("https://doi.org/10.1007/s00521-018-3849-7",))

    def _compute(self, predictions, time_signatures=None, reference_notes=None, reference_time_signatures=None,
                 per_melody=False, chords=None):
        if reference_notes is not None:
            result = compare_sets(predictions, reference_notes, time_signatures, reference_time_signatures)
            result["mean"] = {f: result["generated"][f]["mean"] for f in FEATURES}
            per = result.pop("per_melody")
        else:
            tss = time_signatures or [None] * len(predictions)
            per = [melody_statistics(n, t) for n, t in zip(predictions, tss, strict=True)]
            result = {"mean": {f: v["mean"] for f, v in summarize(per).items()}}
        if chords is not None:
            given = chords if isinstance(chords, list) else [chords] * len(predictions)
            tss = time_signatures or [None] * len(predictions)
            result["chords"] = _mean_chord_ratios([chord_statistics(n, t, c) for n, t, c
                                                   in zip(predictions, tss, given, strict=True)])
            if reference_notes is not None:
                ref_tss = reference_time_signatures or [None] * len(reference_notes)
                result["reference_chords"] = _mean_chord_ratios([chord_statistics(n, t) for n, t
                                                                 in zip(reference_notes, ref_tss, strict=True)])
        if per_melody:
            result["per_melody"] = per
        return result


def _mean_chord_ratios(rows):
    out = {}
    for name in CHORD_FEATURES:
        values = [r[name] for r in rows if r[name] == r[name]]  # NaN: no such notes
        out[name] = sum(values) / len(values) if values else float("nan")
    return out
