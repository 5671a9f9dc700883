"""PR-DARTS: path-regularised DARTS (Zhou et al., NeurIPS 2020), after salesforce/PR-DARTS.

Official `search_model_prdarts_nasnet.py` / `test_PRDARTS.py`, reimplemented:

- One stochastic hard-concrete gate per (edge, op): `probs = clamp(sigmoid((alpha + u)/tau) *
  (b - a) + a, 0, 1)`, `u = log(U) - log(1 - U)` logistic noise, a = -0.1, b = 1.1 (so exact 0s and
  1s occur). Per edge only the top-k (k=2) gates are executed; the official code first "kills" each
  op with probability `op_dropout` (0.4) by subtracting 1 from its score and breaks ties at random.
  The executed ops are weighted by the straight-through `onehot - probs.detach() + probs`.
- tau is annealed linearly per epoch, `tau_max - (tau_max - tau_min) * epoch / (epochs - 1)`.
- Activation probability `P(gate > 0) = sigmoid(alpha - tau * log(-a / b))`.
- Regulariser (added to the architecture loss, `get_regularization`): over the ops executed in
  this forward, the mean activation probability of three groups, skip-connect, pooling and the
  rest ("non-skip": convolutions, `none`, `noise`), each `0.5 * normal + 0.5 * reduce` and hinged
  at 0.2 (`max(g - 0.2, 0)`); and a path term, `0.5 * (normal + reduce)` of the product, over the
  chain edges c_{k-1} -> n0 -> n1 -> n2 -> n3 that executed a convolution, of the mean activation
  probability of those convolutions. `R = l1 * skip + l2 * (nonskip + pool) - l3 * path`.
- Genotype: for each node, all (op, input) pairs with op != none ranked by activation probability,
  the top two kept (two ops may share an input), as the paper's pruning rule.

Where wcbench differs from the official code: the genotype ranks pairs by activation probability
(the paper's rule; the code's `genotype()` ranks them by the per-edge softmax of alpha); in eval mode
the gates are deterministic (no noise, no op dropout, top-k by alpha; the code samples there too);
when an all-zero gate matrix is drawn the code redraws it (`while True`) only without op dropout,
wcbench never redraws (the top-k still picks k ops, at random among the tied zeros); the supernet
has no BN + ReLU before its global pooling (shared `Supernet`; the code's "lastact"); `none` can be
drawn among the k ops, as in the code, but is never computed (its output is 0).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
from pydantic import Field
from torch import nn

from searchers.base import SearchConfig
from searchers.supernet import DartsSupernetAlgorithm, MixedOp, MixedOpFactory
from wcbench.genotype import Genotype
from wcbench.registry import ALGORITHMS
from wcbench.space import STEPS, SearchSpace, Zero, edge_index

LIMIT_A = -0.1
LIMIT_B = 1.1
CONV_OPS = frozenset({"sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"})
POOL_OPS = frozenset({"max_pool_3x3", "avg_pool_3x3"})
SKIP_OPS = frozenset({"skip_connect"})
CHAIN_EDGES: tuple[int, ...] = tuple(edge_index(i, i + 1) for i in range(STEPS))  # 1, 4, 8, 13


# --------------------------------------------------------------------------- gates


def logistic_noise(shape: torch.Size | Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """`log(U) - log(1 - U)`, U ~ Uniform(0, 1) (official `get_gumbel_prob`)."""
    u = torch.rand(tuple(shape), device=like.device, dtype=like.dtype).clamp_(1e-12, 1 - 1e-7)
    return torch.log(u) - torch.log1p(-u)


def hard_concrete(
    alpha: torch.Tensor,
    tau: float,
    noise: torch.Tensor | None = None,
    a: float = LIMIT_A,
    b: float = LIMIT_B,
) -> torch.Tensor:
    """Stretched, clamped sigmoid gate: `clamp(sigmoid((alpha + noise) / tau) * (b - a) + a, 0, 1)`."""
    logits = alpha if noise is None else alpha + noise
    return (torch.sigmoid(logits / tau) * (b - a) + a).clamp(0.0, 1.0)


def activation_probability(
    alpha: torch.Tensor, tau: float, a: float = LIMIT_A, b: float = LIMIT_B
) -> torch.Tensor:
    """P(gate > 0) = `sigmoid(alpha - tau * log(-a / b))` (official `get_regularization`)."""
    return torch.sigmoid(alpha - tau * math.log(-a / b))


def select_top_k(probs: torch.Tensor, k: int, drop: float = 0.0) -> torch.Tensor:
    """0/1 mask (same shape) of the k ops per row (edge) to execute.

    Scores are the gate values; with `drop > 0` each op is first killed with that probability
    (score - 1, so it loses to every live op); ties (e.g. several gates at exactly 0 or 1) are
    broken at random by a column permutation, as the official code.
    """
    scores = probs.detach()
    k = min(k, scores.shape[-1])
    if drop > 0:
        scores = scores - torch.bernoulli(torch.full_like(scores, drop))
    perm = torch.randperm(scores.shape[-1], device=scores.device)
    top = scores[:, perm].topk(k, dim=-1).indices
    return torch.zeros_like(scores).scatter_(-1, perm[top], 1.0)


def straight_through(mask: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Forward value `mask`, gradient of `probs`: `mask - probs.detach() + probs`."""
    return mask - probs.detach() + probs


def tau_at(epoch: int, epochs: int, tau_max: float, tau_min: float) -> float:
    """Linear annealing per epoch, `tau_max - (tau_max - tau_min) * epoch / (epochs - 1)` (official)."""
    if epochs <= 1:
        return tau_max
    return tau_max - (tau_max - tau_min) * min(epoch, epochs - 1) / (epochs - 1)


# --------------------------------------------------------------------------- the gated mixed op


class GatedMixedOp(MixedOp):
    """Runs only the ops listed in `active` (indices into `primitives`), each times its gate.

    `active` is set by the algorithm before each forward from the sampled mask; `None` runs every
    op (then it is a plain MixedOp). `none` is never computed (its output is 0).
    """

    def __init__(self, c: int, stride: int, primitives: Sequence[str]):
        super().__init__(c, stride, primitives)
        self.position = {i: pos for pos, i in enumerate(self.op_index)}
        self.active: list[int] | None = None

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            return super().forward(x, weights)
        out = None
        for i in self.active:
            pos = self.position.get(i)
            if pos is None:  # `none`
                continue
            term = weights[i] * self._ops[pos](x)
            out = term if out is None else out + term
        return Zero(self.stride)(x) if out is None else out


# --------------------------------------------------------------------------- regulariser
# Sync-free: no `.item()`; "nothing executed" cases are handled with clamps and `where`.


def _group_mean(act: torch.Tensor, mask: torch.Tensor, member: torch.Tensor) -> torch.Tensor:
    """Mean activation over the executed ops of a group; 0 when the group executed nothing."""
    sel = mask * member
    return (act * sel).sum() / sel.sum().clamp_min(1.0)


def _path(act: torch.Tensor, mask: torch.Tensor, conv: torch.Tensor) -> torch.Tensor:
    """Product, over the chain edges that executed a convolution, of their mean conv activation;
    0 when no chain edge did (official: `path_idx[...nonzero()]`, then `.prod()`)."""
    sel = torch.stack([mask[e] * conv[e] for e in CHAIN_EDGES])
    count = sel.sum(-1)
    mean = (torch.stack([act[e] for e in CHAIN_EDGES]) * sel).sum(-1) / count.clamp_min(1.0)
    ran = count > 0
    prod = torch.where(ran, mean, torch.ones_like(mean)).prod()
    return torch.where(ran.any(), prod, torch.zeros_like(prod))


@functools.lru_cache(maxsize=256)
def _membership_cached(
    edge_ops: tuple[tuple[str, ...], ...],
    names: frozenset[str],
    width: int,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    rows = [[1.0 if j < len(ops) and ops[j] in names else 0.0 for j in range(width)] for ops in edge_ops]
    return torch.tensor(rows, dtype=dtype, device=device)


def _membership(
    edge_ops: Sequence[Sequence[str]], names: frozenset[str], width: int, like: torch.Tensor
) -> torch.Tensor:
    """(14, width) 0/1: which ops of each edge belong to `names`. Cached, so that the regulariser
    makes no host-to-device copy after the first step."""
    key = tuple(tuple(ops) for ops in edge_ops)
    return _membership_cached(key, names, width, like.dtype, like.device)


def _hinge(g: torch.Tensor, threshold: float) -> torch.Tensor:
    """Official `g - threshold if g > threshold else 0`."""
    return (g - threshold).clamp_min(0.0)


def regulariser_terms(
    act_normal: torch.Tensor,
    mask_normal: torch.Tensor,
    act_reduce: torch.Tensor,
    mask_reduce: torch.Tensor,
    ops_normal: Sequence[Sequence[str]],
    ops_reduce: Sequence[Sequence[str]],
) -> dict[str, torch.Tensor]:
    """Unhinged group activations (skip, pool, nonskip) and the path term, each 0.5 normal + 0.5 reduce.

    `act_*`: (14, ops) activation probabilities; `mask_*`: (14, ops) 0/1 executed ops; `ops_*`: the
    op names of each edge. Groups by name: skip = skip_connect; pool = max/avg pooling; non-skip =
    every other op (convolutions, and `none`/`noise`, as the official index set {0, 2..5}).
    """
    w = act_normal.shape[-1]
    terms: dict[str, list[torch.Tensor]] = {"skip": [], "pool": [], "nonskip": [], "path": []}
    for act, mask, ops in ((act_normal, mask_normal, ops_normal), (act_reduce, mask_reduce, ops_reduce)):
        skip = _membership(ops, SKIP_OPS, w, act)
        pool = _membership(ops, POOL_OPS, w, act)
        present = _membership(ops, frozenset(name for e in ops for name in e), w, act)
        conv = _membership(ops, CONV_OPS, w, act)
        terms["skip"].append(_group_mean(act, mask, skip))
        terms["pool"].append(_group_mean(act, mask, pool))
        terms["nonskip"].append(_group_mean(act, mask, present - skip - pool))
        terms["path"].append(_path(act, mask, conv))
    return {name: 0.5 * (n + r) for name, (n, r) in terms.items()}


def prdarts_regulariser(
    act_normal: torch.Tensor,
    mask_normal: torch.Tensor,
    act_reduce: torch.Tensor,
    mask_reduce: torch.Tensor,
    ops_normal: Sequence[Sequence[str]],
    ops_reduce: Sequence[Sequence[str]],
    lambdas: tuple[float, float, float] = (0.01, 0.005, 0.005),
    threshold: float = 0.2,
) -> torch.Tensor:
    """`R = l1 * hinge(skip) + l2 * (hinge(nonskip) + hinge(pool)) - l3 * path` (official
    `get_regularization`), the hinge being `max(g - threshold, 0)`."""
    t = regulariser_terms(act_normal, mask_normal, act_reduce, mask_reduce, ops_normal, ops_reduce)
    l1, l2, l3 = lambdas
    return (
        l1 * _hinge(t["skip"], threshold)
        + l2 * (_hinge(t["nonskip"], threshold) + _hinge(t["pool"], threshold))
        - l3 * t["path"]
    )


# --------------------------------------------------------------------------- genotype


def pr_genotype(
    act_normal: torch.Tensor,
    act_reduce: torch.Tensor,
    space: SearchSpace,
    ops_normal: Sequence[Sequence[str]] | None = None,
    ops_reduce: Sequence[Sequence[str]] | None = None,
) -> Genotype:
    """Per node, the two (op, input) pairs (op != none) with the highest activation probability."""

    def parse(act: torch.Tensor, edge_ops: Sequence[Sequence[str]]) -> list[tuple[str, int]]:
        a = act.detach().cpu().double()
        gene: list[tuple[str, int]] = []
        for i in range(STEPS):
            pairs = []
            for j in range(2 + i):
                e = edge_index(i, j)
                for k, name in enumerate(edge_ops[e]):
                    if name != "none":
                        pairs.append((-float(a[e, k]), j, k, name))
            pairs.sort(key=lambda t: t[:3])
            gene.extend((name, j) for _, j, _, name in pairs[:2])
        return gene

    concat = tuple(range(2, 2 + STEPS))
    return Genotype(
        normal=tuple(parse(act_normal, ops_normal or space.normal)),
        normal_concat=concat,
        reduce=tuple(parse(act_reduce, ops_reduce or space.reduce)),
        reduce_concat=concat,
        space=space.name,
    )


def gated_factory(c: int, stride: int, primitives: Sequence[str]) -> nn.Module:
    return GatedMixedOp(c, stride, primitives)


# --------------------------------------------------------------------------- the algorithm


class PRDartsConfig(SearchConfig):
    """PR-DARTS settings (official test_PRDARTS.py and configs/PRDARTS-NASNet-*.config)."""

    epochs: int = Field(200, ge=1, description="search epochs")
    batch_size: int = Field(250, ge=2, description="batch size (official config 250; paper text 128)")
    lr: float = Field(0.025, gt=0, description="weight SGD initial learning rate")
    lr_min: float = Field(0.001, ge=0, description="cosine floor")
    weight_decay: float = Field(
        5e-4, ge=0, description="weight decay (official config 5e-4; paper text 3e-4)"
    )
    nesterov: bool = Field(True, description="Nesterov momentum for the weights (official config)")
    arch_lr: float = Field(3e-4, gt=0, description="architecture Adam learning rate")
    layers: int = Field(6, ge=1, description="supernet cells (official NASNet layout N=2: 6; paper text 8)")
    warmup_epochs: int = Field(0, ge=0, description="weights-only epochs (official: none)")
    tau_max: float = Field(1.0, gt=0, description="gate temperature at the first epoch (code 1; paper 10)")
    tau_min: float = Field(0.1, gt=0, description="gate temperature at the last epoch")
    gate_a: float = Field(LIMIT_A, lt=0, description="hard-concrete stretch lower limit a")
    gate_b: float = Field(LIMIT_B, gt=1, description="hard-concrete stretch upper limit b")
    ops_per_edge: int = Field(2, ge=1, description="ops executed per edge per forward (k)")
    op_dropout: float = Field(0.4, ge=0, lt=1, description="chance an op is excluded from the top-k draw")
    reg_lambdas: tuple[float, float, float] = Field(
        (0.01, 0.005, 0.005), description="l1 (skip), l2 (non-skip + pool), l3 (path)"
    )
    reg_threshold: float = Field(0.2, ge=0, description="hinge of the group terms")


@ALGORITHMS.register("prdarts")
class PRDarts(DartsSupernetAlgorithm):
    """PR-DARTS: gate logits `alphas_normal`/`alphas_reduce`, top-k stochastic gates, path regulariser.

    In training mode every forward draws fresh gates (the weight step and the architecture step each
    draw their own, as the official code). In eval mode the gates are deterministic: no noise, no op
    dropout, the top-k ops by gate logit (this is a wcbench choice; the official code samples
    in evaluation too). The regulariser is computed from the ops executed in the last forward,
    which in `arch_step` is the strategy's objective, and added to it (`arch_regularizer`).
    Selecting the ops to run reads the sampled mask on the host: one sync per forward.
    """

    Config = PRDartsConfig
    name = "prdarts"
    retrain_family = "prdarts"  # retrained as in Appendix E, Table 35
    config: PRDartsConfig

    def __init__(
        self,
        config: PRDartsConfig,
        space: SearchSpace,
        num_classes: int,
        *,
        in_channels: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(config, space, num_classes, in_channels=in_channels, generator=generator)
        self.tau = float(config.tau_max)
        self._masks: tuple[torch.Tensor, torch.Tensor] | None = None

    def mixed_op_factory(self) -> MixedOpFactory:
        return gated_factory

    # ---------------------------------------------------------------- gates
    def gates(self, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(0/1 mask of the executed ops, straight-through weights) for one cell type."""
        c = self.config
        if self.training:
            probs = hard_concrete(alpha, self.tau, logistic_noise(alpha.shape, alpha), c.gate_a, c.gate_b)
            mask = select_top_k(probs, c.ops_per_edge, c.op_dropout)
        else:
            probs = hard_concrete(alpha, self.tau, None, c.gate_a, c.gate_b)
            k = min(c.ops_per_edge, alpha.shape[-1])
            mask = torch.zeros_like(probs).scatter_(-1, alpha.detach().topk(k, dim=-1).indices, 1.0)
        return mask, straight_through(mask, probs)

    def activation_probabilities(self) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        return (
            activation_probability(self.alphas_normal, self.tau, c.gate_a, c.gate_b),
            activation_probability(self.alphas_reduce, self.tau, c.gate_a, c.gate_b),
        )

    def _set_active(self, mask_normal: torch.Tensor, mask_reduce: torch.Tensor) -> None:
        rows = {
            False: mask_normal.detach().to("cpu", torch.bool).tolist(),
            True: mask_reduce.detach().to("cpu", torch.bool).tolist(),
        }
        for cell in self.supernet.cells:
            table = rows[bool(cell.reduction)]
            for e, op in enumerate(cell._ops):
                op.active = [i for i, on in enumerate(table[e]) if on]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mn, wn = self.gates(self.alphas_normal)
        mr, wr = self.gates(self.alphas_reduce)
        self._masks = (mn, mr)
        self._set_active(mn, mr)
        return self.supernet(x, wn, wr)

    # ---------------------------------------------------------------- architecture objective
    def arch_regularizer(self) -> torch.Tensor | None:
        """Path regulariser R of the ops executed in the last forward (None before any forward)."""
        if self._masks is None:
            return None
        mn, mr = self._masks
        an, ar = self.activation_probabilities()
        normal, reduce = self.edge_primitives()
        return prdarts_regulariser(
            an, mn, ar, mr, normal, reduce, tuple(self.config.reg_lambdas), self.config.reg_threshold
        )

    # ---------------------------------------------------------------- schedule and optimisers
    def on_epoch_start(self, epoch: int) -> bool:
        self.tau = tau_at(epoch, self.total_epochs(), self.config.tau_max, self.config.tau_min)
        return False

    def make_weight_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        return torch.optim.SGD(
            self.weight_parameters(),
            lr=c.lr,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
            nesterov=c.nesterov and c.momentum > 0,
        )

    # ---------------------------------------------------------------- genotype and reporting
    def genotype(self) -> Genotype:
        an, ar = self.activation_probabilities()
        normal, reduce = self.edge_primitives()
        return pr_genotype(an, ar, self.space, normal, reduce)

    def arch_state(self) -> dict[str, Any]:
        an, ar = self.activation_probabilities()
        normal, reduce = self.edge_primitives()
        return {
            "activation_normal": an.detach().float().cpu().tolist(),
            "activation_reduce": ar.detach().float().cpu().tolist(),
            "ops_normal": [list(p) for p in normal],
            "ops_reduce": [list(p) for p in reduce],
            "tau": self.tau,
        }
