"""Run directories on disk: the layout, its names, its lock and its manifest.

Layout (the README, "Runs on disk")::

    runs/<dataset>/<searcher>/seed-<n>/
        manifest.json               resolved config, versions, git commit, host, start/end, status, stages
        search/                     checkpoint.pt, history.jsonl, genotype.json
        retrain/<dataset>/          checkpoint.pt, model.pt, history.jsonl
        scores/<scorer>.json        metrics with names and units, and what was evaluated

Files are written atomically (:mod:`wcbench.files`), checkpoints verified (:mod:`wcbench.checkpoints`),
and the results read back by :mod:`wcbench.results`. Manifest updates take the run's lock, so several
processes (a SLURM array, two shells) can share a run directory.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import filelock

from wcbench.errors import CheckpointError, ConfigError
from wcbench.files import DELETE_HINT, atomic_write_json, read_json

__all__ = [
    "DEFAULT_SPACE",
    "RunDir",
    "RunLock",
    "dataset_dir",
    "environment_info",
    "searcher_dir",
    "split_searcher_dir",
]


# --------------------------------------------------------------------------------------------------
# manifests and run directories


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit or None


def environment_info() -> dict[str, Any]:
    """Versions and host for a manifest: wcbench, torch, CUDA (None without a GPU), git commit, host,
    and ``cpus``: the thread record of :func:`wcbench.cpus.record`."""
    import wcbench

    info: dict[str, Any] = {
        "wcbench_version": wcbench.__version__,
        "torch_version": None,
        "cuda_version": None,
        "gpu": None,
        "git_commit": _git_commit(),
        "hostname": socket.gethostname(),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "argv": list(sys.argv),
    }
    try:
        import torch

        info["torch_version"] = torch.__version__
        if torch.cuda.is_available():
            info["cuda_version"] = torch.version.cuda
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # a manifest must never fail because torch is odd
        pass
    try:  # threads, DataLoader workers, OpenMP wait policy and the allowed CPUs (wcbench.cpus)
        from wcbench.cpus import record

        info["cpus"] = record()
    except Exception:  # noqa: BLE001 - nor because a cgroup file is odd
        info["cpus"] = None
    return info


def _deep_merge(base: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


DEFAULT_SPACE = "darts"


def searcher_dir(searcher: str, space: str = DEFAULT_SPACE) -> str:
    """The searcher's directory name: ``<searcher>`` in the DARTS space, ``<searcher>+<space>`` in
    RobustDARTS S1-S4 (the one place this rule lives; :func:`split_searcher_dir` reads it back)."""
    return searcher if space == DEFAULT_SPACE else f"{searcher}+{space}"


def split_searcher_dir(name: str) -> tuple[str, str | None]:
    """``"darts2nd+s1"`` -> ``("darts2nd", "s1")``; ``"pdarts"`` -> ``("pdarts", None)`` (space unknown
    from the name alone: a run in the DARTS space, or one whose manifest says otherwise)."""
    m = re.fullmatch(r"(.+)\+([A-Za-z0-9_]+)", name)
    return (m.group(1), m.group(2).lower()) if m else (name, None)


def dataset_dir(dataset: str) -> str:
    """A dataset name as a directory name (``imagefolder:/a/b`` -> ``imagefolder=_a_b``)."""
    return dataset.replace(":", "=").replace("/", "_")


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=\-]*$")
_TERMINAL = ("done", "failed", "interrupted")


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise ConfigError(
            f"invalid {kind} name {name!r}: use letters, digits and - _ . + = (no path separators)"
        )
    return name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except (OSError, OverflowError):
        return False
    return True


def lock_poll_seconds() -> float:
    """How often a waiter looks at a held run lock: ``WCBENCH_LOCK_POLL_S`` (default 5 s)."""
    try:
        value = float(os.environ.get("WCBENCH_LOCK_POLL_S", "5"))
    except ValueError:
        raise ConfigError("WCBENCH_LOCK_POLL_S must be a number of seconds, e.g. 5") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError("WCBENCH_LOCK_POLL_S must be a positive number of seconds, e.g. 5")
    return value


class RunLock:
    """A run directory's lock: re-entrant within a process, waited for as long as its holder lives.

    The holder records itself in ``<lock>.holder`` (pid, host, since). A waiter says once on stderr
    who holds the lock and that it waits, then polls every :func:`lock_poll_seconds` with no time
    limit (paper-scale stages take days). The OS releases the lock of a process that dies; a holder
    file left by such a process (kill -9) is taken over with a warning naming it.
    """

    def __init__(self, path: Path, poll_s: float | None = None) -> None:
        self.path = Path(path)
        self.holder_path = self.path.with_name(self.path.name + ".holder")
        self._lock = filelock.FileLock(str(self.path), is_singleton=True)
        self._poll_s = poll_s

    def holder(self) -> dict[str, Any] | None:
        """Who holds (or last held) the lock, from its holder file: ``{pid, host, since}``."""
        try:
            data = json.loads(self.holder_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _describe(self, holder: dict[str, Any] | None) -> str:
        if not holder:
            return "another process"
        return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"

    def acquire(self) -> None:
        if self._lock.is_locked:  # this process holds it: nest
            self._lock.acquire()
            return
        poll = self._poll_s if self._poll_s is not None else lock_poll_seconds()
        said = False
        while True:
            try:
                self._lock.acquire(timeout=poll)
                break
            except filelock.Timeout:
                if not said:
                    said = True
                    holder = self.holder()
                    sys.stderr.write(
                        f"wcbench: {self.path.parent} is locked by {self._describe(holder)}; waiting for it "
                        f"to finish (as long as it runs)\n"
                    )
                    sys.stderr.flush()
        host = socket.gethostname()
        holder = self.holder()
        if holder and holder.get("pid") != os.getpid():
            pid = holder.get("pid")
            dead = holder.get("host") == host and isinstance(pid, int) and not _pid_alive(pid)
            if dead:
                sys.stderr.write(
                    f"wcbench: warning: took over the lock of {self.path.parent} from "
                    f"{self._describe(holder)}, which is no longer running\n"
                )
                sys.stderr.flush()
        with contextlib.suppress(OSError):
            atomic_write_json(self.holder_path, {"pid": os.getpid(), "host": host, "since": _now()})

    def release(self) -> None:
        if self._lock.lock_counter == 1:
            with contextlib.suppress(OSError):
                self.holder_path.unlink()
        self._lock.release()

    @property
    def is_locked(self) -> bool:
        """Whether this process holds the lock."""
        return self._lock.is_locked

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunDir:
    """One run: ``<runs_root>/<dataset>/<searcher>/seed-<n>/`` (the README, "Runs on disk")."""

    def __init__(self, runs_root: str | os.PathLike[str], dataset: str, searcher: str, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.runs_root = Path(runs_root)
        self.dataset = _check_name("dataset", dataset)
        self.searcher = _check_name("searcher", searcher)
        self.seed = seed

    def __repr__(self) -> str:
        return f"RunDir({str(self.runs_root)!r}, {self.dataset!r}, {self.searcher!r}, {self.seed})"

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> RunDir:
        """The run whose directory is ``path`` (``.../<dataset>/<searcher>/seed-<n>``)."""
        p = Path(path)
        m = re.fullmatch(r"seed-(-?\d+)", p.name)
        if not m:
            raise ConfigError(f"{p} is not a run directory (expected .../<dataset>/<searcher>/seed-<n>)")
        return cls(p.parent.parent.parent, p.parent.parent.name, p.parent.name, int(m.group(1)))

    # paths
    @property
    def path(self) -> Path:
        return self.runs_root / self.dataset / self.searcher / f"seed-{self.seed}"

    @property
    def search_dir(self) -> Path:
        return self.path / "search"

    def retrain_dir(self, dataset: str) -> Path:
        """``retrain/<dataset>/``: the dataset the genotype is retrained and evaluated on."""
        return self.path / "retrain" / _check_name("dataset", dataset)

    @property
    def scores_dir(self) -> Path:
        return self.path / "scores"

    def score_path(self, scorer: str) -> Path:
        return self.scores_dir / f"{_check_name('scorer', scorer)}.json"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    # locking
    def lock(self) -> RunLock:
        """The re-entrant inter-process lock on ``<path>/.lock`` (:class:`RunLock`): ``with run.lock():``."""
        self.path.mkdir(parents=True, exist_ok=True)
        return RunLock(self.path / ".lock")

    # manifest
    def read_manifest(self) -> dict[str, Any]:
        """The manifest, or ``{}`` when none has been written yet."""
        if not self.manifest_path.exists():
            return {}
        data = read_json(self.manifest_path)
        if not isinstance(data, dict):
            raise CheckpointError(f"manifest {self.manifest_path} is not a JSON object; {DELETE_HINT}")
        for key in ("stages", "config"):
            if key in data and not isinstance(data[key], dict):
                raise CheckpointError(
                    f"manifest {self.manifest_path}: {key!r} is a {type(data[key]).__name__}, not an object; "
                    f"{DELETE_HINT}"
                )
        return data

    def write_manifest(
        self,
        config: Mapping[str, Any],
        status: str = "running",
        attempt: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start an attempt: status, versions, git commit, host; returns the manifest.

        On a re-run (resume) the first start time, the stage records and the recorded ``config``
        are kept: ``config`` is what produced the files beside the manifest (the caller updates it
        as stages finish, :meth:`record_config`), written here only for a new run. ``attempts``
        lists every invocation: ``command``, ``settings`` (``attempt``, else ``config``), ``start``,
        ``end`` and ``outcome`` (:meth:`end_attempt`).
        """
        with self.lock():
            old = self.read_manifest()
            attempts = old.get("attempts")
            attempts = list(attempts) if isinstance(attempts, list) else []
            for i, earlier in enumerate(attempts):  # we hold the lock: an attempt still "running" died
                if isinstance(earlier, dict) and earlier.get("outcome") == "running":
                    attempts[i] = {**earlier, "outcome": "killed (ended without a word: kill -9, power, OOM)"}
            env = environment_info()
            attempts.append(
                {
                    "command": env["argv"],
                    "settings": dict(attempt if attempt is not None else config),
                    "host": env["hostname"],
                    "pid": os.getpid(),
                    "start": _now(),
                    "end": None,
                    "outcome": "running",
                }
            )
            manifest: dict[str, Any] = {
                "dataset": self.dataset,
                "searcher": self.searcher,
                "seed": self.seed,
                "status": status,
                "start": old.get("start") or _now(),
                "end": _now() if status in _TERMINAL else None,
                **env,
                "config": old["config"] if isinstance(old.get("config"), dict) else dict(config),
                "stages": old.get("stages", {}),
                "attempts": attempts,
            }
            atomic_write_json(self.manifest_path, manifest)
            return manifest

    def end_attempt(
        self,
        outcome: str,
        status: str | None = None,
        restore: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Close the last attempt with ``outcome`` ("done", "failed", "interrupted", "refused: ...");
        ``status`` (default: the outcome) and ``fields`` go to the manifest itself. ``restore``: an
        attempt that changed nothing puts back the manifest it found (with the attempt listed)."""
        with self.lock():
            manifest = self.read_manifest()
            attempts = manifest.get("attempts")
            if isinstance(attempts, list) and attempts and isinstance(attempts[-1], dict):
                attempts[-1] = {**attempts[-1], "end": _now(), "outcome": outcome}
            if restore is not None:
                manifest = {**restore, "attempts": attempts}
                atomic_write_json(self.manifest_path, manifest)
                return manifest
            new_status = status or outcome
            manifest.update(fields, status=new_status)
            if new_status in _TERMINAL:
                manifest["end"] = _now()
            atomic_write_json(self.manifest_path, manifest)
            return manifest

    def record_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the recorded ``config`` (what produced the files beside the manifest)."""
        with self.lock():
            manifest = self.read_manifest()
            manifest["config"] = dict(config)
            atomic_write_json(self.manifest_path, manifest)
            return manifest

    def drop_stage(self, name: str) -> dict[str, Any]:
        """Forget stage ``name`` (its files were removed: forced, or made stale by a redone stage)."""
        with self.lock():
            manifest = self.read_manifest()
            manifest.get("stages", {}).pop(name, None)
            atomic_write_json(self.manifest_path, manifest)
            return manifest

    def mark_running_stages(self, status: str) -> dict[str, Any]:
        """Give every stage still "running" ``status`` ("failed" or "interrupted") and an end time."""
        with self.lock():
            manifest = self.read_manifest()
            for record in manifest.get("stages", {}).values():
                if isinstance(record, dict) and record.get("status") == "running":
                    record.update(status=status, end=_now())
            atomic_write_json(self.manifest_path, manifest)
            return manifest

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the manifest under the lock (nested dicts merge key by key).

        ``status="done"|"failed"|"interrupted"`` also stamps ``end``, unless ``end`` is given.
        """
        with self.lock():
            manifest = _deep_merge(self.read_manifest(), fields)
            if fields.get("status") in _TERMINAL and "end" not in fields:
                manifest["end"] = _now()
            atomic_write_json(self.manifest_path, manifest)
            return manifest

    def stage_start(self, name: str, **extra: Any) -> dict[str, Any]:
        """Record ``stages.<name> = {start: now, end: None, status: "running", **extra}``, replacing
        any earlier record of that stage (``extra``: e.g. the settings it runs with)."""
        with self.lock():
            manifest = self.read_manifest()
            stages = manifest.setdefault("stages", {})
            stages[name] = {"start": _now(), "end": None, "status": "running", **extra}
            atomic_write_json(self.manifest_path, manifest)
            return manifest

    def stage_end(self, name: str, status: str = "done", **extra: Any) -> dict[str, Any]:
        """Record the end of a stage (``status`` "done" or "failed"), with optional extra fields."""
        return self.update_manifest(stages={name: {"end": _now(), "status": status, **extra}})

    def stage_done(self, name: str) -> bool:
        """Whether the manifest records stage ``name`` as finished (status "done")."""
        stage = self.read_manifest().get("stages", {}).get(name)
        return isinstance(stage, dict) and stage.get("status") == "done"
