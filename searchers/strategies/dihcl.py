"""``dihcl``: curriculum by dynamic instance hardness (Zhou, Wang & Bilmes, NeurIPS 2020) adapted to
the validation set: the architecture step uses the validation examples of largest dynamic hardness.

The rule wcbench implements (exactly), with n validation examples, arch epochs ``t = 0, 1, ...``
(epochs in which the architecture is updated) and ``eta`` the architecture learning rate (the rate
of the model these examples train; constant under Adam, so ``loss / eta`` is a fixed rescaling):

* Initialisation (start of arch epoch 0): one no-grad pass (eval mode, no augmentation;
  ``ctx.val_example_losses()``) gives ``l_0(i)`` and predictions ``p_0(i)``;
  ``r(i) = l_0(i) / eta`` for every i (all hardness variants), ``l_prev = l_0``, ``p_prev = p_0``,
  ``s(i) = 0`` (learning rate summed since i was last seen).
* After every architecture step on batch S (the per-example losses ``l(i)`` and predictions
  ``p(i)`` that the step's objective computed, at ``w`` or darts2nd's ``w'``): ``s += eta`` for all i;
  then for i in S the instantaneous hardness
  ``a(i) = l(i) / eta`` (``hardness="loss"``, default), ``|l(i) - l_prev(i)| / s(i)``
  (``"loss_change"``) or ``1[p(i) != p_prev(i)] / s(i)`` (``"flip"``), and
  ``r(i) <- discount * a(i) + (1 - discount) * r(i)``; ``l_prev(i), p_prev(i), s(i) <- l(i), p(i), 0``.
  Examples not in S keep their hardness (DIHCL Eq. 1).
* Selection at the start of arch epoch t: warm start ``t < warm_epochs`` (T0): all n examples.
  Afterwards ``k_t = max(ceil(n * k_decay ** (t - T0 + 1)), ceil(k_min_fraction * n),
  min(batch_size, n))`` (i.e. ``k <- max(0.9 k, 0.3 n)`` from k = n; 0.4 n on CIFAR-100) and
  ``selection="topk"`` takes the k_t examples of largest r (ties: lower position first), or
  ``"sample"`` draws k_t without replacement with probability proportional to r (``ctx.generator``).
* The architecture step minimises the mean CE of batches drawn uniformly from the selection.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from searchers.base import ArchStepResult, SearchContext, StrategyConfig
from searchers.strategies import SubsetStrategy, at_least
from wcbench.registry import STRATEGIES


class DIHCLConfig(StrategyConfig):
    warm_epochs: int = Field(5, ge=0, description="T0: arch epochs on all validation data")
    discount: float = Field(0.9, gt=0, le=1, description="gamma of r <- gamma a + (1 - gamma) r")
    k_decay: float = Field(0.9, gt=0, le=1, description="k <- max(k * k_decay, k_min_fraction * n)")
    k_min_fraction: float = Field(0.3, gt=0, le=1, description="floor of k as a share of n")
    hardness: Literal["loss", "loss_change", "flip"] = Field("loss", description="instantaneous hardness a_t")
    selection: Literal["topk", "sample"] = Field("topk", description="top-k by r, or sampling p ~ r")


def dihcl_k(t: int, n: int, warm: int, decay: float, k_min_fraction: float, min_count: int) -> int:
    """Selected count of arch epoch t (module docstring)."""
    if t < warm:
        return n
    return at_least(n, n * decay ** (t - warm + 1), k_min_fraction * n, min(min_count, n))


def topk_positions(r: Tensor, k: int) -> Tensor:
    """Positions of the k largest entries of r; ties broken by lower position; sorted ascending."""
    order = torch.sort(-r.detach().double().cpu(), stable=True).indices
    return order[:k].sort().values


def dihcl_update(
    r: Tensor,
    l_prev: Tensor,
    p_prev: Tensor,
    lr_since: Tensor,
    positions: Tensor,
    losses: Tensor,
    preds: Tensor,
    eta: float,
    discount: float,
    hardness: str,
) -> None:
    """One architecture step's in-place update of the hardness state (module docstring)."""
    lr_since.add_(eta)
    pos = positions.to(r.device)
    losses = losses.to(r)
    if hardness == "loss":
        a = losses / eta
    elif hardness == "loss_change":
        a = (losses - l_prev[pos]).abs() / lr_since[pos]
    else:
        a = (preds.to(p_prev.device) != p_prev[pos]).to(r) / lr_since[pos]
    r[pos] = discount * a + (1 - discount) * r[pos]
    l_prev[pos] = losses
    p_prev[pos] = preds.to(p_prev)
    lr_since[pos] = 0.0


@STRATEGIES.register("dihcl")
class DIHCL(SubsetStrategy):
    """Dynamic-instance-hardness curriculum over validation examples (module docstring)."""

    Config = DIHCLConfig
    name = "dihcl"
    config: DIHCLConfig

    def __init__(self, config: DIHCLConfig) -> None:
        super().__init__(config)
        self.r: Tensor | None = None
        self.l_prev: Tensor | None = None
        self.p_prev: Tensor | None = None
        self.lr_since: Tensor | None = None

    def _init_state(self, ctx: SearchContext) -> None:
        losses = ctx.val_example_losses().detach().double()
        self.r = losses / ctx.arch_lr
        self.l_prev = losses.clone()
        self.p_prev = ctx.val_example_predictions().clone()
        self.lr_since = torch.zeros_like(losses)

    def select(self, t: int, ctx: SearchContext) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
        c = self.config
        if self.r is None:
            self._init_state(ctx)
        assert self.r is not None
        k = dihcl_k(t, self.n, c.warm_epochs, c.k_decay, c.k_min_fraction, ctx.config.batch_size)
        if k >= self.n:
            selected = torch.arange(self.n)
        elif c.selection == "topk":
            selected = topk_positions(self.r, k)
        else:
            p = self.r.detach().double().cpu().clamp_min(0) + 1e-12
            selected = (
                torch.multinomial(p / p.sum(), k, replacement=False, generator=ctx.generator).sort().values
            )
        self.note_selected_losses(ctx.val_example_losses(), selected)
        info = {
            "phase": "warm" if t < c.warm_epochs else "select",
            "k": k,
            "arch_epoch": t,
            "hardness_mean_selected": float(self.r[selected.to(self.r.device)].mean()),
            "hardness_mean_all": float(self.r.mean()),
        }
        return selected, None, info

    def after_arch_step(self, ctx: SearchContext, result: ArchStepResult) -> None:
        super().after_arch_step(ctx, result)
        assert self.last_seen is not None and self.r is not None
        pos, losses, preds = self.last_seen
        assert self.l_prev is not None and self.p_prev is not None and self.lr_since is not None
        dihcl_update(
            self.r,
            self.l_prev,
            self.p_prev,
            self.lr_since,
            pos,
            losses,
            preds,
            ctx.arch_lr,
            self.config.discount,
            self.config.hardness,
        )

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.r is not None:
            state.update(r=self.r, l_prev=self.l_prev, p_prev=self.p_prev, lr_since=self.lr_since)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "r" in state:
            self.r = state["r"].to(self.device)
            self.l_prev = state["l_prev"].to(self.device)
            self.p_prev = state["p_prev"].to(self.device)
            self.lr_since = state["lr_since"].to(self.device)
