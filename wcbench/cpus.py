"""The CPUs this process may use, and the thread settings that follow from them (issue #16).

On a shared machine (a SLURM allocation smaller than the node, a container with a CPU quota, a laptop
with other jobs) the node's core count is the wrong budget. ``allowed_cpus()`` is the smallest of:

- the affinity mask (``os.sched_getaffinity``: what ``taskset``, cpusets and SLURM bind to);
- the cgroup CPU quota, rounded down (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``,
  the tightest along the process's cgroup path): what ``docker --cpus`` and Kubernetes limits set;
- ``SLURM_CPUS_PER_TASK``.

``set_wait_policy()`` runs when ``wcbench`` is imported, before torch is: it sets
``OMP_WAIT_POLICY=PASSIVE`` unless the user set one, so torch's idle OpenMP threads sleep instead of
spinning on cores other processes need (``WCBENCH_WAIT_POLICY=active|default`` asks for spinning or
for the OpenMP runtime's own default). ``configure_threads()`` (called by the CLI) caps torch's
intra-op threads at ``allowed_cpus()`` and fixes the default DataLoader worker count. The user's
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OMP_WAIT_POLICY`` always win; ``WCBENCH_THREADS`` and
``WCBENCH_WORKERS`` override the defaults for wcbench alone. ``record()`` is what manifests and
``wcbench bench`` store.

This module imports only the standard library at load time: ``import wcbench`` stays cheap.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

ENV_THREADS = "WCBENCH_THREADS"
ENV_WORKERS = "WCBENCH_WORKERS"
ENV_WAIT_POLICY = "WCBENCH_WAIT_POLICY"
# set beside OMP_WAIT_POLICY when wcbench (not the user) chose it, so child processes report it truly
_MARK = "_WCBENCH_SET_OMP_WAIT_POLICY"
WAIT_POLICIES = ("passive", "active", "default")
MAX_DEFAULT_WORKERS = 8

_state: dict[str, Any] = {}


# --------------------------------------------------------------------------------------------------
# what the process may use


def affinity_cpus() -> int | None:
    """CPUs in this process's affinity mask (None where the OS has no such call)."""
    try:
        return len(os.sched_getaffinity(0)) or None
    except (AttributeError, OSError):
        return None


def _ancestors(base: Path, rel: str) -> Iterator[Path]:
    """``base/rel``, then each parent folder up to ``base`` itself."""
    parts = [p for p in rel.split("/") if p]
    for k in range(len(parts), -1, -1):
        yield base.joinpath(*parts[:k])


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return None


def _v2_limit(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")  # "max 100000" or "<quota> <period>"
    if not text:
        return None
    fields = text.split()
    try:
        if fields[0] == "max":
            return None
        quota, period = int(fields[0]), int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_limit(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        q, p = int(quota or "-1"), int(period or "0")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpus(
    root: str | Path = "/sys/fs/cgroup", proc_cgroup: str | Path = "/proc/self/cgroup"
) -> float | None:
    """The cgroup CPU quota in CPUs (e.g. 1.5), the tightest along the cgroup path; None if unlimited.

    Reads ``/proc/self/cgroup`` for the process's path in each hierarchy, then ``cpu.max`` (v2, also
    under ``unified/`` on hybrid hosts) or ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` (v1) in that
    folder and each one above it (a container sees its own cgroup at the mount root).
    """
    root = Path(root)
    text = _read(Path(proc_cgroup))
    if text is None:
        return None
    limits: list[float] = []
    for line in text.splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        if not hier:
            continue
        if hier == "0" and controllers == "":
            bases, read = [root, root / "unified"], _v2_limit
        elif "cpu" in controllers.split(","):
            bases, read = [root / controllers, root / "cpu", root / "cpu,cpuacct"], _v1_limit
        else:
            continue
        seen: set[Path] = set()
        for base in bases:
            for folder in _ancestors(base, rel):
                if folder in seen:
                    continue
                seen.add(folder)
                limit = read(folder)
                if limit is not None:
                    limits.append(limit)
    return min(limits) if limits else None


def _positive_int(value: str | None) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def slurm_cpus(environ: Mapping[str, str] | None = None) -> int | None:
    """``SLURM_CPUS_PER_TASK`` (None outside a SLURM job or when it is not a positive integer)."""
    env = os.environ if environ is None else environ
    return _positive_int(env.get("SLURM_CPUS_PER_TASK"))


def cpu_limits(
    environ: Mapping[str, str] | None = None,
    cgroup_root: str | Path = "/sys/fs/cgroup",
    proc_cgroup: str | Path = "/proc/self/cgroup",
) -> dict[str, Any]:
    """Each limit found (None where there is none) and ``allowed``, the smallest, at least 1."""
    limits: dict[str, Any] = {
        "affinity": affinity_cpus(),
        "cgroup": cgroup_cpus(cgroup_root, proc_cgroup),
        "slurm": slurm_cpus(environ),
        "cpu_count": os.cpu_count(),
    }
    found = [limits["affinity"], limits["slurm"]]
    if limits["cgroup"] is not None:
        found.append(max(1, math.floor(limits["cgroup"])))
    found = [n for n in found if n]
    limits["allowed"] = max(1, min(found)) if found else max(1, limits["cpu_count"] or 1)
    return limits


def allowed_cpus(environ: Mapping[str, str] | None = None) -> int:
    """How many CPUs this process may keep busy: affinity, cgroup quota and SLURM, the smallest."""
    return cpu_limits(environ)["allowed"]


# --------------------------------------------------------------------------------------------------
# OpenMP wait policy (before torch is imported)


def set_wait_policy(environ: MutableMapping[str, str] | None = None, torch_loaded: bool | None = None) -> str:
    """Set ``OMP_WAIT_POLICY`` unless the user did; returns the policy for this process.

    Returns ``"PASSIVE"``/``"ACTIVE"``/... or ``"default"`` (the OpenMP runtime's own). The OpenMP
    runtime reads the variable when torch loads, so it applies to this process only when torch was not
    imported yet; child processes inherit it in any case. An invalid ``WCBENCH_WAIT_POLICY`` is
    ignored here (import must not fail) and reported by ``configure_threads``.
    """
    env = os.environ if environ is None else environ
    loaded = ("torch" in sys.modules) if torch_loaded is None else torch_loaded
    user = env.get("OMP_WAIT_POLICY", "").strip()
    if user:
        policy = user.upper()
        source = "wcbench default (inherited)" if env.get(_MARK) == user else "OMP_WAIT_POLICY"
    else:
        wanted = env.get(ENV_WAIT_POLICY, "").strip().lower()
        source = ENV_WAIT_POLICY if wanted in WAIT_POLICIES else "wcbench default"
        wanted = wanted if wanted in WAIT_POLICIES else "passive"
        policy = "default" if wanted == "default" else wanted.upper()
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
            env[_MARK] = policy
            if loaded:  # the OpenMP runtime read its settings when torch loaded, without this one
                source = f"torch imported before wcbench: {policy} applies to child processes only"
                policy = "default"
    if environ is None:
        _state.update(wait_policy=policy, wait_policy_source=source)
    return policy


# --------------------------------------------------------------------------------------------------
# intra-op threads and DataLoader workers


def _env_count(env: Mapping[str, str], name: str, minimum: int) -> int | None:
    if name not in env or not env[name].strip():
        return None
    try:
        n = int(env[name].strip())
    except ValueError:
        n = minimum - 1
    if n < minimum:
        from wcbench.errors import ConfigError

        raise ConfigError(f"{name}={env[name]!r} is not a whole number >= {minimum}; unset it or fix it")
    return n


def default_workers(environ: Mapping[str, str] | None = None) -> int:
    """DataLoader worker processes by default: ``WCBENCH_WORKERS``, else allowed CPUs - 1, at most 8
    (one CPU stays with the process that trains or scores)."""
    if environ is None and "workers_override" in _state:
        return _state["workers_override"]
    env = os.environ if environ is None else environ
    n = _env_count(env, ENV_WORKERS, 0)
    if n is not None:
        return n
    return max(0, min(MAX_DEFAULT_WORKERS, allowed_cpus(env) - 1))


def _workers_source() -> str:
    return ENV_WORKERS if os.environ.get(ENV_WORKERS, "").strip() else "allowed cpus - 1 (at most 8)"


def plan_threads(
    torch_threads: int,
    threads: int | None = None,
    environ: Mapping[str, str] | None = None,
    allowed: int | None = None,
) -> tuple[int, str]:
    """(intra-op threads, where the number comes from), without touching torch.

    The user's ``OMP_NUM_THREADS`` (then ``MKL_NUM_THREADS``) wins: torch already follows it, so the
    answer is ``torch_threads`` (torch's current count). Then ``threads``, then ``WCBENCH_THREADS``;
    else ``torch_threads`` capped at the allowed CPUs (never raised: torch counts physical cores).
    """
    env = os.environ if environ is None else environ
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if env.get(name, "").strip():
            return torch_threads, name
    if threads is not None:
        if threads < 1:
            from wcbench.errors import ConfigError

            raise ConfigError(f"threads must be >= 1, got {threads}")
        return threads, "argument"
    n = _env_count(env, ENV_THREADS, 1)
    if n is not None:
        return n, ENV_THREADS
    allowed = allowed_cpus(env) if allowed is None else allowed
    if torch_threads > allowed:
        return allowed, "allowed cpus"
    return torch_threads, "torch default (within the allowed cpus)"


def configure_threads(threads: int | None = None, workers: int | None = None) -> dict[str, Any]:
    """Apply the thread budget to torch and fix the default DataLoader workers; returns ``record()``.

    Idempotent. Without an override it only ever lowers torch's current count to the allowed CPUs, so
    where torch's default is within them (this 2-core machine) nothing changes, nor do any numbers; the
    user's ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` leave torch untouched.
    """
    import torch

    wanted = os.environ.get(ENV_WAIT_POLICY)
    if wanted is not None and wanted.strip().lower() not in (*WAIT_POLICIES, ""):
        from wcbench.errors import ConfigError

        raise ConfigError(f"{ENV_WAIT_POLICY}={wanted!r}: use one of {', '.join(WAIT_POLICIES)}")
    limits = cpu_limits()
    n, source = plan_threads(torch.get_num_threads(), threads, allowed=limits["allowed"])
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if workers is not None:
        if workers < 0:
            from wcbench.errors import ConfigError

            raise ConfigError(f"workers must be >= 0, got {workers}")
        _state.update(workers_override=workers, workers_source="argument")
    else:
        _state.pop("workers_override", None)
        _state.pop("workers_source", None)
    _state.update(threads_source=source, limits=limits)
    return record()


def record() -> dict[str, Any]:
    """What this process uses: threads, workers, wait policy, where each comes from, and the limits."""
    if "wait_policy" not in _state:
        set_wait_policy()
    limits = _state.get("limits") or cpu_limits()
    torch_mod = sys.modules.get("torch")
    threads = torch_mod.get_num_threads() if torch_mod is not None else None
    return {
        "threads": threads,
        "threads_source": _state.get("threads_source", "torch default (not configured)"),
        "workers": default_workers(),
        "workers_source": _state.get("workers_source") or _workers_source(),
        "wait_policy": _state["wait_policy"],
        "wait_policy_source": _state["wait_policy_source"],
        "allowed_cpus": limits["allowed"],
        "limits": {k: limits[k] for k in ("affinity", "cgroup", "slurm", "cpu_count")},
    }


def fair_share_slowdown(busy: int, threads: int, cpus: int) -> float:
    """The slowdown a fair scheduler gives ``threads`` busy threads beside ``busy`` single-threaded
    processes on ``cpus`` CPUs: idle they get min(threads, cpus) CPUs, loaded threads * cpus /
    (busy + threads) of them (when that is fewer)."""
    threads, cpus = max(1, threads), max(1, cpus)
    idle = min(threads, cpus)
    loaded = min(idle, threads * cpus / (busy + threads))
    return idle / loaded
