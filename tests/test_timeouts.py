"""The suite's timeouts are hang guards (issue #16): markers scaled by WCBENCH_TEST_TIMEOUT_FACTOR, a
global default for unmarked tests, and subprocess limits scaled the same way (tests/timeouts.py)."""

from __future__ import annotations

import pytest

from tests.timeouts import DEFAULT_FACTOR, hang_guard, timeout_factor


@pytest.mark.timeout(7)
def test_a_timeout_marker_is_scaled_by_the_factor(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("timeout")
    assert marker.args[0] == pytest.approx(7 * timeout_factor())


def test_unmarked_tests_have_a_global_hang_guard(request: pytest.FixtureRequest) -> None:
    assert float(request.config.getini("timeout")) >= 1800


def test_the_factor_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WCBENCH_TEST_TIMEOUT_FACTOR", raising=False)
    assert timeout_factor() == DEFAULT_FACTOR >= 4
    assert hang_guard(60) == pytest.approx(60 * DEFAULT_FACTOR)
    monkeypatch.setenv("WCBENCH_TEST_TIMEOUT_FACTOR", "2.5")
    assert hang_guard(60) == pytest.approx(150)
    monkeypatch.setenv("WCBENCH_TEST_TIMEOUT_FACTOR", "0")
    assert hang_guard(60) is None  # no limit
    for bad in ("-1", "slow", "nan"):
        monkeypatch.setenv("WCBENCH_TEST_TIMEOUT_FACTOR", bad)
        with pytest.raises(ValueError, match="WCBENCH_TEST_TIMEOUT_FACTOR"):
            timeout_factor()
