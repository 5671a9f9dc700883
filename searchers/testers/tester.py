"""The tester of the ``ours`` strategy: one object per kind, with its ordinary updates and its hypergradient.

Paper Appendix A (Algorithm 1). Per iteration the strategy asks the tester for

* the one-step unrolled generator ``G' = G - eta_g grad_G L_dg(G, B)`` (Eq. 8) -- :meth:`GanTester.unrolled`;
* the generated adversarial batch ``f(G')`` (differentiable in G') for the learner's objective;
* the hypergradient of the stage-IV objective ``J = L(W', A, f(G')) - lambda L(V', D_val)`` with respect
  to the tester's upper-level variables (Eq. 11, 15-16), given ``v = grad_{G'} L(W', A, f(G'))`` (which
  the algorithm's architecture step computes, as the gradient of ``ctx.extra_arch_step_params``)::

      V' = V - eta_v grad_V L(V, f(G'))                                          (Eq. 9)
      u  = grad_{V'} L(V', D_val)
      g  = v + lambda * eta_v * grad^2_{G',V} L(V, f(G')) . u                    (= dJ/dG')
      dJ/dB = -eta_g * grad^2_{B,G} L_dg(G, B) . g                               (Eq. 15 + 16)

  Both mixed second derivatives are central finite differences (``mode="fd"``, DARTS Eq. 8 style,
  ``e = r / ||direction||``) or double backward (``mode="exact"``);
* the ordinary updates: D (hinge + FQ, every iteration), G (SGD on L_dg), V (SGD on generated data).

:class:`AugmentTester` is the same for the augmentation policy P (Eq. 6): ``f(P, D_tr)`` depends on P
directly, so ``dJ/dP = grad_P L(W', A, f(P)) + lambda * eta_v * grad^2_{P,V} L(V, f(P)) . u``.
:class:`SelectionTester` is the "pretrain" ablation (Eq. 19): M pairs generated once by a fixed GAN and
selection variables ``s`` in [0, 1].

:func:`pretrain_tester` trains G, D and V before the search and caches them (Sec. 3.3, App. A.1).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from searchers.testers.augment import AugmentPolicy, PolicySample
from searchers.testers.auxiliary import TiedAuxiliary, train_classifier
from searchers.testers.fqgan import ConditionalGAN, replayed_statistics, start_replay
from searchers.testers.functional import (
    Params,
    fcall,
    frozen,
    mixed_exact,
    mixed_fd,
    named_params,
    zeros_for,
)


def mixed(
    mode: str,
    loss_at: Callable[[Params], Tensor],
    params: Params,
    direction: Sequence[Tensor],
    wrt: Sequence[Tensor],
    r: float,
) -> list[Tensor]:
    """``grad^2_{wrt, params} loss . direction`` by ``fd`` or ``exact``."""
    if mode == "exact":
        return mixed_exact(loss_at, params, direction, wrt)
    if mode != "fd":
        raise ValueError(f"unknown hypergrad mode {mode!r}; choose fd or exact")
    return mixed_fd(loss_at, params, direction, wrt, r)


def _clip(params: Sequence[Tensor], clip: float) -> None:
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(list(params), clip)


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def _aux_state_module(aux: nn.Module) -> list[nn.Module]:
    """Modules whose state must stay frozen while the auxiliary model is evaluated virtually."""
    return [aux, aux.trunk] if isinstance(aux, TiedAuxiliary) else [aux]


class _AuxMixin:
    """Stage III (Eq. 9): the auxiliary model V, its one-step copy V' and its D_val gradient u."""

    aux: nn.Module | None
    v_opt: torch.optim.Optimizer | None
    grad_clip: float

    def aux_virtual(
        self, x_gen: Tensor, y_gen: Tensor, eta_v: float, x_val: Tensor, y_val: Tensor
    ) -> tuple[Params, list[Tensor], Tensor]:
        """(V params, u = grad_{V'} L(V', D_val), L(V', D_val)) with V' one SGD step on (x_gen, y_gen)."""
        assert self.aux is not None
        vp = named_params(self.aux)
        with frozen(*_aux_state_module(self.aux)):
            loss = F.cross_entropy(fcall(self.aux, vp, x_gen.detach()), y_gen)
            grads = zeros_for(
                list(vp.values()), torch.autograd.grad(loss, list(vp.values()), allow_unused=True)
            )
            v_prime = {
                n: (p.detach() - eta_v * g).requires_grad_(True) for (n, p), g in zip(vp.items(), grads)
            }
            val_loss = F.cross_entropy(fcall(self.aux, v_prime, x_val), y_val)
            u = zeros_for(
                list(v_prime.values()),
                torch.autograd.grad(val_loss, list(v_prime.values()), allow_unused=True),
            )
        return vp, u, val_loss.detach()

    def train_aux(self, x: Tensor, y: Tensor, lr: float) -> Tensor | None:
        """One SGD step of V on generated (x, y) (stage III's ordinary update)."""
        if self.aux is None or self.v_opt is None:
            return None
        _set_lr(self.v_opt, lr)
        self.aux.train()
        with frozen(self.aux.trunk) if isinstance(self.aux, TiedAuxiliary) else _null():
            loss = F.cross_entropy(self.aux(x.detach()), y)
        self.v_opt.zero_grad(set_to_none=True)
        loss.backward()
        _clip([p for g in self.v_opt.param_groups for p in g["params"]], self.grad_clip)
        self.v_opt.step()
        return loss.detach()

    @torch.no_grad()
    def aux_loss(self, x: Tensor, y: Tensor, batch_size: int = 500) -> float | None:
        """L(V, D) (mean CE) of V in eval mode on [0, 1] images (diagnostic)."""
        if self.aux is None:
            return None
        was = self.aux.training
        self.aux.eval()
        total = 0.0
        with frozen(*_aux_state_module(self.aux)):
            for s in range(0, x.shape[0], batch_size):
                logits = self.aux(x[s : s + batch_size])
                total += float(F.cross_entropy(logits.float(), y[s : s + batch_size], reduction="sum"))
        self.aux.train(was)
        return total / max(1, x.shape[0])


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _sgd(params: Sequence[nn.Parameter], momentum: float, weight_decay: float) -> torch.optim.SGD:
    return torch.optim.SGD(list(params), lr=0.0, momentum=momentum, weight_decay=weight_decay)


# ============================================================================ GAN tester


class GanTester(_AuxMixin):
    """FQ-GAN / SN-GAN / BigGAN tester with auxiliary model V (paper Eq. 5, 8-9, 11, 15-16).

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
        self.g_opt = _sgd(list(gan.G.parameters()), momentum, weight_decay)
        self.v_opt = _sgd(list(aux.parameters()), momentum, weight_decay) if aux is not None else None
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

    # ---------------------------------------------------------------- L_dg and G'
    def hyper(self, differentiable: bool = False) -> dict[str, Tensor]:
        return self.gan.B.values(detach=not (differentiable and self.upper == "B"))

    def g_loss_at(self, g_params: Params, z: Tensor, y: Tensor, hyper: dict[str, Tensor]) -> Tensor:
        """L_dg with G's parameters replaced by ``g_params`` (no state written)."""
        gan = self.gan
        zs, cs = gan._g_scales(hyper)
        with frozen(gan.G, gan.D):
            fake = fcall(gan.G, g_params, z, y, zs, cs)
            out = gan.D(fake, y, gan._decay(hyper))
        return -out.logits.mean() + gan._fq_weight(hyper) * out.fq_loss

    def unrolled(self, eta_g: float, z: Tensor, y: Tensor) -> Params:
        """G' = G - eta_g grad_G L_dg(G, B) (Eq. 8): detached leaves that require grad."""
        gp = named_params(self.gan.G)
        loss = self.g_loss_at(gp, z, y, self.hyper())
        grads = zeros_for(list(gp.values()), torch.autograd.grad(loss, list(gp.values()), allow_unused=True))
        return {n: (p.detach() - eta_g * g).requires_grad_(True) for (n, p), g in zip(gp.items(), grads)}

    def generate_at(self, g_params: Params | None, z: Tensor, y: Tensor) -> Tensor:
        """Images in [0, 1] from G (``g_params`` None: the current G), differentiable in ``g_params``."""
        gan = self.gan
        zs, cs = gan._g_scales(self.hyper())
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
                with frozen(*_aux_state_module(aux)):
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
        self.b_opt.zero_grad(set_to_none=True)
        for p, d in zip(self.upper_params, dj):
            p.grad = -d.detach().to(p.dtype)
        self.b_opt.step()
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
        _set_lr(self.g_opt, lr)
        loss = self.gan.g_loss(z, y, self.hyper())
        self.g_opt.zero_grad(set_to_none=True)
        self.d_opt.zero_grad(set_to_none=True)
        grads = torch.autograd.grad(loss, list(self.gan.G.parameters()), allow_unused=True)
        for p, gr in zip(self.gan.G.parameters(), grads):
            p.grad = None if gr is None else gr.detach()
        _clip(list(self.gan.G.parameters()), self.grad_clip)
        self.g_opt.step()
        return loss.detach()

    # ---------------------------------------------------------------- state
    def stats(self) -> dict[str, Any]:
        return {"B": self.gan.B.as_dict()}

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


# ============================================================================ augmentation tester


class AugmentTester(_AuxMixin):
    """The DADA policy P as the tester (paper Eq. 6) with auxiliary model V."""

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
        self.v_opt = _sgd(list(aux.parameters()), momentum, weight_decay) if aux is not None else None
        self.upper_params = list(policy.parameters())
        self.b_opt = torch.optim.Adam(self.upper_params, lr=b_lr, betas=b_betas, weight_decay=b_weight_decay)

    def augment(self, x: Tensor, sample: PolicySample) -> Tensor:
        """f(P, x): the policy applied to [0, 1] images, differentiable in P."""
        return self.policy(x, sample)

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
        self.b_opt.zero_grad(set_to_none=True)
        for p, d in zip(self.upper_params, dj):
            p.grad = -d.detach().to(p.dtype)
        self.b_opt.step()
        self.policy.clamp_()

    def stats(self) -> dict[str, Any]:
        return {"policy_entropy": self.policy.entropy(), "policy_top": self.policy.top(5)}

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


# ============================================================================ pretrain ablation


class SelectionTester:
    """The "pretrain" ablation (paper App. B.2.2, Eq. 19): a fixed pretrained GAN generates M pairs once;
    selection variables ``s_i in [0, 1]`` (init 0.5) weight them, ``sum s_i l_i / sum s_i`` over a batch.

    ``s`` is maximised (Adam, ``lr``, no weight decay) with the gradient the architecture step gives it,
    then clipped to [0, 1]. Images are stored as uint8 (like real data).
    """

    kind = "selection"

    def __init__(self, images: Tensor, labels: Tensor, lr: float = 0.1, betas=(0.5, 0.999)) -> None:
        self.images, self.labels = images, labels
        self.s = nn.Parameter(torch.full((images.shape[0],), 0.5, device=images.device))
        self.upper_params = [self.s]
        self.aux = None
        self.b_opt = torch.optim.Adam([self.s], lr=lr, betas=betas)

    def batch(self, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """([0, 1] images, labels, s) of the pairs at ``idx`` (s differentiable)."""
        idx = idx.to(self.images.device)
        x = self.images.index_select(0, idx).float() / 255
        return x, self.labels.index_select(0, idx), self.s.index_select(0, idx)

    def step_upper(self, dj: Sequence[Tensor]) -> None:
        self.b_opt.zero_grad(set_to_none=True)
        self.s.grad = -dj[0].detach()
        self.b_opt.step()
        with torch.no_grad():
            self.s.clamp_(0, 1)

    def stats(self) -> dict[str, Any]:
        s = self.s.detach()
        return {"selection_mean": float(s.mean()), "selection_above_half": float((s > 0.5).float().mean())}

    def state_dict(self) -> dict[str, Any]:
        return {"s": self.s.detach().clone(), "b_opt": self.b_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.s.copy_(state["s"])
        self.b_opt.load_state_dict(state["b_opt"])


# ============================================================================ pretraining and caches


def cache_key(kind: str, dataset_name: str, dataset_indices: Tensor, settings: dict[str, Any]) -> str:
    """A file stem from the dataset, its split (the train positions) and the settings that shape it."""
    idx = dataset_indices.to("cpu", torch.int64).contiguous().numpy().tobytes()
    h = hashlib.sha256()
    h.update(json.dumps({"kind": kind, "dataset": dataset_name, **settings}, sort_keys=True).encode())
    h.update(hashlib.sha256(idx).digest())
    return f"{kind}-{dataset_name.replace(':', '_').replace('/', '_')}-{h.hexdigest()[:16]}"


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def pretrain_gan(
    gan: ConditionalGAN,
    images: Tensor,
    labels: Tensor,
    *,
    iters: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.0, 0.999),
    d_steps: int = 4,
    generator: torch.Generator | None = None,
    log: Callable[[str], None] | None = None,
) -> None:
    """FQ-GAN's CIFAR recipe (``launch_C10.sh``): Adam 2e-4, betas (0, 0.999) for G and D, 4 D steps
    per G step, batch 64, hinge loss (+ FQ loss), B fixed at its initial values; ``iters`` G steps."""
    dev = images.device
    g_opt = torch.optim.Adam(gan.G.parameters(), lr=lr, betas=betas)
    d_opt = torch.optim.Adam(gan.D.parameters(), lr=lr, betas=betas)
    n = images.shape[0]
    gan.train()
    for it in range(iters):
        for _ in range(d_steps):
            idx = torch.randint(n, (batch_size,), generator=generator).to(dev)
            z, yf = gan.sample_latent(batch_size, generator, dev)
            loss_d, _ = gan.d_loss(
                images.index_select(0, idx).float() / 255, labels.index_select(0, idx), z, yf
            )
            d_opt.zero_grad(set_to_none=True)
            loss_d.backward()
            d_opt.step()
        z, yf = gan.sample_latent(batch_size, generator, dev)
        loss_g = gan.g_loss(z, yf)
        g_opt.zero_grad(set_to_none=True)
        d_opt.zero_grad(set_to_none=True)
        loss_g.backward()
        g_opt.step()
        if log is not None and (it % max(1, iters // 10) == 0 or it == iters - 1):
            log(f"pretrain GAN {it + 1}/{iters}: d_loss {loss_d.item():.4f} g_loss {loss_g.item():.4f}")


def pretrain_tester(
    dataset: Any,
    tester: GanTester | AugmentTester,
    config: Any,
    cache_dir: str | Path,
    *,
    dataset_name: str,
    generator: torch.Generator | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Pretrain the tester's G (and D) and its auxiliary model V on ``dataset`` and cache them.

    ``dataset``: the search-train split (``.images`` uint8 (n, 3, H, W), ``.labels``,
    ``.dataset_indices``; a :class:`searchers.base.SplitData`). ``config``: the ``ours`` strategy config
    (``pretrain_iters``, ``pretrain_batch``, ``aux_pretrain_iters`` and the tester's shape). The cache is
    ``<cache_dir>/<key>.pt`` with ``key`` from the dataset name, its split and the settings
    (:func:`tester_cache_name`); an existing file is returned without training. V is trained on real
    D_tr images (App. A.1: "V is initialized using a pretrained ResNet-18"); under parameter tying only
    its head, on the pretrained discriminator's features (Sec. 3.3).
    """
    path = Path(cache_dir) / f"{tester_cache_name(dataset, tester, config, dataset_name)}.pt"
    if path.exists():
        return path
    images, labels = dataset.images, dataset.labels
    if isinstance(tester, GanTester) and config.pretrain_iters > 0:
        pretrain_gan(
            tester.gan,
            images,
            labels,
            iters=config.pretrain_iters,
            batch_size=config.pretrain_batch,
            generator=generator,
            log=log,
        )
    if tester.aux is not None and config.aux_pretrain_iters > 0:
        params = list(tester.aux.parameters())
        if isinstance(tester.aux, TiedAuxiliary):
            ctx = frozen(tester.aux.trunk)
        else:
            ctx = _null()
        with ctx:
            losses = train_classifier(
                tester.aux,
                images,
                labels,
                iters=config.aux_pretrain_iters,
                batch_size=config.pretrain_batch,
                params=params,
                generator=generator,
            )
        if log is not None:
            log(f"pretrain V: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    state: dict[str, Any] = {"aux": None if tester.aux is None else tester.aux.state_dict()}
    if isinstance(tester, GanTester):
        state["gan"] = tester.gan.state_dict()
    _atomic_save(state, path)
    return path


def tester_settings(tester: GanTester | AugmentTester, config: Any) -> dict[str, Any]:
    """The settings that determine a pretrained tester (the cache key's content)."""
    out: dict[str, Any] = {
        "aux": None if tester.aux is None else type(tester.aux).__name__,
        "aux_arch": config.aux_arch,
        "aux_width": config.aux_width,
        "aux_hidden": config.aux_hidden,
        "aux_pretrain_iters": config.aux_pretrain_iters,
        "pretrain_batch": config.pretrain_batch,
    }
    if isinstance(tester, GanTester):
        gan = tester.gan
        out.update(
            generator=gan.kind,
            width=config.gan_width,
            dim_z=config.dim_z,
            fq_layers=list(gan.D.fq_layers),
            dict_size=[q.n_embed for q in gan.D.quantizers.values()],
            B_init=gan.B.as_dict(),
            pretrain_iters=config.pretrain_iters,
        )
    return out


def tester_cache_name(dataset: Any, tester: GanTester | AugmentTester, config: Any, dataset_name: str) -> str:
    return cache_key(
        f"tester-{tester.kind}", dataset_name, dataset.dataset_indices, tester_settings(tester, config)
    )


def load_pretrained(tester: GanTester | AugmentTester, path: Path) -> None:
    """Load G, D and V from a :func:`pretrain_tester` cache file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(tester, GanTester) and state.get("gan") is not None:
        tester.gan.load_state_dict(state["gan"])
    if tester.aux is not None and state.get("aux") is not None:
        tester.aux.load_state_dict(state["aux"])
