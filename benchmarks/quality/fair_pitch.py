"""How the fair pitch measure converges with its pruning, next to the onset-known pitch measure.

For each `--thresholds` value (`min_path_prob`) and `--max-onset-tokens`, scores the first `--melodies` melodies of
`--dataset` with `hf_melody.evaluation.fair_pitch.fair_pitch_logprobs` and prints one JSON line: fair pitch bits per
note, the explored probability mass (mean and minimum over notes) and the seconds taken; first a line with the
onset-known pitch bits (`score_melodies`). If the fair value moves less than the differences you care about as the
threshold falls, the pruning is harmless.

    python benchmarks/quality/fair_pitch.py --model folk-base --melodies 5 --thresholds 1e-2 1e-3 1e-4
"""

from __future__ import annotations

import argparse
import json
import math
import time

from hf_melody import load_melodies, load_model, load_tokenizer
from hf_melody.data.dataset import melody_style
from hf_melody.evaluation.fair_pitch import fair_pitch_logprobs
from hf_melody.evaluation.likelihood import score_melodies


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="folk-base", help="bundled name, folder or Hub id (default: folk-base)")
    p.add_argument("--dataset", default="essen/kinder0", help="corpus spec (default: essen/kinder0)")
    p.add_argument("--melodies", type=int, default=5, help="score the first N melodies (default: 5)")
    p.add_argument("--thresholds", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4],
                   help="min_path_prob values to try (default: 1e-2 1e-3 1e-4)")
    p.add_argument("--max-onset-tokens", type=int, default=6, help="longest onset path expanded (default: 6)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    melodies = load_melodies(args.dataset, progress=False)[0][:args.melodies]
    model, tok = load_model(args.model), load_tokenizer(args.model)
    r = score_melodies(model, tok, melodies)
    print(json.dumps({"measure": "pitch bits/note, onset known", "value": round(r.pitch_bits_per_note, 4),
                      "notes": r.num_notes}))
    encoded = [tok.encode(m, bos=True, eos=True, style=melody_style(m)) for m in melodies]
    for threshold in args.thresholds:
        t0 = time.perf_counter()
        pairs = [x for ids in encoded for x in fair_pitch_logprobs(model, tok, ids, min_path_prob=threshold,
                                                                    max_onset_tokens=args.max_onset_tokens)]
        seconds = time.perf_counter() - t0
        explored = [e for _, e in pairs]
        print(json.dumps({"measure": "pitch bits/note, past only (fair)", "min_path_prob": threshold,
                          "max_onset_tokens": args.max_onset_tokens,
                          "value": round(-sum(lp for lp, _ in pairs) / len(pairs) / math.log(2), 4),
                          "explored_mass_mean": round(sum(explored) / len(explored), 4),
                          "explored_mass_min": round(min(explored), 4), "seconds": round(seconds, 1),
                          "notes": len(pairs)}))


if __name__ == "__main__":
    main()
