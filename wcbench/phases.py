"""Per-phase step timings (wall and process CPU time) and peak memory, recorded only while a listener
is active (issue #15).

The training loops (tester pretraining, search, retrain) and the scorer runner mark their phases with
:func:`phase` and the timed parts of each step with :meth:`Phase.part`. Outside :func:`listening`
both are no-ops (no clock reads, no CUDA synchronisation), so a normal run pays nothing. A rehearsal
(:mod:`wcbench.rehearsal`) listens, runs the real code path with capped step counts, and reads back
seconds per step and peak memory per phase.

Peak memory per phase: ``torch.cuda.max_memory_allocated`` after a reset on CUDA; on a CPU the
process's peak resident set (``VmHWM``) after resetting it through ``/proc/self/clear_refs`` where
Linux allows, else ``ru_maxrss`` (the peak since the process started, labelled so).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from wcbench.devices import phase_peak_memory_mb, reset_phase_peak_memory


@dataclass
class PhaseRecord:
    """One phase: timed parts (``{label: [seconds, count]}``), peak memory, what it ran."""

    name: str
    kind: str
    device: str
    parts: dict[str, list[float]] = field(default_factory=dict)
    """``{label: [wall seconds, count, process CPU seconds]}``."""
    peak_memory_mb: float = 0.0
    memory_source: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "device": self.device,
            "parts": {
                k: {"seconds": v[0], "count": int(v[1]), "cpu_seconds": v[2]} for k, v in self.parts.items()
            },
            "peak_memory_mb": self.peak_memory_mb,
            "memory_source": self.memory_source,
            "info": self.info,
        }


class PhaseLog:
    """The phases recorded while listening, merged by name (epochs of one search stage add up)."""

    def __init__(self) -> None:
        self.records: dict[str, PhaseRecord] = {}

    def add(self, record: PhaseRecord) -> None:
        old = self.records.get(record.name)
        if old is None:
            self.records[record.name] = record
            return
        for label, values in record.parts.items():
            acc = old.parts.setdefault(label, [0.0, 0, 0.0])
            for i, v in enumerate(values):
                acc[i] += v
        if record.peak_memory_mb >= old.peak_memory_mb:
            old.peak_memory_mb, old.memory_source = record.peak_memory_mb, record.memory_source
        old.info.update(record.info)


_ACTIVE: PhaseLog | None = None


@contextmanager
def listening() -> Iterator[PhaseLog]:
    """Record every :func:`phase` run inside the block into the returned log."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, PhaseLog()
    try:
        yield _ACTIVE
    finally:
        _ACTIVE = previous


def is_listening() -> bool:
    return _ACTIVE is not None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Phase:
    """A phase being recorded; :meth:`part` times one block of it (one step, one evaluation pass)."""

    def __init__(self, record: PhaseRecord, device: torch.device) -> None:
        self.record = record
        self.device = device

    @contextmanager
    def part(self, label: str, count: int = 1) -> Iterator[None]:
        _sync(self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        yield
        _sync(self.device)
        acc = self.record.parts.setdefault(label, [0.0, 0, 0.0])
        acc[0] += time.perf_counter() - t0
        acc[1] += count
        acc[2] += time.process_time() - c0

    def count(self, label: str, count: int) -> None:
        """Correct the count of a part after the fact (an evaluation pass that learns its size late)."""
        self.record.parts.setdefault(label, [0.0, 0, 0.0])[1] += count


class _Silent:
    """What :func:`phase` yields when nobody listens: every method is a no-op."""

    @contextmanager
    def part(self, label: str, count: int = 1) -> Iterator[None]:
        yield

    def count(self, label: str, count: int) -> None:
        pass


@contextmanager
def phase(name: str, kind: str, device: torch.device | str, **info: Any) -> Iterator[Phase | _Silent]:
    """Mark a phase ``name`` of ``kind`` (``tester``, ``search``, ``retrain``, ``score``) on ``device``;
    ``info`` is kept with it (what a projection needs: the setting that counts its steps, the stage)."""
    log = _ACTIVE
    if log is None:
        yield _Silent()
        return
    dev = torch.device(device)
    reset_phase_peak_memory(dev)
    record = PhaseRecord(name, kind, str(dev), info=dict(info))
    try:
        yield Phase(record, dev)
    finally:
        _sync(dev)
        record.peak_memory_mb, record.memory_source = phase_peak_memory_mb(dev)
        log.add(record)
