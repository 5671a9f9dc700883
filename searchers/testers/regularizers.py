"""The decorrelation regulariser DeCov (Cogswell et al. 2015, "Reducing overfitting in deep networks by
decorrelating representations"), used on generated data in stage IV (paper Sec. 3.3).

For a batch of activations ``h`` (N, d) with covariance ``C_ij = 1/N sum_n (h_i^n - mu_i)(h_j^n - mu_j)``::

    L_DeCov = 1/2 (||C||_F^2 - ||diag(C)||_2^2)

i.e. half the sum of the squared off-diagonal covariances. ``per_dim=True`` divides by d, so the
weight of the term does not have to change with the width of the features (the ``ours`` strategy
uses it so).
"""

from __future__ import annotations

from torch import Tensor


def decov(h: Tensor, per_dim: bool = False) -> Tensor:
    """DeCov loss of activations ``h`` (N, d) (extra dimensions are flattened into d)."""
    h = h.reshape(h.shape[0], -1)
    centred = h - h.mean(0, keepdim=True)
    cov = centred.t() @ centred / h.shape[0]
    loss = 0.5 * (cov.pow(2).sum() - cov.diagonal().pow(2).sum())
    return loss / h.shape[1] if per_dim else loss
