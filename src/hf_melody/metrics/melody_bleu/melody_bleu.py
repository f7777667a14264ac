"""Melody BLEU: corpus BLEU of generated continuations against the real ones, and self-BLEU for diversity."""

import datasets
import evaluate

from hf_melody.evaluation.similarity import corpus_bleu, self_bleu
from hf_melody.metrics import metric_info

_DESCRIPTION = """
Corpus BLEU (n = 1..4, brevity penalty) over token n-grams: each generated continuation of a prompt is scored
against the real continuation of the same prompt (or several references). Tokens may be ids or strings; use base
REMI token strings (`MelodyTokenizer.to_base_tokens`) to compare models with different tokenizers.

Smoothing: "floor" (default, Chen & Cherry 2014 method 1: a zero match count becomes 0.1), "add-k" (add 1 to
matches and counts for n >= 2, Lin & Och 2004) or "none". Orders longer than every prediction are left out.

`self_bleu` (with `self_bleu=True`): the mean BLEU of each prediction against all the others, a diversity measure
(high = the samples repeat each other).

What BLEU means here: how many local token patterns of the real continuations the model reproduces. What it does
not mean: musical quality. A good but different continuation scores low, and copying common figures scores high.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of token sequences): generated continuations (ids or token strings).
    references (`list`): per prediction its real continuation, or a list of reference continuations.
    max_order (`int`): longest n-gram (default 4).
    smooth (`str`): "floor" (default), "add-k" or "none".
    self_bleu (`bool`): also return the self-BLEU of the predictions (default False).
Returns:
    bleu, precisions, brevity_penalty, length_ratio, prediction_length, reference_length (and self_bleu).
Examples:
    >>> import evaluate
    >>> from hf_melody.metrics import metric_path
    >>> bleu = evaluate.load(metric_path("melody_bleu"))
    >>> bleu.compute(predictions=[[1, 2, 3, 4]], references=[[1, 2, 3, 4]])["bleu"]
    1.0
"""

_CITATION = """
@inproceedings{papineni2002bleu, title={BLEU: a method for automatic evaluation of machine translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing}, booktitle={ACL}, year={2002}}
@inproceedings{zhu2018texygen, title={Texygen: A Benchmarking Platform for Text Generation Models},
  author={Zhu, Yaoming and others}, booktitle={SIGIR}, year={2018}}
"""


def _features(token):
    # several references first: evaluate takes the first format the first example fits, and a single reference
    # would fit the several-references format's loose check but not the other way round
    return [
        datasets.Features({"predictions": datasets.Sequence(token),
                           "references": datasets.Sequence(datasets.Sequence(token))}),
        datasets.Features({"predictions": datasets.Sequence(token), "references": datasets.Sequence(token)}),
    ]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MelodyBleu(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION,
                           _features(datasets.Value("string")) + _features(datasets.Value("int64")),
                           reference_urls=("https://aclanthology.org/P02-1040/",))

    def _compute(self, predictions, references, max_order=4, smooth="floor", self_bleu=False):
        result = corpus_bleu(predictions, references, max_order=max_order, smooth=smooth)
        if self_bleu:
            result["self_bleu"] = _self_bleu(predictions, max_order=max_order, smooth=smooth)
        return result


_self_bleu = self_bleu
