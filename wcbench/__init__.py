"""wcbench: differentiable NAS with worst-case validation, and robustness benchmarks for its genotypes.

The reference is "Improving Neural Architecture Search by Minimizing Worst-Case Validation Loss".
The core package holds the vocabulary (genotypes, search spaces, networks, data, runs, statistics);
searchers and evaluators live in their own packages and meet here.
"""

from typing import Any

from wcbench import cpus as _cpus
from wcbench.registry import register_packages

# OMP_WAIT_POLICY=PASSIVE unless the user set one: the OpenMP runtime reads it when torch loads, so it
# is set here, before anything imports torch (wcbench itself does not import torch here).
_cpus.set_wait_policy()

__version__ = "0.1.0"

BUILTIN_PACKAGES: tuple[str, ...] = ("wcbench.data", "searchers", "evaluators")
"""The packages whose modules register the built-in datasets, searchers and scorers.

Named here, once, rather than imported: wcbench.registry imports them on the first lookup, so the
core never imports searchers or evaluators and every entry point (CLI, pipeline, library, tests)
finds the same built-ins.
"""
register_packages(*BUILTIN_PACKAGES)

API: tuple[str, ...] = ("search", "retrain", "score", "run", "collect_runs", "board")
"""The Python API (:mod:`wcbench.api`), re-exported here: ``wcbench.search(...)`` and so on."""


def __getattr__(name: str) -> Any:
    """``wcbench.<API function>``, imported on first use (PEP 562): `import wcbench` (and so
    `wcbench --help`) stays light, and torch loads only when an API function is called."""
    if name in API:
        from wcbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'wcbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
