"""Self-attention and Multi-Head Group Attention.

Both scale the logits by dim**-0.5 (the whole embedding width, not the head width), as the
reference does. The fused path uses `F.scaled_dot_product_attention`; pruning only needs the
pre-softmax logits of a few query rows, which are computed separately (`row_logits`). The plain
path (`fused=False`) spells the same maths out and is what tests compare the fused path with.
`set_attention_kernel(model, "flex")` switches to FlexAttention (optionally in the self- or the
group-attention layers only), a Triton kernel that inductor generates under torch.compile (an
alternative to the library kernels at GTPT's head width of 16);
"sdpa-split" runs a query length just past a multiple of the kernels' 128-row tiles (257 in the
coarse blocks) as two calls, so that the last, nearly empty tile is not computed in full.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


KERNELS = ("sdpa", "sdpa-split", "flex", "plain")
LAYER_SETS = ("all", "self", "group")   # which layers set_attention_kernel changes
QUERY_TILE = 128   # query rows per tile in the fused kernels (FlashAttention-2, cuDNN)


def _attend(q, k, v, scale: float, kernel: str) -> torch.Tensor:
    """q [B, H, Lq, d], k/v [B, H, Lk, d] -> [B, H, Lq, d]."""
    if kernel == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    if kernel == "sdpa-split":   # each query row's softmax is its own: splitting the rows is exact
        r = q.shape[-2] % QUERY_TILE
        if q.shape[-2] > QUERY_TILE and 0 < r <= QUERY_TILE // 8:
            return torch.cat([F.scaled_dot_product_attention(q[..., :r, :], k, v, scale=scale),
                              F.scaled_dot_product_attention(q[..., r:, :], k, v, scale=scale)], dim=-2)
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    if kernel == "flex":   # fused only under torch.compile; eager materialises the scores
        from torch.nn.attention.flex_attention import flex_attention
        # contiguous: inductor's CPU template rejects a query that is a strided view of the qkv output
        return flex_attention(q.contiguous(), k, v, scale=scale)
    attn = (q @ k.transpose(-2, -1)) * scale
    return attn.softmax(dim=-1) @ v


def row_logits(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """Pre-softmax logits of the given query rows against the given keys, in float32.

    q [*, R, d], k [*, N, d] -> [*, R, N]. Token selection is done in float32 even under
    autocast so that low-precision rounding does not flip near-tied choices.
    """
    with torch.autocast(q.device.type, enabled=False):
        return (q.float() @ k.float().transpose(-2, -1)) * scale


class Attention(nn.Module):
    """Multi-head self-attention over [B, N, C]; qkv without bias, output projection with bias."""

    def __init__(self, dim: int, heads: int, fused: bool = True):
        super().__init__()
        self.heads = heads
        self.scale = dim ** -0.5
        self.kernel = "sdpa" if fused else "plain"
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    @property
    def fused(self) -> bool:
        return self.kernel != "plain"

    @fused.setter
    def fused(self, value: bool) -> None:
        self.kernel = "sdpa" if value else "plain"

    def extra_repr(self) -> str:
        return f"heads={self.heads}, kernel={self.kernel!r}"

    def _split_heads(self, x: torch.Tensor):
        """[..., N, C] -> q, k, v each [..., H, N, C/H] (heads are the outer factor of C)."""
        *lead, n, c = x.shape
        q, k, v = self.qkv(x).view(*lead, n, 3, self.heads, c // self.heads).unbind(-3)
        return q.transpose(-3, -2), k.transpose(-3, -2), v.transpose(-3, -2)

    def _merge_heads(self, out: torch.Tensor) -> torch.Tensor:
        """[..., H, N, d] -> [..., N, C] through the output projection."""
        out = out.transpose(-3, -2)
        return self.proj(out.reshape(*out.shape[:-2], -1))

    def forward(self, x: torch.Tensor, score_rows: int = 0):
        """x [B, N, C] -> (out [B, N, C], logits [B, H, R, N-R] or None).

        score_rows R > 0 also returns the scaled logits of the first R query rows against the
        remaining N-R keys (the image tokens), which drive token pruning.
        """
        q, k, v = self._split_heads(x)
        out = self._merge_heads(_attend(q, k, v, self.scale, self.kernel))
        logits = row_logits(q[..., :score_rows, :], k[..., score_rows:, :], self.scale) if score_rows else None
        return out, logits


class GroupAttention(Attention):
    """Multi-Head Group Attention over G groups, [B, G, T, C] with T = S sparse + the rest.

    Queries are each group's own tokens. Keys/values are the sparse keypoint tokens of *all*
    groups followed by the group's own non-sparse tokens, so keypoints talk across groups while
    image tokens stay inside their group. The first sparse token of group 0 is a placeholder
    copy (the reference masks it as a key and nothing reads its output), so it is simply left
    out of the keys: no mask is needed and the fused kernel applies.
    """

    def __init__(self, dim: int, heads: int, num_sparse: int = 6, fused: bool = True):
        super().__init__(dim, heads, fused)
        self.num_sparse = num_sparse

    def forward(self, x: torch.Tensor, score_rows: int = 0):
        """x [B, G, T, C] -> (out [B, G, T, C], logits [B, G, H, R, T-S] or None).

        logits: rows 0..R-1 of each group against that group's own non-sparse keys.
        """
        b, g, t, c = x.shape
        s = self.num_sparse
        q, k, v = self._split_heads(x)                                   # [B, G, H, T, d]
        h, d = q.shape[2], q.shape[-1]

        def shared_keys(z):  # sparse tokens of all groups minus the placeholder: [B, G, H, G*S-1, d]
            z = z[..., :s, :].transpose(1, 2).reshape(b, h, g * s, d)[:, :, 1:]
            return z.unsqueeze(1).expand(b, g, h, g * s - 1, d)

        k_all = torch.cat([shared_keys(k), k[..., s:, :]], dim=-2)
        v_all = torch.cat([shared_keys(v), v[..., s:, :]], dim=-2)
        out = _attend(q.reshape(b * g, h, t, d), k_all.reshape(b * g, h, -1, d),
                      v_all.reshape(b * g, h, -1, d), self.scale, self.kernel)
        out = self._merge_heads(out.view(b, g, h, t, d))
        logits = row_logits(q[..., :score_rows, :], k[..., s:, :], self.scale) if score_rows else None
        return out, logits


def set_attention_kernel(model: nn.Module, kernel: str, layers: str = "all") -> nn.Module:
    """Run `model`'s attention layers with `kernel` (one of KERNELS); returns the model.

    layers (one of LAYER_SETS): "all", "self" (the self-attention layers: coarse encoder and the
    blocks before grouping) or "group" (Multi-Head Group Attention); the other layers keep theirs.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown attention kernel {kernel!r}; choose from {KERNELS}")
    if layers not in LAYER_SETS:
        raise ValueError(f"unknown attention layer set {layers!r}; choose from {LAYER_SETS}")
    if kernel == "flex":
        try:
            # (`import torch.nn...` here would make `torch` a local name, unbound in the except clause)
            from torch.nn.attention.flex_attention import flex_attention  # noqa: F401
        except ImportError as e:
            raise RuntimeError(f"FlexAttention needs torch >= 2.5 (this is {torch.__version__})") from e
    for m in model.modules():
        if isinstance(m, Attention) and (layers == "all" or (layers == "group") == isinstance(m, GroupAttention)):
            m.kernel = kernel
    return model
