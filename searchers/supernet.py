"""The DARTS supernet: mixed operation, search cell, search network, alphas and the genotype rule.

Shared by every search algorithm (DARTS cnn/model_search.py): an algorithm changes how a `MixedOp`
mixes (partial channels, gates, dropout on skip-connect) by passing its own mixed-op factory to
`SearchCell`/`Supernet`, and how architecture weights are computed; the cell wiring and the genotype
derivation are here. The operations and search spaces themselves are core (:mod:`wcbench.space`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from searchers.base import SearchAlgorithm, SearchConfig
from wcbench.errors import ConfigError
from wcbench.genotype import Genotype
from wcbench.space import (
    NUM_EDGES,
    STEPS,
    FactorizedReduce,
    ReLUConvBN,
    SearchSpace,
    Zero,
    edge_index,
    make_op,
    reduction_layers,
)


class MixedOp(nn.Module):
    """Weighted sum of candidate ops on one edge (DARTS Eq. 2).

    `none` contributes w * 0 = 0 to the output and to every gradient, so it is never computed.
    """

    def __init__(self, c: int, stride: int, primitives: Sequence[str]):
        super().__init__()
        self.primitives = tuple(primitives)
        self.stride = stride
        self._ops = nn.ModuleList()
        self.op_index: list[int] = []  # which weight each built op takes
        for i, name in enumerate(self.primitives):
            if name == "none":
                continue
            self._ops.append(make_op(name, c, stride, affine=False, search=True))
            self.op_index.append(i)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = None
        for i, op in zip(self.op_index, self._ops):
            term = weights[i] * op(x)
            out = term if out is None else out + term
        if out is None:  # an edge of `none` only
            return Zero(self.stride)(x)
        return out


MixedOpFactory = Callable[[int, int, Sequence[str]], nn.Module]


class SearchCell(nn.Module):
    """DARTS search cell: inputs c_{k-2}, c_{k-1}; 4 nodes, each a sum of mixed ops on all earlier states."""

    def __init__(
        self,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        edge_primitives: Sequence[Sequence[str]],
        mixed_op: MixedOpFactory = MixedOp,
        steps: int = STEPS,
        multiplier: int = STEPS,
    ):
        super().__init__()
        self.reduction = reduction
        self.steps, self.multiplier = steps, multiplier
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, c, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=False)
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(mixed_op(c, stride, edge_primitives[edge_index(i, j)]))

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor,
        edge_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """weights: (14, ops) mixing weights; edge_weights: optional (14,) per-edge scale (PC-DARTS)."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            terms = []
            for j, h in enumerate(states):
                e = offset + j
                out = self._ops[e](h, weights[e])
                terms.append(out if edge_weights is None else edge_weights[e] * out)
            offset += len(states)
            states.append(sum(terms))
        return torch.cat(states[-self.multiplier :], dim=1)


def imagenet_stems(in_channels: int, c_stem: int) -> tuple[nn.Sequential, nn.Sequential]:
    """PC-DARTS's ImageNet search stems (yuhuixu1993/PC-DARTS model_search_imagenet.py ``Network``):
    stem0 = conv3x3 s2 to c/2, BN, ReLU, conv3x3 s2 to c, BN; stem1 = ReLU, conv3x3 s2, BN (224 -> 28)."""
    stem0 = nn.Sequential(
        nn.Conv2d(in_channels, c_stem // 2, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_stem // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_stem // 2, c_stem, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_stem),
    )
    stem1 = nn.Sequential(
        nn.ReLU(inplace=True),
        nn.Conv2d(c_stem, c_stem, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_stem),
    )
    return stem0, stem1


class Supernet(nn.Module):
    """The DARTS search network: stem, `layers` search cells (reductions at 1/3 and 2/3), classifier.

    Architecture parameters live in the search algorithm, not here: `forward(x, weights_normal,
    weights_reduce, edge_normal=None, edge_reduce=None)` takes the mixing weights it computed.
    ``stem="imagenet"`` is PC-DARTS's ImageNet search network (model_search_imagenet.py): three
    stride-2 convolutions (:func:`imagenet_stems`), the first cell's inputs are stem0's output (56x56
    at 224) and stem1's (28x28), so that cell reduces its first input (``reduction_prev=True``).
    """

    def __init__(
        self,
        c: int,
        num_classes: int,
        layers: int,
        space: SearchSpace,
        mixed_op: MixedOpFactory = MixedOp,
        stem_multiplier: int = 3,
        in_channels: int = 3,
        edge_primitives_normal: Sequence[Sequence[str]] | None = None,
        edge_primitives_reduce: Sequence[Sequence[str]] | None = None,
        stem: str = "cifar",
    ):
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ConfigError(f"unknown supernet stem {stem!r}; choose cifar or imagenet")
        if layers < 3:
            raise ConfigError(
                f"a supernet needs at least 3 cells (got layers={layers}): with fewer, the reduction cells "
                f"at layers//3 and 2*layers//3 leave no normal cell to search"
            )
        self.c, self.num_classes, self.layers, self.space = c, num_classes, layers, space
        self.edge_primitives_normal = tuple(tuple(p) for p in (edge_primitives_normal or space.normal))
        self.edge_primitives_reduce = tuple(tuple(p) for p in (edge_primitives_reduce or space.reduce))
        c_curr = stem_multiplier * c
        self.stem_kind = stem
        if stem == "imagenet":
            self.stem0, self.stem1 = imagenet_stems(in_channels, c_curr)
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
            )
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = stem == "imagenet"  # official: stem0 is twice stem1's resolution
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            prims = self.edge_primitives_reduce if reduction else self.edge_primitives_normal
            cell = SearchCell(c_pp, c_p, c_curr, reduction, reduction_prev, prims, mixed_op)
            reduction_prev = reduction
            self.cells.append(cell)
            c_pp, c_p = c_p, cell.multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(
        self,
        x: torch.Tensor,
        weights_normal: torch.Tensor,
        weights_reduce: torch.Tensor,
        edge_normal: torch.Tensor | None = None,
        edge_reduce: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.stem_kind == "imagenet":
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        for cell in self.cells:
            if cell.reduction:
                s0, s1 = s1, cell(s0, s1, weights_reduce, edge_reduce)
            else:
                s0, s1 = s1, cell(s0, s1, weights_normal, edge_normal)
        out = self.global_pooling(s1)
        return self.classifier(out.flatten(1))


def init_alphas(num_ops: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DARTS initialisation: 1e-3 * randn, shape (14, num_ops)."""
    return 1e-3 * torch.randn(NUM_EDGES, num_ops, generator=generator)


def derive_genotype(
    weights_normal: torch.Tensor,
    weights_reduce: torch.Tensor,
    space: SearchSpace,
    edge_primitives_normal: Sequence[Sequence[str]] | None = None,
    edge_primitives_reduce: Sequence[Sequence[str]] | None = None,
) -> Genotype:
    """DARTS genotype rule (model_search.py `genotype()`), correct for any per-edge op list.

    For each node keep the two incoming edges whose best non-`none` weight is largest, and on each
    the best non-`none` op. Unlike the official RobustDARTS code, `none` is looked up by name on
    each edge's own op list, so S3 works.
    """

    def parse(weights: torch.Tensor, prims: Sequence[Sequence[str]]) -> list[tuple[str, int]]:
        w = weights.detach().cpu().double()
        gene: list[tuple[str, int]] = []
        start = 0
        for i in range(STEPS):
            n = 2 + i
            best: list[tuple[float, int, str]] = []
            for j in range(n):
                e = start + j
                cands = [(float(w[e, k]), name) for k, name in enumerate(prims[e]) if name != "none"]
                if not cands:
                    continue
                value, name = max(cands, key=lambda t: t[0])
                best.append((value, j, name))
            best.sort(key=lambda t: -t[0])  # stable: ties keep the lower input first, as official
            for _, j, name in best[:2]:  # strongest edge first, as DARTS prints genotypes
                gene.append((name, j))
            start += n
        return gene

    prims_n = edge_primitives_normal or space.normal
    prims_r = edge_primitives_reduce or space.reduce
    concat = tuple(range(2, 2 + STEPS))
    return Genotype(
        normal=tuple(parse(weights_normal, prims_n)),
        normal_concat=concat,
        reduce=tuple(parse(weights_reduce, prims_r)),
        reduce_concat=concat,
        space=space.name,
    )


class DartsSupernetAlgorithm(SearchAlgorithm):
    """The DARTS supernet with softmax-mixed alphas: the base of darts1st/darts2nd and of P-DARTS,
    PC-DARTS and PR-DARTS (which override the hooks below).

    Architecture parameters: ``alphas_normal``, ``alphas_reduce`` of shape (14, ops per edge), init
    ``1e-3 * randn`` (DARTS) or zeros (``alpha_init``). Mixing weights ``softmax(alpha, -1)`` (DARTS
    Eq. 2); ``none`` is never computed (``MixedOp``). Hooks:

    * ``mixed_op_factory()`` -> the ``MixedOp`` class to use (PC-DARTS: partial channels; P-DARTS:
      skip dropout);
    * ``mixing_weights()`` -> (weights_normal, weights_reduce); ``edge_weights()`` -> (edge_normal,
      edge_reduce) or (None, None) (PC-DARTS: per-node softmax of betas);
    * ``edge_primitives()`` -> per-edge op lists (P-DARTS: the shrunk lists of the current stage);
    * ``num_layers()`` -> cells of the current supernet (P-DARTS: 5/11/17);
    * ``build_supernet()`` builds ``self.supernet`` from them (call it again to rebuild);
    * ``genotype()`` -> ``derive_genotype`` on ``genotype_weights()`` (PC-DARTS: alpha * beta).

    ``__init__`` calls ``build_supernet()`` and then creates the alphas with the widths of
    ``edge_primitives()``, so a subclass sets whatever state those hooks read (a P-DARTS stage, a
    PC-DARTS K) *before* calling ``super().__init__``, and adds further architecture parameters
    (betas) after it, listing them in ``arch_parameters()``. To rebuild (P-DARTS stage change):
    update the state, ``self.supernet = self.build_supernet()``, assign fresh ``nn.Parameter``
    alphas, and return True from ``on_epoch_start``.
    """

    def __init__(
        self,
        config: SearchConfig,
        space: SearchSpace,
        num_classes: int,
        *,
        in_channels: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(config, space, num_classes, in_channels=in_channels, generator=generator)
        self.supernet: Supernet = self.build_supernet()
        n_normal = len(self.edge_primitives()[0][0])
        n_reduce = len(self.edge_primitives()[1][0])
        self.alphas_normal = nn.Parameter(self._init_alpha(n_normal, generator))
        self.alphas_reduce = nn.Parameter(self._init_alpha(n_reduce, generator))

    def _init_alpha(self, num_ops: int, generator: torch.Generator | None) -> Tensor:
        a = init_alphas(num_ops, generator)
        return torch.zeros_like(a) if self.config.alpha_init == "zeros" else a

    # hooks
    def mixed_op_factory(self) -> MixedOpFactory:
        return MixedOp

    def edge_primitives(self) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
        return self.space.normal, self.space.reduce

    def num_layers(self) -> int:
        return self.config.layers

    def build_supernet(self) -> Supernet:
        normal, reduce = self.edge_primitives()
        return Supernet(
            self.config.init_channels,
            self.num_classes,
            self.num_layers(),
            self.space,
            mixed_op=self.mixed_op_factory(),
            in_channels=self.in_channels,
            edge_primitives_normal=normal,
            edge_primitives_reduce=reduce,
            stem=self.config.network,
        )

    def mixing_weights(self) -> tuple[Tensor, Tensor]:
        return F.softmax(self.alphas_normal, dim=-1), F.softmax(self.alphas_reduce, dim=-1)

    def edge_weights(self) -> tuple[Tensor | None, Tensor | None]:
        return None, None

    def genotype_weights(self) -> tuple[Tensor, Tensor]:
        return self.mixing_weights()

    # SearchAlgorithm
    def forward(self, x: Tensor) -> Tensor:
        wn, wr = self.mixing_weights()
        en, er = self.edge_weights()
        return self.supernet(x, wn, wr, en, er)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def genotype(self) -> Genotype:
        wn, wr = self.genotype_weights()
        normal, reduce = self.edge_primitives()
        return derive_genotype(wn, wr, self.space, normal, reduce)

    def arch_state(self) -> dict[str, Any]:
        wn, wr = self.mixing_weights()
        normal, reduce = self.edge_primitives()
        return {
            "alphas_normal": wn.detach().float().cpu().tolist(),
            "alphas_reduce": wr.detach().float().cpu().tolist(),
            "ops_normal": [list(p) for p in normal],
            "ops_reduce": [list(p) for p in reduce],
        }
