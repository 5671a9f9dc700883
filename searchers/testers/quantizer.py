"""Feature quantisation (FQ-GAN, Zhao et al. 2020): the discriminator's EMA dictionaries, with the decay
lambda of B entering the loss differentiably (paper Eq. 5, 8, 15-16; see :mod:`searchers.testers.fqgan`).

A dictionary of K keys ``embed`` (dim, K) per quantised layer, with buffers ``cluster_size`` (K,) and
``embed_avg`` (dim, K). Every training forward of D assigns each feature vector h (one per pixel) to its
nearest key and updates, with decay ``d`` (EMA, Laplace smoothing ``eps = 1e-5``)::

    cluster_size <- d * cluster_size + (1 - d) * counts             counts_k = #{h assigned to k}
    embed_avg    <- d * embed_avg    + (1 - d) * sums               sums_k   = sum of h assigned to k
    n = sum(cluster_size);  cs = (cluster_size + eps) / (n + K * eps) * n
    embed        <- embed_avg / cs

The layer outputs the quantised feature with the straight-through estimator (gradient 1 w.r.t. h) and
the loss ``mean((sg[q] - h)^2)``, which is added, weighted, to the D and G losses. As in the FQ-GAN
paper the quantised features are what the next block reads (the public FQ-BigGAN code computes them
but passes the unquantised ``h`` on, so there only the loss sees the dictionary). Real and fake batches
pass through D together in D's step. CIFAR-10: K = 2^10, d = 0.8, weight 1.0; CIFAR-100: K = 2^6,
d = 0.9, weight 10.0 (Zhao et al. 2020; FQ-GAN's own launch scripts use K = 2^6, d = 0.9 for both).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from searchers.testers.functional import Stateful


@dataclass
class FQStats:
    """What a quantiser reports: the FQ loss and the codebook perplexity of the batch."""

    loss: Tensor
    perplexity: Tensor


class FeatureQuantizer(nn.Module, Stateful):
    """FQ-GAN's EMA dictionary with the differentiable one-step update described in the module doc."""

    def __init__(self, dim: int, n_embed: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.n_embed, self.eps = dim, n_embed, eps
        embed = torch.randn(dim, n_embed)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(n_embed))
        self.register_buffer("embed_avg", embed.clone())
        self._recorded: tuple[Tensor, Tensor, Tensor, Tensor] | None = None

    def assign(self, flat: Tensor) -> Tensor:
        """Index of the nearest key of the current dictionary for each row of ``flat`` (M, dim)."""
        with torch.no_grad():
            e = self.embed.to(flat.dtype)
            dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e + e.pow(2).sum(0, keepdim=True)
            return dist.argmin(1)

    def ema_update(
        self, decay: Tensor | float, counts: Tensor, sums: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(cluster_size', embed_avg', embed') after one EMA step with ``decay`` (differentiable in it)."""
        cs = decay * self.cluster_size.to(counts.dtype) + (1 - decay) * counts
        avg = decay * self.embed_avg.to(sums.dtype) + (1 - decay) * sums
        n = cs.sum()
        smooth = (cs + self.eps) / (n + self.n_embed * self.eps) * n
        return cs, avg, avg / smooth.unsqueeze(0)

    replay: str | None = None
    """None: normal; ``"record"``: remember this forward's assignment and batch statistics;
    ``"replay"``: use the remembered ones instead of this batch's (see :func:`replayed_statistics`)."""

    def forward(self, h: Tensor, decay: Tensor | float | None = None) -> tuple[Tensor, FQStats]:
        """Quantise ``h`` (N, C, H, W). ``decay`` None: with the current keys, no update (inference);
        else with the one-step-updated keys ``embed'(decay)``, written to the buffers when training
        and the state is not frozen."""
        n, c, hh, ww = h.shape
        flat = h.permute(0, 2, 3, 1).reshape(-1, c)
        anchor = None
        if self.replay == "replay" and self._recorded is not None:
            idx, counts, sums, anchor = self._recorded
        else:
            idx = self.assign(flat.detach())
            counts, sums = None, None
        onehot = F.one_hot(idx, self.n_embed).to(flat.dtype)
        if decay is None:
            keys = self.embed.to(flat.dtype)
        else:
            if counts is None:
                counts = onehot.sum(0)
                sums = flat.detach().t() @ onehot
            if self.replay == "record":
                self._recorded = (idx, counts, sums, flat.detach())
            cs, avg, keys = self.ema_update(decay, counts, sums)
            if self.training and self.update_state:
                with torch.no_grad():
                    self.cluster_size.copy_(cs.detach())
                    self.embed_avg.copy_(avg.detach())
                    self.embed.copy_(keys.detach())
        q = F.embedding(idx, keys.t())  # (M, C)
        loss = (q - flat).pow(2).mean()
        # straight-through: value q, gradient 1 w.r.t. h; when replaying, the same as a genuine
        # (linearised) function of h around the recorded features, so finite differences see it too
        out = flat - (flat.detach() if anchor is None else anchor) + q
        avg_probs = onehot.mean(0)
        perplexity = torch.exp(-(avg_probs * torch.log(avg_probs + 1e-10)).sum()).detach()
        return out.reshape(n, hh, ww, c).permute(0, 3, 1, 2), FQStats(loss, perplexity)


@contextmanager
def replayed_statistics(discriminator: nn.Module) -> Iterator[None]:
    """Within the block, the first forward of each quantiser of ``discriminator`` (with a decay)
    records its assignment, batch statistics and input features; after :func:`start_replay` every
    forward reuses them and outputs ``q + (h - h_recorded)``.

    The G update (Eq. 8) uses the straight-through gradient, with the dictionary statistics held
    constant: it is not the derivative of ``L_dg``'s value (which is piecewise constant in h at the
    quantiser). The replayed ``L_dg`` is a genuine smooth function with the same value and the same
    G-gradient at the recorded G, so central differences of ``grad_B L_dg`` along a G direction
    equal the double-backward mixed derivative of Eq. 15 (tested)."""
    qs = [m for m in discriminator.modules() if isinstance(m, FeatureQuantizer)]
    for q in qs:
        q.replay, q._recorded = "record", None
    try:
        yield
    finally:
        for q in qs:
            q.replay, q._recorded = None, None


def start_replay(discriminator: nn.Module) -> None:
    """Switch the quantisers from recording to replaying (inside :func:`replayed_statistics`)."""
    for m in discriminator.modules():
        if isinstance(m, FeatureQuantizer) and m._recorded is not None:
            m.replay = "replay"
