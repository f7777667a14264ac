"""Melody perplexity: how well a melody model predicts real melodies (token perplexity, bits per note, pitch bits)."""

import evaluate

from hf_melody.evaluation.likelihood import melodies_from_notes, score_melodies
from hf_melody.hub import load_model, load_tokenizer
from hf_melody.metrics import metric_info

_DESCRIPTION = """
Likelihood of real melodies under a hf_melody model bundle.

- `token_perplexity`: exp of the mean negative log-likelihood per token. Depends on the tokenizer: compare it only
  between models that share one.
- `bits_per_note`: the total -log2 likelihood of each melody (every token after BOS and the style token, EOS
  included) divided by its number of notes, all notes pooled. Comparable across tokenizations (REMI, BPE).
- `pitch_bits_per_note`: -log2 P(Pitch token | everything before), summed over the melody's Pitch tokens and
  divided by its notes. In REMI the note's own Position/Rest/Bar tokens come before its Pitch, so the model knows
  when the note starts. Plain REMI only; BPE tokenizers raise an error unless `pitch_bits=False`.
- `fair_pitch_bits_per_note` (with `fair_pitch=True`): the pitch predicted from the past only, the note's onset
  tokens marginalised: the quantity IDyOM reports (2.106 on the Kinderlieder, Pearce 2005); compare with it.

Melodies longer than the model's context are scored with a sliding window: windows of `n_positions` tokens move
by `stride` (default half the context) and each token is scored once, with at least `n_positions - stride`
tokens of context after the first window.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of melodies): each melody a list of `[onset, duration, pitch]` notes, ticks at 480 per
        quarter (e.g. `Melody.notes`).
    model_id (`str`): bundled checkpoint name, bundle folder or Hub id (HF cache).
    time_signatures (`list`, optional): per melody, `[tick, numerator, denominator]` triples (default 4/4).
    styles (`str` or `list`, optional): style token per melody (e.g. "german-folk"); default "other".
    use_style_tokens (`bool`): frame melodies as `BOS style ...` as the bundles are trained (default True).
    pitch_bits (`bool`): compute pitch bits per note (default True; must be False for BPE tokenizers).
    fair_pitch (`bool`): also compute `fair_pitch_bits_per_note` (default False; one forward pass per explored
        onset path: about 10 s per 1,000 notes for folk-base on one CPU thread).
    stride (`int`, optional), batch_size (`int`, default 16), device (`str`, optional).
    per_melody (`bool`): also return the per-melody bits (default False).
Returns:
    token_perplexity, bits_per_note, pitch_bits_per_note, fair_pitch_bits_per_note, fair_pitch_explored_mass,
    token_accuracy, loss, bits_per_note_melody_mean, num_melodies, num_notes, num_tokens, window, dynamic.
Examples:
    >>> import evaluate
    >>> from hf_melody.metrics import metric_path
    >>> ppl = evaluate.load(metric_path("melody_perplexity"))
    >>> ppl.compute(predictions=[m.notes for m in melodies], model_id="folk-base",
    ...             time_signatures=[m.time_signatures for m in melodies], styles="german-folk")["bits_per_note"]
    5.03
"""

_CITATION = """
@phdthesis{pearce2005,
  title={The construction and evaluation of statistical models of melodic structure in music perception and
         composition},
  author={Pearce, Marcus T.}, school={City University London}, year={2005}}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MelodyPerplexity(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, reference_urls=("https://openaccess.city.ac.uk/id/eprint/8459/",))

    def _compute(self, predictions, model_id, time_signatures=None, styles=None, use_style_tokens=True,
                 pitch_bits=True, stride=None, batch_size=16, device=None, per_melody=False, fair_pitch=False):
        melodies = melodies_from_notes(predictions, time_signatures, styles)
        model, tokenizer = load_model(model_id), load_tokenizer(model_id)
        result = score_melodies(model, tokenizer, melodies, use_style_tokens=use_style_tokens, pitch_bits=pitch_bits,
                                stride=stride, batch_size=batch_size, device=device, fair_pitch=fair_pitch)
        # measures that were not asked for (fair pitch, dynamic evaluation) are left out rather than given as None
        return {k: v for k, v in result.to_dict(per_melody=per_melody).items() if v is not None}
