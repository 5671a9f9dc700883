"""What a metric is: each scorer declares the metrics it writes, and boards and ``compare`` read them.

A scorer (:mod:`evaluators`) lists its metrics as class data, right under its ``Params``::

    metrics = (
        MetricSpec("worst_case_error", "%", "lower", "worst-case error"),
        ...
    )

``name`` is the key the scorer writes into ``scores/<scorer>.json``; ``unit`` the unit it writes
(one of ``evaluators.common.UNITS``); ``direction`` which way is better; ``label`` a short name for
tables and plots. The report reaches the declarations through :data:`wcbench.registry.SCORERS`
(:func:`declared_metrics`), never by importing ``evaluators``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wcbench.errors import RegistryError
from wcbench.registry import SCORERS

__all__ = ["DIRECTIONS", "RUN_METRICS", "MetricSpec", "declared_metrics", "metric_spec"]

#: Which way is better.
DIRECTIONS = ("lower", "higher")


@dataclass(frozen=True)
class MetricSpec:
    """One metric a scorer writes: its name in the score file, unit, better direction and label."""

    name: str
    unit: str
    direction: str
    label: str

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"metric {self.name!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}"
            )


#: Metrics that :func:`wcbench.results.collect_runs` derives from a run itself rather than from a score
#: file: the pseudo-scorer ``search_cost`` (the summed ``wall_time_s`` of ``search/history.jsonl``).
RUN_METRICS: dict[str, tuple[MetricSpec, ...]] = {
    "search_cost": (
        MetricSpec("search_gpu_hours", "GPU-h", "lower", "search cost"),
        MetricSpec("search_cpu_hours", "CPU-h", "lower", "search cost"),
    ),
}


def _declared(obj: Any) -> tuple[MetricSpec, ...]:
    specs = getattr(obj, "metrics", ())
    if not isinstance(specs, tuple | list) or not all(isinstance(m, MetricSpec) for m in specs):
        return ()
    return tuple(specs)


def declared_metrics() -> dict[str, dict[str, MetricSpec]]:
    """Scorer name -> metric name -> declaration, for every registered scorer (and :data:`RUN_METRICS`)."""
    out: dict[str, dict[str, MetricSpec]] = {}
    for name, obj in SCORERS.items():
        out[name] = {m.name: m for m in _declared(obj)}
    for name, specs in RUN_METRICS.items():
        out.setdefault(name, {}).update({m.name: m for m in specs})
    return out


def metric_spec(
    scorer: str, metric: str, declared: Mapping[str, Mapping[str, MetricSpec]] | None = None
) -> MetricSpec:
    """The declaration of ``metric`` by ``scorer``; :class:`RegistryError` when none declares it."""
    table = declared_metrics() if declared is None else declared
    spec = table.get(scorer, {}).get(metric)
    if spec is None:
        if scorer not in table:
            raise RegistryError(f"no scorer {scorer!r} is registered; see `wcbench list scorers`")
        known = ", ".join(table[scorer]) or "none"
        raise RegistryError(f"scorer {scorer!r} declares no metric {metric!r}; it declares: {known}")
    return spec
