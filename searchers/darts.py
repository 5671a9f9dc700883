"""DARTS (Liu et al., ICLR 2019): first order (``darts1st``) and second order (``darts2nd``).

darts2nd's architecture gradient is that of ``L_val(w'(A), A)`` with the one-step unrolled weights
(DARTS Eq. 6, official ``architect.py``)::

    w' = w - eta * (momentum * buf + grad_w L_train(w, A) + wd * w)        eta = current weight lr

    grad_A = dA L_val(w', A)  -  eta * grad^2_{A,w} L_train(w, A) . v,     v = grad_{w'} L_val(w', A)

``hypergrad="fd"`` (default, DARTS Eq. 8) takes the Hessian-vector product by the central finite
difference at the original w with ``R = 0.01 / ||v||``::

    (grad_A L_train(w + R v, A) - grad_A L_train(w - R v, A)) / (2 R)

``hypergrad="exact"`` differentiates ``L_val(w'(A), A)`` through the unrolled step with autograd
(``create_graph=True``), which gives the same quantity without the finite-difference error; it
checks the finite difference (tests) and is available to users (costs a double backward).
The perturbed and unrolled weights are passed with ``torch.func.functional_call``: the model is never
copied and its parameters are never modified in place, so restoring w is exact (the official code's
``p += R v; p -= 2 R v; p += R v`` is not). The forward at the unrolled weights w' runs on throw-away
copies of the buffers, so it leaves the supernet's BatchNorm running statistics and batch counters
untouched: the official code evaluates ``L_val(w')`` on a fresh copy (``_construct_model_from_theta``),
while its unrolling and finite-difference forwards at w and w +- R v do update the supernet's
statistics, as they do here.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor
from torch.func import functional_call

from searchers.base import (
    ArchStepResult,
    Batch,
    ModelFn,
    Objective,
    SearchAlgorithm,
    SearchConfig,
    SearchContext,
    assign_grads,
    objective_term_gradients,
)
from searchers.supernet import DartsSupernetAlgorithm
from wcbench.errors import ConfigError
from wcbench.registry import ALGORITHMS


@ALGORITHMS.register("darts1st")
class Darts1st(DartsSupernetAlgorithm):
    """DARTS, first-order approximation (xi = 0 in DARTS Eq. 7): grad_A L_val(w, A)."""

    name = "darts1st"
    retrain_family = "darts"  # retrained as in Appendix E, Table 33


class Darts2ndConfig(SearchConfig):
    hypergrad: Literal["fd", "exact"] = Field(
        "fd", description="fd: finite-difference Hessian-vector product (DARTS Eq. 8); exact: autograd"
    )
    fd_r: float = Field(0.01, gt=0, description="finite-difference step R = fd_r / ||v|| (DARTS)")


def model_at(
    algorithm: SearchAlgorithm, weights: dict[str, Tensor], *, throwaway_buffers: bool = False
) -> ModelFn:
    """The algorithm's forward with its weight parameters replaced by ``weights`` (A unchanged).

    With ``throwaway_buffers`` the forward also runs on copies of the module's buffers (BatchNorm
    running statistics, ``num_batches_tracked``), taken once: its train-mode updates land on the copies
    and the module keeps its own, as the official DARTS's forward on a copy of the model at w'.
    """
    tensors = dict(weights)
    if throwaway_buffers:
        tensors.update({n: b.detach().clone() for n, b in algorithm.named_buffers() if n not in tensors})

    def fn(x: Tensor) -> Tensor:
        return functional_call(algorithm, tensors, (x,))

    return fn


def unrolled_weights(
    algorithm: SearchAlgorithm,
    train_batch: Batch,
    eta: float,
    weight_optimizer: torch.optim.Optimizer | None,
    *,
    create_graph: bool = False,
) -> dict[str, Tensor]:
    """w' = w - eta * (momentum * buf + grad_w L_train(w, A) + wd * w) (DARTS ``_compute_unrolled_model``).

    ``buf`` is the SGD momentum buffer of each weight in ``weight_optimizer`` (zero before its first
    step), momentum and wd come from the algorithm's config. With ``create_graph`` the result is a
    differentiable function of A (exact hypergradient); otherwise detached tensors.
    """
    cfg = algorithm.config
    named = algorithm.named_weight_parameters()
    params = list(named.values())
    x, y = train_batch
    loss = algorithm.training_loss(algorithm(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
    out: dict[str, Tensor] = {}
    for (name, p), g in zip(named.items(), grads):
        w = p.detach()
        d = w * cfg.weight_decay
        if g is not None:
            d = d + (g if create_graph else g.detach())
        state = weight_optimizer.state.get(p, {}) if weight_optimizer is not None else {}
        buf = state.get("momentum_buffer")
        if buf is not None:
            d = d + cfg.momentum * buf
        out[name] = w - eta * d
    return out


def hessian_vector_product(
    algorithm: SearchAlgorithm, train_batch: Batch, vector: Sequence[Tensor], r: float = 0.01
) -> list[Tensor]:
    """grad^2_{A,w} L_train(w, A) . v by central differences at w, R = r / ||v|| (DARTS Eq. 8)."""
    arch = algorithm.arch_parameters()
    named = algorithm.named_weight_parameters()
    norm = torch.cat([v.reshape(-1) for v in vector]).norm()
    step = r / norm.clamp_min(1e-12)
    x, y = train_batch

    def grad_at(sign: float) -> tuple[Tensor | None, ...]:
        w = {n: p.detach() + (sign * step) * v for (n, p), v in zip(named.items(), vector)}
        loss = algorithm.training_loss(model_at(algorithm, w)(x), y)
        return torch.autograd.grad(loss, arch, allow_unused=True)

    plus, minus = grad_at(1.0), grad_at(-1.0)
    out = []
    for a, gp, gn in zip(arch, plus, minus):
        gp = torch.zeros_like(a) if gp is None else gp
        gn = torch.zeros_like(a) if gn is None else gn
        out.append((gp - gn) / (2 * step))
    return out


def darts2nd_hypergradient(
    algorithm: SearchAlgorithm,
    train_batch: Batch,
    objective: Objective,
    *,
    eta: float,
    weight_optimizer: torch.optim.Optimizer | None,
    mode: str = "fd",
    r: float = 0.01,
    extra: Sequence[Tensor] = (),
    ctx: Any = None,
) -> tuple[list[Tensor], list[Tensor | None], Tensor]:
    """(grad_A, grads of ``extra``, objective value) of ``objective(model at w')`` (DARTS Eq. 7).

    The architecture regulariser (if any) is added to the objective; it depends on A only, and is
    read after the objective's forward pass, since a regulariser may depend on which ops that pass
    ran (PR-DARTS), as in the first-order ``arch_step``.
    ``extra`` tensors get the direct gradient of the objective at w' (no unrolling term), or of
    ``ctx.extra_arch_step_objective`` (set while the objective is built) when there is one.
    fd backpropagates an :class:`ObjectiveTerms` one term at a time; exact builds all its terms on the
    one graph of w'(A) and backpropagates their sum.
    """
    ctx = SimpleNamespace() if ctx is None else ctx
    arch = algorithm.arch_parameters()
    n_arch = len(arch)
    if mode == "exact":
        w_prime = unrolled_weights(algorithm, train_batch, eta, weight_optimizer, create_graph=True)
        model_fn = model_at(algorithm, w_prime, throwaway_buffers=True)
        loss, grads, g_extra = objective_term_gradients(
            algorithm, objective, model_fn, arch, extra, ctx, by_term=False
        )
        g_arch = [torch.zeros_like(a) if g is None else g for a, g in zip(arch, grads)]
        return g_arch, g_extra, loss
    if mode != "fd":
        raise ConfigError(f"unknown hypergrad mode {mode!r}; choose fd or exact")
    w_prime = {
        n: t.requires_grad_(True)
        for n, t in unrolled_weights(algorithm, train_batch, eta, weight_optimizer).items()
    }
    wp = list(w_prime.values())
    model_fn = model_at(algorithm, w_prime, throwaway_buffers=True)
    loss, grads, g_extra = objective_term_gradients(
        algorithm, objective, model_fn, list(arch) + wp, extra, ctx
    )
    d_arch = grads[:n_arch]
    v = [torch.zeros_like(w) if g is None else g for w, g in zip(wp, grads[n_arch:])]
    hvp = hessian_vector_product(algorithm, train_batch, v, r)
    g_arch = [(torch.zeros_like(a) if d is None else d) - eta * h for a, d, h in zip(arch, d_arch, hvp)]
    return g_arch, g_extra, loss


@ALGORITHMS.register("darts2nd")
class Darts2nd(DartsSupernetAlgorithm):
    """DARTS, second order: unrolled architecture step (DARTS Eq. 7-8, ``architect.py``)."""

    Config = Darts2ndConfig
    name = "darts2nd"
    retrain_family = "darts"  # retrained as in Appendix E, Table 33
    second_order = True
    config: Darts2ndConfig

    def arch_step(
        self, train_batch: Batch | None, objective: Objective, ctx: SearchContext
    ) -> ArchStepResult:
        if train_batch is None:
            raise ConfigError("darts2nd needs the training batch of the step to unroll the weights")
        g_arch, g_extra, loss = darts2nd_hypergradient(
            self,
            train_batch,
            objective,
            eta=ctx.lr,
            weight_optimizer=ctx.weight_optimizer,
            mode=self.config.hypergrad,
            r=self.config.fd_r,
            extra=ctx.extra_arch_step_params,
            ctx=ctx,
        )
        self.apply_arch_grads(self.arch_parameters(), g_arch, ctx)
        assign_grads(ctx.extra_arch_step_params, g_extra)
        return ArchStepResult(loss=loss)
