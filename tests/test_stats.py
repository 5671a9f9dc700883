"""Statistics (paper Appendix B.7; scipy.stats)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from wcbench.errors import ConfigError
from wcbench.stats import TestResult, compare, holm, holm_reject, summarize, with_holm

OURS = [27.01, 26.80, 27.20, 27.05, 26.95, 27.30, 26.90, 27.10, 26.85, 27.00]
BASE = [30.07, 29.70, 30.40, 30.10, 29.90, 30.50, 29.80, 30.20, 30.00, 30.05]


def test_welch_is_scipy_ttest_ind_unequal_var() -> None:
    r = compare(OURS, BASE)
    ref = sps.ttest_ind(OURS, BASE, equal_var=False)
    assert r.test == "welch"
    assert r.pvalue == ref.pvalue and r.statistic == ref.statistic
    assert r.statistic < 0  # a - b: ours has lower error
    assert (r.n_a, r.n_b) == (10, 10) and r.message == "" and not r.degenerate


def test_welch_differs_from_scipy_default_student() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 6.0, 9.0, 14.0, 1.0, 7.0]
    assert compare(a, b).pvalue == sps.ttest_ind(a, b, equal_var=False).pvalue
    assert compare(a, b).pvalue != sps.ttest_ind(a, b).pvalue


def test_paired_is_scipy_ttest_rel_with_dz() -> None:
    r = compare(OURS, BASE, test="paired")
    ref = sps.ttest_rel(OURS, BASE)
    assert r.pvalue == ref.pvalue and r.statistic == ref.statistic
    diff = np.subtract(OURS, BASE)
    assert r.cohens_d == pytest.approx(diff.mean() / diff.std(ddof=1))


def test_paired_needs_matching_seeds() -> None:
    with pytest.raises(ConfigError, match="same seeds"):
        compare([1.0, 2.0, 3.0], [1.0, 2.0], test="paired")


def test_one_sample_is_the_papers_ttest_1samp_against_baseline_mean() -> None:
    r = compare(OURS, BASE, test="one-sample")
    ref = sps.ttest_1samp(OURS, popmean=np.mean(BASE))
    assert r.pvalue == ref.pvalue and r.statistic == ref.statistic
    assert r.cohens_d == pytest.approx((np.mean(OURS) - np.mean(BASE)) / np.std(OURS, ddof=1))


def test_one_sample_accepts_a_single_reported_baseline_mean() -> None:
    r = compare(OURS, [30.07], test="one-sample")
    assert r.pvalue == sps.ttest_1samp(OURS, popmean=30.07).pvalue and r.message == ""


def test_means_stds_and_pooled_cohens_d() -> None:
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]
    r = compare(a, b)
    assert (r.mean_a, r.mean_b) == (2.0, 5.5)
    assert r.std_a == pytest.approx(1.0) and r.std_b == pytest.approx(np.std(b, ddof=1))
    pooled = math.sqrt((2 * 1.0 + 3 * np.var(b, ddof=1)) / 5)
    assert r.cohens_d == pytest.approx((2.0 - 5.5) / pooled)


@pytest.mark.parametrize("test", ["welch", "paired", "one-sample"])
def test_one_seed_is_reported_not_raised(test: str) -> None:
    r = compare([1.0], [2.0], test=test)
    assert math.isnan(r.statistic) and math.isnan(r.pvalue)
    assert r.message == "n=1 seed: need at least 2 per side" and r.degenerate


def test_welch_one_seed_on_one_side() -> None:
    r = compare([1.0, 2.0, 3.0], [2.0])
    assert math.isnan(r.pvalue) and "n=1 seed" in r.message and r.n_b == 1


@pytest.mark.parametrize("test", ["welch", "paired", "one-sample"])
def test_identical_constants_give_nan_and_a_message(test: str) -> None:
    r = compare([2.5, 2.5, 2.5], [2.5, 2.5, 2.5], test=test)
    assert math.isnan(r.statistic) and math.isnan(r.pvalue)
    assert r.message == "both samples constant: t-test undefined"


def test_non_finite_input_is_reported() -> None:
    r = compare([1.0, float("nan"), 2.0], [1.0, 2.0, 3.0])
    assert math.isnan(r.pvalue) and "non-finite" in r.message


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")
def test_one_constant_side_is_still_a_welch_test() -> None:
    a, b = [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]
    r = compare(a, b)
    assert r.pvalue == sps.ttest_ind(a, b, equal_var=False).pvalue and r.message == ""


def test_unknown_test_name() -> None:
    with pytest.raises(ConfigError, match="unknown test 'mannwhitney'"):
        compare([1, 2], [3, 4], test="mannwhitney")


# ---------------------------------------------------------------- Holm


def test_holm_hand_worked() -> None:
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_is_monotone() -> None:
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    adj = holm([0.001, 0.2, 0.021, 0.02, 0.9])
    order = np.argsort([0.001, 0.2, 0.021, 0.02, 0.9])
    assert all(np.diff(np.asarray(adj)[order]) >= 0)
    assert max(adj) <= 1.0


def test_holm_nan_passes_through_and_is_not_counted() -> None:
    adj = holm([0.01, float("nan"), 0.04])
    assert adj[0] == pytest.approx(0.02) and math.isnan(adj[1]) and adj[2] == pytest.approx(0.04)
    assert holm([]) == []


def test_holm_reject_hand_worked() -> None:
    # alpha/(m-i+1) = 0.0125, 0.01667, 0.025, 0.05: 0.005 and 0.01 pass, 0.03 fails and stops
    assert holm_reject([0.01, 0.04, 0.03, 0.005], alpha=0.05) == [True, False, False, True]
    assert holm_reject([0.01, float("nan")], alpha=0.05) == [True, False]


def test_holm_reject_matches_adjusted_pvalues() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = list(rng.uniform(0, 0.1, size=6))
        assert holm_reject(p, 0.05) == [q <= 0.05 for q in holm(p)]


def test_with_holm_fills_p_holm() -> None:
    results = [compare(OURS, BASE), compare([1.0], [2.0]), compare(OURS, [x - 2.5 for x in OURS])]
    out = with_holm(results)
    assert all(isinstance(r, TestResult) for r in out)
    assert out[0].p_holm == pytest.approx(2 * results[0].pvalue) and math.isnan(out[1].p_holm)


# ---------------------------------------------------------------- summarize


def test_summarize() -> None:
    assert summarize([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    mean, std, n = summarize([4.0])
    assert (mean, n) == (4.0, 1) and math.isnan(std)
    mean, std, n = summarize([])
    assert n == 0 and math.isnan(mean) and math.isnan(std)
