"""Batched vs one-by-one decoding on the lean decoder: is a batch of rows faster, and does it give the melodies of
the single calls it stands for?

For each bundled model, 16 unconditional melodies (8 bars of 4/4, seeds s..s+15) are decoded once row by row (what
`MelodyPipeline` does for `num_return_sequences` and `batch_size`) and once as one batch of 16 rows through
`MelodyDecoder.sample` with one seeded sampler per row. Side by side in one process, one torch thread. Prints one
JSON line per model: seconds each way, the speed-up, how many rows are identical to their single call.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speed/batch_decoding.py [--models original folk-base] [--num 16]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import LogitsProcessorList

from hf_melody import MelodyGenerationConfig, MelodyPipeline
from hf_melody.generation.decoding import MelodyDecoder
from hf_melody.generation.logits_process import SeededSampler, decoding_plan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["original", "folk-base"])
    p.add_argument("--num", type=int, default=16, help="melodies (rows of the batch)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    for name in args.models:
        pipe = MelodyPipeline.from_pretrained(name)
        tok, n_pos = pipe.melody_tokenizer, pipe.model.config.n_positions
        config = MelodyGenerationConfig(seed=args.seed, num_bars=8, time_signature="4/4", style="german-folk",
                                        decoder="fast").resolve(pipe.model)
        prompt = pipe.preprocess({"prompt": None}, config)["input_ids"][0].tolist()
        decoder = MelodyDecoder.for_model(pipe.model, tok)
        # 1. row by row, as the pipeline decodes: melody i with seed + i
        t0 = time.perf_counter()
        singles = []
        for i in range(args.num):
            plan = decoding_plan(tok, config, len(prompt), i, n_positions=n_pos, allow_style=False)
            singles.append(decoder.sample([prompt], plan.fast_processors(), plan.rules, plan.limits,
                                          plan.token_cap).sequences[0])
        one_by_one = time.perf_counter() - t0
        # 2. one batch: the same processors, one sampler with a generator per row
        plan = decoding_plan(tok, config, len(prompt), 0, n_positions=n_pos, allow_style=False)
        seeds = [args.seed + i for i in range(args.num)]
        processors = LogitsProcessorList(SeededSampler(seeds) if isinstance(q, SeededSampler) else q
                                         for q in plan.fast_processors())
        t0 = time.perf_counter()
        batch = decoder.sample([prompt] * args.num, processors, plan.rules, plan.limits, plan.token_cap).sequences
        batched = time.perf_counter() - t0
        notes = sum(len(tok.decode(s).tracks[0].notes) for s in singles)
        print(json.dumps({"model": name, "melodies": args.num, "notes": notes, "one_by_one_s": round(one_by_one, 3),
                          "batch_s": round(batched, 3), "speedup": round(one_by_one / batched, 2),
                          "identical_rows": sum(a == b for a, b in zip(singles, batch, strict=True))}))


if __name__ == "__main__":
    main()
