"""P-DARTS: progressive DARTS (Chen et al., ICCV 2019), after the official code chenxin061/pdarts.

Three stages of 5 / 11 / 17 cells. Each stage builds a fresh supernet (weights and alphas
re-initialised) over a per-edge operation list that shrinks 8 -> 5 -> 3 and, after the last stage,
to the single op of the genotype. Between stages the lowest-softmax ops of every edge are dropped
(`get_min_k`; `none` competes like any other op); after the last stage `none` is dropped first
(`get_min_k_no_zero`), so each edge keeps its best non-`none` op and the two strongest edges of each
node are kept, the DARTS rule that `genotype()` applies to the last stage's softmax. The identity
skip-connect (stride 1) is followed by dropout whose rate decays within a stage. The final normal
cell keeps at most 2 skip-connects: the chosen skip with the lowest probability is removed from its
edge and the cell re-derived until the limit holds (`delete_min_sk_prob`, `keep_1_on`,
`keep_2_branches`). Weights: SGD with a cosine schedule restarted each stage; alphas: Adam, first
order, gradient norm clipped at 5 (as the official code); the first 10 epochs of every stage train
the weights only.

RobustDARTS spaces (2-3 ops per edge): a stage keeps `min(keep, ops on the edge)` ops, so S1/S2/S4
search all three stages on their two ops and S3 on its three; the final `none`-first drop still
applies (S3), and the 2-skip limit replaces a skip by the edge's other op. The op lists of a cell
type must have the same length on every edge (the alphas are a (14, ops) matrix), as in all
built-in spaces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from searchers.base import SearchConfig, SearchContext, assign_grads
from searchers.supernet import DartsSupernetAlgorithm, MixedOp, MixedOpFactory, Supernet, derive_genotype
from wcbench.errors import CheckpointError, ConfigError
from wcbench.genotype import Genotype
from wcbench.registry import ALGORITHMS
from wcbench.space import NUM_EDGES, SearchSpace, edge_index

EdgeOps = tuple[tuple[str, ...], ...]


# --------------------------------------------------------------------------- skip-connect dropout


class SkipDropout(nn.Dropout):
    """The dropout P-DARTS puts after the identity skip-connect (`nn.Sequential(Identity, Dropout)`)."""


class SkipDropoutMixedOp(MixedOp):
    """A MixedOp whose stride-1 skip-connect (the identity) is followed by `SkipDropout(p)`.

    As official `MixedOp`: only the identity gets it; the stride-2 skip (FactorizedReduce) does not.
    """

    def __init__(self, c: int, stride: int, primitives: Sequence[str], p: float = 0.0):
        super().__init__(c, stride, primitives)
        for pos, i in enumerate(self.op_index):
            if self.primitives[i] == "skip_connect" and stride == 1:
                self._ops[pos] = nn.Sequential(self._ops[pos], SkipDropout(p))


def skip_dropout_factory(c: int, stride: int, primitives: Sequence[str]) -> nn.Module:
    return SkipDropoutMixedOp(c, stride, primitives)


def set_skip_dropout(module: nn.Module, p: float) -> None:
    """Set the rate of every skip-connect dropout in `module` (official `update_p`)."""
    for m in module.modules():
        if isinstance(m, SkipDropout):
            m.p = p


def skip_dropout_rate(rate: float, epoch: int, epochs: int, warmup: int, scale: float = 0.2) -> float:
    """The skip-connect dropout of one epoch of a stage (official train_search.py).

    During the weights-only warm-up (`epoch < warmup`) it decays linearly,
    `rate * (epochs - epoch - 1) / epochs`; afterwards `rate * exp(-(epoch - warmup) * scale)`.
    `epoch` counts from 0 within the stage.
    """
    if epoch < warmup:
        return rate * (epochs - epoch - 1) / epochs
    return rate * math.exp(-(epoch - warmup) * scale)


# --------------------------------------------------------------------------- op-space shrinking


def _min_k(values: Sequence[float], k: int) -> list[int]:
    """Indices of the k smallest values, first occurrence on ties (official `get_min_k`)."""
    return [int(i) for i in np.argsort(np.asarray(values, dtype=float), kind="stable")[:k]]


def shrink_edge(
    ops: Sequence[str], probs: Sequence[float], keep: int, drop_none_first: bool
) -> tuple[str, ...]:
    """Keep `min(keep, len(ops))` ops of one edge, dropping the lowest-probability ones.

    With `drop_none_first` (the last transition) `none` is dropped before anything else
    (official `get_min_k_no_zero`). The kept ops stay in their original order.
    """
    ops = tuple(ops)
    if len(probs) != len(ops):
        raise ValueError(f"{len(ops)} ops but {len(probs)} probabilities")
    keep = max(1, min(keep, len(ops)))
    n_drop = len(ops) - keep
    dropped: set[int] = set()
    if n_drop and drop_none_first and "none" in ops:
        dropped.add(ops.index("none"))
    rest = [i for i in range(len(ops)) if i not in dropped]
    dropped.update(rest[j] for j in _min_k([probs[i] for i in rest], n_drop - len(dropped)))
    return tuple(op for i, op in enumerate(ops) if i not in dropped)


def shrink_ops(
    edge_ops: Sequence[Sequence[str]], probs: torch.Tensor, keep: int, drop_none_first: bool
) -> EdgeOps:
    """`shrink_edge` on all 14 edges; `probs` is (14, ops) softmax of the stage's alphas."""
    p = probs.detach().cpu().double()
    return tuple(
        shrink_edge(ops, p[e, : len(ops)].tolist(), keep, drop_none_first) for e, ops in enumerate(edge_ops)
    )


def uniform_width(edge_ops: Sequence[Sequence[str]], cell: str) -> int:
    """Ops per edge, which must be the same on every edge (alphas are a (14, ops) matrix)."""
    widths = {len(ops) for ops in edge_ops}
    if len(widths) != 1:
        raise ConfigError(f"P-DARTS needs the same number of ops on every {cell} edge, got {sorted(widths)}")
    return widths.pop()


# --------------------------------------------------------------------------- final genotype


def limit_skip_genotype(
    probs_normal: torch.Tensor,
    probs_reduce: torch.Tensor,
    ops_normal: Sequence[Sequence[str]],
    ops_reduce: Sequence[Sequence[str]],
    space: SearchSpace,
    max_skip: int | None = 2,
) -> Genotype:
    """The final P-DARTS genotype from the last stage's softmax, with at most `max_skip` skips (normal cell).

    DARTS rule on the probabilities (`none` ignored); then, while the normal cell has more than
    `max_skip` skip-connects, the chosen skip with the lowest probability is removed from its edge
    and the cell is re-derived (that edge may now lose to another edge, or keep its next-best op).
    The reduction cell is not limited (official "normal cell only"). `None` means no limit.
    """
    pn = probs_normal.detach().cpu().double().clone()
    pr = probs_reduce.detach().cpu().double().clone()
    removed_mark = -1.0  # below every probability: never the best op while another op remains
    genotype = derive_genotype(pn, pr, space, ops_normal, ops_reduce)
    if max_skip is None:
        return genotype
    for _ in range(NUM_EDGES):
        skips = [(op, inp, k // 2) for k, (op, inp) in enumerate(genotype.normal) if op == "skip_connect"]
        if len(skips) <= max_skip:
            break
        candidates = []
        for _, inp, node in skips:
            e = edge_index(node, inp)
            j = list(ops_normal[e]).index("skip_connect")
            if pn[e, j] > removed_mark:
                candidates.append((float(pn[e, j]), e, j))
        if not candidates:
            break
        _, e, j = min(candidates)
        pn[e, j] = removed_mark
        genotype = derive_genotype(pn, pr, space, ops_normal, ops_reduce)
    return genotype


# --------------------------------------------------------------------------- the algorithm


class PDartsConfig(SearchConfig):
    """P-DARTS settings (official train_search.py defaults; `epochs`/`warmup_epochs` are per stage)."""

    epochs: int = Field(25, ge=1, description="epochs per stage")
    batch_size: int = Field(96, ge=2, description="training and validation batch size")
    lr: float = Field(0.025, gt=0, description="weight SGD initial learning rate (restarts each stage)")
    lr_min: float = Field(0.0, ge=0, description="cosine floor within a stage")
    arch_lr: float = Field(6e-4, gt=0, description="architecture Adam learning rate")
    layers: int = Field(5, ge=1, description="cells of the first stage")
    warmup_epochs: int = Field(10, ge=0, description="weights-only epochs at the start of every stage")
    add_layers: tuple[int, ...] = Field((0, 6, 12), description="cells added per stage (5/11/17)")
    add_width: tuple[int, ...] = Field((0, 0, 0), description="channels added per stage")
    keep_ops: tuple[int, ...] = Field(
        (5, 3, 1), description="ops per edge kept after each stage (8->5->3->1); the last is the genotype's 1"
    )
    skip_dropout: tuple[float, ...] = Field((0.1, 0.4, 0.7), description="skip-connect dropout per stage")
    skip_dropout_decay: float = Field(0.2, ge=0, description="p = rate * exp(-(epoch - warmup) * decay)")
    max_skip_connect: int | None = Field(
        2, ge=0, description="skip-connects allowed in the final normal cell"
    )
    arch_grad_clip: float = Field(5.0, ge=0, description="architecture gradient norm clip; 0 disables")

    @model_validator(mode="after")
    def _stages_agree(self) -> PDartsConfig:
        lengths = [len(self.add_layers), len(self.add_width), len(self.keep_ops), len(self.skip_dropout)]
        if lengths[0] < 1 or len(set(lengths)) != 1:
            raise ValueError(
                f"add_layers, add_width, keep_ops and skip_dropout need one entry per stage (got {lengths})"
            )
        if any(k < 1 for k in self.keep_ops) or self.keep_ops[-1] != 1:
            raise ValueError(
                "keep_ops entries must be >= 1 and the last one 1 (one op per edge in the genotype)"
            )
        if any(not 0 <= p < 1 for p in self.skip_dropout):
            raise ValueError("skip_dropout rates must lie in [0, 1)")
        return self


@ALGORITHMS.register("pdarts")
class PDarts(DartsSupernetAlgorithm):
    """Progressive DARTS: stages of growing depth over shrinking per-edge op lists.

    The epoch counter runs over all stages (`stage = epoch // epochs`); `on_epoch_start` builds the
    next stage's supernet at a stage boundary (also when resuming) and returns True there.
    """

    Config = PDartsConfig
    name = "pdarts"
    retrain_family = "pdarts"  # retrained as in Appendix E, Table 34
    config: PDartsConfig

    def __init__(
        self,
        config: PDartsConfig,
        space: SearchSpace,
        num_classes: int,
        *,
        in_channels: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        # the stage structure must exist before the base class builds the first supernet
        self.stage = 0
        self.ops_normal: EdgeOps = tuple(tuple(p) for p in space.normal)
        self.ops_reduce: EdgeOps = tuple(tuple(p) for p in space.reduce)
        uniform_width(self.ops_normal, "normal")
        uniform_width(self.ops_reduce, "reduce")
        super().__init__(config, space, num_classes, in_channels=in_channels, generator=generator)
        # later stages draw their alphas from a generator seeded here, so a resumed search matches
        self.arch_seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        self.skip_p = 0.0

    # ---------------------------------------------------------------- stages
    @property
    def num_stages(self) -> int:
        return len(self.config.add_layers)

    def stage_of(self, epoch: int) -> int:
        return min(epoch // self.config.epochs, self.num_stages - 1)

    def edge_primitives(self) -> tuple[EdgeOps, EdgeOps]:
        return self.ops_normal, self.ops_reduce

    def mixed_op_factory(self) -> MixedOpFactory:
        return skip_dropout_factory

    def num_layers(self) -> int:
        return self.config.layers + int(self.config.add_layers[self.stage])

    def build_supernet(self) -> Supernet:
        normal, reduce = self.edge_primitives()
        return Supernet(
            self.config.init_channels + int(self.config.add_width[self.stage]),
            self.num_classes,
            self.num_layers(),
            self.space,
            mixed_op=self.mixed_op_factory(),
            in_channels=self.in_channels,
            edge_primitives_normal=normal,
            edge_primitives_reduce=reduce,
            stem=self.config.network,
        )

    def _rebuild(self) -> None:
        """Fresh supernet and alphas for the current stage/op lists, on the device of the old ones."""
        device = self.alphas_normal.device
        self.supernet = self.build_supernet().to(device)
        g = torch.Generator().manual_seed(self.arch_seed + self.stage)
        n_normal = uniform_width(self.ops_normal, "normal")
        n_reduce = uniform_width(self.ops_reduce, "reduce")
        self.alphas_normal = nn.Parameter(self._init_alpha(n_normal, g).to(device))
        self.alphas_reduce = nn.Parameter(self._init_alpha(n_reduce, g).to(device))
        set_skip_dropout(self.supernet, self.skip_p)

    def advance_stage(self) -> None:
        """Shrink every edge's op list by the current softmax, then build the next stage from scratch."""
        keep = int(self.config.keep_ops[self.stage])
        with torch.no_grad():
            pn, pr = self.mixing_weights()
        # official get_min_k: between stages `none` competes like any op (none-first only at the end)
        self.ops_normal = shrink_ops(self.ops_normal, pn, keep, drop_none_first=False)
        self.ops_reduce = shrink_ops(self.ops_reduce, pr, keep, drop_none_first=False)
        self.stage += 1
        self._rebuild()

    # ---------------------------------------------------------------- schedule hooks
    def total_epochs(self) -> int:
        return self.config.epochs * self.num_stages

    def on_epoch_start(self, epoch: int) -> bool:
        target = self.stage_of(epoch)
        rebuilt = False
        if target != self.stage:
            if target != self.stage + 1:
                raise CheckpointError(
                    f"P-DARTS is in stage {self.stage} but epoch {epoch} belongs to stage {target}; "
                    "the checkpoint does not match this search"
                )
            self.advance_stage()
            rebuilt = True
        c = self.config
        self.skip_p = skip_dropout_rate(
            float(c.skip_dropout[self.stage]),
            epoch % c.epochs,
            c.epochs,
            c.warmup_epochs,
            c.skip_dropout_decay,
        )
        set_skip_dropout(self.supernet, self.skip_p)
        return rebuilt

    def arch_frozen(self, epoch: int) -> bool:
        return epoch % self.config.epochs < self.config.warmup_epochs

    def lr_at(self, epoch: int) -> float:
        """Cosine from lr to lr_min within each stage (official: a new scheduler per stage)."""
        c = self.config
        e = epoch % c.epochs
        return c.lr_min + (c.lr - c.lr_min) * (1 + math.cos(math.pi * e / c.epochs)) / 2

    # ---------------------------------------------------------------- architecture
    def apply_arch_grads(
        self, arch: Sequence[nn.Parameter], grads: Sequence[torch.Tensor | None], ctx: SearchContext
    ) -> None:
        """Official P-DARTS clips the architecture gradient norm (grad_clip 5) before Adam steps."""
        assert ctx.arch_optimizer is not None
        ctx.arch_optimizer.zero_grad(set_to_none=True)
        assign_grads(arch, grads)
        if self.config.arch_grad_clip > 0:
            nn.utils.clip_grad_norm_(list(arch), self.config.arch_grad_clip)
        ctx.arch_optimizer.step()

    def genotype(self) -> Genotype:
        """DARTS rule on the current stage's softmax, normal cell limited to `max_skip_connect` skips."""
        with torch.no_grad():
            pn, pr = self.mixing_weights()
        return limit_skip_genotype(
            pn, pr, self.ops_normal, self.ops_reduce, self.space, self.config.max_skip_connect
        )

    def arch_state(self) -> dict[str, Any]:
        state = super().arch_state()
        state.update(stage=self.stage, layers=self.num_layers(), skip_dropout=self.skip_p)
        return state

    # ---------------------------------------------------------------- checkpoints
    def search_state_dict(self) -> dict[str, Any]:
        return {
            "module": self.state_dict(),
            "stage": self.stage,
            "ops_normal": [list(p) for p in self.ops_normal],
            "ops_reduce": [list(p) for p in self.ops_reduce],
            "arch_seed": self.arch_seed,
            "skip_p": self.skip_p,
        }

    def load_search_state_dict(self, state: dict[str, Any]) -> None:
        self.stage = int(state["stage"])
        self.ops_normal = tuple(tuple(p) for p in state["ops_normal"])
        self.ops_reduce = tuple(tuple(p) for p in state["ops_reduce"])
        self.arch_seed = int(state["arch_seed"])
        self.skip_p = float(state["skip_p"])
        self._rebuild()
        self.load_state_dict(state["module"])
