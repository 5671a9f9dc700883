"""Functional helpers for one-step unrolled copies (paper Appendix A, Eq. 7-9).

A module's parameters are replaced with ``torch.func.functional_call``; the module itself is never
copied nor modified in place. Buffers (BatchNorm running statistics, spectral-norm vectors, FQ
dictionaries) are passed as clones, so a virtual forward never changes the real module's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]


def named_params(module: nn.Module) -> Params:
    """Name -> trainable parameter (``requires_grad``), in module order."""
    return {n: p for n, p in module.named_parameters() if p.requires_grad}


def detached(params: Params, requires_grad: bool = False) -> Params:
    """Detached copies (leaves), optionally requiring grad."""
    return {n: p.detach().clone().requires_grad_(requires_grad) for n, p in params.items()}


def fcall(module: nn.Module, params: Params, *args: Any, **kwargs: Any) -> Any:
    """``module(*args, **kwargs)`` with ``params`` substituted and cloned buffers (state untouched)."""
    buffers = {n: b.clone() for n, b in module.named_buffers()}
    return functional_call(module, {**buffers, **params}, args, kwargs, strict=False)


def sgd_step(params: Params, grads: Sequence[Tensor | None], lr: float | Tensor) -> Params:
    """``p - lr * g`` for each parameter (a missing gradient counts as zero): Eq. 7-9's one step."""
    out: Params = {}
    for (n, p), g in zip(params.items(), grads):
        out[n] = p if g is None else p - lr * g
    return out


def flat_norm(tensors: Sequence[Tensor]) -> Tensor:
    return torch.sqrt(sum((t.detach().float() ** 2).sum() for t in tensors))


def zeros_for(tensors: Sequence[Tensor], grads: Sequence[Tensor | None]) -> list[Tensor]:
    return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, grads)]


def mixed_fd(
    loss_at: Callable[[Params], Tensor],
    params: Params,
    direction: Sequence[Tensor],
    wrt: Sequence[Tensor],
    r: float = 0.01,
) -> list[Tensor]:
    """``grad^2_{wrt, params} loss . direction`` by central differences (DARTS Eq. 8 style).

    ``(grad_wrt loss(params + e d) - grad_wrt loss(params - e d)) / (2 e)`` with ``e = r / ||d||``.
    """
    eps = r / flat_norm(direction).clamp_min(1e-12)  # a zero direction gives zeros (no host sync)

    def grad_at(sign: float) -> list[Tensor]:
        shifted = {n: p.detach() + (sign * eps) * d.detach() for (n, p), d in zip(params.items(), direction)}
        loss = loss_at(shifted)
        return zeros_for(wrt, torch.autograd.grad(loss, list(wrt), allow_unused=True))

    plus, minus = grad_at(1.0), grad_at(-1.0)
    return [(a - b) / (2 * eps) for a, b in zip(plus, minus)]


def mixed_exact(
    loss_at: Callable[[Params], Tensor], params: Params, direction: Sequence[Tensor], wrt: Sequence[Tensor]
) -> list[Tensor]:
    """The same mixed second derivative by double backward: ``grad_wrt <grad_params loss, d>``."""
    p = {n: t.detach().requires_grad_(True) for n, t in params.items()}
    loss = loss_at(p)
    g = torch.autograd.grad(loss, list(p.values()), create_graph=True, allow_unused=True)
    dot = sum((gi * d.detach()).sum() for gi, d in zip(g, direction) if gi is not None)
    if not isinstance(dot, Tensor) or not dot.requires_grad:
        return [torch.zeros_like(t) for t in wrt]
    return zeros_for(wrt, torch.autograd.grad(dot, list(wrt), allow_unused=True))


def mixed(
    mode: str,
    loss_at: Callable[[Params], Tensor],
    params: Params,
    direction: Sequence[Tensor],
    wrt: Sequence[Tensor],
    r: float,
) -> list[Tensor]:
    """``grad^2_{wrt, params} loss . direction`` by ``fd`` (:func:`mixed_fd`) or ``exact``."""
    if mode == "exact":
        return mixed_exact(loss_at, params, direction, wrt)
    if mode != "fd":
        raise ValueError(f"unknown hypergrad mode {mode!r}; choose fd or exact")
    return mixed_fd(loss_at, params, direction, wrt, r)


class Stateful:
    """Mixin for modules with state updated in training forwards (SN vectors, FQ dictionaries).

    ``update_state`` False freezes the state; :func:`frozen` sets it for whole models.
    """

    update_state: bool = True


@contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Within the block, no :class:`Stateful` submodule of ``modules`` updates its state."""
    touched: list[tuple[nn.Module, bool]] = []
    for module in modules:
        if module is None:
            continue
        for m in module.modules():
            if isinstance(m, Stateful):
                touched.append((m, m.update_state))
                m.update_state = False
    try:
        yield
    finally:
        for m, old in touched:
            m.update_state = old
