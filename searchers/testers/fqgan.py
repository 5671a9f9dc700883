"""Class-conditional GANs at CIFAR scale: the paper's data generation model (Sec. 3.2 stage II, Sec. 4).

Three variants (``generator=`` option, paper Table 8), all 32x32, ResNet generators with conditional
BatchNorm and projection discriminators (Miyato & Koyama 2018), hinge loss:

``fqgan`` (default; Zhao et al. 2020, YangNaruto/FQ-GAN ``FQ-BigGAN``, CIFAR config)
    BigGAN-CIFAR architecture (``G_ch = D_ch = 64``: 256 channels throughout, ``dim_z = 128``,
    bottom width 4, three up-blocks in G, four blocks in D downsampling at the first two), spectral
    norm in G and D, per-class conditional-BN gains (``G_shared`` off as in FQ-GAN's CIFAR scripts),
    and **feature quantisation** after the discriminator blocks ``fq_layers`` (FQ-GAN's
    ``--discrete_layer 0123``).
``sngan`` (Miyato et al. 2018; cGAN of Miyato & Koyama 2018)
    G of 256 channels without spectral norm, per-class conditional BN; D of 128 channels with spectral
    norm; no quantisation.
``biggan`` (Brock et al. 2018, CIFAR sizes)
    As ``fqgan`` without quantisation, with BigGAN's **shared class embedding** (128-d) and
    **hierarchical z** (z split into ``1 + blocks`` chunks: the first feeds the linear layer, each other
    chunk is concatenated with the shared embedding and mapped to that block's BN gains and biases).

``width`` is BigGAN's ``ch`` (channels ``4 * width``; SN-GAN's D half of that): 64 is the paper's
CIFAR size above; tests and the quick preset use a tiny width.

Feature quantisation (FQ-GAN): :mod:`searchers.testers.quantizer`.

Learnable hyperparameters B and how they enter L_dg (paper Eq. 8, 15-16)
------------------------------------------------------------------------
For ``fqgan``, B = (lambda = dictionary decay ``d``, alpha = FQ loss weight), initialised to FQ-GAN's
values (paper Sec. 4). As written, the EMA update is a buffer assignment, so nothing downstream depends
on ``d`` differentiably. wcbench uses this exact form instead:

* the dictionary a layer quantises with is the **one-step EMA update computed as a differentiable
  function of d**: with the batch statistics ``counts``, ``sums`` and the assignment ``k(h)`` (nearest
  key of the current dictionary) all detached::

      embed'(d) = (d * embed_avg + (1 - d) * sums) / smooth(d * cluster_size + (1 - d) * counts)
      q(h; d)   = embed'(d)[:, k(h)]

  (FQ-GAN quantises with the key before this batch's update; wcbench with the key after it -- the
  difference is one EMA step, and it is exactly what makes ``d`` enter the loss);
* the layer outputs ``h_q = h - sg[h] + q(h; d)``: the value is ``q`` and the gradient w.r.t. ``h`` is the
  identity, as FQ-GAN's ``h + sg[q - h]``; unlike it, ``h_q`` keeps ``q``'s dependence on ``d``;
* the FQ loss is ``mean((q(h; d) - h)^2)``; its gradient w.r.t. ``h`` (hence G) equals FQ-GAN's
  ``mean((sg[q] - h)^2)`` because the dictionary has no trainable parameters, and it stays a function
  of ``d``;
* the generator loss is ``L_dg(G, B) = -mean(D_d(G(z, y), y)) + alpha * sum_layers FQ_loss(d)``
  (hinge generator loss plus the weighted FQ loss of the fake batch; the buffers are not written).

Hence ``grad_G L_dg`` depends on both ``d`` (through the quantised features that D's upper layers see
and through the FQ loss's target) and ``alpha``, so ``grad^2_{B,G} L_dg`` in Eq. 15-16 exists and a
different B gives a different G' (tested). Finite differences of ``grad_B L_dg`` along a G direction
(the paper's Eq. 15 approximation) hold the assignment and batch statistics fixed and linearise the
straight-through output around the recorded features
(:func:`~searchers.testers.quantizer.replayed_statistics`), so that they differentiate the same
function whose gradient the G step follows; they then agree with the exact double-backward mixed
derivative (tested with smooth activations). The D step uses the current (detached) B; the buffers
are written only in the real D and G steps, never in unrolled or finite-difference passes.

For ``sngan`` and ``biggan`` (no dictionary) B = (sigma = latent scale, tau = class-conditioning
scale), both initialised to 1: the generator is evaluated as ``G(sigma * z, tau * c(y))`` where ``c(y)``
is what conditions the BN layers (BigGAN: the shared class embedding; SN-GAN: the per-class BN gain and
bias offsets, ``gain = 1 + tau * gamma_y``, ``bias = tau * beta_y``). sigma is BigGAN's truncation /
latent standard deviation knob and tau the strength of class conditioning; both enter
``L_dg = -mean(D(G(sigma z, tau c(y)), y))`` differentiably.

Batch statistics: G's BatchNorms always normalise with the statistics of the batch they see (no
running averages), so a virtual forward changes no state and generation needs batches of >= 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from searchers.testers.functional import Stateful
from searchers.testers.quantizer import FeatureQuantizer

GeneratorKind = Literal["fqgan", "sngan", "biggan"]
GENERATORS: tuple[str, ...] = ("fqgan", "sngan", "biggan")

FQ_DEFAULTS: dict[str, dict[str, float]] = {
    # dataset -> FQ-GAN settings (YangNaruto/FQ-GAN; Zhao et al. 2020)
    "cifar10": {"dict_size_log2": 10, "decay": 0.8, "fq_weight": 1.0},
    "cifar100": {"dict_size_log2": 6, "decay": 0.9, "fq_weight": 10.0},
}


ACTIVATIONS = {"relu": F.relu, "silu": F.silu, "elu": F.elu}
"""``relu`` is the GANs' activation; the smooth ones exist for finite-difference checks (a ReLU network's
gradient jumps at every kink the perturbation crosses, so its central differences do not converge)."""


def fq_defaults(dataset: str) -> dict[str, float]:
    """FQ-GAN's dictionary size (log2), decay and weight for ``dataset`` (CIFAR-10's for any other)."""
    return dict(FQ_DEFAULTS.get(dataset, FQ_DEFAULTS["cifar10"]))


# ============================================================================ spectral norm


class _SN(Stateful):
    """Spectral normalisation by one power iteration per training forward (BigGAN ``layers.SN``).

    ``u`` is a buffer; ``sigma = u^T W v`` with ``u, v`` treated as constants (gradient through W only).
    """

    def _init_sn(self, out_features: int) -> None:
        self.register_buffer("u", F.normalize(torch.randn(1, out_features), dim=1))  # type: ignore[attr-defined]

    def sn_weight(self, weight: Tensor) -> Tensor:
        w = weight.reshape(weight.shape[0], -1)
        u = self.u  # type: ignore[attr-defined]
        with torch.no_grad():
            v = F.normalize(u.to(w.dtype) @ w, dim=1, eps=1e-12)
            if self.training and self.update_state:  # type: ignore[attr-defined]
                u_new = F.normalize(v @ w.t(), dim=1, eps=1e-12)
                self.u.copy_(u_new.to(self.u.dtype))  # type: ignore[attr-defined]
                u = u_new
                v = F.normalize(u.to(w.dtype) @ w, dim=1, eps=1e-12)
        sigma = (u.to(w.dtype) @ w @ v.t()).squeeze()
        return weight / sigma


class SNConv2d(nn.Conv2d, _SN):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_sn(self.out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.sn_weight(self.weight), self.bias, self.stride, self.padding)


class SNLinear(nn.Linear, _SN):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_sn(self.out_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.sn_weight(self.weight), self.bias)


class SNEmbedding(nn.Embedding, _SN):
    """Spectral-normed embedding (BigGAN ``SNEmbedding``: the matrix is normalised as a whole)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_sn(self.num_embeddings)

    def forward(self, y: Tensor) -> Tensor:
        return F.embedding(y, self.sn_weight(self.weight))


def _conv(sn: bool, c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    cls = SNConv2d if sn else nn.Conv2d
    return cls(c_in, c_out, kernel_size=k, padding=k // 2)


def _linear(sn: bool, d_in: int, d_out: int, bias: bool = True) -> nn.Linear:
    return (SNLinear if sn else nn.Linear)(d_in, d_out, bias=bias)


# ============================================================================ generator


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without affine (batch statistics always), then ``gain * x + bias`` from the condition.

    ``mode="embed"``: per-class embeddings, ``gain = 1 + scale * E_g[y]``, ``bias = scale * E_b[y]``
    (SN-GAN / BigGAN ``ccbn`` without shared embedding). ``mode="linear"``: gain and bias are linear maps
    of a conditioning vector (BigGAN shared embedding, already scaled), ``gain = 1 + W_g c``.
    """

    def __init__(self, channels: int, mode: str, num_classes: int, cond_dim: int, sn: bool) -> None:
        super().__init__()
        self.mode = mode
        if mode == "embed":
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
        else:
            self.gain = _linear(sn, cond_dim, channels, bias=False)
            self.bias = _linear(sn, cond_dim, channels, bias=False)
        self.eps = 1e-5

    def forward(self, x: Tensor, cond: Tensor, scale: Tensor | float = 1.0) -> Tensor:
        out = F.batch_norm(x, None, None, training=True, eps=self.eps)
        if self.mode == "embed":
            g = 1 + scale * self.gain(cond)
            b = scale * self.bias(cond)
        else:
            g = 1 + self.gain(cond)
            b = self.bias(cond)
        return out * g[:, :, None, None] + b[:, :, None, None]


class GBlock(nn.Module):
    """BigGAN/SN-GAN up-block: CBN-ReLU-up-conv3-CBN-ReLU-conv3, shortcut up-conv1."""

    def __init__(
        self, c_in: int, c_out: int, mode: str, num_classes: int, cond_dim: int, sn: bool, act: str = "relu"
    ) -> None:
        super().__init__()
        self.act = ACTIVATIONS[act]
        self.bn1 = ConditionalBatchNorm2d(c_in, mode, num_classes, cond_dim, sn)
        self.conv1 = _conv(sn, c_in, c_out)
        self.bn2 = ConditionalBatchNorm2d(c_out, mode, num_classes, cond_dim, sn)
        self.conv2 = _conv(sn, c_out, c_out)
        self.shortcut = _conv(sn, c_in, c_out, 1)

    def forward(self, x: Tensor, cond: Tensor, scale: Tensor | float) -> Tensor:
        h = self.act(self.bn1(x, cond, scale))
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv1(h)
        h = self.act(self.bn2(h, cond, scale))
        h = self.conv2(h)
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    """Class-conditional ResNet generator, 4x4 -> 32x32, tanh output in [-1, 1].

    ``forward(z, y, z_scale, cond_scale)``: ``z`` (N, dim_z), ``y`` (N,) int64; the scales are the
    non-FQ generators' hyperparameters B (1.0 = the plain generator).
    """

    def __init__(
        self,
        num_classes: int,
        channels: int = 256,
        dim_z: int = 128,
        num_blocks: int = 3,
        bottom: int = 4,
        sn: bool = True,
        shared_dim: int = 0,
        hier: bool = False,
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.num_classes, self.channels, self.bottom = num_classes, channels, bottom
        self.act = ACTIVATIONS[act]
        self.shared_dim, self.hier = shared_dim, hier
        if hier:
            self.num_slots = num_blocks + 1
            self.chunk = dim_z // self.num_slots
            dim_z = self.chunk * self.num_slots
        else:
            self.num_slots, self.chunk = 1, dim_z
        self.dim_z = dim_z
        mode = "linear" if shared_dim > 0 else "embed"
        cond_dim = shared_dim + (self.chunk if hier else 0)
        self.shared = nn.Embedding(num_classes, shared_dim) if shared_dim > 0 else None
        self.linear = _linear(sn, self.chunk if hier else dim_z, channels * bottom * bottom)
        self.blocks = nn.ModuleList(
            GBlock(channels, channels, mode, num_classes, cond_dim, sn, act) for _ in range(num_blocks)
        )
        self.out_bn_eps = 1e-5
        self.out_conv = _conv(sn, channels, 3)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 0.02) init of every weight (FQ-GAN scripts ``--G_init N02``), biases zero."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(
        self, z: Tensor, y: Tensor, z_scale: Tensor | float = 1.0, cond_scale: Tensor | float = 1.0
    ) -> Tensor:
        z = z * z_scale
        if self.shared is not None:
            e = self.shared(y) * cond_scale
            if self.hier:
                zs = torch.split(z, self.chunk, dim=1)
                z, conds = zs[0], [torch.cat([e, zi], 1) for zi in zs[1:]]
            else:
                conds = [e] * len(self.blocks)
            scale: Tensor | float = 1.0
        else:
            conds = [y] * len(self.blocks)
            scale = cond_scale
        h = self.linear(z).view(z.shape[0], self.channels, self.bottom, self.bottom)
        for block, c in zip(self.blocks, conds):
            h = block(h, c, scale)
        h = self.act(F.batch_norm(h, None, None, training=True, eps=self.out_bn_eps))
        return torch.tanh(self.out_conv(h))


# ============================================================================ discriminator


class DBlock(nn.Module):
    """SN-GAN/BigGAN down-block: (ReLU)-conv3-ReLU-conv3-(avgpool), shortcut conv1-(avgpool)."""

    def __init__(
        self, c_in: int, c_out: int, downsample: bool, preactivation: bool, sn: bool = True, act: str = "relu"
    ) -> None:
        super().__init__()
        self.act = ACTIVATIONS[act]
        self.conv1 = _conv(sn, c_in, c_out)
        self.conv2 = _conv(sn, c_out, c_out)
        self.learnable_sc = c_in != c_out or downsample
        self.shortcut = _conv(sn, c_in, c_out, 1) if self.learnable_sc else None
        self.downsample, self.preactivation = downsample, preactivation

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(x) if self.preactivation else x
        h = self.conv2(self.act(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.preactivation:
            if self.shortcut is not None:
                s = self.shortcut(s)
            if self.downsample:
                s = F.avg_pool2d(s, 2)
        else:  # optimized first block: pool, then conv
            if self.downsample:
                s = F.avg_pool2d(s, 2)
            if self.shortcut is not None:
                s = self.shortcut(s)
        return h + s


@dataclass
class DOutput:
    """Discriminator output: logits (N,), summed FQ loss, mean perplexity, pooled features (N, C)."""

    logits: Tensor
    fq_loss: Tensor
    perplexity: Tensor
    features: Tensor


class Discriminator(nn.Module):
    """Projection discriminator (SN), four blocks (down, down, -, -), optional FQ after ``fq_layers``.

    ``trunk_features(x, decay)`` are the pooled features (global sum of ReLU, SN-GAN) that the
    projection head reads and that a tied auxiliary model reads (Sec. 3.3).
    """

    def __init__(
        self,
        num_classes: int,
        channels: int = 256,
        fq_layers: Sequence[int] = (),
        dict_size: int = 1024,
        downsample: Sequence[bool] = (True, True, False, False),
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.num_classes, self.channels = num_classes, channels
        self.act = ACTIVATIONS[act]
        c_in = 3
        blocks = []
        for i, down in enumerate(downsample):
            blocks.append(DBlock(c_in, channels, down, preactivation=i > 0, act=act))
            c_in = channels
        self.blocks = nn.ModuleList(blocks)
        self.fq_layers = tuple(int(i) for i in fq_layers)
        self.quantizers = nn.ModuleDict(
            {str(i): FeatureQuantizer(channels, dict_size) for i in self.fq_layers}
        )
        self.linear = SNLinear(channels, 1)
        self.embed = SNEmbedding(num_classes, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def trunk(self, x: Tensor, decay: Tensor | float | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(pooled features (N, C), summed FQ loss, mean perplexity) of images ``x`` in [-1, 1]."""
        h = x
        fq_loss = x.new_zeros(())
        ppl = []
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in self.fq_layers:
                h, st = self.quantizers[str(i)](h, decay)
                fq_loss = fq_loss + st.loss
                ppl.append(st.perplexity)
        feats = self.act(h).sum(dim=(2, 3))
        perplexity = torch.stack(ppl).mean() if ppl else x.new_zeros(())
        return feats, fq_loss, perplexity

    def forward(self, x: Tensor, y: Tensor, decay: Tensor | float | None = None) -> DOutput:
        feats, fq_loss, ppl = self.trunk(x, decay)
        logits = self.linear(feats).squeeze(1) + (self.embed(y) * feats).sum(1)
        return DOutput(logits, fq_loss, ppl, feats)


# ============================================================================ the GAN with its B


class GANHyper(nn.Module):
    """The learnable hyperparameters B of the generative model (paper Eq. 5; Sec. 4).

    ``fqgan``: ``decay`` (lambda) and ``fq_weight`` (alpha); others: ``z_scale`` (sigma) and
    ``cond_scale`` (tau). Raw scalars, clamped where used (decay to [0, 0.9999], the rest to >= 0).
    """

    def __init__(self, kind: str, decay: float = 0.8, fq_weight: float = 1.0) -> None:
        super().__init__()
        self.kind = kind
        if kind == "fqgan":
            self.decay = nn.Parameter(torch.tensor(float(decay)))
            self.fq_weight = nn.Parameter(torch.tensor(float(fq_weight)))
        else:
            self.z_scale = nn.Parameter(torch.tensor(1.0))
            self.cond_scale = nn.Parameter(torch.tensor(1.0))

    def values(self, detach: bool = False) -> dict[str, Tensor]:
        """Clamped B, as used by the losses (name -> 0-dim tensor)."""
        out: dict[str, Tensor] = {}
        for n, p in self.named_parameters():
            t = p.detach() if detach else p
            out[n] = t.clamp(0.0, 0.9999) if n == "decay" else t.clamp_min(0.0)
        return out

    def clamp_(self) -> None:
        """Project the raw values back to the valid range after an optimiser step."""
        with torch.no_grad():
            for n, p in self.named_parameters():
                p.clamp_(0.0, 0.9999) if n == "decay" else p.clamp_(min=0.0)

    def as_dict(self) -> dict[str, float]:
        return {n: float(v) for n, v in self.values(detach=True).items()}


class ConditionalGAN(nn.Module):
    """G, D and B of one variant, with the hinge losses of the tester (Eq. 8's ``L_dg``).

    Images are in [0, 1] at the interface (``generate`` returns them so, ``d_loss`` takes real ones so);
    internally G and D work in [-1, 1].
    """

    def __init__(
        self,
        kind: GeneratorKind,
        num_classes: int,
        *,
        width: int = 64,
        dim_z: int = 128,
        fq_layers: Sequence[int] = (0, 1, 2, 3),
        dict_size: int = 1024,
        decay: float = 0.8,
        fq_weight: float = 1.0,
        act: str = "relu",
        resolution: int = 32,
    ) -> None:
        super().__init__()
        if kind not in GENERATORS:
            raise ValueError(f"unknown generator {kind!r}; choose one of {', '.join(GENERATORS)}")
        if resolution < 8 or resolution % 8:
            raise ValueError(f"the GAN tester makes images of a multiple of 8 pixels, not {resolution}")
        bottom = resolution // 8  # three up-blocks: 4 -> 32 at CIFAR size (FQ-GAN), 2 -> 16, 1 -> 8
        self.kind, self.num_classes = kind, num_classes
        ch = 4 * width  # BigGAN CIFAR: ch * 4 channels everywhere
        if kind == "sngan":
            self.G = Generator(num_classes, channels=ch, dim_z=dim_z, bottom=bottom, sn=False, act=act)
            self.D = Discriminator(num_classes, channels=max(1, ch // 2), act=act)
        elif kind == "biggan":
            self.G = Generator(
                num_classes,
                channels=ch,
                dim_z=dim_z,
                bottom=bottom,
                sn=True,
                shared_dim=dim_z,
                hier=True,
                act=act,
            )
            self.D = Discriminator(num_classes, channels=ch, act=act)
        else:
            self.G = Generator(num_classes, channels=ch, dim_z=dim_z, bottom=bottom, sn=True, act=act)
            self.D = Discriminator(
                num_classes, channels=ch, fq_layers=fq_layers, dict_size=dict_size, act=act
            )
        self.B = GANHyper(kind, decay=decay, fq_weight=fq_weight)
        self.dim_z = self.G.dim_z

    # ---------------------------------------------------------------- sampling
    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> tuple[Tensor, Tensor]:
        """(z ~ N(0, I) (n, dim_z), y ~ U{classes} (n,)), drawn on the CPU ``generator``."""
        z = torch.randn(n, self.dim_z, generator=generator)
        y = torch.randint(self.num_classes, (n,), generator=generator)
        return z.to(device, self.G.linear.weight.dtype), y.to(device)

    def g_scales(self, hyper: dict[str, Tensor] | None) -> tuple[Tensor | float, Tensor | float]:
        """(sigma, tau) of B for G's input (1, 1 for ``fqgan`` or without ``hyper``)."""
        if self.kind == "fqgan" or hyper is None:
            return 1.0, 1.0
        return hyper["z_scale"], hyper["cond_scale"]

    def generate(self, z: Tensor, y: Tensor, hyper: dict[str, Tensor] | None = None) -> Tensor:
        """G(z, y) in [0, 1]; ``hyper`` = B values (default: the current, detached)."""
        hyper = self.B.values(detach=True) if hyper is None else hyper
        zs, cs = self.g_scales(hyper)
        return (self.G(z, y, zs, cs) + 1) / 2

    def hyper_decay(self, hyper: dict[str, Tensor]) -> Tensor | None:
        """The dictionary decay lambda of B (``fqgan``; None for the others: no dictionary)."""
        return hyper["decay"] if self.kind == "fqgan" else None

    def hyper_fq_weight(self, hyper: dict[str, Tensor]) -> Tensor | float:
        """The FQ loss weight alpha of B (``fqgan``; 0 for the others)."""
        return hyper["fq_weight"] if self.kind == "fqgan" else 0.0

    # ---------------------------------------------------------------- losses
    def g_loss(self, z: Tensor, y: Tensor, hyper: dict[str, Tensor] | None = None) -> Tensor:
        """``L_dg(G, B)`` of the module docstring (hinge generator loss + alpha * FQ loss).

        Differentiable in G's parameters and in ``hyper`` (pass ``self.B.values()`` for a graph to B).
        D's state (SN vectors, dictionaries) is written only if D is training and not frozen.
        """
        hyper = self.B.values(detach=True) if hyper is None else hyper
        zs, cs = self.g_scales(hyper)
        fake = self.G(z, y, zs, cs)
        out = self.D(fake, y, self.hyper_decay(hyper))
        return -out.logits.mean() + self.hyper_fq_weight(hyper) * out.fq_loss

    def d_loss(
        self, x_real: Tensor, y_real: Tensor, z: Tensor, y_fake: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Hinge D loss + alpha * FQ loss, real (in [0, 1]) and fake passed through D together."""
        hyper = self.B.values(detach=True)
        zs, cs = self.g_scales(hyper)
        with torch.no_grad():
            fake = self.G(z, y_fake, zs, cs)
        x = torch.cat([fake, x_real * 2 - 1], 0)
        out = self.D(x, torch.cat([y_fake, y_real], 0), self.hyper_decay(hyper))
        d_fake, d_real = out.logits[: fake.shape[0]], out.logits[fake.shape[0] :]
        hinge = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        loss = hinge + self.hyper_fq_weight(hyper) * out.fq_loss
        stats = {
            "d_real": d_real.mean().detach(),
            "d_fake": d_fake.mean().detach(),
            "perplexity": out.perplexity,
        }
        return loss, stats


def gan_width_note(width: int) -> str:
    """Human-readable size of a GAN width (for logs)."""
    return f"width {width} (G/D channels {4 * width}, paper CIFAR: 64 -> 256)"


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "ConditionalGAN",
    "DBlock",
    "Discriminator",
    "FeatureQuantizer",
    "GANHyper",
    "GBlock",
    "Generator",
    "GENERATORS",
    "fq_defaults",
]
