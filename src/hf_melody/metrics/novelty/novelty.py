"""Novelty: do generated melodies copy the training data? Longest shared note n-gram and the copy rate."""

import evaluate

from hf_melody.data.corpora import load_melodies
from hf_melody.evaluation.similarity import novelty
from hf_melody.metrics import metric_info

_DESCRIPTION = """
For each generated melody, the longest run of consecutive notes (pitch + duration; or interval + duration with
`transposition_invariant=True`) that also occurs in a training melody. A sample is a copy when that run covers at
least `min_bars` bars (default 8), counted in notes as `min_bars` x the sample's notes per bar; samples shorter
than `min_bars` bars never count as copies. `copy_rate` is the share of copies.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of melodies): generated melodies, each a list of `[onset, duration, pitch]` (480 tpq).
    training_notes (`list`, optional): the training melodies as note lists.
    training_dataset (`str` or `list`, optional): instead, a corpus spec loaded with `hf_melody.load_melodies`
        (e.g. "essen/kinder0"); `sources` then holds melody ids.
    time_signatures (`list`, optional): per generated melody, `[tick, num, den]` triples (default 4/4).
    min_bars (`float`): copy threshold in bars (default 8).
    transposition_invariant (`bool`): match intervals instead of pitches (default False).
Returns:
    copy_rate, mean_longest_shared, max_longest_shared, longest_shared, longest_shared_bars, copied, sources.
Examples:
    >>> import evaluate
    >>> from hf_melody.metrics import metric_path
    >>> nov = evaluate.load(metric_path("novelty"))
    >>> nov.compute(predictions=[m.notes for m in samples], training_dataset="essen/kinder0")["copy_rate"]
    0.0
"""

_CITATION = """
@article{yin2023shallow, title={Deep learning's shallow gains: a comparative evaluation of algorithms for automatic
  music generation}, author={Yin, Zongyu and Reuben, Federico and Stepney, Susan and Collins, Tom},
  journal={Machine Learning}, volume={112}, pages={1785--1822}, year={2023}}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Novelty(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, reference_urls=("https://doi.org/10.1007/s10994-023-06309-w",))

    def _compute(self, predictions, training_notes=None, training_dataset=None, time_signatures=None, min_bars=8,
                 transposition_invariant=False):
        ids = None
        if training_notes is None:
            if training_dataset is None:
                raise ValueError("give training_notes (note lists) or training_dataset (e.g. 'essen/kinder0')")
            melodies, _ = load_melodies(training_dataset, progress=False)
            training_notes, ids = [m.notes for m in melodies], [m.id for m in melodies]
        return novelty(predictions, training_notes, time_signatures, min_bars=min_bars,
                       transposition_invariant=transposition_invariant, training_ids=ids)
