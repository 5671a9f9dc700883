"""The GAN tester (paper Eq. 5, 8-9, 11, 15-16): a class-conditional GAN G, D with hyperparameters B, and V.

Per iteration (Algorithm 1), with ``eta_g = eta_v = eta``:

* :meth:`GanTester.validation_batch`: on a due iteration ``G' = G - eta_g grad_G L_dg(G, B)`` (Eq. 8,
  one-step unrolled with ``torch.func.functional_call``) and the batch ``f(G')`` (labels y uniform,
  z ~ N(0, I)), differentiable in G', whose parameters the architecture step differentiates too
  (``v = grad_{G'} L(W', A, f(G'))``); otherwise a fixed batch of the current G;
* :meth:`GanTester.upper_step`: the hypergradient of the stage-IV objective
  ``J = L(W', A, f(G')) - lambda L(V', D_val)`` with respect to B (Eq. 11, 15-16)::

      V' = V - eta_v grad_V L(V, f(G'))                                          (Eq. 9)
      u  = grad_{V'} L(V', D_val)
      g  = v + lambda * eta_v * grad^2_{G',V} L(V, f(G')) . u                    (= dJ/dG')
      dJ/dB = -eta_g * grad^2_{B,G} L_dg(G, B) . g                               (Eq. 15 + 16)

  Both mixed second derivatives are central finite differences (``mode="fd"``, DARTS Eq. 8 style,
  ``e = r / ||direction||``) or double backward (``mode="exact"``); B then takes an Adam ascent step;
* :meth:`GanTester.lower_step`: the ordinary updates -- D (hinge + FQ, every iteration), G (SGD on
  L_dg, on due iterations), V (SGD on generated data).

``upper="D"`` is the weights-only ablation (Eq. 18): the discriminator is the upper-level variable
and takes no GAN-loss step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from searchers.testers.auxiliary import AuxiliaryStage, aux_state_modules
from searchers.testers.base import (
    Batch,
    GeneratedBatch,
    Tester,
    TesterStep,
    ascend,
    clip_grads,
    direct_gradients,
    set_lr,
    sgd,
)
from searchers.testers.fqgan import ConditionalGAN
from searchers.testers.functional import Params, fcall, frozen, mixed, named_params, zeros_for
from searchers.testers.quantizer import replayed_statistics, start_replay


class GanTester(AuxiliaryStage, Tester):
    """FQ-GAN / SN-GAN / BigGAN tester with auxiliary model V (module docstring).

    ``upper``: what the hypergradient updates -- ``"B"`` (the paper), ``"D"`` (weights-only ablation,
    Eq. 18: the discriminator S is the upper-level variable, B stays at its initial values) or
    ``"none"``. ``train_d_loss`` False skips D's GAN-loss step (weights-only: S is learnt at stage IV only).
    """

    kind = "gan"

    def __init__(
        self,
        gan: ConditionalGAN,
        aux: nn.Module | None,
        *,
        upper: str = "B",
        d_lr: float = 2e-4,
        d_betas: tuple[float, float] = (0.0, 0.999),
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        grad_clip: float = 5.0,
        b_lr: float = 3e-4,
        b_betas: tuple[float, float] = (0.5, 0.999),
        b_weight_decay: float = 1e-3,
        train_d_loss: bool = True,
    ) -> None:
        self.gan, self.aux, self.upper, self.grad_clip = gan, aux, upper, grad_clip
        self.train_d_loss = train_d_loss
        self.d_opt = torch.optim.Adam(gan.D.parameters(), lr=d_lr, betas=d_betas)
        self.g_opt = sgd(list(gan.G.parameters()), momentum, weight_decay)
        self.v_opt = sgd(list(aux.parameters()), momentum, weight_decay) if aux is not None else None
        if upper == "B":
            self.upper_params: list[nn.Parameter] = list(gan.B.parameters())
        elif upper == "D":
            self.upper_params = list(gan.D.parameters())
        else:
            self.upper_params = []
        self.b_opt = (
            torch.optim.Adam(self.upper_params, lr=b_lr, betas=b_betas, weight_decay=b_weight_decay)
            if self.upper_params
            else None
        )

    # ---------------------------------------------------------------- Algorithm 1
    def _latent(self, step: TesterStep) -> Batch:
        return self.gan.sample_latent(step.batch_size, step.generator, step.device)

    def validation_batch(self, step: TesterStep) -> GeneratedBatch:
        """f(G') on a due iteration (differentiable in G'), else a fixed batch of the current G."""
        z2, y2 = self._latent(step)
        if step.due:
            zg, yg = self._latent(step)
            g_prime = self.unrolled(step.eta, zg, yg)
            return GeneratedBatch(
                lambda: (self.generate_at(g_prime, z2, y2), y2, None),
                params=list(g_prime.values()),
                state={"g_prime": g_prime, "gen_batch": (zg, yg)},
            )
        with torch.no_grad():
            fixed = self.generate_at(None, z2, y2)
        return GeneratedBatch(lambda: (fixed, y2, None))

    def upper_step(
        self, step: TesterStep, batch: GeneratedBatch, val_batch: Batch, *, lam: float, mode: str, r: float
    ) -> dict[str, Any]:
        """dJ/dB (Eq. 11, 15-16) from ``v`` (the gradient the architecture step left in G'), then ascent."""
        g_prime = batch.state["g_prime"]
        dj, stats = self.hypergradient(
            g_prime,
            direct_gradients(list(g_prime.values())),
            eta_g=step.eta,
            lam=lam,
            eta_v=step.eta,
            gen_batch=batch.state["gen_batch"],
            aux_batch=self._latent(step),
            val_batch=val_batch,
            mode=mode,
            r=r,
        )
        if dj:
            self.step_upper(dj)
        return stats

    def lower_step(self, step: TesterStep) -> dict[str, Tensor]:
        """D's step on real and fake data, G's step (due iterations), V's step on generated data."""
        out: dict[str, Tensor] = {}
        if self.train_d_loss:
            x, y = step.train_batch()
            z, yf = self._latent(step)
            out.update(self.train_d(x, y, z, yf))
        if step.due:
            z, yf = self._latent(step)
            self.train_g(z, yf, step.eta)
        if self.aux is not None:
            z1, y1 = self._latent(step)
            self.train_aux(self.generate_at(None, z1, y1).detach(), y1, step.eta)
        return out

    # ---------------------------------------------------------------- diagnostics
    def diagnostic_inputs(
        self, n: int, generator: torch.Generator, train: Any, num_classes: int, device: torch.device
    ) -> dict[str, Any]:
        """Fixed latent codes and class-balanced labels."""
        z, _ = self.gan.sample_latent(max(n, 2), generator, device)
        y = torch.arange(max(n, 2), device=device) % num_classes  # class-balanced
        return {"z": z, "y": y, "n": n}

    @torch.no_grad()
    def generated_set(self, inputs: dict[str, Any]) -> Batch:
        z, y, n = inputs["z"], inputs["y"], inputs["n"]
        xs = [self.generate_at(None, z[s : s + 500], y[s : s + 500]) for s in range(0, z.shape[0], 500)]
        return torch.cat(xs)[:n], y[:n]

    def diagnostics(self) -> dict[str, Any]:
        return {"B": self.gan.B.as_dict()}

    # ---------------------------------------------------------------- L_dg and G'
    def hyper(self, differentiable: bool = False) -> dict[str, Tensor]:
        return self.gan.B.values(detach=not (differentiable and self.upper == "B"))

    def g_loss_at(self, g_params: Params, z: Tensor, y: Tensor, hyper: dict[str, Tensor]) -> Tensor:
        """L_dg with G's parameters replaced by ``g_params`` (no state written)."""
        gan = self.gan
        zs, cs = gan.g_scales(hyper)
        with frozen(gan.G, gan.D):
            fake = fcall(gan.G, g_params, z, y, zs, cs)
            out = gan.D(fake, y, gan.hyper_decay(hyper))
        return -out.logits.mean() + gan.hyper_fq_weight(hyper) * out.fq_loss

    def unrolled(self, eta_g: float, z: Tensor, y: Tensor) -> Params:
        """G' = G - eta_g grad_G L_dg(G, B) (Eq. 8): detached leaves that require grad."""
        gp = named_params(self.gan.G)
        loss = self.g_loss_at(gp, z, y, self.hyper())
        grads = zeros_for(list(gp.values()), torch.autograd.grad(loss, list(gp.values()), allow_unused=True))
        return {n: (p.detach() - eta_g * g).requires_grad_(True) for (n, p), g in zip(gp.items(), grads)}

    def generate_at(self, g_params: Params | None, z: Tensor, y: Tensor) -> Tensor:
        """Images in [0, 1] from G (``g_params`` None: the current G), differentiable in ``g_params``."""
        gan = self.gan
        zs, cs = gan.g_scales(self.hyper())
        with frozen(gan.G):
            x = gan.G(z, y, zs, cs) if g_params is None else fcall(gan.G, g_params, z, y, zs, cs)
        return (x + 1) / 2

    # ---------------------------------------------------------------- Eq. 11, 15-16
    def hypergradient(
        self,
        g_prime: Params,
        v: Sequence[Tensor],
        *,
        eta_g: float,
        lam: float,
        eta_v: float,
        gen_batch: tuple[Tensor, Tensor],
        aux_batch: tuple[Tensor, Tensor],
        val_batch: tuple[Tensor, Tensor],
        mode: str = "fd",
        r: float = 0.01,
    ) -> tuple[list[Tensor], dict[str, Any]]:
        """dJ/d(upper params) (module docstring). ``v`` = grad_{G'} of the learner's objective;
        ``gen_batch`` = (z, y) of L_dg (Eq. 8); ``aux_batch`` = (z1, y1) of V's data f(G') (Eq. 9);
        ``val_batch`` = D_val images in [0, 1] and labels."""
        stats: dict[str, Any] = {}
        g = [t.detach() for t in v]
        if lam > 0 and self.aux is not None:
            z1, y1 = aux_batch
            x1 = self.generate_at(g_prime, z1, y1).detach()
            vp, u, val_loss = self.aux_virtual(x1, y1, eta_v, *val_batch)
            stats["aux_val_loss_unrolled"] = val_loss
            aux = self.aux

            def lv(vparams: Params) -> Tensor:
                with frozen(*aux_state_modules(aux)):
                    return F.cross_entropy(fcall(aux, vparams, self.generate_at(g_prime, z1, y1)), y1)

            t = mixed(mode, lv, vp, u, list(g_prime.values()), r)
            g = [gi + (lam * eta_v) * ti for gi, ti in zip(g, t)]
        if not self.upper_params:
            return [], stats
        z, y = gen_batch

        def ldg(gparams: Params) -> Tensor:
            return self.g_loss_at(gparams, z, y, self.hyper(differentiable=True))

        gp = named_params(self.gan.G)
        with replayed_statistics(self.gan.D):
            with torch.no_grad():
                ldg(gp)  # record the dictionary statistics at G (they are stop-gradient in L_dg)
            start_replay(self.gan.D)
            h = mixed(mode, ldg, gp, g, self.upper_params, r)
        return [-eta_g * hi for hi in h], stats

    def step_upper(self, dj: Sequence[Tensor]) -> None:
        """Gradient ascent on J (Eq. 11) with Adam: ``.grad = -dJ``; then B is projected to its range."""
        if self.b_opt is None:
            return
        ascend(self.b_opt, self.upper_params, dj)
        self.gan.B.clamp_()

    # ---------------------------------------------------------------- ordinary updates
    def train_d(self, x_real: Tensor, y_real: Tensor, z: Tensor, y_fake: Tensor) -> dict[str, Tensor]:
        """One Adam step of D on the hinge + FQ loss (real and fake together; dictionaries updated)."""
        self.gan.train()
        loss, stats = self.gan.d_loss(x_real, y_real, z, y_fake)
        if self.train_d_loss:
            self.d_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.d_opt.step()
        stats["d_loss"] = loss.detach()
        return stats

    def train_g(self, z: Tensor, y: Tensor, lr: float) -> Tensor:
        """One SGD step of G on L_dg(G, B) (Eq. 8's real update; D's state written as FQ-GAN does)."""
        self.gan.train()
        set_lr(self.g_opt, lr)
        loss = self.gan.g_loss(z, y, self.hyper())
        self.g_opt.zero_grad(set_to_none=True)
        self.d_opt.zero_grad(set_to_none=True)
        grads = torch.autograd.grad(loss, list(self.gan.G.parameters()), allow_unused=True)
        for p, gr in zip(self.gan.G.parameters(), grads):
            p.grad = None if gr is None else gr.detach()
        clip_grads(list(self.gan.G.parameters()), self.grad_clip)
        self.g_opt.step()
        return loss.detach()

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "gan": self.gan.state_dict(),
            "d_opt": self.d_opt.state_dict(),
            "g_opt": self.g_opt.state_dict(),
        }
        if self.aux is not None and self.v_opt is not None:
            out["aux"] = self.aux.state_dict()
            out["v_opt"] = self.v_opt.state_dict()
        if self.b_opt is not None:
            out["b_opt"] = self.b_opt.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gan.load_state_dict(state["gan"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.g_opt.load_state_dict(state["g_opt"])
        if self.aux is not None and self.v_opt is not None and "aux" in state:
            self.aux.load_state_dict(state["aux"])
            self.v_opt.load_state_dict(state["v_opt"])
        if self.b_opt is not None and "b_opt" in state:
            self.b_opt.load_state_dict(state["b_opt"])
