"""The tester interface of the ``ours`` strategy: what Algorithm 1 (paper Appendix A) asks a tester.

A tester makes the adversarial validation data ``f(tester)`` and learns to make them harder for the
learner while keeping them meaningful for the auxiliary model V (Eq. 4-6, 11). Per iteration the
strategy (:mod:`searchers.strategies.ours`) calls, in this order:

1. :meth:`Tester.validation_batch` -- the generated batch of the architecture step (Eq. 4, 10),
   differentiable in the tensors it lists in ``params`` on a hypergradient ("due") iteration (the
   architecture step returns their gradient ``v``);
2. :meth:`Tester.upper_step` -- after the architecture step of a due iteration: the hypergradient of
   the tester's upper-level variables (B of a GAN, the policy P, the selection s; Eq. 11, 15-16) and
   one ascent step on them;
3. :meth:`Tester.lower_step` -- after the weight step, every iteration: the tester's ordinary updates
   (D, G and V for a GAN; V for the policy; nothing for the selection ablation).

Once per epoch: :meth:`Tester.generated_set` on the fixed inputs of :meth:`Tester.diagnostic_inputs`
(the generated validation set of Fig. 1 left / Fig. 2), :meth:`Tester.diagnostics` (B, the policy, the
selection) and :meth:`Tester.aux_loss` (V's D_val loss). :meth:`Tester.state_dict` /
:meth:`Tester.load_state_dict` and :meth:`Tester.streams` are checkpointed by the strategy.

Every random number comes from the generator of the :class:`TesterStep` (the search's CPU generator),
in the order the methods draw it; the implementations: :mod:`searchers.testers.gan` (Eq. 5),
:mod:`searchers.testers.augment` (Eq. 6), :mod:`searchers.testers.selection` (Eq. 19).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from searchers.splits import IndexStream

Batch = tuple[Tensor, Tensor]
"""(images in [0, 1], labels)."""


@dataclass(eq=False)
class TesterStep:
    """What the strategy tells the tester at one iteration of Algorithm 1."""

    generator: torch.Generator  # the search's CPU generator: every random number of the step
    device: torch.device
    batch_size: int  # size of a generated batch
    eta: float  # eta_g = eta_v (Eq. 8-9): G's and V's learning rate
    due: bool  # a hypergradient iteration (every ``hyper_every`` under the cost reductions, Sec. 3.3)
    train_batch: Callable[[], Batch]  # the next unaugmented batch of D_tr


@dataclass(eq=False)
class GeneratedBatch:
    """The generated validation batch of one architecture step.

    ``make()`` gives (images in [0, 1], labels, per-example weights or None) and is called inside the
    architecture step's objective (possibly more than once, e.g. by an unrolled step); on a due
    iteration it is differentiable in ``params``. ``state`` is what :meth:`Tester.upper_step` needs.
    """

    make: Callable[[], tuple[Tensor, Tensor, Tensor | None]]
    params: list[Tensor] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


class Tester(ABC):
    """One kind of tester (module docstring). ``aux`` is V (None: no stage III, e.g. lambda = 0)."""

    kind: str = ""
    aux: nn.Module | None = None

    @abstractmethod
    def validation_batch(self, step: TesterStep) -> GeneratedBatch:
        """The generated batch ``f(tester)`` of this iteration's architecture step (Eq. 4, 10)."""

    @abstractmethod
    def upper_step(
        self, step: TesterStep, batch: GeneratedBatch, val_batch: Batch, *, lam: float, mode: str, r: float
    ) -> dict[str, Any]:
        """Hypergradient of ``J = L(W', A, f) - lam L(V', D_val)`` (Eq. 11) and one ascent step on the
        upper-level variables, after the architecture step of a due iteration (the gradient of
        ``batch.params`` is in their ``.grad``). ``val_batch``: D_val images in [0, 1] and labels;
        ``mode``/``r``: ``fd`` or ``exact`` mixed derivatives, finite-difference step. Returns stats."""

    @abstractmethod
    def lower_step(self, step: TesterStep) -> dict[str, Tensor]:
        """The tester's ordinary updates after the weight step; returns tensors to average per epoch."""

    @abstractmethod
    def diagnostic_inputs(
        self, n: int, generator: torch.Generator, train: Any, num_classes: int, device: torch.device
    ) -> dict[str, Any]:
        """Fixed inputs (latent codes, images, indices) of the per-epoch generated validation set of
        ``n`` examples, drawn from ``generator``; ``train`` is the search-train split (a SplitData)."""

    @abstractmethod
    def generated_set(self, inputs: dict[str, Any]) -> Batch:
        """This epoch's generated validation set from :meth:`diagnostic_inputs`' ``inputs``."""

    @abstractmethod
    def diagnostics(self) -> dict[str, Any]:
        """JSON-able per-epoch statistics of the upper-level variables (B, the policy, s)."""

    def aux_loss(self, x: Tensor, y: Tensor) -> float | None:
        """L(V, D) of the auxiliary model on [0, 1] images (None without V)."""
        return None

    def streams(self) -> dict[str, IndexStream]:
        """Index streams the tester draws from, checkpointed with the strategy's own."""
        return {}

    @abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# ============================================================================ shared helpers


def raw_batch(split: Any, pos: Tensor) -> Batch:
    """Unaugmented [0, 1] images and labels of a search split (``SplitData`` or a streamed split) at
    positions ``pos``."""
    return split.raw(pos)


def direct_gradients(params: Sequence[Tensor]) -> list[Tensor]:
    """The gradients the architecture step left in ``params`` (zeros where none), detached."""
    return [torch.zeros_like(t) if t.grad is None else t.grad.detach() for t in params]


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate (G and V follow W's schedule, Tables 25-32)."""
    for g in opt.param_groups:
        g["lr"] = lr


def clip_grads(params: Sequence[Tensor], clip: float) -> None:
    """Clip the gradients' global norm to ``clip`` (0: no clipping)."""
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(list(params), clip)


def sgd(params: Sequence[nn.Parameter], momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD of G or V (its lr is set per step with :func:`set_lr`)."""
    return torch.optim.SGD(list(params), lr=0.0, momentum=momentum, weight_decay=weight_decay)


def ascend(opt: torch.optim.Optimizer, params: Sequence[Tensor], dj: Sequence[Tensor]) -> None:
    """One gradient ascent step on J (Eq. 11) with ``opt``: ``.grad = -dJ``."""
    opt.zero_grad(set_to_none=True)
    for p, d in zip(params, dj):
        p.grad = -d.detach().to(p.dtype)
    opt.step()
