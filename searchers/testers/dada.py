"""The differentiable augmentation policy P (DADA, Li et al. 2020; paper Sec. 3.3 and Eq. 6).

P plays the role of the tester's hyperparameters B: the adversarial validation set is
``f(P, D_tr)``, a random subset of the training split augmented by P (the tester:
:mod:`searchers.testers.augment`).

Policy
------
15 operations (DADA ``operation.py`` order, ranges as ``(low, high)``)::

    ShearX (-0.3, 0.3)   ShearY (-0.3, 0.3)   TranslateX (-0.45, 0.45)   TranslateY (-0.45, 0.45)
    Rotate (-30, 30)     AutoContrast         Invert                     Equalize
    Solarize (0, 256)    Posterize (4, 8)     Contrast (0.1, 1.9)        Color (0.1, 1.9)
    Brightness (0.1, 1.9) Sharpness (0.1, 1.9) Cutout (0, 0.2)

105 sub-policies = all unordered pairs of distinct operations (``itertools.combinations``), each with a
probability and a magnitude per operation (``probabilities``, ``magnitudes``: 105 x 2, init 0.5) and a
weight (``weights``: 105, init 1e-3; selection distribution ``softmax(weights)``). A magnitude
``m in [0, 1]`` means the value ``m * (high - low) + low``; shear, translate and rotate are mirrored
(negated) with probability 1/2 per image (DADA ``random_mirror``).

Relaxations (per image; every random number is drawn once into a :class:`PolicySample`, so the same
augmented batch can be recomputed, e.g. for finite differences):

* **sub-policy**: Gumbel-softmax with temperature T, straight-through (hard one-hot forward, soft
  gradient); the image is multiplied by its selected (=1) hard weight, so the gradient reaches every
  sub-policy weight through the softmax (GDAS / DADA ``search_gumbel``);
* **probabilities**: binary concrete (relaxed Bernoulli, temperature T) made hard with the
  straight-through estimator, as DADA's ``search_gumbel`` (not RELAX, which DADA's ``search_relax``
  uses with a learned control variate): ``x_k = b_k * op_k(x_{k-1}) + (1 - b_k) * x_{k-1}``, so
  ``d/db_k = op_k(x_{k-1}) - x_{k-1}``;
* **magnitudes**: straight-through as DADA: the operation is evaluated at the (detached) magnitude and
  ``m - sg[m]`` is added to every pixel of the applied operation's output (gradient 1 per pixel),
  and the operation passes gradients to its input as the identity.

All operations act on batched float tensors (N, 3, H, W) in [0, 1] on any device (affine ones with
``F.affine_grid``/``grid_sample``, nearest sampling and zero fill as PIL's defaults, PIL's AFFINE
conventions: shear about the top-left corner, rotation counter-clockwise about the centre; these
match PIL pixel for pixel); never PIL. Equalize, AutoContrast, Posterize and
Solarize reproduce PIL's ``ImageOps`` on the 256 levels; Contrast/Color/Brightness/Sharpness are
PIL's ``ImageEnhance`` blends with its degenerate images (mean grey, greyscale, black, SMOOTH filter
with the border kept); Cutout paints a square of side ``v * W`` at a random centre with DADA's colour
(125, 123, 114).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OPS: tuple[tuple[str, float, float], ...] = (
    ("ShearX", -0.3, 0.3),
    ("ShearY", -0.3, 0.3),
    ("TranslateX", -0.45, 0.45),
    ("TranslateY", -0.45, 0.45),
    ("Rotate", -30.0, 30.0),
    ("AutoContrast", 0.0, 1.0),
    ("Invert", 0.0, 1.0),
    ("Equalize", 0.0, 1.0),
    ("Solarize", 0.0, 256.0),
    ("Posterize", 4.0, 8.0),
    ("Contrast", 0.1, 1.9),
    ("Color", 0.1, 1.9),
    ("Brightness", 0.1, 1.9),
    ("Sharpness", 0.1, 1.9),
    ("Cutout", 0.0, 0.2),
)
OP_NAMES: tuple[str, ...] = tuple(o[0] for o in OPS)
SUB_POLICIES: tuple[tuple[int, int], ...] = tuple(itertools.combinations(range(len(OPS)), 2))
MIRRORED = frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"})
CUTOUT_COLOR = (125 / 255, 123 / 255, 114 / 255)
_GREY = (0.299, 0.587, 0.114)  # PIL's L conversion


# ============================================================================ operations


def _affine(x: Tensor, theta: Tensor) -> Tensor:
    """Sample ``x`` at ``theta @ [x_out, y_out, 1]`` (normalised coords, align_corners=False), zero fill."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _theta(n: int, x: Tensor) -> Tensor:
    t = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    t[:, 0, 0] = 1
    t[:, 1, 1] = 1
    return t


def shear_x(x: Tensor, v: Tensor) -> Tensor:
    """PIL ``AFFINE (1, v, 0, 0, 1, 0)``: output (X, Y) reads input (X + v Y, Y) (top-left origin)."""
    t = _theta(x.shape[0], x)
    t[:, 0, 1] = v * x.shape[2] / x.shape[3]
    t[:, 0, 2] = v * x.shape[2] / x.shape[3]
    return _affine(x, t)


def shear_y(x: Tensor, v: Tensor) -> Tensor:
    """PIL ``AFFINE (1, 0, 0, v, 1, 0)``: output (X, Y) reads input (X, v X + Y)."""
    t = _theta(x.shape[0], x)
    t[:, 1, 0] = v * x.shape[3] / x.shape[2]
    t[:, 1, 2] = v * x.shape[3] / x.shape[2]
    return _affine(x, t)


def translate_x(x: Tensor, v: Tensor) -> Tensor:
    """PIL ``AFFINE (1, 0, v W, 0, 1, 0)``: content moves left by ``v * W`` pixels for v > 0."""
    t = _theta(x.shape[0], x)
    t[:, 0, 2] = 2 * v
    return _affine(x, t)


def translate_y(x: Tensor, v: Tensor) -> Tensor:
    """PIL ``AFFINE (1, 0, 0, 0, 1, v H)``: content moves up by ``v * H`` pixels for v > 0."""
    t = _theta(x.shape[0], x)
    t[:, 1, 2] = 2 * v
    return _affine(x, t)


def rotate(x: Tensor, degrees: Tensor) -> Tensor:
    """PIL ``rotate(deg)``: counter-clockwise about the centre (90 deg = ``torch.rot90(x, 1, (2, 3))``)."""
    a = degrees * (math.pi / 180)
    c, s = torch.cos(a), torch.sin(a)
    h, w = x.shape[2], x.shape[3]
    t = torch.zeros(x.shape[0], 2, 3, dtype=x.dtype, device=x.device)
    t[:, 0, 0] = c
    t[:, 0, 1] = -s * h / w
    t[:, 1, 0] = s * w / h
    t[:, 1, 1] = c
    return _affine(x, t)


def _levels(x: Tensor) -> Tensor:
    return (x * 255).round().clamp(0, 255).long()


def auto_contrast(x: Tensor, v: Tensor | None = None) -> Tensor:
    """PIL ``autocontrast`` (cutoff 0): each channel stretched to [0, 1]; constant channels unchanged."""
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    span = hi - lo
    ok = span > 0
    return torch.where(ok, (x - lo) / torch.where(ok, span, torch.ones_like(span)), x)


def invert(x: Tensor, v: Tensor | None = None) -> Tensor:
    """PIL ``invert``: ``1 - x``."""
    return 1 - x


def equalize(x: Tensor, v: Tensor | None = None) -> Tensor:
    """PIL ``equalize`` per channel on the 256 levels (its exact LUT), vectorised over the batch."""
    n, c, h, w = x.shape
    q = _levels(x).reshape(n, c, h * w)
    hist = torch.zeros(n, c, 256, dtype=torch.long, device=x.device).scatter_add_(2, q, torch.ones_like(q))
    last = hist.gather(2, q.amax(dim=2, keepdim=True))  # count of the highest present level
    step = (h * w - last) // 255  # (n, c, 1)
    nonzero_bins = (hist > 0).sum(2, keepdim=True)
    before = hist.cumsum(2) - hist
    safe = step.clamp_min(1)
    lut = ((step // 2 + before) // safe).clamp(0, 255)
    out = lut.gather(2, q).reshape(n, c, h, w).to(x.dtype) / 255
    identity = ((step == 0) | (nonzero_bins <= 1)).reshape(n, c, 1, 1)
    return torch.where(identity, x, out)


def solarize(x: Tensor, threshold: Tensor) -> Tensor:
    """PIL ``solarize``: levels >= ``threshold`` (0..256) are inverted."""
    thr = threshold.to(x.dtype).view(-1, 1, 1, 1)
    return torch.where(_levels(x).to(x.dtype) >= thr, 1 - x, x)


def posterize(x: Tensor, bits: Tensor) -> Tensor:
    """PIL ``posterize(int(bits))``: keep the top ``bits`` bits of each 8-bit level."""
    b = bits.to(x.dtype).floor().clamp(1, 8).long().view(-1, 1, 1, 1)
    mask = 255 - ((1 << (8 - b)) - 1)
    return (_levels(x) & mask).to(x.dtype) / 255


def _grey(x: Tensor) -> Tensor:
    w = torch.tensor(_GREY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _blend(degenerate: Tensor, x: Tensor, f: Tensor) -> Tensor:
    f = f.to(x.dtype).view(-1, 1, 1, 1)
    return (degenerate + f * (x - degenerate)).clamp(0, 1)


def contrast(x: Tensor, f: Tensor) -> Tensor:
    """PIL ``ImageEnhance.Contrast``: blend with the mean grey level."""
    return _blend(_grey(x).mean(dim=(2, 3), keepdim=True).expand_as(x), x, f)


def color(x: Tensor, f: Tensor) -> Tensor:
    """PIL ``ImageEnhance.Color``: blend with the greyscale image."""
    return _blend(_grey(x).expand_as(x), x, f)


def brightness(x: Tensor, f: Tensor) -> Tensor:
    """PIL ``ImageEnhance.Brightness``: blend with black."""
    return _blend(torch.zeros_like(x), x, f)


def sharpness(x: Tensor, f: Tensor) -> Tensor:
    """PIL ``ImageEnhance.Sharpness``: blend with the SMOOTH-filtered image (border pixels kept)."""
    k = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], dtype=x.dtype, device=x.device) / 13
    smooth = F.conv2d(x, k.view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1), padding=1, groups=x.shape[1])
    deg = x.clone()
    deg[:, :, 1:-1, 1:-1] = smooth[:, :, 1:-1, 1:-1]
    return _blend(deg, x, f)


def cutout(x: Tensor, v: Tensor, centre: Tensor | None = None) -> Tensor:
    """DADA ``Cutout(v)``: a square of side ``v * W`` filled with (125, 123, 114)/255.

    ``centre`` (N, 2) in [0, 1) gives (x, y) of the square's centre relative to the image (random if
    None); the top-left corner is ``max(0, centre - side / 2)`` truncated, clipped at the border.
    """
    n, c, h, w = x.shape
    if centre is None:
        centre = torch.rand(n, 2, device=x.device)
    side = v.to(x.dtype) * w
    x0 = (centre[:, 0].to(x.dtype) * w - side / 2).clamp_min(0).floor()
    y0 = (centre[:, 1].to(x.dtype) * h - side / 2).clamp_min(0).floor()
    x1 = (x0 + side).clamp_max(w)
    y1 = (y0 + side).clamp_max(h)
    cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    rows = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    inside = (
        (cols >= x0.view(n, 1, 1))
        & (cols < x1.view(n, 1, 1))
        & (rows >= y0.view(n, 1, 1))
        & (rows < y1.view(n, 1, 1))
    )
    fill = torch.tensor(CUTOUT_COLOR, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return torch.where(inside.unsqueeze(1) & (side > 0).view(n, 1, 1, 1), fill.expand_as(x), x)


_FUNCS = {
    "ShearX": shear_x,
    "ShearY": shear_y,
    "TranslateX": translate_x,
    "TranslateY": translate_y,
    "Rotate": rotate,
    "AutoContrast": auto_contrast,
    "Invert": invert,
    "Equalize": equalize,
    "Solarize": solarize,
    "Posterize": posterize,
    "Contrast": contrast,
    "Color": color,
    "Brightness": brightness,
    "Sharpness": sharpness,
}


def magnitude_value(op: int | Tensor, m: Tensor) -> Tensor:
    """``m * (high - low) + low`` for operation index ``op`` (scalar or per-image tensor)."""
    lows = torch.tensor([o[1] for o in OPS], dtype=m.dtype, device=m.device)
    highs = torch.tensor([o[2] for o in OPS], dtype=m.dtype, device=m.device)
    idx = torch.as_tensor(op, device=m.device)
    return m.clamp(0, 1) * (highs[idx] - lows[idx]) + lows[idx]


def apply_op(name: str, x: Tensor, value: Tensor, centre: Tensor | None = None) -> Tensor:
    """Operation ``name`` at magnitude ``value`` (per image (N,), already mapped to its range)."""
    value = torch.as_tensor(value, dtype=x.dtype, device=x.device).expand(x.shape[0])
    if name == "Cutout":
        return cutout(x, value, centre)
    return _FUNCS[name](x, value)


def apply_ops(x: Tensor, ops: Tensor, values: Tensor, centres: Tensor | None = None) -> Tensor:
    """Per image ``i``, operation ``ops[i]`` at ``values[i]``; grouped by operation (<= 15 calls)."""
    out = x.clone()
    for op in torch.unique(ops).tolist():
        sel = (ops == op).nonzero().squeeze(1)
        c = None if centres is None else centres.index_select(0, sel)
        out[sel] = apply_op(OP_NAMES[op], x.index_select(0, sel), values.index_select(0, sel), c)
    return out


# ============================================================================ the policy


@dataclass
class PolicySample:
    """The random numbers of one application of the policy to N images (reusable)."""

    gumbel: Tensor  # (N, 105) Gumbel(0, 1) noise for the sub-policy choice
    logistic: Tensor  # (N, 2) Logistic(0, 1) noise for the relaxed Bernoulli of each slot
    sign: Tensor  # (N, 2) +-1 random mirror of each slot's magnitude
    centre: Tensor  # (N, 2, 2) cutout centres (x, y) in [0, 1) per slot

    def to(self, device: torch.device | str) -> PolicySample:
        return PolicySample(*(t.to(device) for t in (self.gumbel, self.logistic, self.sign, self.centre)))


class AugmentPolicy(nn.Module):
    """DADA's policy with its three parameter tensors (see the module docstring)."""

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__()
        n = len(SUB_POLICIES)
        self.temperature = float(temperature)
        self.probabilities = nn.Parameter(torch.full((n, 2), 0.5))
        self.magnitudes = nn.Parameter(torch.full((n, 2), 0.5))
        self.weights = nn.Parameter(torch.full((n,), 1e-3))
        self.register_buffer("sub_policies", torch.tensor(SUB_POLICIES, dtype=torch.long))

    def draw(self, n: int, generator: torch.Generator | None = None) -> PolicySample:
        """The random numbers for ``n`` images, on the CPU ``generator`` (then moved to the device)."""
        eps = 1e-10
        u = torch.rand(n, len(SUB_POLICIES), generator=generator).clamp(eps, 1 - eps)
        gumbel = -torch.log(-torch.log(u))
        v = torch.rand(n, 2, generator=generator).clamp(eps, 1 - eps)
        logistic = torch.log(v) - torch.log1p(-v)
        sign = torch.where(torch.rand(n, 2, generator=generator) < 0.5, -1.0, 1.0)
        centre = torch.rand(n, 2, 2, generator=generator)
        return PolicySample(gumbel, logistic, sign, centre).to(self.weights.device)

    def selection(self, sample: PolicySample) -> tuple[Tensor, Tensor]:
        """(chosen sub-policy per image (N,), its straight-through weight (N,), = 1 forward)."""
        soft = F.softmax(
            (self.weights.unsqueeze(0) + sample.gumbel.to(self.weights.dtype)) / self.temperature, -1
        )
        idx = soft.argmax(-1)
        hard = F.one_hot(idx, soft.shape[-1]).to(soft.dtype)
        st = hard - soft.detach() + soft
        return idx, st.gather(1, idx.unsqueeze(1)).squeeze(1)

    def gates(self, idx: Tensor, sample: PolicySample) -> Tensor:
        """Straight-through relaxed-Bernoulli gates (N, 2) for applying each slot's operation."""
        eps = 1e-6
        p = self.probabilities.index_select(0, idx).clamp(eps, 1 - eps)
        logits = torch.log(p) - torch.log1p(-p)
        soft = torch.sigmoid((logits + sample.logistic.to(p.dtype)) / self.temperature)
        hard = (soft > 0.5).to(soft.dtype)
        return hard - soft.detach() + soft

    def forward(self, x: Tensor, sample: PolicySample) -> Tensor:
        """Augmented images f(P, x) in [0, 1], differentiable in P by the relaxations above."""
        idx, w = self.selection(sample)
        ops = self.sub_policies.index_select(0, idx)  # (N, 2)
        b = self.gates(idx, sample)
        mags = self.magnitudes.index_select(0, idx)  # (N, 2)
        out = x
        for k in range(2):
            m = mags[:, k]
            value = magnitude_value(ops[:, k], m.detach())
            mirrored = torch.tensor(
                [OP_NAMES[o] in MIRRORED for o in range(len(OPS))], device=x.device
            ).index_select(0, ops[:, k])
            value = torch.where(mirrored, value * sample.sign[:, k].to(value.dtype), value)
            prev = out
            with torch.no_grad():
                applied = apply_ops(prev.detach(), ops[:, k], value.to(x.dtype), sample.centre[:, k])
            a = applied + (prev - prev.detach()) + (m - m.detach()).to(x.dtype).view(-1, 1, 1, 1)
            bk = b[:, k].to(x.dtype).view(-1, 1, 1, 1)
            out = bk * a + (1 - bk) * prev
        return out * w.to(x.dtype).view(-1, 1, 1, 1)

    def clamp_(self) -> None:
        """Project probabilities and magnitudes back to [0, 1] after an optimiser step."""
        with torch.no_grad():
            self.probabilities.clamp_(0, 1)
            self.magnitudes.clamp_(0, 1)

    def entropy(self) -> float:
        """Entropy (nats) of the sub-policy distribution softmax(weights); log(105) when uniform."""
        p = F.softmax(self.weights.detach().float(), -1)
        return float(-(p * torch.log(p + 1e-12)).sum())

    def top(self, k: int = 5) -> list[dict[str, object]]:
        """The ``k`` most likely sub-policies, JSON-able (DADA ``genotype``)."""
        p = F.softmax(self.weights.detach().float(), -1)
        order = torch.argsort(p, descending=True)[:k].tolist()
        out = []
        for j in order:
            a, b = SUB_POLICIES[j]
            out.append(
                {
                    "ops": [OP_NAMES[a], OP_NAMES[b]],
                    "prob": [round(float(v), 4) for v in self.probabilities[j].detach().clamp(0, 1)],
                    "mag": [round(float(v), 4) for v in self.magnitudes[j].detach().clamp(0, 1)],
                    "weight": round(float(p[j]), 6),
                }
            )
        return out
