"""Hang guards, not speed checks (issue #16): every per-test timeout marker and every ``timeout=`` of a
subprocess in the tests is multiplied by ``WCBENCH_TEST_TIMEOUT_FACTOR`` (default 4), so the suite holds
on a loaded machine and a hung test still dies. Unmarked tests get pyproject's ``timeout`` (1800 s).
``WCBENCH_TEST_TIMEOUT_FACTOR=0`` switches the markers off (pytest-timeout reads 0 as no limit)."""

from __future__ import annotations

import os

ENV_FACTOR = "WCBENCH_TEST_TIMEOUT_FACTOR"
DEFAULT_FACTOR = 4.0


def timeout_factor() -> float:
    """``WCBENCH_TEST_TIMEOUT_FACTOR`` as a number >= 0 (default 4)."""
    raw = os.environ.get(ENV_FACTOR, "").strip()
    if not raw:
        return DEFAULT_FACTOR
    try:
        factor = float(raw)
    except ValueError:
        factor = -1.0
    if not factor >= 0:
        raise ValueError(f"{ENV_FACTOR}={raw!r} is not a number >= 0")
    return factor


def hang_guard(seconds: float) -> float | None:
    """``seconds`` (a generous idle-machine bound) scaled by the factor; None (no limit) at factor 0."""
    factor = timeout_factor()
    return seconds * factor if factor > 0 else None
