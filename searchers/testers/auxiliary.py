"""The auxiliary model V (paper Sec. 3.2 stage III, Eq. 3 and 9): its networks, its training, its updates.

V is trained on generated data and evaluated on the human-labelled D_val: if it does well there, the
generated data are "meaningful". Every classifier here takes images in [0, 1] and returns logits.

* :class:`ResNet18Cifar` -- ResNet-18, CIFAR variant (3x3 stem, no max-pool, BasicBlocks [2, 2, 2, 2] at
  64/128/256/512 channels; ``width`` scales them). The paper's V (Sec. 4.2) and reference classifier
  (App. D.3, :mod:`searchers.testers.diagnostics`).
* :class:`~wcbench.smallcnn.SmallCNN` (the core's small CNN) -- the quick preset's V and reference.
* :class:`TiedAuxiliary` -- V under parameter tying (Sec. 3.3, cost reduction): **the feature layers are
  the discriminator's trunk**, shared by reference (not registered as a submodule, so V's parameters are
  only its head), and V owns a light head of two feed-forward layers, ``LayerNorm(C)-Linear(C, hidden)-
  ReLU-Linear(hidden, classes)`` on the trunk's pooled features divided by the number of positions (the
  LayerNorm is ours: the spectrally normalised trunk's features are ~0.01 in scale, and without it the
  head, at lr 0.1, stayed at chance on digits). The trunk
  is trained by the discriminator's GAN loss only; V's own updates (stage III, Eq. 9, and its
  pretraining, "only the light-weight classification head") change the head. Gradients still flow
  *through* the trunk to its input, so the hypergradient of Eq. 16 reaches the generator. The trunk runs
  with frozen state (no dictionary or SN update) and quantises with the current dictionary.

:func:`train_classifier` trains any of them (SGD, He et al. 2016's CIFAR recipe: lr 0.1, momentum 0.9,
weight decay 1e-4, lr / 10 at 50% and 75% of the iterations, random crop 4 + flip; in V's
pretraining only where the search itself augments).
:class:`AuxiliaryStage` is stage III inside a tester: V's one-step copy ``V' = V - eta_v grad_V L(V, f)``
(Eq. 9), ``u = grad_{V'} L(V', D_val)``, V's ordinary SGD step on generated data and its D_val loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from searchers.testers.base import clip_grads, set_lr
from searchers.testers.functional import Params, fcall, frozen, named_params, zeros_for
from wcbench.data import Normalize
from wcbench.smallcnn import SmallCNN, activation


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, act: str = "relu") -> None:
        super().__init__()
        self.act = activation(act)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet18Cifar(nn.Module):
    """ResNet-18 for 32x32 inputs (kuangliu/pytorch-cifar layout); ``width`` = first stage channels."""

    def __init__(
        self,
        num_classes: int,
        width: int = 64,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.norm = Normalize(mean, std)
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), activation(act)
        )
        layers, c = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            stride = 1 if i == 0 else 2
            layers += [
                BasicBlock(c, width * mult, stride, act),
                BasicBlock(width * mult, width * mult, 1, act),
            ]
            c = width * mult
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)
        self.feature_dim = c

    def features(self, x: Tensor) -> Tensor:
        h = self.layers(self.stem(self.norm(x)))
        return F.adaptive_avg_pool2d(h, 1).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


class TiedAuxiliary(nn.Module):
    """V = head(discriminator trunk(x)): feature layers tied to D (Sec. 3.3), see the module docstring."""

    def __init__(
        self, discriminator: nn.Module, num_classes: int, hidden: int = 256, act: str = "relu"
    ) -> None:
        super().__init__()
        self._trunk = [discriminator]  # a reference, not a submodule: V's parameters are the head only
        dim = discriminator.channels
        self.head = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, hidden), activation(act), nn.Linear(hidden, num_classes)
        )
        self.feature_dim = dim

    @property
    def trunk(self) -> nn.Module:
        return self._trunk[0]

    def features(self, x: Tensor) -> Tensor:
        d = self.trunk
        with frozen(d):
            feats, _, _ = d.trunk(x * 2 - 1, None)
        positions = max(1, (x.shape[2] // 4) * (x.shape[3] // 4))
        return feats / positions

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def build_classifier(
    arch: str, num_classes: int, width: int, mean: Sequence[float], std: Sequence[float]
) -> nn.Module:
    """``resnet18`` (paper) or ``small`` (quick) classifier on [0, 1] images."""
    if arch == "resnet18":
        return ResNet18Cifar(num_classes, width, mean, std)
    if arch == "small":
        return SmallCNN(num_classes, width, mean, std)
    raise ValueError(f"unknown classifier {arch!r}; choose resnet18 or small")


def _augment(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Random crop (zero padding 4) and horizontal flip of [0, 1] images, numbers from ``generator``."""
    from wcbench.data.loaders import random_crop, random_flip

    n = x.shape[0]
    dy = torch.randint(9, (n,), generator=generator).to(x.device)
    dx = torch.randint(9, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    return random_flip(random_crop(x, dy, dx, 4), flip)


def train_classifier(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    iters: int,
    batch_size: int = 128,
    lr: float = 0.1,
    weight_decay: float = 1e-4,
    params: Sequence[nn.Parameter] | None = None,
    generator: torch.Generator | None = None,
    augment: bool = True,
) -> list[float]:
    """Train ``model`` on uint8 ``images`` (n, 3, H, W) / ``labels`` (on the model's device).

    He et al. (2016) CIFAR recipe (see module doc); ``params`` restricts what is trained (a tied V's
    head). Returns the loss every ``max(1, iters // 20)`` iterations (for logs).
    """
    params = list(params) if params is not None else [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    milestones = [int(iters * 0.5), int(iters * 0.75)]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
    n = images.shape[0]
    model.train()
    log, every = [], max(1, iters // 20)
    order = torch.empty(0, dtype=torch.long)
    for it in range(iters):
        if order.numel() < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        idx, order = order[:batch_size], order[batch_size:]
        idx = idx.to(images.device)
        x = images.index_select(0, idx).float() / 255
        if augment:
            x = _augment(x, generator)
        loss = F.cross_entropy(model(x), labels.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if it % every == 0 or it == iters - 1:
            log.append(float(loss.detach()))
    model.eval()
    return log


# ============================================================================ stage III inside a tester


def aux_state_modules(aux: nn.Module) -> list[nn.Module]:
    """Modules whose state must stay frozen while the auxiliary model is evaluated virtually."""
    return [aux, aux.trunk] if isinstance(aux, TiedAuxiliary) else [aux]


class AuxiliaryStage:
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
        with frozen(*aux_state_modules(self.aux)):
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
        set_lr(self.v_opt, lr)
        self.aux.train()
        with frozen(self.aux.trunk) if isinstance(self.aux, TiedAuxiliary) else nullcontext():
            loss = F.cross_entropy(self.aux(x.detach()), y)
        self.v_opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_grads([p for g in self.v_opt.param_groups for p in g["params"]], self.grad_clip)
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
        with frozen(*aux_state_modules(self.aux)):
            for s in range(0, x.shape[0], batch_size):
                logits = self.aux(x[s : s + batch_size])
                total += float(F.cross_entropy(logits.float(), y[s : s + batch_size], reduction="sum"))
        self.aux.train(was)
        return total / max(1, x.shape[0])

    def drop_auxiliary(self) -> None:
        """No stage III (lambda = 0, the adversarial-only ablation, Eq. 20)."""
        self.aux, self.v_opt = None, None
