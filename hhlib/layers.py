"""Building blocks of the HybridHash network: patch embedding, block-local attention,
transformer layers, blockify/deblockify, the block-token attention, the interaction module,
the hash layer and the pure-CNN baseline backbone.

Paper: "HybridHash: Hybrid Convolutional and Self-Attention Deep Hashing for Image Retrieval"
(ICMR 2024, arXiv 2405.07524), Sec. 3 (network), built on NesT (Zhang et al., 2021,
"Aggregating Nested Transformers"). Section numbers "docs/method.md §1" refer to
docs/method.md §1, which states the architecture exactly.

Parameter names follow timm's NesT (``patch_embed.proj``, ``transformer_encoder``,
``attn.qkv``, ``mlp.fc1``, ``pool.conv``, ``pool.norm``) so that NesT-B weights map by name.
Every attention head layout follows NesT/JAX: the per-head outputs are concatenated as
``(C', heads)`` (channel ``c' * heads + h``), not ``(heads, C')``, which the pretrained
``proj`` weights expect.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

TOKEN_LAYOUTS = {
    "paper": "block tokens are the pooled map's per-position channel vectors, (B,C,h,w)->(B,h*w,C) "
    "with channels moved last (the paper's attention among block tokens)",
    "reference": "the official code's raw reshape (B,C,h,w)->(B,h*w,C) without moving channels last: "
    "for h*w > 1 each 'token' is a run of channels (docs/method.md §1, 'A discrepancy')",
}


POOL_PADDINGS = {
    "symmetric": "one position of padding on every side (PyTorch's padding=1), as the official HybridHash code pools",
    "same": "TensorFlow SAME: the padding a stride-2 window needs goes to the bottom/right edge only, as timm builds "
    "nest_base_jx, whose JAX-trained weights expect it",
}


class SameMaxPool2d(nn.Module):
    """Max-pool with TensorFlow SAME padding: output edge ceil(H / stride), extra padding at the end.

    The total padding per axis is ``max((ceil(H / s) - 1) * s + k - H, 0)``, split as
    ``floor(p / 2)`` before and the rest after, filled with -inf so it never wins the max
    (the rule of TensorFlow's ``padding="SAME"``; for a 3x3/2 pool on an even edge that is
    0 before and 1 after, where PyTorch's ``padding=1`` puts 1 on each side).
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def _padding(self, edge: int) -> tuple[int, int]:
        total = max((-(-edge // self.stride) - 1) * self.stride + self.kernel_size - edge, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float -> (B, C, ceil(H / stride), ceil(W / stride)) float."""
        top, bottom = self._padding(x.shape[-2])
        left, right = self._padding(x.shape[-1])
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME"


def downsampling_max_pool(padding: str = "symmetric") -> nn.Module:
    """The 3x3, stride-2 max-pool that halves a level's map (NesT's aggregation), with the given padding.

    Args:
        padding: a :data:`POOL_PADDINGS` name. Both give an output edge of ceil(H / 2); they
            differ in which input positions each window covers.

    Raises:
        KeyError: unknown padding name (the message lists the valid ones).
    """
    if padding not in POOL_PADDINGS:
        raise KeyError(f"unknown pool_padding {padding!r}: valid names are {sorted(POOL_PADDINGS)}")
    return SameMaxPool2d(3, 2) if padding == "same" else nn.MaxPool2d(3, stride=2, padding=1)


def blockify(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """Cut a channels-last map into square non-overlapping blocks of tokens.

    Args:
        x: (B, H, W, C) float map; H and W multiples of ``block_size``.
        block_size: block edge in map positions.

    Returns:
        (B, T, N, C) with T = (H / block_size) * (W / block_size) blocks in row-major order
        and N = block_size**2 tokens per block, row-major inside the block.
    """
    batch, height, width, channels = x.shape
    grid_h, grid_w = height // block_size, width // block_size
    x = x.reshape(batch, grid_h, block_size, grid_w, block_size, channels)
    return x.transpose(2, 3).reshape(batch, grid_h * grid_w, block_size * block_size, channels)


def deblockify(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """Inverse of :func:`blockify` for a square grid of blocks.

    Args:
        x: (B, T, N, C) float, T a square number, N = block_size**2.
        block_size: block edge in map positions.

    Returns:
        (B, H, W, C) with H = W = sqrt(T) * block_size.
    """
    batch, blocks, _, channels = x.shape
    grid = round(blocks**0.5)
    x = x.reshape(batch, grid, grid, block_size, block_size, channels)
    return x.transpose(2, 3).reshape(batch, grid * block_size, grid * block_size, channels)


def channel_layer_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """Apply a LayerNorm over the channel axis of a (B, C, H, W) map (NesT style).

    Args:
        norm: LayerNorm over C.
        x: (B, C, H, W) float.

    Returns:
        (B, C, H, W) float, normalised per position.
    """
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch per sample with probability ``drop_prob``.

    :meth:`residual` is what the transformer layers call: it adds the branch only for the samples
    that keep it and never computes it for the others. ``forward`` scales an already computed
    branch output (the textbook form, kept for branches that are not per sample).
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale kept samples by 1/keep so the expectation is unchanged (identity in eval)."""
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def residual(self, x: torch.Tensor, branch: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``x + self(branch(x))``, with ``branch`` run only on the samples that keep it.

        Exact (the same distribution as the textbook form) only when ``branch`` treats every
        sample on its own: row i of ``branch(x)`` depends on row i of ``x`` alone.

        Args:
            x: (B, ...) float, the residual stream.
            branch: per-sample map (B', ...) -> (B', ...) of the same trailing shape.

        Returns:
            (B, ...) float: ``x`` plus ``branch(x) / keep`` on the kept rows, ``x`` on the dropped ones.
        """
        if self.drop_prob == 0.0 or not self.training:
            return x + branch(x)
        if torch.compiler.is_compiling():  # a data-dependent row count would break the compiled graph
            return x + self(branch(x))
        keep = 1.0 - self.drop_prob
        return residual_on_kept_rows(x, branch, kept_rows(x.shape[0], keep, x.device), keep)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


def kept_rows(batch: int, keep: float, device: torch.device) -> torch.Tensor:
    """Indices of the samples whose residual branch survives, each kept with probability ``keep``.

    Drawn with the CPU generator and then moved, so the kept count is known on the host without a
    device-to-host sync; the copy to an accelerator does not wait for it.

    Returns:
        (K,) int64 on ``device``, increasing, 0 <= K <= batch.
    """
    rows = (torch.rand(batch) < keep).nonzero().squeeze(1)
    return rows.to(device, non_blocking=True)


def residual_on_kept_rows(
    x: torch.Tensor, branch: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, keep: float
) -> torch.Tensor:
    """``x`` with ``branch(x[rows]) / keep`` added to the given rows; the other rows pass unchanged.

    Args:
        x: (B, ...) float.
        branch: per-sample map, applied to the K selected rows only.
        rows: (K,) int64, distinct row indices of ``x``.
        keep: the keep probability the kept rows are scaled by (1 / keep).

    Returns:
        (B, ...) float. No row kept: ``x`` itself (the branch never runs); every row kept: one
        batched call with no gather.
    """
    if len(rows) == 0:
        return x
    if len(rows) == x.shape[0]:
        return x + branch(x) / keep
    update = branch(x.index_select(0, rows))
    dtype = torch.promote_types(x.dtype, update.dtype)  # as ``x + update`` would (e.g. a bf16 branch under autocast)
    return x.to(dtype).index_add(0, rows, update.to(dtype), alpha=1.0 / keep)


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: conv k = stride = patch_size (docs/method.md §1, "Stem")."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, S, S) float -> (B, embed_dim, S/patch, S/patch)."""
        return self.proj(images)


class Mlp(nn.Module):
    """Transformer feed-forward block: fc1 -> GELU -> dropout -> fc2 -> dropout."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., dim) -> (..., dim)."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B', heads, N, C') -> (B', N, C' * heads), channel c' * heads + h as in NesT/JAX."""
    batch, heads, tokens, head_dim = x.shape
    return x.permute(0, 2, 3, 1).reshape(batch, tokens, head_dim * heads)


class LocalAttention(nn.Module):
    """Multi-head self-attention over the N tokens inside each block (docs/method.md §1, level step 4).

    Blocks never see each other; all blocks of all images run as one batch of 4-D tensors
    through ``F.scaled_dot_product_attention`` (no loop over blocks).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention dim {dim} is not divisible by num_heads {num_heads}: pick heads dividing the dim")
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, N, C) float -> (B, T, N, C) float."""
        batch, blocks, tokens, channels = x.shape
        head_dim = channels // self.num_heads
        qkv = self.qkv(x).reshape(batch, blocks, tokens, 3, self.num_heads, head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, batch * blocks, self.num_heads, tokens, head_dim).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        out = _merge_heads(out).reshape(batch, blocks, tokens, channels)
        return self.proj_drop(self.proj(out))


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer over blocked tokens (docs/method.md §1, level step 4)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = LocalAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path)  # no parameters: drop_path 0 adds nothing to the state dict
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, N, C) float -> (B, T, N, C) float."""
        # both branches are per sample (LayerNorm, attention inside each sample's blocks, MLP), so
        # the dropped samples' branches are skipped rather than computed and multiplied by zero
        x = self.drop_path.residual(x, self._attention_branch)
        return self.drop_path.residual(x, self._mlp_branch)

    def _attention_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.norm1(x))

    def _mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm2(x))


class BlockTokenAttention(nn.Module):
    """The global branch's core: average-pool into block tokens, attend among them, upsample back.

    Average pooling with kernel = stride = ``kernel`` leaves one block token (BT) per
    ``kernel x kernel`` window; a learned position embedding is added, multi-head
    self-attention (qkv without bias, projection with bias) mixes the tokens, and bilinear
    upsampling (align_corners False) by the same factor restores the map (docs/method.md §1,
    "Interaction module", global branch).

    ``token_layout`` picks how the pooled (B, C, h, w) map becomes tokens, see
    :data:`TOKEN_LAYOUTS`; the output side always treats the result as (B, h, w, C), as the
    official code does.
    """

    def __init__(self, dim: int, num_heads: int, num_tokens: int, kernel: int, token_layout: str = "paper") -> None:
        super().__init__()
        if token_layout not in TOKEN_LAYOUTS:
            raise KeyError(f"unknown token_layout {token_layout!r}: valid names are {sorted(TOKEN_LAYOUTS)}")
        if dim % num_heads:
            raise ValueError(f"block-token attention dim {dim} is not divisible by {num_heads} heads: set interaction_heads to a divisor of every embed dim")
        self.num_heads = num_heads
        self.kernel = kernel
        self.token_layout = token_layout
        # zeros, as the official code leaves it (its init_weights never touches pos_embed_glo)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def attend(self, pooled: torch.Tensor) -> torch.Tensor:
        """Self-attention among the block tokens of an already pooled map.

        Args:
            pooled: (B, C, h, w) float, h * w == num_tokens.

        Returns:
            (B, C, h, w) float.
        """
        batch, channels, height, width = pooled.shape
        if self.token_layout == "paper":
            tokens = pooled.flatten(2).transpose(1, 2)
        else:
            tokens = pooled.reshape(batch, height * width, channels)
        tokens = tokens + self.pos_embed
        head_dim = channels // self.num_heads
        qkv = self.qkv(tokens).reshape(batch, height * width, 3, self.num_heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = self.proj(_merge_heads(F.scaled_dot_product_attention(q, k, v)))
        return out.reshape(batch, height, width, channels).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor, project: nn.Module | None = None) -> torch.Tensor:
        """(B, Cin, H, W) float, H and W multiples of ``kernel`` -> (B, C, H, W) float.

        ``project``, a bias-free 1x1 conv Cin -> C, is applied to the pooled map: a per-pixel linear
        map commutes with window averaging, so the result equals pooling ``project(x)`` (up to
        rounding) at 1 / kernel**2 of the conv's cost.
        """
        pooled = x if self.kernel == 1 else F.avg_pool2d(x, self.kernel, self.kernel)
        if project is not None:
            pooled = project(pooled)
        if self.kernel == 1:
            return self.attend(pooled)
        return F.interpolate(self.attend(pooled), scale_factor=self.kernel, mode="bilinear", align_corners=False)


class InteractionModule(nn.Module):
    """Between levels: local 3x3 conv + global block-token branch, LayerNorm, 3x3/2 max-pool.

    Maps (B, Din, H, W) -> (B, Dout, H/2, W/2) (docs/method.md §1, "Interaction module"). ``local`` and
    ``global_`` switch the branches for the ablations; with neither, the module is the
    "no interaction" aggregation: 1x1 conv -> LayerNorm -> max-pool (docs/method.md §1, "Ablation
    variants"). With only ``local`` it is exactly NesT's ConvPool; ``pool_padding`` picks the
    max-pool's padding (:data:`POOL_PADDINGS`: "symmetric" as the official HybridHash code,
    "same" as timm's ``nest_base_jx``).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        kernel: int,
        num_tokens: int,
        num_heads: int = 8,
        token_layout: str = "paper",
        local: bool = True,
        global_: bool = True,
        norm_eps: float = 1e-6,
        pool_padding: str = "symmetric",
    ) -> None:
        super().__init__()
        self.local = local
        self.global_ = global_
        if local or not global_:
            # the no-interaction ablation replaces the 3x3 conv by a 1x1 conv
            self.conv = nn.Conv2d(in_dim, out_dim, 3 if local else 1, padding=1 if local else 0)
        if global_:
            self.conv_global = nn.Conv2d(in_dim, out_dim, 1, bias=False)
            self.global_attention = BlockTokenAttention(out_dim, num_heads, num_tokens, kernel, token_layout)
        self.norm = nn.LayerNorm(out_dim, eps=norm_eps)
        self.pool = downsampling_max_pool(pool_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Din, H, W) float -> (B, Dout, H/2, W/2) float."""
        if self.global_:
            mixed = self.global_attention(x, project=self.conv_global)  # 1x1 conv after the pool: they commute
            if self.local:
                mixed = self.conv(x) + mixed
        else:
            mixed = self.conv(x)
        return self.pool(channel_layer_norm(self.norm, mixed))


class HashLayer(nn.Module):
    """Hash layer on the final map: (1x3 then 3x1 conv) + block-token branch, max-pool, 1x1 conv to bits, average pool.

    Returns pre-tanh values; the network applies tanh (docs/method.md §1, "Hash layer"). With neither
    branch it is the plain hash head: max-pool -> 1x1 conv -> average pool (the
    no-interaction ablation and the NesT backbone's head).
    """

    def __init__(
        self,
        dim: int,
        bits: int,
        *,
        kernel: int,
        num_tokens: int,
        num_heads: int = 8,
        token_layout: str = "paper",
        local: bool = True,
        global_: bool = True,
    ) -> None:
        super().__init__()
        self.local = local
        self.global_ = global_
        if local:
            self.conv_row = nn.Conv2d(dim, dim, (1, 3), padding=(0, 1))
            self.conv_col = nn.Conv2d(dim, dim, (3, 1), padding=(1, 0))
        if global_:
            self.global_attention = BlockTokenAttention(dim, num_heads, num_tokens, kernel, token_layout)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv_hash = nn.Conv2d(dim, bits, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, dim, H, W) float -> (B, bits) float pre-tanh."""
        if self.local and self.global_:
            x = self.conv_col(self.conv_row(x)) + self.global_attention(x)
        elif self.local:
            x = self.conv_col(self.conv_row(x))
        elif self.global_:
            x = self.global_attention(x)
        return self.conv_hash(self.pool(x)).mean(dim=(2, 3))


class HybridHashLevel(nn.Module):
    """One level of the nested hierarchy: aggregate (pool), blockify, add position embedding, transformer layers, deblockify.

    ``pool`` is the identity at level 0 and an :class:`InteractionModule` later (docs/method.md §1,
    "Levels", steps 1-5). Attention runs inside each block only.
    """

    def __init__(
        self,
        *,
        num_blocks: int,
        block_size: int,
        embed_dim: int,
        num_heads: int,
        depth: int,
        pool: nn.Module | None = None,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path_rates: tuple[float, ...] = (),
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.block_size = block_size
        self.pos_embed = nn.Parameter(torch.zeros(1, num_blocks, block_size * block_size, embed_dim))
        self.pool = pool if pool is not None else nn.Identity()
        rates = tuple(drop_path_rates) or (0.0,) * depth
        self.transformer_encoder = nn.Sequential(
            *[
                TransformerLayer(embed_dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, rates[j], norm_eps)
                for j in range(depth)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Din, 2H, 2W) float (or (B, D, H, W) at level 0) -> (B, D, H, W) float."""
        x = self.pool(x).permute(0, 2, 3, 1)
        x = blockify(x, self.block_size) + self.pos_embed
        x = deblockify(self.transformer_encoder(x), self.block_size)
        return x.permute(0, 3, 1, 2)


class DivideEncodeHead(nn.Module):
    """DNNH/NINH divide-and-encode head: split the pooled features into ``bits`` slices, one output per slice.

    Slice k (a contiguous run of about D / bits features, ``torch.tensor_split`` sizes) is
    mapped to output k by its own weights and bias; the network applies tanh
    (Lai et al., CVPR 2015, Sec. 3.2).
    """

    def __init__(self, dim: int, bits: int) -> None:
        super().__init__()
        if bits > dim:
            raise ValueError(f"divide_encode needs at least one feature per bit, but bits={bits} > feature dim {dim}: use head='hash_layer' or fewer bits")
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(bits))
        slice_of = torch.cat([torch.full((len(part),), k) for k, part in enumerate(torch.tensor_split(torch.arange(dim), bits))])
        self.register_buffer("assignment", F.one_hot(slice_of, bits).float(), persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) float -> (B, bits) float pre-tanh: out_k = sum_{d in slice k} w_d f_d + b_k."""
        return (features * self.weight) @ self.assignment.to(features.dtype) + self.bias


class ConvBackbone(nn.Module):
    """Pure-CNN baseline backbone with the same map sizes as the transformer backbone.

    Stem conv (k = stride = patch_size) + BatchNorm + ReLU, then per level: a 3x3/2 max-pool
    (from level 1 on) and ``convs_per_level`` x (3x3 conv, BatchNorm, ReLU). Works at any
    input size (the map edge is ceil-halved per level).
    """

    def __init__(self, patch_size: int, in_chans: int, embed_dims: tuple[int, ...], convs_per_level: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, embed_dims[0], patch_size, stride=patch_size, bias=False),
            nn.BatchNorm2d(embed_dims[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        prev = embed_dims[0]
        for i, dim in enumerate(embed_dims):
            layers: list[nn.Module] = [nn.MaxPool2d(3, stride=2, padding=1)] if i else []
            for _ in range(convs_per_level):
                layers += [nn.Conv2d(prev, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True)]
                prev = dim
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, S, S) float -> (B, embed_dims[-1], h, h) float."""
        return self.stages(self.stem(images))
