"""One melody at a time on one CPU thread: `MelodyPipeline` (fast decoder, and `generate`) vs a plain nanoGPT loop.

Side by side in one process, one torch thread, for every bundled model (or `--models` folders):

- fast:      `pipe(seed=s, num_bars=16, time_signature="4/4")`: grammar on, the lean decoder
             (`hf_melody.generation.decoding`).
- generate:  the same call with `decoder="generate"` (transformers' `generate`, KV cache, the grammar processor:
             the path every call took before the lean decoder) and `max_new_tokens` = the context left, since
             16 bars may not fit in it.
- plain:     a textbook nanoGPT sampling loop, written below as the reference of issue 14: a 27k-parameter
             character GPT (2 layers, 32 wide, 32-token context), no KV cache, re-running the context for every
             character, two characters per note (pitch, duration).

Runs alternate fast / generate / plain `--reps` times with seeds 0, 1, ...; reported: notes/s (medians), the
median of the paired ratios fast/plain and fast/generate, tokens per note, the latency of `stream()`'s first note
(median), and batch-of-64 throughput (64 melodies of 16 bars in one batch: `MelodyDecoder.sample` vs `generate` with
the same processors). `--profile` adds where the time goes per token on both paths (cProfile, grouped).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speed/generation_speed.py --reps 7
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speed/generation_speed.py --models original --profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

BARS = 16


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# ---- the plain reference loop (nanoGPT's model and `generate`, trimmed) ----------------------------------------------


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.c_attn, self.c_proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.heads = heads

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).contiguous().view(b, t, c)
        x = x + self.c_proj(y)
        return x + self.mlp(self.ln_2(x))


class CharGPT(nn.Module):
    """nanoGPT at the size of the reference: 2 layers, 32 wide, 2 heads, a 32-token context, ~40 characters."""

    def __init__(self, vocab: int = 40, width: int = 32, layers: int = 2, heads: int = 2, block: int = 32):
        super().__init__()
        self.block = block
        self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(block, width)
        self.h = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    @torch.no_grad()
    def generate(self, idx, new_tokens: int, temperature: float = 1.0):
        for _ in range(new_tokens):
            logits = self(idx[:, -self.block:])[:, -1, :] / temperature
            nxt = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, nxt), dim=1)
        return idx


def plain_notes_per_second(model: CharGPT, notes: int, seed: int) -> float:
    torch.manual_seed(seed)
    start = time.perf_counter()
    model.generate(torch.zeros((1, 1), dtype=torch.long), 2 * notes)
    return notes / (time.perf_counter() - start)


# ---- the pipeline ---------------------------------------------------------------------------------------------------


def one_melody(pipe, seed: int, decoder: str) -> tuple[float, int, int]:
    """(seconds, notes, tokens) of one 16-bar melody."""
    extra = {}
    if decoder == "generate":
        extra["max_new_tokens"] = pipe.model.config.n_positions - 4
    start = time.perf_counter()
    [m] = pipe(seed=seed, num_bars=BARS, time_signature="4/4", decoder=decoder, **extra)
    return time.perf_counter() - start, m.num_notes, len(m.token_ids) - m.prompt_length


def first_note_latency(pipe, seed: int) -> float:
    start = time.perf_counter()
    notes = pipe.stream(seed=seed, num_bars=BARS, time_signature="4/4")
    next(notes)
    elapsed = time.perf_counter() - start
    notes.close()
    return elapsed


def batch_throughput(pipe, batch: int, seed: int) -> dict:
    """64 melodies in one batch, grammar on: tokens/s and notes/s of the lean decoder and of `generate`."""
    from hf_melody.generation.decoding import MelodyDecoder
    from hf_melody.generation.logits_process import MelodyConstraints, melody_logits_processors
    from hf_melody.grammar.state import LengthLimits

    tok = pipe.melody_tokenizer
    prompt = [tok.bos_token_id, *tok.encode_base_tokens(["Bar_None", "TimeSig_4/4"])]
    room = pipe.model.config.n_positions - len(prompt)
    out = {}
    constraints = MelodyConstraints.build(tok, num_bars=BARS)
    for name in ("fast", "generate"):
        procs = melody_logits_processors(tok, constraints, seed=range(seed, seed + batch),
                                         max_length=len(prompt) + room)
        start = time.perf_counter()
        if name == "fast":
            grammar = procs.pop(0)
            rows = MelodyDecoder(pipe.model, tok).sample([prompt] * batch, procs, grammar.rules,
                                                         LengthLimits(num_bars=BARS), room).sequences
        else:
            ids = torch.tensor([prompt] * batch)
            with torch.no_grad():
                rows = pipe.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                           max_new_tokens=room, logits_processor=procs,
                                           pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id).tolist()
        seconds = time.perf_counter() - start
        new = [[i for i in row[len(prompt):] if i != tok.pad_token_id] for row in rows]
        tokens = sum(len(r) for r in new)
        notes = sum(len(tok.decode(prompt + r).tracks[0].notes) if r else 0 for r in new)
        out[name] = {"tokens_per_s": round(tokens / seconds), "notes_per_s": round(notes / seconds)}
    return out


def profile(pipe, decoder: str, reps: int = 3) -> list[tuple[str, float]]:
    """Share of time per group of functions (own time), over `reps` 16-bar melodies."""
    groups = {"model forward (torch ops of the network)": ("addmm", "layer_norm", "bmm", "softmax", "gelu",
                                                           "matmul", "linear", "scaled_dot", "embedding"),
              "model forward (Python: modules, cache objects, masks)": ("modeling_gpt2", "lean_gpt2", "module.py",
                                                                        "cache_utils", "masking_utils",
                                                                        "integrations"),
              "grammar state machine (Python)": ("grammar.py",),
              "grammar tables + mask arithmetic": ("grammar_tables", "decoding.py:", "generation.py"),
              "generate() loop and processors": ("generation/utils", "logits_process", "stopping_criteria"),
              "tensor housekeeping (views, copies, indexing)": ("view", "reshape", "copy", "cat", "select", "slice",
                                                                "transpose", "index", "masked_fill", "item",
                                                                "tolist", "argmax", "rand", "log", "stack")}
    prof = cProfile.Profile()
    prof.enable()
    for seed in range(reps):
        one_melody(pipe, seed, decoder)
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())
    shares = dict.fromkeys(groups, 0.0)
    shares["other"] = 0.0
    for (path, _, name), v in stats.items():
        where = f"{path}:{name}"
        group = next((g for g, keys in groups.items() if any(k in where for k in keys)), "other")
        shares[group] += v[2]
    return [(g, round(100 * t / total, 1)) for g, t in shares.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="bundle names or folders (default: bundled)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from hf_melody import MelodyPipeline
    from hf_melody.bundle import bundled_checkpoints

    plain = CharGPT().eval()
    emit({"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
          "load_average": os.getloadavg(), "plain_parameters": sum(p.numel() for p in plain.parameters())})
    for name in args.models or bundled_checkpoints():
        pipe = MelodyPipeline.from_pretrained(name)
        for seed in range(2):  # warm-up: grammar table rows, allocator
            one_melody(pipe, 100 + seed, "fast")
            one_melody(pipe, 100 + seed, "generate")
        runs = {"fast": [], "generate": [], "plain": []}
        notes_tokens = []
        for seed in range(args.reps):
            for decoder in ("fast", "generate"):
                seconds, notes, tokens = one_melody(pipe, seed, decoder)
                runs[decoder].append(notes / seconds)
                if decoder == "fast":
                    notes_tokens.append((notes, tokens))
            runs["plain"].append(plain_notes_per_second(plain, notes_tokens[-1][0], seed))
        latency = statistics.median(first_note_latency(pipe, seed) for seed in range(args.reps))
        record = {
            "model": name, "parameters": pipe.model.num_parameters(), "n_positions": pipe.model.config.n_positions,
            **{f"{k}_notes_per_s": round(statistics.median(v)) for k, v in runs.items()},
            "fast/plain": round(statistics.median(f / p for f, p in zip(runs["fast"], runs["plain"], strict=True)), 2),
            "fast/generate": round(statistics.median(f / g for f, g in zip(runs["fast"], runs["generate"],
                                                                               strict=True)), 2),
            "tokens_per_note": round(sum(t for _, t in notes_tokens) / sum(n for n, _ in notes_tokens), 2),
            "notes_per_melody": statistics.median(n for n, _ in notes_tokens),
            "stream_first_note_ms": round(1000 * latency, 2),
            f"batch{args.batch_size}": (batch_throughput(pipe, args.batch_size, 100),  # warm-up
                                        batch_throughput(pipe, args.batch_size, 0))[1],
            "load_average": os.getloadavg(),
        }
        if args.profile:
            record["profile_fast"] = profile(pipe, "fast")
            record["profile_generate"] = profile(pipe, "generate")
        emit(record)


if __name__ == "__main__":
    main()
