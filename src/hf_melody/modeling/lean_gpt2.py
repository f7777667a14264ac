"""A lean GPT-2 forward for decoding: weights pulled out of the modules once, a preallocated K/V cache, no hooks.

At the size of our models (tens of thousands to a few million parameters) decoding one token is bound by the
per-op overhead of Python and torch's dispatcher, not by arithmetic: `GPT2LMHeadModel.forward` with its cache
object, masks and output dataclasses costs several times what the matmuls do. `LeanGPT2` runs the same
arithmetic (layer norm, fused QKV, causal attention over the cache, MLP, tied LM head) in about 15 ops per layer.

Examples:
    >>> from hf_melody import build_model, MelodyTokenizer
    >>> model = build_model("original", MelodyTokenizer(), n_positions=64).eval()
    >>> lean = LeanGPT2(model)
    >>> lean.reset(batch_size=1)
    >>> logits = lean.prefill(torch.tensor([[1, 4, 5]]))      # [1, vocab]: the next-token logits
    >>> logits = lean.step(torch.tensor([7]))                  # position 3
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError

__all__ = ["LeanGPT2", "lean_support"]

_gelu_ = getattr(torch._C._nn, "gelu_", None)  # in-place GELU (torch's own `nn.GELU` uses it); fallback below
_ACTIVATIONS = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": None, "gelu": "none"}
_SQRT_HALF = math.sqrt(0.5)


def lean_support(model) -> str | None:
    """Why `model` cannot run on `LeanGPT2` (a short reason), or None when it can.

    Examples:
        >>> lean_support(model) is None                      # doctest: +SKIP
        True
    """
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "gpt2":
        return f"model_type {getattr(cfg, 'model_type', None)!r} is not gpt2"
    if _ACTIVATIONS.get(cfg.activation_function) is None:
        return f"activation_function {cfg.activation_function!r}"
    if getattr(cfg, "add_cross_attention", False) or getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
        return "cross-attention or scale_attn_by_inverse_layer_idx"
    if not getattr(cfg, "scale_attn_weights", True):
        return "scale_attn_weights=False"
    if model.dtype != torch.float32 or model.device.type != "cpu":
        return f"{model.dtype} on {model.device} (the lean path is for fp32 on CPU)"
    return None


class LeanGPT2:
    """Decode a `GPT2LMHeadModel` step by step with a static K/V cache (fp32, CPU).

    `reset(batch_size)` allocates the cache for `n_positions`; `prefill(ids)` runs a block of tokens from position
    0 and returns the logits after its last token; `step(ids)` appends one token per row. The module's weights are
    shared, not copied: rebuild the object after changing them.
    """

    def __init__(self, model):
        reason = lean_support(model)
        if reason is not None:
            raise ConfigError(f"this model cannot use the lean decoder ({reason}); use decoder='generate'")
        cfg = model.config
        self.n_layer, self.n_embd, self.n_head = cfg.n_layer, cfg.n_embd, cfg.n_head
        self.head_dim = self.n_embd // self.n_head
        self.n_positions = cfg.n_positions
        self.eps = cfg.layer_norm_epsilon
        self.approximate = _ACTIVATIONS[cfg.activation_function]
        t = model.transformer
        self.wte = t.wte.weight.detach()
        self.wpe = t.wpe.weight.detach()
        self.lm_head = model.lm_head.weight.detach().t()  # [E, V] view (tied to wte in our models)
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.layers = [self._layer(b) for b in t.h]
        # for one row: the output biases as an extra weight row, multiplied by a constant 1 kept after the
        # attention output and the MLP activation, so `x + o @ w + b` is one addmm
        self.folded = [self._fold(*layer) for layer in self.layers]
        self.inner = self.layers[0][8].shape[1]
        self.lnf = (t.ln_f.weight.detach(), t.ln_f.bias.detach())
        self.kv = None
        self._views: list = []
        self._rows: tuple | None = None  # wte and wpe as [1, E] row views, for step_token
        self.length = 0

    def _fold(self, a, c, wq, bq, wo, bo, ln_w, ln_b, w1, b1, w2, b2) -> tuple[torch.Tensor, ...]:
        """One block's weights for the one-row step: the output biases as an extra weight row (multiplied by a
        constant 1 kept after the attention output and the MLP activation, so `x + o @ w + b` is one addmm), and for
        exact GELU the constants of `gelu(h) = 0.5 h (1 + erf(h / sqrt 2))` folded into the weights: the MLP computes
        u = h / sqrt 2, then u (1 + erf(u)) (two in-place ops; torch's exact `gelu` costs ~7 us even on a handful
        of values here), and the output weights carry the remaining 1 / sqrt 2."""
        if self.approximate == "none":
            w1, b1, w2 = w1 * _SQRT_HALF, b1 * _SQRT_HALF, w2 * _SQRT_HALF
        return a, c, wq, bq, torch.cat([wo, bo[None]]), ln_w, ln_b, w1, b1, torch.cat([w2, b2[None]])

    def _layer(self, block) -> tuple[torch.Tensor, ...]:
        """One block's weights, with the attention scale folded into the queries and the QKV columns reordered
        to `[q | k_0 v_0 | k_1 v_1 | ...]`, so that one copy writes a token's keys and values into the cache."""
        E, H, D = self.n_embd, self.n_head, self.head_dim
        w, bias = block.attn.c_attn.weight.detach(), block.attn.c_attn.bias.detach()
        q_cols = torch.arange(E)
        kv_cols = torch.stack([torch.arange(E, 2 * E).view(H, D), torch.arange(2 * E, 3 * E).view(H, D)], 1)
        order = torch.cat([q_cols, kv_cols.reshape(-1)])
        scale = torch.cat([torch.full((E,), self.scale), torch.ones(2 * E)])
        wq = (w[:, order] * scale).contiguous()
        bq = bias[order] * scale
        return (block.ln_1.weight.detach(), block.ln_1.bias.detach(), wq, bq,
                *(p.detach() for p in (block.attn.c_proj.weight, block.attn.c_proj.bias, block.ln_2.weight,
                                       block.ln_2.bias, block.mlp.c_fc.weight, block.mlp.c_fc.bias,
                                       block.mlp.c_proj.weight, block.mlp.c_proj.bias)))

    def reset(self, batch_size: int = 1) -> None:
        """Allocate (or clear) the K/V cache for `batch_size` rows: [layer, batch * head, position, 2 * head_dim]."""
        shape = (self.n_layer, batch_size * self.n_head, self.n_positions, 2 * self.head_dim)
        if self.kv is None or self.kv.shape != shape or self.kv.is_inference() != torch.is_inference_mode_enabled():
            self.kv = torch.zeros(shape)
            self._out = torch.ones(1, self.n_embd + 1)  # [attention output | 1]
            self._act = torch.ones(1, self.inner + 1)  # [MLP activation | 1]
            self._erf = torch.empty(1, self.inner)
            self._qkv = torch.empty(1, 3 * self.n_embd)
            self._views = [None] * self.n_positions  # per position: the cache views a one-row step uses
        self._batch = batch_size
        self.length = 0

    @property
    def batch_size(self) -> int:
        return 0 if self.kv is None else self._batch

    def _position_views(self, pos: int) -> tuple:
        """The views a one-row step at `pos` reads and writes, made once per cache (a view costs about as much as
        a small op): the step's buffers, then per layer the cache slot of `pos` and the keys (transposed) and
        values of positions 0..pos."""
        E, H, D = self.n_embd, self.n_head, self.head_dim
        end = pos + 1
        buffers = (self._out.narrow(1, 0, E).view(H, 1, D), self._act.narrow(1, 0, self.inner),
                   self._qkv.narrow(1, 0, E).view(H, 1, D), self._qkv.narrow(1, E, 2 * E).view(H, 2 * D))
        layers = [(layer.select(1, pos), layer.narrow(1, 0, end).narrow(2, 0, D).transpose(1, 2),
                   layer.narrow(1, 0, end).narrow(2, D, D)) for layer in self.kv]
        self._views[pos] = (buffers, layers)
        return self._views[pos]

    def _mlp(self, x, ln_w, ln_b, w1, b1, w2, b2):
        h = torch.layer_norm(x, (self.n_embd,), ln_w, ln_b, self.eps)
        h = F.gelu(torch.addmm(b1, h, w1), approximate=self.approximate)
        return torch.addmm(b2, h, w2)

    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        """Run `ids` ([batch, n], n <= n_positions) from position 0; returns the logits after the last token.
        Run it and `step` under `torch.inference_mode()` (fastest) or `torch.no_grad()`."""
        b, n = ids.shape
        if b != self.batch_size or self.kv.is_inference() != torch.is_inference_mode_enabled():
            self.reset(b)
        if n > self.n_positions:
            raise ConfigError(f"{n} tokens do not fit the model's context of {self.n_positions}")
        E, H, D = self.n_embd, self.n_head, self.head_dim
        x = (self.wte[ids] + self.wpe[:n]).reshape(b * n, E)
        for i, (a, c, wq, bq, wo, bo, *mlp) in enumerate(self.layers):
            h = torch.layer_norm(x, (E,), a, c, self.eps)
            qkv = torch.addmm(bq, h, wq).view(b, n, 3 * E)
            q = qkv[..., :E].reshape(b, n, H, D).transpose(1, 2)
            kv = qkv[..., E:].reshape(b, n, H, 2 * D).transpose(1, 2)  # [b, H, n, 2D]
            self.kv[i, :, :n] = kv.reshape(b * H, n, 2 * D)
            o = F.scaled_dot_product_attention(q, kv[..., :D], kv[..., D:], is_causal=True, scale=1.0)
            x = x + torch.addmm(bo, o.transpose(1, 2).reshape(b * n, E), wo)
            x = x + self._mlp(x, *mlp)
        self.length = n
        last = x.view(b, n, E)[:, -1]
        return torch.layer_norm(last, (E,), *self.lnf, self.eps) @ self.lm_head

    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Append one token per row (`ids`: [batch]); returns the next-token logits [batch, vocab]."""
        pos = self.length
        if pos >= self.n_positions:
            raise ConfigError(f"the context of {self.n_positions} tokens is full; slide the window (prefill)")
        b = ids.shape[0]
        E, H, D = self.n_embd, self.n_head, self.head_dim
        # explicit narrow/select/copy_: tensor indexing with slices costs several times more per call
        x = torch.embedding(self.wte, ids) + self.wpe.select(0, pos)
        if b == 1:
            return self._step_one(x, pos)
        end = pos + 1
        for layer, (a, c, wq, bq, wo, bo, ln_w, ln_b, w1, b1, w2, b2) in zip(self.kv, self.layers, strict=True):
            h = torch.layer_norm(x, (E,), a, c, self.eps)
            qkv = torch.addmm(bq, h, wq)
            cache = layer.narrow(1, 0, end)  # [b * H, end, 2D]
            cache.select(1, pos).copy_(qkv.narrow(1, E, 2 * E).reshape(b * H, 2 * D))
            scores = torch.bmm(qkv.narrow(1, 0, E).reshape(b * H, 1, D), cache.narrow(2, 0, D).transpose(1, 2))
            o = torch.bmm(torch.softmax(scores, -1), cache.narrow(2, D, D))
            x = x + torch.addmm(bo, o.view(b, E), wo)
            h = torch.layer_norm(x, (E,), ln_w, ln_b, self.eps)
            x = x + torch.addmm(b2, F.gelu(torch.addmm(b1, h, w1), approximate=self.approximate), w2)
        self.length = end
        return torch.layer_norm(x, (E,), *self.lnf, self.eps) @ self.lm_head

    def step_token(self, token: int) -> torch.Tensor:
        """`step` for one row given the token as an int (its embedding is one add of two cached rows)."""
        pos = self.length
        if pos >= self.n_positions:
            raise ConfigError(f"the context of {self.n_positions} tokens is full; slide the window (prefill)")
        if self._rows is None:
            self._rows = (self.wte.unsqueeze(1).unbind(0), self.wpe.unsqueeze(1).unbind(0))
        return self._step_one(torch.add(self._rows[0][token], self._rows[1][pos]), pos)

    def _step_one(self, x: torch.Tensor, pos: int) -> torch.Tensor:
        """One row at `pos` (`x`: its input embedding [1, E]): the folded weights and the cached views."""
        E = self.n_embd
        end = pos + 1
        views = self._views[pos] or self._position_views(pos)
        out, act, qkv = self._out, self._act, self._qkv
        out_heads, act_body, q, kv_new = views[0]
        exact = self.approximate == "none"
        for (slot, keys_t, values), (a, c, wq, bq, wo_b, ln_w, ln_b, w1, b1, w2_b) in zip(
                views[1], self.folded, strict=True):
            torch.addmm(bq, torch.layer_norm(x, (E,), a, c, self.eps), wq, out=qkv)
            slot.copy_(kv_new)
            torch.bmm(torch.softmax(torch.bmm(q, keys_t), -1), values, out=out_heads)
            x = torch.addmm(x, out, wo_b)
            torch.addmm(b1, torch.layer_norm(x, (E,), ln_w, ln_b, self.eps), w1, out=act_body)
            if exact:  # act_body holds h / sqrt 2 (see `_fold`)
                act_body.addcmul_(act_body, torch.erf(act_body, out=self._erf))
            elif _gelu_ is not None:
                _gelu_(act_body, approximate=self.approximate)
            else:
                act_body.copy_(F.gelu(act_body, approximate=self.approximate))
            x = torch.addmm(x, act, w2_b)
        self.length = end
        return torch.layer_norm(x, (E,), *self.lnf, self.eps) @ self.lm_head
