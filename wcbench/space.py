"""Operations and search spaces (DARTS cnn/operations.py and genotypes.py, RobustDARTS S1-S4).

The vocabulary shared by searchers (which mix these ops in a supernet, :mod:`searchers.supernet`)
and evaluators (which build the chosen ops into a network, :mod:`wcbench.networks`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from wcbench.errors import ConfigError

if TYPE_CHECKING:
    from wcbench.genotype import Genotype

PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
"""The DARTS operation set, in the official order (DARTS genotypes.py)."""

STEPS = 4  # intermediate nodes per cell
NUM_EDGES = sum(2 + i for i in range(STEPS))  # 14


# --------------------------------------------------------------------------- operations


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU, depthwise kxk (dilated), pointwise 1x1, BN."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, affine=True
    ):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked (ReLU, depthwise kxk, pointwise 1x1, BN) blocks; only the first has the stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine).op,
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine).op,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The `none` op: zeros, with the stride applied."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class NoiseOp(nn.Module):
    """RobustDARTS S4 `noise`: N(mean, std) of the (strided) input's shape; the input is ignored."""

    def __init__(self, stride: int, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.stride, self.mean, self.std = stride, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return torch.randn_like(x) * self.std + self.mean


class FactorizedReduce(nn.Module):
    """Two stride-2 1x1 convs, the second on x[:, :, 1:, 1:], concatenated, then BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ConfigError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = x[:, :, 1:, 1:]
        if shifted.shape[-1] != x.shape[-1] or shifted.shape[-2] != x.shape[-2]:
            # odd sizes: pad so both branches give the same spatial size
            shifted = F.pad(shifted, (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def _pool(kind: str, c: int, stride: int, bn: bool) -> nn.Module:
    pool: nn.Module
    if kind == "max":
        pool = nn.MaxPool2d(3, stride=stride, padding=1)
    else:
        pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    return nn.Sequential(pool, nn.BatchNorm2d(c, affine=False)) if bn else pool


OpFactory = Callable[[int, int, bool], nn.Module]

OPS: dict[str, OpFactory] = {
    "none": lambda c, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda c, stride, affine: _pool("avg", c, stride, bn=False),
    "max_pool_3x3": lambda c, stride, affine: _pool("max", c, stride, bn=False),
    "skip_connect": lambda c, stride, affine: Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
    "noise": lambda c, stride, affine: NoiseOp(stride),
}
"""Name -> factory(C, stride, affine), as DARTS operations.py (plus RobustDARTS `noise`)."""


def make_op(name: str, c: int, stride: int, affine: bool, search: bool = False) -> nn.Module:
    """Build one operation; in the supernet (search=True) pools are followed by BN(affine=False)."""
    if search and name in ("avg_pool_3x3", "max_pool_3x3"):
        return _pool(name[:3], c, stride, bn=True)
    return OPS[name](c, stride, affine)


# --------------------------------------------------------------------------- search spaces


def edge_index(node: int, input_index: int) -> int:
    """Edges are numbered node-major: node 0 has edges 0-1, node 1 has 2-4, node 2 5-8, node 3 9-13."""
    return sum(2 + i for i in range(node)) + input_index


@dataclass(frozen=True)
class SearchSpace:
    """Candidate operations per edge (14 edges) for normal and reduction cells."""

    name: str
    normal: tuple[tuple[str, ...], ...]
    reduce: tuple[tuple[str, ...], ...]
    description: str = ""

    def candidates(self, cell: str, edge: int) -> tuple[str, ...]:
        return (self.normal if cell == "normal" else self.reduce)[edge]

    def ops(self) -> set[str]:
        return {op for edges in (self.normal, self.reduce) for ops in edges for op in ops}

    @property
    def num_ops(self) -> int:
        """Ops per edge; uniform within every built-in space."""
        return len(self.normal[0])

    def check_genotype(self, genotype: Genotype) -> None:
        """Raise GenotypeError if the genotype uses an op its edge does not offer in this space."""
        from wcbench.errors import GenotypeError

        for cell, pairs in (("normal", genotype.normal), ("reduce", genotype.reduce)):
            for k, (op, inp) in enumerate(pairs):
                edge = edge_index(k // 2, inp)
                allowed = self.candidates(cell, edge)
                if op not in allowed:
                    raise GenotypeError(
                        f"op {op!r} on {cell} edge {edge} (node {k // 2}, input {inp}) is not in search "
                        f"space {self.name!r}, which offers {list(allowed)} there"
                    )


def _uniform(ops: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(ops) for _ in range(NUM_EDGES))


_S1_NORMAL = (
    ("skip_connect", "dil_conv_3x3"),
    ("skip_connect", "dil_conv_5x5"),
    ("skip_connect", "dil_conv_5x5"),
    ("skip_connect", "sep_conv_3x3"),
    ("skip_connect", "dil_conv_3x3"),
    ("max_pool_3x3", "skip_connect"),
    ("skip_connect", "sep_conv_3x3"),
    ("skip_connect", "sep_conv_3x3"),
    ("skip_connect", "dil_conv_3x3"),
    ("skip_connect", "sep_conv_3x3"),
    ("max_pool_3x3", "skip_connect"),
    ("skip_connect", "dil_conv_3x3"),
    ("dil_conv_3x3", "dil_conv_5x5"),
    ("dil_conv_3x3", "dil_conv_5x5"),
)
_S1_REDUCE = (
    ("max_pool_3x3", "avg_pool_3x3"),
    ("max_pool_3x3", "dil_conv_3x3"),
    ("max_pool_3x3", "avg_pool_3x3"),
    ("max_pool_3x3", "avg_pool_3x3"),
    ("skip_connect", "dil_conv_5x5"),
    ("max_pool_3x3", "avg_pool_3x3"),
    ("max_pool_3x3", "sep_conv_3x3"),
    ("skip_connect", "dil_conv_3x3"),
    ("skip_connect", "dil_conv_5x5"),
    ("max_pool_3x3", "avg_pool_3x3"),
    ("max_pool_3x3", "avg_pool_3x3"),
    ("skip_connect", "dil_conv_5x5"),
    ("skip_connect", "dil_conv_5x5"),
    ("skip_connect", "dil_conv_5x5"),
)

SPACES: dict[str, SearchSpace] = {
    "darts": SearchSpace("darts", _uniform(PRIMITIVES), _uniform(PRIMITIVES), "DARTS: 8 ops on every edge"),
    "s1": SearchSpace("s1", _S1_NORMAL, _S1_REDUCE, "RobustDARTS S1: two ops per edge"),
    "s2": SearchSpace(
        "s2",
        _uniform(("skip_connect", "sep_conv_3x3")),
        _uniform(("skip_connect", "sep_conv_3x3")),
        "RobustDARTS S2",
    ),
    "s3": SearchSpace(
        "s3",
        _uniform(("none", "skip_connect", "sep_conv_3x3")),
        _uniform(("none", "skip_connect", "sep_conv_3x3")),
        "RobustDARTS S3",
    ),
    "s4": SearchSpace(
        "s4", _uniform(("noise", "sep_conv_3x3")), _uniform(("noise", "sep_conv_3x3")), "RobustDARTS S4"
    ),
}


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; choose one of {', '.join(SPACES)}")
    return SPACES[name]


def reduction_layers(layers: int) -> tuple[int, ...]:
    """Reduction cells sit at layers//3 and 2*layers//3 (DARTS model.py)."""
    return (layers // 3, 2 * layers // 3)
