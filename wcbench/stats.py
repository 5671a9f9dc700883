"""Statistics for comparing searchers over seeds (paper Appendix B.7; scipy.stats).

- Welch's t-test (``scipy.stats.ttest_ind(a, b, equal_var=False)``) is the default: runs of two
  searchers are independent.
- The paired t-test (``scipy.stats.ttest_rel``) when the same seeds are compared and the user asks.
- The paper's one-sample form (Appendix B.7: "double-sided T-test ... scipy.stats.ttest_1samp ...
  over 10 different runs", Tables 21-22), kept for parity with the published p-values.
- Holm-Bonferroni correction over a board's comparisons (not in scipy), and Cohen's d.

Degenerate inputs (fewer than two seeds, constant samples, non-finite values) never raise: the
statistic and p-value are NaN and :attr:`TestResult.message` says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as _sps

from wcbench.errors import ConfigError

__all__ = ["TESTS", "TestResult", "compare", "holm", "holm_reject", "summarize", "with_holm"]

#: Test names accepted by :func:`compare`.
TESTS = ("welch", "paired", "one-sample")


@dataclass(frozen=True)
class TestResult:
    """One two-sided comparison of a (e.g. ours) against b (e.g. a baseline); signs are a - b."""

    __test__ = False  # not a pytest test class

    test: str
    statistic: float
    pvalue: float
    n_a: int
    n_b: int
    mean_a: float
    std_a: float
    mean_b: float
    std_b: float
    cohens_d: float
    message: str = ""
    p_holm: float | None = None

    @property
    def degenerate(self) -> bool:
        """True when the test was undefined for these inputs (see :attr:`message`)."""
        return bool(self.message)


def summarize(values: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, std, n)`` with the sample std (ddof=1); NaN where undefined (n=0, or std with n=1)."""
    x = np.asarray(list(values), dtype=float)
    n = int(x.size)
    mean = float(np.mean(x)) if n else math.nan
    std = float(np.std(x, ddof=1)) if n >= 2 else math.nan
    return mean, std, n


def _is_constant(x: np.ndarray) -> bool:
    return x.size > 0 and bool(np.all(x == x[0]))


def _pooled_d(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = a.size, b.size
    if na < 2 or nb < 2:
        return math.nan
    pooled = math.sqrt(((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2))
    return float((np.mean(a) - np.mean(b)) / pooled) if pooled > 0 else math.nan


def compare(a: Sequence[float], b: Sequence[float], test: str = "welch") -> TestResult:
    """Two-sided t-test of ``a`` against ``b``; p-values are scipy's, unchanged.

    - ``"welch"``: ``scipy.stats.ttest_ind(a, b, equal_var=False)``; Cohen's d with the pooled std.
    - ``"paired"``: ``scipy.stats.ttest_rel(a, b)`` (``a[i]``, ``b[i]`` from the same seed);
      effect size d_z = mean(a - b) / std(a - b).
    - ``"one-sample"``: the paper's Appendix B.7 form, ``scipy.stats.ttest_1samp(a, popmean=mean(b))``
      (each run of our method against the baseline's reported mean, 10 runs, double-sided);
      effect size (mean(a) - mean(b)) / std(a).

    Degenerate inputs give NaN statistic and p-value and a non-empty ``message``; an unknown test
    name or unequal lengths for the paired test raise :class:`ConfigError`.
    """
    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    xa = np.asarray(list(a), dtype=float)
    xb = np.asarray(list(b), dtype=float)
    if test == "paired" and xa.size != xb.size:
        raise ConfigError(
            f"paired t-test needs the same seeds for both methods: got {xa.size} and {xb.size} values; "
            "use the Welch test for independent runs"
        )
    mean_a, std_a, n_a = summarize(xa)
    mean_b, std_b, n_b = summarize(xb)
    base = dict(test=test, n_a=n_a, n_b=n_b, mean_a=mean_a, std_a=std_a, mean_b=mean_b, std_b=std_b)

    def degenerate(message: str, d: float = math.nan) -> TestResult:
        return TestResult(statistic=math.nan, pvalue=math.nan, cohens_d=d, message=message, **base)

    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(xb))):
        return degenerate("non-finite values (NaN or inf) in the input: t-test undefined")

    if test == "welch":
        if n_a < 2 or n_b < 2:
            return degenerate(f"n={min(n_a, n_b)} seed: need at least 2 per side")
        d = _pooled_d(xa, xb)
        if _is_constant(xa) and _is_constant(xb):
            return degenerate("both samples constant: t-test undefined", d)
        res = _sps.ttest_ind(xa, xb, equal_var=False)
    elif test == "paired":
        if n_a < 2:
            return degenerate(f"n={n_a} seed: need at least 2 per side")
        diff = xa - xb
        if _is_constant(diff):
            what = (
                "both samples constant" if _is_constant(xa) and _is_constant(xb) else "differences constant"
            )
            return degenerate(f"{what}: t-test undefined")
        d = float(np.mean(diff) / np.std(diff, ddof=1))
        res = _sps.ttest_rel(xa, xb)
    else:  # one-sample, Appendix B.7
        if n_a < 2 or n_b < 1:
            return degenerate(f"n={n_a if n_a < 2 else n_b} seed: need at least 2 per side")
        if _is_constant(xa):
            what = "both samples constant" if _is_constant(xb) else "sample constant"
            return degenerate(f"{what}: t-test undefined")
        d = float((mean_a - mean_b) / std_a)
        res = _sps.ttest_1samp(xa, popmean=mean_b)
    return TestResult(statistic=float(res.statistic), pvalue=float(res.pvalue), cohens_d=d, **base)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Step-down: with the m non-NaN p-values sorted ascending, p_adj(i) = max_{j<=i} min(1, (m-j+1) p(j)).
    NaN entries (degenerate tests) pass through untouched and do not count towards m.
    """
    p = [float(x) for x in pvalues]
    idx = sorted((i for i, x in enumerate(p) if not math.isnan(x)), key=lambda i: p[i])
    m = len(idx)
    out = list(p)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def holm_reject(pvalues: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down rejections: sort ascending, reject while p_(i) <= alpha / (m - i + 1).

    NaN p-values are never rejected and do not count towards m.
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    p = [float(x) for x in pvalues]
    idx = sorted((i for i, x in enumerate(p) if not math.isnan(x)), key=lambda i: p[i])
    m = len(idx)
    out = [False] * len(p)
    for rank, i in enumerate(idx):  # rank = i - 1 in 1-based notation
        if p[i] <= alpha / (m - rank):
            out[i] = True
        else:
            break
    return out


def with_holm(results: Sequence[TestResult]) -> list[TestResult]:
    """The same results with :attr:`TestResult.p_holm` filled in over the whole family."""
    adjusted = holm([r.pvalue for r in results])
    return [replace(r, p_holm=p) for r, p in zip(results, adjusted, strict=True)]
