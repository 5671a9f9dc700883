"""The augmentation tester (paper Eq. 6): the DADA policy P (:mod:`searchers.testers.dada`) and V.

The adversarial validation batch is ``f(P, D_tr)``, a batch of the training split augmented by P; it
depends on P directly, so the hypergradient of ``J = L(W', A, f(P)) - lambda L(V', D_val)`` (Eq. 11) is
``dJ/dP = grad_P L(W', A, f(P)) + lambda * eta_v * grad^2_{P,V} L(V, f(P)) . u`` with
``u = grad_{V'} L(V', D_val)`` and ``V' = V - eta_v grad_V L(V, f(P))`` (Eq. 9); the mixed derivative by
finite differences (``fd``) or double backward (``exact``). P takes an Adam ascent step and is
projected back to [0, 1]; V's ordinary update is an SGD step on ``f(P, D_tr)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from searchers.testers.auxiliary import AuxiliaryStage
from searchers.testers.base import (
    Batch,
    GeneratedBatch,
    Tester,
    TesterStep,
    ascend,
    direct_gradients,
    raw_batch,
    sgd,
)
from searchers.testers.dada import AugmentPolicy, PolicySample
from searchers.testers.functional import Params, fcall, frozen, mixed


class AugmentTester(AuxiliaryStage, Tester):
    """The DADA policy P as the tester (paper Eq. 6) with auxiliary model V (module docstring)."""

    kind = "augment"

    def __init__(
        self,
        policy: AugmentPolicy,
        aux: nn.Module | None,
        *,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        grad_clip: float = 5.0,
        b_lr: float = 3e-4,
        b_betas: tuple[float, float] = (0.5, 0.999),
        b_weight_decay: float = 1e-3,
    ) -> None:
        self.policy, self.aux, self.grad_clip = policy, aux, grad_clip
        self.v_opt = sgd(list(aux.parameters()), momentum, weight_decay) if aux is not None else None
        self.upper_params = list(policy.parameters())
        self.b_opt = torch.optim.Adam(self.upper_params, lr=b_lr, betas=b_betas, weight_decay=b_weight_decay)

    def augment(self, x: Tensor, sample: PolicySample) -> Tensor:
        """f(P, x): the policy applied to [0, 1] images, differentiable in P."""
        return self.policy(x, sample)

    # ---------------------------------------------------------------- Algorithm 1
    def validation_batch(self, step: TesterStep) -> GeneratedBatch:
        """f(P, D_tr) of the next training batch (differentiable in P on a due iteration)."""
        x_tr, y_tr = step.train_batch()
        sample = self.policy.draw(x_tr.shape[0], step.generator)
        if step.due:
            for p in self.upper_params:
                p.grad = None
            return GeneratedBatch(lambda: (self.augment(x_tr, sample), y_tr, None), list(self.upper_params))
        with torch.no_grad():
            fixed = self.augment(x_tr, sample)
        return GeneratedBatch(lambda: (fixed, y_tr, None))

    def upper_step(
        self, step: TesterStep, batch: GeneratedBatch, val_batch: Batch, *, lam: float, mode: str, r: float
    ) -> dict[str, Any]:
        """dJ/dP from the direct gradient the architecture step left in P, then ascent (Eq. 6, 11)."""
        direct = direct_gradients(self.upper_params)
        for t in self.upper_params:
            t.grad = None
        x1, y1 = step.train_batch()
        dj, stats = self.hypergradient(
            direct,
            lam=lam,
            eta_v=step.eta,
            aux_batch=(x1, y1, self.policy.draw(x1.shape[0], step.generator)),
            val_batch=val_batch,
            mode=mode,
            r=r,
        )
        if dj:
            self.step_upper(dj)
        return stats

    def lower_step(self, step: TesterStep) -> dict[str, Tensor]:
        """V's SGD step on a freshly augmented training batch (nothing without V)."""
        if self.aux is not None:
            x, y = step.train_batch()
            with torch.no_grad():
                xa = self.augment(x, self.policy.draw(x.shape[0], step.generator))
            self.train_aux(xa, y, step.eta)
        return {}

    def hypergradient(
        self,
        direct: Sequence[Tensor],
        *,
        lam: float,
        eta_v: float,
        aux_batch: tuple[Tensor, Tensor, PolicySample],
        val_batch: tuple[Tensor, Tensor],
        mode: str = "fd",
        r: float = 0.01,
    ) -> tuple[list[Tensor], dict[str, Any]]:
        """dJ/dP = grad_P L(W', A, f(P)) (``direct``) + lambda eta_v grad^2_{P,V} L(V, f(P)) . u (Eq. 6)."""
        stats: dict[str, Any] = {}
        g = [t.detach() for t in direct]
        if lam > 0 and self.aux is not None:
            x1, y1, sample1 = aux_batch
            with torch.no_grad():
                xa = self.policy(x1, sample1)
            vp, u, val_loss = self.aux_virtual(xa, y1, eta_v, *val_batch)
            stats["aux_val_loss_unrolled"] = val_loss
            aux = self.aux

            def lv(vparams: Params) -> Tensor:
                with frozen(aux):
                    return F.cross_entropy(fcall(aux, vparams, self.policy(x1, sample1)), y1)

            t = mixed(mode, lv, vp, u, self.upper_params, r)
            g = [gi + (lam * eta_v) * ti for gi, ti in zip(g, t)]
        return g, stats

    def step_upper(self, dj: Sequence[Tensor]) -> None:
        """Gradient ascent on J with Adam, then P projected back to [0, 1]."""
        ascend(self.b_opt, self.upper_params, dj)
        self.policy.clamp_()

    # ---------------------------------------------------------------- diagnostics
    def diagnostic_inputs(
        self, n: int, generator: torch.Generator, train: Any, num_classes: int, device: torch.device
    ) -> dict[str, Any]:
        """Fixed training images and the policy's random numbers for them."""
        pos = torch.randperm(len(train), generator=generator)[:n]
        x, y = raw_batch(train, pos)
        return {"x": x, "y": y, "sample": self.policy.draw(x.shape[0], generator)}

    @torch.no_grad()
    def generated_set(self, inputs: dict[str, Any]) -> Batch:
        return self.augment(inputs["x"], inputs["sample"]), inputs["y"]

    def diagnostics(self) -> dict[str, Any]:
        return {"policy_entropy": self.policy.entropy(), "policy_top": self.policy.top(5)}

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"policy": self.policy.state_dict(), "b_opt": self.b_opt.state_dict()}
        if self.aux is not None and self.v_opt is not None:
            out["aux"] = self.aux.state_dict()
            out["v_opt"] = self.v_opt.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.b_opt.load_state_dict(state["b_opt"])
        if self.aux is not None and self.v_opt is not None and "aux" in state:
            self.aux.load_state_dict(state["aux"])
            self.v_opt.load_state_dict(state["v_opt"])
