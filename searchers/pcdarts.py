"""PC-DARTS: partial channel connections and edge normalisation (Xu et al., ICLR 2020).

Follows the official code (yuhuixu1993/PC-DARTS, `model_search.py`):

- Partial channels: on every edge only the first C/K channels of the input go through the candidate
  operations; the other channels bypass them (max-pooled 2x2 on the stride-2 edges of a reduction
  cell). The two parts are concatenated and shuffled with `channel_shuffle(x, K)`, so the fixed
  slice taken by the next edge holds different channels.
- Edge normalisation: one beta per edge (14,), softmax over the edges entering each node; each edge's
  output is scaled by it (`Supernet(..., edge_normal=, edge_reduce=)`).
- Genotype: the DARTS rule applied to `softmax(alpha) * edge_weight`, i.e. edges and ops are ranked
  by alpha times the node-normalised beta (official `genotype()`).
- Training (train_search.py): first-order architecture steps (Adam 6e-4) from epoch 15; weights SGD
  0.1 with a cosine schedule. The ImageNet search (train_search_imagenet.py) uses K = 2 and a linear
  LR warm-up over 5 epochs (`lr_warmup_epochs`).

The bypass pooling uses `ceil_mode=True`, which equals the official `MaxPool2d(2, 2)` on even sizes
and matches the stride-2 ops' output on odd ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from searchers.base import SearchConfig
from searchers.supernet import DartsSupernetAlgorithm, MixedOp, MixedOpFactory, derive_genotype
from wcbench.errors import ConfigError
from wcbench.genotype import Genotype
from wcbench.registry import ALGORITHMS
from wcbench.space import NUM_EDGES, STEPS, SearchSpace


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle, as PC-DARTS `channel_shuffle`: output channel `i * groups + g`
    is input channel `g * (C / groups) + i`."""
    b, c, h, w = x.shape
    if c % groups:
        raise ConfigError(f"channel_shuffle: {c} channels are not divisible into {groups} groups")
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def node_slices(steps: int = STEPS) -> list[slice]:
    """The edge index range of each intermediate node: [0:2], [2:5], [5:9], [9:14]."""
    out, start = [], 0
    for i in range(steps):
        out.append(slice(start, start + 2 + i))
        start += 2 + i
    return out


def edge_normalisation(betas: torch.Tensor) -> torch.Tensor:
    """Edge weights (14,): softmax of the betas over the edges entering each node (official forward)."""
    return torch.cat([F.softmax(betas[s], dim=-1) for s in node_slices()])


class PartialChannelMixedOp(nn.Module):
    """A MixedOp on the first C/K channels; the rest bypass it; then `channel_shuffle(., K)`.

    The candidate operations are a plain `MixedOp` on C/K channels, so `none` is never computed.
    """

    def __init__(self, c: int, stride: int, primitives: Sequence[str], k: int):
        super().__init__()
        if k < 1 or c % k:
            raise ConfigError(
                f"PC-DARTS needs the channel count ({c}) divisible by K={k}; change init_channels or k"
            )
        self.k = k
        self.stride = stride
        self.mixed = MixedOp(c // k, stride, primitives)
        # official: nn.MaxPool2d(2, 2); ceil_mode only differs on odd sizes, where it matches the ops' output
        self.bypass_pool = nn.MaxPool2d(2, 2, ceil_mode=True) if stride == 2 else None

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        dim = x.shape[1] // self.k
        head, rest = x[:, :dim], x[:, dim:]
        out = self.mixed(head, weights)
        if self.bypass_pool is not None:
            rest = self.bypass_pool(rest)
        return channel_shuffle(torch.cat([out, rest], dim=1), self.k)


def partial_channel_factory(k: int):
    """A `mixed_op` factory for `Supernet`/`SearchCell` with K partial channels."""

    def factory(c: int, stride: int, primitives: Sequence[str]) -> nn.Module:
        return PartialChannelMixedOp(c, stride, primitives, k)

    return factory


def pc_genotype(
    alphas_normal: torch.Tensor,
    alphas_reduce: torch.Tensor,
    betas_normal: torch.Tensor,
    betas_reduce: torch.Tensor,
    space: SearchSpace,
) -> Genotype:
    """Official PC-DARTS `genotype()`: the DARTS rule on `softmax(alpha) * edge_normalisation(beta)`."""
    with torch.no_grad():
        wn = F.softmax(alphas_normal, dim=-1) * edge_normalisation(betas_normal)[:, None]
        wr = F.softmax(alphas_reduce, dim=-1) * edge_normalisation(betas_reduce)[:, None]
    return derive_genotype(wn, wr, space)


# --------------------------------------------------------------------------- the algorithm


class PCDartsConfig(SearchConfig):
    """PC-DARTS settings (official train_search.py defaults for CIFAR)."""

    epochs: int = Field(50, ge=1, description="search epochs")
    batch_size: int = Field(256, ge=2, description="training and validation batch size")
    lr: float = Field(0.1, gt=0, description="weight SGD initial learning rate")
    lr_min: float = Field(0.001, ge=0, description="cosine floor (official code; paper text: 0)")
    arch_lr: float = Field(6e-4, gt=0, description="architecture Adam learning rate")
    warmup_epochs: int = Field(15, ge=0, description="weights-only epochs before architecture steps")
    partial_channels: int = Field(4, ge=1, description="K: 1/K of the channels go through the ops")
    lr_warmup_epochs: int = Field(
        0, ge=0, description="linear LR warm-up epochs, lr * (epoch + 1) / n (official ImageNet search: 5)"
    )


@ALGORITHMS.register("pcdarts")
class PCDarts(DartsSupernetAlgorithm):
    """PC-DARTS: partial-channel mixed ops and edge normalisation betas (arch params: alphas + betas)."""

    Config = PCDartsConfig
    name = "pcdarts"
    retrain_family = "pcdarts"  # retrained as in Appendix E, Table 34
    config: PCDartsConfig

    def __init__(
        self,
        config: PCDartsConfig,
        space: SearchSpace,
        num_classes: int,
        *,
        in_channels: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        k = config.partial_channels
        if config.init_channels % k:
            raise ConfigError(
                f"PC-DARTS needs init_channels ({config.init_channels}) divisible by partial_channels K={k}"
            )
        super().__init__(config, space, num_classes, in_channels=in_channels, generator=generator)
        self.betas_normal = nn.Parameter(self._init_beta(generator))
        self.betas_reduce = nn.Parameter(self._init_beta(generator))

    def _init_beta(self, generator: torch.Generator | None) -> torch.Tensor:
        """Official: `1e-3 * randn(14)`; zeros with `alpha_init = "zeros"`."""
        b = 1e-3 * torch.randn(NUM_EDGES, generator=generator)
        return torch.zeros_like(b) if self.config.alpha_init == "zeros" else b

    def mixed_op_factory(self) -> MixedOpFactory:
        return partial_channel_factory(self.config.partial_channels)

    def edge_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        return edge_normalisation(self.betas_normal), edge_normalisation(self.betas_reduce)

    def genotype_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`softmax(alpha) * edge weight`, the ranking of official `genotype()`."""
        wn, wr = self.mixing_weights()
        en, er = self.edge_weights()
        return wn * en[:, None], wr * er[:, None]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce, self.betas_normal, self.betas_reduce]

    def lr_at(self, epoch: int) -> float:
        lr = super().lr_at(epoch)
        n = self.config.lr_warmup_epochs
        return lr * (epoch + 1) / n if epoch < n else lr

    def arch_state(self) -> dict[str, Any]:
        state = super().arch_state()
        en, er = self.edge_weights()
        state.update(
            edges_normal=en.detach().float().cpu().tolist(), edges_reduce=er.detach().float().cpu().tolist()
        )
        return state
