"""The HybridHash network: its configuration, the module, named presets and the builder.

Paper: "HybridHash: Hybrid Convolutional and Self-Attention Deep Hashing for Image Retrieval"
(ICMR 2024, arXiv 2405.07524), Sec. 3. A NesT-style nested transformer (NesT-B, Zhang et
al., 2021) whose block aggregations are interaction modules, followed by a hash layer;
docs/method.md §1 states the architecture exactly.

Any input size whose patch grid divides into the block grid works: the block edge, the
block-token pooling kernels and the upsampling factors all follow from
``img_size / patch_size / 2**(num_levels - 1)`` (the official code hard-codes 14, which
only fits a 56x56 grid).

Loading weights lives in :mod:`hhlib.pretrained`; :func:`load_checkpoint` and
:func:`from_pretrained_nest` are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from hhlib.cnn_baselines import FullResolutionCNN, ResNet18Trunk
from hhlib.efficientnet import EfficientNetLite0Trunk
from hhlib.layers import (
    POOL_PADDINGS,
    TOKEN_LAYOUTS,
    BlockTokenAttention,
    ConvBackbone,
    DivideEncodeHead,
    HashLayer,
    HybridHashLevel,
    InteractionModule,
    PatchEmbed,
    channel_layer_norm,
)
from hhlib.multirep import MultiRepresentationTrunk
from hhlib.pretrained import LoadReport, from_pretrained_nest, load_checkpoint

__all__ = [
    "BACKBONES",
    "TRUNKS",
    "HEADS",
    "POOL_PADDINGS",
    "PRESETS",
    "TOKEN_LAYOUTS",
    "VARIANTS",
    "HybridHash",
    "HybridHashConfig",
    "LoadReport",
    "build",
    "from_pretrained_nest",
    "load_checkpoint",
]

# Which branches (local conv, global block-token attention) the interaction modules and the
# hash layer keep (docs/method.md §1, "Ablation variants"). With neither, the interaction module is
# 1x1 conv -> LayerNorm -> max-pool and the hash layer is max-pool -> 1x1 conv -> avg pool.
VARIANTS = {
    "hybrid": {"local": True, "global_": True},
    "no_interaction": {"local": False, "global_": False},
    "local_only": {"local": True, "global_": False},
    "global_only": {"local": False, "global_": True},
}

BACKBONES = {
    "hybridhash": "NesT levels with interaction modules between them (the paper's network)",
    "nest": "plain NesT: 3x3 conv -> LayerNorm -> max-pool aggregation, plain hash head (max-pool, 1x1 conv, avg pool)",
    "cnn": "pure-CNN baseline (conv-BN-ReLU stages, same map sizes) with the HybridHash hash layer",
    "resnet18": "torchvision ResNet-18 (3x3 stride-1 stem, no max-pool below 64 px) with the plain hash head",
    "cnn_full": "plain CNN at full resolution (32-64-128-256 conv-BN-ReLU, 2x2 max-pools) with the plain hash head",
    "efficientnet_lite0": "timm EfficientNet-Lite0 (TF padding/eps; backbone_weights='imagenet' loads ImageNet) with the plain hash head",
    "multirep": "Kang et al. 2012: pixels, gradient histograms and Fourier magnitudes, view-specific + shared nodes, fused code layer",
}

# Trunks built by their own modules (hhlib.cnn_baselines, hhlib.efficientnet, hhlib.multirep): they own their
# init, ignore the NesT sizes (embed_dims, heads, depths, patch_size) and feed the plain hash head.
TRUNKS = {
    "resnet18": ResNet18Trunk,
    "cnn_full": FullResolutionCNN,
    "efficientnet_lite0": EfficientNetLite0Trunk,
    "multirep": MultiRepresentationTrunk,
}

HEADS = {
    "hash_layer": "the backbone's hash layer (HybridHash's, or the plain one for variant/backbone without interaction)",
    "divide_encode": "DNNH/NINH divide-and-encode on the pooled features: one slice of features per bit",
}


@dataclass(frozen=True)
class HybridHashConfig:
    """Every number of the HybridHash network; defaults are the paper's configuration (docs/method.md §1).

    Derived sizes (block edge, pooling kernels, token counts) are properties, not fields.
    Lists (e.g. from YAML) are accepted for the tuple fields and stored as tuples.

    Raises:
        KeyError: unknown ``variant``, ``backbone``, ``head`` or ``token_layout``.
        ValueError: sizes that cannot work (the message names the sizes that can).
    """

    img_size: int = 224  # docs/method.md §1/§3: 224x224 RGB input
    patch_size: int = 4  # docs/method.md §1 "Stem": conv k=4, stride 4 (224 -> 56x56 map)
    in_chans: int = 3  # docs/method.md §1 "Stem": RGB input
    num_levels: int = 3  # docs/method.md §1 "Levels": 16, 4, 1 blocks
    embed_dims: tuple[int, ...] = (128, 256, 512)  # docs/method.md §1 "Paper config" (NesT-B)
    num_heads: tuple[int, ...] = (4, 8, 16)  # docs/method.md §1 "Paper config"
    depths: tuple[int, ...] = (2, 2, 20)  # docs/method.md §1 "Paper config" (NesT-B; the reference script builds (2, 2, 15))
    mlp_ratio: float = 4.0  # docs/method.md §1 level step 4: MLP ratio 4
    qkv_bias: bool = True  # docs/method.md §1 level step 4: qkv bias on
    norm_eps: float = 1e-6  # docs/method.md §1 level step 4: LayerNorm eps 1e-6
    drop_rate: float = 0.0  # docs/method.md §1 (NesT-B default used by the reference code): no dropout
    attn_drop_rate: float = 0.0  # docs/method.md §1 (NesT-B default used by the reference code): no attention dropout
    drop_path_rate: float = 0.5  # docs/method.md §1 level step 4: stochastic depth rising linearly 0 -> 0.5
    init_std: float = 0.02  # docs/method.md §1 "Pretrained weights": truncated normal std 0.02 (NesT init)
    interaction_heads: int = 8  # docs/method.md §1 "Interaction module"/"Hash layer": 8-head block-token attention
    block_token_kernel: int | None = None  # docs/method.md §1: avg-pool kernel = block edge (14 at 224 px); None derives it
    bits: int = 64  # docs/method.md §3: 16/32/48/64 bits, one model each (64 in the reference state dict)
    variant: str = "hybrid"  # docs/method.md §1 "Ablation variants": hybrid, no_interaction, local_only, global_only
    backbone: str = "hybridhash"  # docs/method.md §1 (hybridhash); "nest" and "cnn" are the paper's backbone comparison
    head: str = "hash_layer"  # docs/method.md §1 "Hash layer"; "divide_encode" for DNNH/NINH
    token_layout: str = "paper"  # docs/method.md §1 "A discrepancy": "paper" (default) or "reference" (official code)
    cnn_convs_per_level: int = 2  # hhlib's CNN baseline (not in the paper): conv-BN-ReLU units per level
    # max-pool padding of the level aggregations (hhlib.layers.POOL_PADDINGS). None derives it from the
    # backbone: "same" for backbone="nest" (timm builds nest_base_jx with TF SAME padding, which its JAX
    # weights need), "symmetric" otherwise (the official HybridHash code pools with padding=1)
    pool_padding: str | None = None
    backbone_weights: str | None = None  # efficientnet_lite0 only: None (random init) or "imagenet" (hhlib.efficientnet)

    def __post_init__(self) -> None:
        for name in ("embed_dims", "num_heads", "depths"):
            value = getattr(self, name)
            value = tuple(value) if isinstance(value, (list, tuple)) else (value,) * self.num_levels
            object.__setattr__(self, name, value)
        for name, registry in (("variant", VARIANTS), ("backbone", BACKBONES), ("head", HEADS), ("token_layout", TOKEN_LAYOUTS)):
            if getattr(self, name) not in registry:
                raise KeyError(f"unknown {name} {getattr(self, name)!r}: valid names are {sorted(registry)}")
        if self.pool_padding is not None and self.pool_padding not in POOL_PADDINGS:
            raise KeyError(f"unknown pool_padding {self.pool_padding!r}: valid names are {sorted(POOL_PADDINGS)} (None: derived from the backbone)")
        if self.backbone != "hybridhash" and self.variant != "hybrid":
            raise ValueError(f"variant {self.variant!r} applies to backbone='hybridhash' only: use variant='hybrid' with backbone={self.backbone!r}")
        if self.num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {self.num_levels}: the paper uses 3")
        self._check_ranges()
        for name in ("embed_dims", "num_heads", "depths"):
            if len(getattr(self, name)) != self.num_levels:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries but num_levels is {self.num_levels}: give one per level")
        if self.bits < 1:
            raise ValueError(f"bits must be positive, got {self.bits}: the paper uses 16, 32, 48 or 64")
        if self.backbone_weights is not None and self.backbone != "efficientnet_lite0":
            raise ValueError(f"backbone_weights={self.backbone_weights!r} applies to backbone='efficientnet_lite0' only: use backbone_weights=None")
        if self.backbone_weights not in (None, *EfficientNetLite0Trunk.WEIGHTS):
            raise KeyError(f"unknown backbone_weights {self.backbone_weights!r}: valid are None and {list(EfficientNetLite0Trunk.WEIGHTS)}")
        if self.head == "divide_encode" and self.bits > self.feature_dim:
            raise ValueError(f"divide_encode needs at least one feature per bit, but bits={self.bits} > feature dim {self.feature_dim}: use head='hash_layer' or fewer bits")
        if self.backbone in TRUNKS:
            if self.img_size < 1:
                raise ValueError(f"img_size must be positive, got {self.img_size}: e.g. 32")
        elif self.backbone != "cnn":
            self._check_grid()
            for dim, heads in zip(self.embed_dims, self.num_heads):
                if dim % heads:
                    raise ValueError(f"embed dim {dim} is not divisible by its {heads} heads: pick num_heads dividing embed_dims")
        elif self.img_size < self.patch_size:
            raise ValueError(f"img_size {self.img_size} is smaller than patch_size {self.patch_size}: use a larger image or a smaller patch")
        if self.uses_global_branch:
            kernel, edges = self.token_kernel, self.pooled_edges
            if kernel < 1 or any(edge % kernel for edge in edges):
                divisors = [d for d in range(1, min(edges) + 1) if all(e % d == 0 for e in edges)]
                raise ValueError(
                    f"block_token_kernel {kernel} does not divide the map edges {edges} it pools: "
                    f"use one of {divisors} (None = the block edge {self.block_size})"
                )
            dims = set(self.embed_dims[1:]) if self.branches["global_"] else set()
            if self.head == "hash_layer" and self.head_branches["global_"]:
                dims.add(self.embed_dims[-1])
            if any(d % self.interaction_heads for d in dims):
                raise ValueError(
                    f"interaction_heads {self.interaction_heads} must divide every embed dim it attends over "
                    f"{sorted(dims)}: pick a common divisor"
                )

    def _check_ranges(self) -> None:
        """Sizes >= 1 and dropout probabilities in [0, 1), checked before any size arithmetic divides by them."""
        for name in ("img_size", "patch_size", "in_chans"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}: the paper uses "
                                 f"{getattr(HybridHashConfig, name)}")
        if self.block_token_kernel is not None and not self.block_token_kernel >= 1:
            raise ValueError(f"block_token_kernel must be None (the block edge) or an int >= 1, got {self.block_token_kernel!r}")
        for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1) (a probability of dropping; 1 drops everything and gives "
                                 f"NaN), got {getattr(self, name)!r}")

    def _check_grid(self) -> None:
        unit = self.patch_size * 2 ** (self.num_levels - 1)
        if self.img_size % unit == 0:
            return
        lower = self.img_size // unit * unit
        nearest = [s for s in (lower - unit, lower, lower + unit, lower + 2 * unit) if s > 0]
        raise ValueError(
            f"img_size {self.img_size} does not fit the block grid: with patch_size {self.patch_size} and "
            f"num_levels {self.num_levels} the image edge must be a multiple of {unit} "
            f"(patch_size * 2**(num_levels-1)); nearest valid sizes: {nearest}"
        )

    @property
    def map_sizes(self) -> tuple[int, ...]:
        """Edge of the feature map at each level (56, 28, 14 in the paper)."""
        edge = self.img_size // self.patch_size
        sizes = [edge]
        for _ in range(self.num_levels - 1):
            edge = (edge + 1) // 2  # 3x3 max-pool, stride 2, padding 1
            sizes.append(edge)
        return tuple(sizes)

    @property
    def aggregation_padding(self) -> str:
        """The level aggregations' max-pool padding: ``pool_padding``, or "same" for the NesT backbone and "symmetric" otherwise."""
        if self.pool_padding is not None:
            return self.pool_padding
        return "same" if self.backbone == "nest" else "symmetric"

    @property
    def block_size(self) -> int:
        """Block edge in patches, the same at every level (14 in the paper)."""
        return self.map_sizes[-1]

    @property
    def num_blocks(self) -> tuple[int, ...]:
        """Blocks per level: 4**(num_levels-1-i) (16, 4, 1 in the paper)."""
        return tuple(4 ** (self.num_levels - 1 - i) for i in range(self.num_levels))

    @property
    def token_kernel(self) -> int:
        """Average-pool kernel (= stride = upsampling factor) of every global branch."""
        return self.block_token_kernel if self.block_token_kernel is not None else self.block_size

    @property
    def branches(self) -> dict[str, bool]:
        """Branches kept by the interaction modules (``local``, ``global_``); the CNN backbone has none."""
        if self.backbone == "nest":
            return {"local": True, "global_": False}
        if self.backbone == "cnn" or self.backbone in TRUNKS:
            return {"local": False, "global_": False}
        return dict(VARIANTS[self.variant])

    @property
    def head_branches(self) -> dict[str, bool]:
        """Branches kept by the hash layer (the NesT backbone has the plain head)."""
        if self.backbone == "nest" or self.backbone in TRUNKS:
            return {"local": False, "global_": False}
        return dict(VARIANTS[self.variant])

    @property
    def pooled_edges(self) -> tuple[int, ...]:
        """Edges of the maps that global branches average-pool: interaction inputs, then the hash layer's input."""
        edges = self.map_sizes[:-1] if self.branches["global_"] else ()
        if self.head == "hash_layer" and self.head_branches["global_"]:
            edges += self.map_sizes[-1:]
        return edges

    @property
    def uses_global_branch(self) -> bool:
        """Whether any block-token attention exists in the network."""
        return bool(self.pooled_edges)

    @property
    def feature_dim(self) -> int:
        """D of :meth:`HybridHash.features`."""
        if self.backbone in TRUNKS:
            return TRUNKS[self.backbone].feature_dim
        return self.embed_dims[-1]


PRESETS = {
    # docs/method.md §1 "Paper config": NesT-B dims/heads/depths at 224 px
    "paper": HybridHashConfig(),
    # docs/method.md §1: what the reference training script builds (layers 16-20 of level 3 dropped)
    "paper15": HybridHashConfig(depths=(2, 2, 15)),
    # unit tests: 32 px, patch 4 -> 8x8 grid, block edge 2, the smallest dims keeping 3 levels
    "tiny32": HybridHashConfig(
        img_size=32, embed_dims=(8, 16, 32), num_heads=(1, 2, 4), depths=(1, 1, 1), interaction_heads=2, drop_path_rate=0.1
    ),
    # CPU training from scratch at 32 px: patch 4 -> 8x8 grid, block edge 2, 0.36M parameters at 64 bits.
    # Chosen by measurement on Fashion-MNIST (docs/training.md): wider (32-64-128) or deeper (48-96-192,
    # depths 1-1-2) shapes gave no better mAP per CPU minute; drop path hurt at this size.
    "small32": HybridHashConfig(
        img_size=32, embed_dims=(24, 48, 96), num_heads=(1, 2, 4), depths=(1, 1, 1), interaction_heads=2, drop_path_rate=0.0
    ),
}


TRUNC_BOUND = 2.0  # NesT/timm init: trunc_normal_(std=.02, a=-2, b=2), absolute bounds


@torch.no_grad()
def _trunc_normal_(tensor: torch.Tensor, std: float, bound: float = TRUNC_BOUND) -> None:
    """Fill ``tensor`` from N(0, std^2) truncated to [-bound, bound] (NesT's ``trunc_normal_(std, a=-2, b=2)``).

    Draws a normal sample and redraws every value outside the bounds until none is left: rejection
    sampling, which gives exactly the truncated distribution (clamping would pile the tails onto the
    bounds). At the NesT bounds (100 std) a redraw practically never happens, so this costs one
    ``normal_``.
    """
    tensor.normal_(0.0, std)
    outside = tensor.abs() > bound
    while bool(outside.any()):
        tensor[outside] = torch.randn(int(outside.sum()), dtype=tensor.dtype, device=tensor.device) * std
        outside = tensor.abs() > bound


def _init_weights(module: nn.Module, std: float) -> None:
    """NesT initialisation: truncated normal for linear/conv weights, zero biases, unit norms."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        _trunc_normal_(module.weight, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _nest_levels(cfg: HybridHashConfig) -> list[HybridHashLevel]:
    """The NesT levels, each after the interaction module that aggregates the previous level's map (docs/method.md §1)."""
    rates = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths), device="cpu").split(list(cfg.depths))
    levels = []
    for i in range(cfg.num_levels):
        pool = _interaction_module(cfg, i) if i > 0 else None  # built before its level: RNG draw order
        levels.append(
            HybridHashLevel(
                num_blocks=cfg.num_blocks[i],
                block_size=cfg.block_size,
                embed_dim=cfg.embed_dims[i],
                num_heads=cfg.num_heads[i],
                depth=cfg.depths[i],
                pool=pool,
                mlp_ratio=cfg.mlp_ratio,
                qkv_bias=cfg.qkv_bias,
                drop=cfg.drop_rate,
                attn_drop=cfg.attn_drop_rate,
                drop_path_rates=tuple(rates[i].tolist()),
                norm_eps=cfg.norm_eps,
            )
        )
    return levels


def _interaction_module(cfg: HybridHashConfig, level: int) -> InteractionModule:
    """The aggregation from level ``level - 1`` into level ``level`` (an interaction module, Sec. 3)."""
    kernel = cfg.token_kernel
    return InteractionModule(
        cfg.embed_dims[level - 1],
        cfg.embed_dims[level],
        kernel=kernel,
        num_tokens=(cfg.map_sizes[level - 1] // kernel) ** 2,
        num_heads=cfg.interaction_heads,
        token_layout=cfg.token_layout,
        norm_eps=cfg.norm_eps,
        pool_padding=cfg.aggregation_padding,
        **cfg.branches,
    )


class HybridHash(nn.Module):
    """The HybridHash network (or one of its ablations): images -> (B, bits) hash outputs.

    Args:
        config: the network's numbers and switches; None = the paper's configuration.

    Attributes:
        config: the :class:`HybridHashConfig` it was built from.
    """

    def __init__(self, config: HybridHashConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else HybridHashConfig()
        self.config = cfg
        # Built in this order (trunk, then head): the layers' default inits draw from the RNG in
        # construction order, and the state-dict keys follow it.
        self._build_trunk(cfg)
        self._build_head(cfg)
        # The official model also defines an FcLayer that its forward never uses; hhlib leaves it out
        # (load_checkpoint reports it as dropped), so paper15 / 64 bits has 55,586,240 parameters,
        # the official 55,619,072 less FcLayer's 512 x 64 + 64.
        self.reset_parameters()

    def _build_trunk(self, cfg: HybridHashConfig) -> None:
        """The backbone: ``cnn`` (CNN baseline), ``trunk`` (a TRUNKS entry) or ``patch_embed`` + ``levels`` + ``norm`` (NesT)."""
        if cfg.backbone == "cnn":
            self.cnn = ConvBackbone(cfg.patch_size, cfg.in_chans, cfg.embed_dims, cfg.cnn_convs_per_level)
        elif cfg.backbone in TRUNKS:
            weights = {"weights": cfg.backbone_weights} if cfg.backbone_weights is not None else {}
            self.trunk = TRUNKS[cfg.backbone](in_chans=cfg.in_chans, img_size=cfg.img_size, **weights)
        else:
            self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dims[0])
            self.levels = nn.Sequential(*_nest_levels(cfg))
            self.norm = nn.LayerNorm(cfg.embed_dims[-1], eps=cfg.norm_eps)

    def _build_head(self, cfg: HybridHashConfig) -> None:
        """The head: ``hash_layer`` (HybridHash's hash layer, Sec. 3) or ``divide_encode`` (DNNH/NINH)."""
        if cfg.head == "hash_layer":
            kernel = cfg.token_kernel
            self.hash_layer = HashLayer(
                cfg.feature_dim,
                cfg.bits,
                kernel=kernel,
                num_tokens=(cfg.map_sizes[-1] // kernel) ** 2,
                num_heads=cfg.interaction_heads,
                token_layout=cfg.token_layout,
                **cfg.head_branches,
            )
        else:
            self.divide_encode = DivideEncodeHead(cfg.feature_dim, cfg.bits)

    def reset_parameters(self) -> None:
        """(Re-)initialise every tensor as NesT does (docs/method.md §1, "Pretrained weights")."""
        if any(p.is_meta for p in self.parameters()):
            return  # a meta-device build (shapes only) has no values to initialise
        std = self.config.init_std
        for module in self.modules():
            _init_weights(module, std)
        if self.config.backbone in TRUNKS:
            self.trunk.reset_parameters()  # standard trunks keep their own init (or reload their weights)
        elif self.config.backbone != "cnn":
            for level in self.levels:
                _trunc_normal_(level.pos_embed, std)
        for module in self.modules():
            if isinstance(module, BlockTokenAttention):
                nn.init.zeros_(module.pos_embed)  # the official code leaves the block-token embedding at zero
        if self.config.head == "divide_encode":
            _trunc_normal_(self.divide_encode.weight, std)
            nn.init.zeros_(self.divide_encode.bias)

    def _check_input(self, images: torch.Tensor) -> None:
        size = self.config.img_size
        if images.ndim == 4 and images.shape[-1] != images.shape[-2]:
            raise ValueError(
                f"images are {images.shape[-2]}x{images.shape[-1]} px, not square: HybridHash takes square "
                f"{size}x{size} images; resize or crop them to {size}x{size} (hhlib.transforms does)"
            )
        if images.ndim != 4 or images.shape[1] != self.config.in_chans or tuple(images.shape[-2:]) != (size, size):
            raise ValueError(
                f"images have shape {tuple(images.shape)} but the model was built for (B, {self.config.in_chans}, {size}, {size}): "
                f"resize the images to {size} px or build the model with img_size={images.shape[-1]}"
            )

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's final feature map.

        Args:
            images: (B, in_chans, img_size, img_size) float.

        Returns:
            (B, D, h, h) float, D = embed_dims[-1], h = config.map_sizes[-1] (LayerNorm-ed for
            the transformer backbones).

        Raises:
            ValueError: the images do not have the configured shape.
        """
        self._check_input(images)
        if self.config.backbone == "cnn":
            return self.cnn(images)
        if self.config.backbone in TRUNKS:
            return self.trunk(images)
        return channel_layer_norm(self.norm, self.levels(self.patch_embed(images)))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled pre-hash features (DLBHC coarse-to-fine re-ranking).

        Args:
            images: (B, in_chans, img_size, img_size) float.

        Returns:
            (B, D) float, D = config.feature_dim.
        """
        return self.forward_features(images).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """Hash outputs of a batch.

        Args:
            images: (B, in_chans, img_size, img_size) float, normalised.
            logits: return the pre-tanh values (HashNet's continuation applies its own tanh(beta x)).

        Returns:
            (B, bits) float: tanh outputs in (-1, 1), or pre-tanh values when ``logits``.
        """
        fmap = self.forward_features(images)
        if self.config.head == "hash_layer":
            z = self.hash_layer(fmap)
        else:
            z = self.divide_encode(fmap.mean(dim=(2, 3)))
        # float32 tanh: under autocast a bf16/fp16 tanh has an exactly zero gradient beyond |z| ~ 3.5 (bf16)
        return z if logits else torch.tanh(z.float())

    @torch.no_grad()
    def encode(self, images: torch.Tensor, packed: bool = False) -> torch.Tensor:
        """Binary codes of a batch: the sign of the outputs, an output of 0 read as -1 (``hhlib.hamming.ZERO_RULE``).

        Runs in the module's current mode: call ``model.eval()`` first for retrieval codes.

        Args:
            images: (B, in_chans, img_size, img_size) float.
            packed: return bytes instead of signs.

        Returns:
            (B, bits) float in {-1, +1}; or, when ``packed``, (B, ceil(bits / 8)) uint8 with the
            first bit in the most significant position, equal to ``np.packbits(codes > 0, axis=1)``.
        """
        from hhlib.hamming import signs  # imported here: hhlib.hamming loads numba

        codes = signs(self.forward(images, logits=True))
        if not packed:
            return codes
        bits = codes > 0
        pad = -bits.shape[1] % 8
        bits = torch.nn.functional.pad(bits, (0, pad)).reshape(bits.shape[0], -1, 8).to(torch.uint8)
        weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=bits.device)
        return (bits * weights).sum(dim=2, dtype=torch.uint8)


def build(preset: str, bits: int = 64, **overrides: object) -> HybridHash:
    """Build a HybridHash network from a named preset.

    Args:
        preset: a key of :data:`PRESETS` ("paper", "paper15", "tiny32", "small32").
        bits: code length K (docs/method.md §3: 16, 32, 48, 64).
        **overrides: any :class:`HybridHashConfig` field, e.g. ``img_size=112``,
            ``variant="local_only"``, ``token_layout="reference"``, ``block_token_kernel=7``.

    Returns:
        A freshly initialised :class:`HybridHash` (``.config`` holds the full configuration).

    Raises:
        KeyError: unknown preset (the message lists the presets), or unknown variant/backbone/head/token_layout.
        TypeError: an override that is not a config field (the message lists the fields).
        ValueError: sizes that cannot work.
    """
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}: valid presets are {sorted(PRESETS)}")
    valid = [f.name for f in fields(HybridHashConfig)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise TypeError(f"unknown model override(s) {unknown}: valid HybridHashConfig fields are {valid}")
    return HybridHash(replace(PRESETS[preset], bits=bits, **overrides))
