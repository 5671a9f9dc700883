"""Run directories on disk: atomic writes, safe checkpoints, manifests, and the tidy table of results.

Layout (the README, "Runs on disk")::

    runs/<dataset>/<searcher>/seed-<n>/
        manifest.json               resolved config, versions, git commit, host, start/end, status, stages
        search/                     checkpoint.pt, history.jsonl, genotype.json
        retrain/<dataset>/          checkpoint.pt, model.pt, history.jsonl
        scores/<scorer>.json        metrics with names and units, and what was evaluated

Every write is atomic (temp file in the same directory, fsync, ``os.replace``), so a killed process
leaves either the old file or the new one, never half of one. Checkpoints load with
``torch.load(..., weights_only=True)`` only. Manifest updates and JSONL appends take a file lock, so
several processes (a SLURM array, two shells) can share a run directory.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import math
import os
import pickle
import platform
import re
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import filelock
import pandas as pd

from wcbench.errors import CheckpointError, ConfigError

__all__ = [
    "COLLECT_COLUMNS",
    "RunDir",
    "RunLock",
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "checkpoint_keys",
    "checksum_path",
    "collect_runs",
    "dataset_dir",
    "searcher_dir",
    "split_searcher_dir",
    "environment_info",
    "load_checkpoint",
    "read_json",
    "read_jsonl",
    "save_checkpoint",
    "search_hours",
]

#: Columns of :func:`collect_runs`, in order.
COLLECT_COLUMNS = [
    "dataset",
    "searcher",
    "seed",
    "scorer",
    "metric",
    "value",
    "unit",
    "eval_dataset",
    "genotype_hash",
    "path",
]

_DELETE_HINT = "delete it to recompute that stage"
_UMASK = os.umask(0)  # read the umask once: mkstemp creates 0600 files, written files get the usual mode
os.umask(_UMASK)
_LOCK_TIMEOUT_S = 600.0


# --------------------------------------------------------------------------------------------------
# atomic writes and JSON


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: not every OS or filesystem lets a directory be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _named(exc: OSError, target: Path) -> OSError:
    """``exc`` naming the file the user asked for (the CLI reports it as one line, exit 2)."""
    if exc.filename is not None and exc.errno is not None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(target))


@contextlib.contextmanager
def _atomic_target(path: str | os.PathLike[str]) -> Iterator[tuple[io.BufferedWriter, Path]]:
    """Yield a binary temp file beside ``path``; on success fsync it and ``os.replace`` it onto ``path``."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise _named(exc, target) from exc
    tmp = Path(tmp_name)
    try:
        with contextlib.suppress(OSError, AttributeError):
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename is None:  # ENOSPC from write/fsync names no file
            raise _named(exc, target) from exc
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[io.BufferedWriter]:
    """``with atomic_writer(p) as f: np.save(f, x)``: ``p`` appears complete on success, else not at all."""
    with _atomic_target(path) as (fh, _):
        yield fh


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Like :func:`atomic_writer`, for writers that need a file name (``np.lib.format.open_memmap``).

    Write the yielded temp path in place (same file, not replaced); it becomes ``path`` on success.
    """
    with _atomic_target(path) as (_, tmp):
        yield tmp


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same dir, fsync, rename); parents created."""
    with _atomic_target(path) as (fh, _):
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(obj: Any) -> Any:
    """``json.dumps`` fallback: numpy/torch scalars and arrays, paths, sets, dataclasses."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def _dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, indent=indent, default=_jsonable, ensure_ascii=False)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (numpy/torch values are converted)."""
    atomic_write_text(path, _dumps(obj, indent=2) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; corrupt JSON raises :class:`CheckpointError` naming the file.

    A missing file raises ``FileNotFoundError`` (callers test for existence to decide on resuming).
    """
    p = Path(path)
    text = p.read_bytes()
    try:
        return json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"corrupt JSON file {p}: {exc}; {_DELETE_HINT}") from exc


# --------------------------------------------------------------------------------------------------
# JSON lines


def _lock_for(lock_path: str | os.PathLike[str]) -> filelock.FileLock:
    """One re-entrant lock object per lock file in this process (nesting never deadlocks)."""
    return filelock.FileLock(str(lock_path), timeout=_LOCK_TIMEOUT_S, is_singleton=True)


def _drop_partial_last_line(fh: io.BufferedRandom) -> None:
    """Truncate a final line without its newline (a writer killed mid-line) so appends stay clean."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    if size == 0:
        return
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        return
    # walk back to the last newline
    pos = size
    chunk = 4096
    keep = 0
    while pos > 0:
        start = max(0, pos - chunk)
        fh.seek(start)
        block = fh.read(pos - start)
        idx = block.rfind(b"\n")
        if idx >= 0:
            keep = start + idx + 1
            break
        pos = start
    fh.truncate(keep)


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line, flushed and fsynced, under a file lock (``<path>.lock``).

    A partial last line left by a killed writer is dropped first, so the file stays valid JSONL.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = (_dumps(dict(record)) + "\n").encode("utf-8")
    if b"\n" in line[:-1]:  # json.dumps never emits raw newlines; guard anyway
        raise CheckpointError(f"record for {p} serialises to more than one line")
    with _lock_for(p.with_name(p.name + ".lock")):
        with open(p, "ab+") as fh:
            _drop_partial_last_line(fh)
            fh.seek(0, os.SEEK_END)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file into a list of dicts; a missing file is an empty history.

    A corrupt last line (a writer killed mid-line) is ignored; a corrupt line before it raises
    :class:`CheckpointError` naming the file and line.
    """
    p = Path(path)
    if not p.exists():
        return []
    lines = p.read_bytes().split(b"\n")
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip()]
    records: list[dict[str, Any]] = []
    for k, (lineno, raw) in enumerate(numbered):
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if k == len(numbered) - 1:
                break  # truncated last line from a kill: the record was never completed
            raise CheckpointError(f"corrupt line {lineno} in {p}: {exc}; {_DELETE_HINT}") from exc
        if not isinstance(rec, dict):
            raise CheckpointError(f"line {lineno} in {p} is not a JSON object; {_DELETE_HINT}")
        records.append(rec)
    return records


# --------------------------------------------------------------------------------------------------
# checkpoints


def checksum_path(path: str | os.PathLike[str]) -> Path:
    """The checksum sidecar of a checkpoint: ``<checkpoint>.sha256`` (JSON: ``sha256``, ``previous``)."""
    p = Path(path)
    return p.with_name(p.name + ".sha256")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _accepted_hashes(sidecar: Path) -> list[str]:
    """The hashes a sidecar accepts: the newest, and the one before it (see :func:`save_checkpoint`)."""
    try:
        data = json.loads(sidecar.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"corrupt checksum file {sidecar} ({type(exc).__name__}); delete it and "
            f"{sidecar.name.removesuffix('.sha256')} to restart that stage"
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(
            f"checksum file {sidecar} is not a JSON object; delete it to restart that stage"
        )
    return [h for h in (data.get("sha256"), data.get("previous")) if isinstance(h, str)]


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """``torch.save`` ``state`` atomically (temp file, fsync, rename), its sha256 recorded beside it.

    Keep ``state`` to what ``weights_only`` loading accepts: tensors, numbers, strings, and
    lists/tuples/dicts of them (convert numpy arrays with ``torch.from_numpy`` or ``.tolist()``).
    The sidecar ``<path>.sha256`` is written (atomically) before the checkpoint replaces the old
    one and names both the new hash and the old file's, so a kill between the two renames leaves
    a pair that still verifies; :func:`load_checkpoint` refuses a file matching neither.
    """
    import torch

    target = Path(path)
    sidecar = checksum_path(target)
    previous: str | None = None
    if sidecar.exists() and target.exists():
        with contextlib.suppress(CheckpointError):
            accepted = _accepted_hashes(sidecar)
            previous = accepted[0] if accepted else None
    buf = io.BytesIO()  # serialised first: a full disk then fails in write() with ENOSPC and the path,
    torch.save(dict(state), buf)  # not inside torch's zip writer ("enforce fail at inline_container.cc")
    with _atomic_target(target) as (fh, tmp):
        fh.write(buf.getbuffer())
        fh.flush()
        digest = _sha256_file(tmp)
        atomic_write_json(sidecar, {"sha256": digest, "previous": previous, "file": target.name})


_BOILERPLATE = ("Weights only load failed", "Check the documentation", "Please file an issue", "In PyTorch")


def _reason(exc: BaseException) -> str:
    """The informative line of a torch.load error (without its advice to disable weights_only)."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line and not line.startswith(_BOILERPLATE):
            line = line.removeprefix("WeightsUnpickler error:").strip().split(". ")[0]
            return line or type(exc).__name__
    return type(exc).__name__


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(..., weights_only=True)``: arbitrary objects are never unpickled.

    When a ``<path>.sha256`` sidecar exists (every :func:`save_checkpoint` writes one), the file's
    sha256 must match it. A mismatch, a corrupt or truncated file, or one that holds arbitrary
    pickled objects raises :class:`CheckpointError` naming the file; a missing file raises
    ``FileNotFoundError``.
    """
    import torch

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no checkpoint at {p}")
    sidecar = checksum_path(p)
    if sidecar.exists():
        accepted = _accepted_hashes(sidecar)
        if _sha256_file(p) not in accepted:
            raise CheckpointError(
                f"checkpoint {p} does not match its checksum in {sidecar.name} (the file changed on disk); "
                f"delete {p} and {sidecar.name} to restart that stage"
            )
    try:
        with warnings.catch_warnings():  # a damaged file's pickle-protocol warning is not the user's news
            warnings.simplefilter("ignore")
            state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"cannot load {p} with weights_only=True ({_reason(exc)}): the file is corrupt, or holds "
            f"pickled objects other than tensors and plain values, which wcbench never unpickles; "
            f"{_DELETE_HINT}"
        ) from exc
    except MemoryError as exc:
        raise CheckpointError(
            f"corrupt checkpoint {p} (it asks for more memory than exists); {_DELETE_HINT}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - garbage bytes fail anywhere in the zip and pickle readers
        raise CheckpointError(
            f"corrupt or truncated checkpoint {p} ({type(exc).__name__}: {_reason(exc)}); {_DELETE_HINT}"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {p} holds a {type(state).__name__}, not a dict; {_DELETE_HINT}")
    return state


def checkpoint_keys(state: Mapping[str, Any], keys: Sequence[str], path: str | os.PathLike[str]) -> None:
    """Raise :class:`CheckpointError` naming ``path`` when ``state`` lacks any of ``keys``."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(map(repr, missing))} (not a wcbench checkpoint of this "
            f"stage, or damaged); {_DELETE_HINT}"
        )


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
            raise CheckpointError(f"manifest {self.manifest_path} is not a JSON object; {_DELETE_HINT}")
        for key in ("stages", "config"):
            if key in data and not isinstance(data[key], dict):
                raise CheckpointError(
                    f"manifest {self.manifest_path}: {key!r} is a {type(data[key]).__name__}, not an object; "
                    f"{_DELETE_HINT}"
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


# --------------------------------------------------------------------------------------------------
# the tidy table


#: Largest seed a run folder may name (``seed-<huge>`` is skipped by :func:`collect_runs`: the table's
#: seeds are int64).
MAX_RUN_SEED = 2**63 - 1


def _seed_from(path: Path) -> int | None:
    m = re.fullmatch(r"seed-(-?\d{1,19})", path.name)
    if not m:
        return None
    seed = int(m.group(1))
    return seed if -MAX_RUN_SEED <= seed <= MAX_RUN_SEED else None


#: The search-cost metric of each kind of device: a unit is the unit of the device that ran, so a
#: search on CPU is ``search_cpu_hours`` in CPU-h, never GPU-hours.
SEARCH_COST_METRICS = {"gpu": ("search_gpu_hours", "GPU-h"), "cpu": ("search_cpu_hours", "CPU-h")}


def search_hours(run_path: str | os.PathLike[str]) -> dict[str, tuple[float, str]]:
    """``{metric: (hours, unit)}`` of a run's search: the summed ``wall_time_s`` of
    ``search/history.jsonl`` per device kind (:data:`SEARCH_COST_METRICS`). Each epoch record names the
    device it ran on; records without one count as GPU when the manifest records CUDA, else CPU. A
    search resumed on another device gets both metrics. Empty without a history."""
    run = Path(run_path)
    history = run / "search" / "history.jsonl"
    if not history.is_file():
        return {}
    manifest_path = run / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    fallback = "gpu" if isinstance(manifest, dict) and manifest.get("cuda_version") else "cpu"
    seconds: dict[str, float] = {}
    for r in read_jsonl(history):
        wall = r.get("wall_time_s")
        if isinstance(wall, bool) or not isinstance(wall, int | float):
            continue
        device = r.get("device")
        kind = fallback if not isinstance(device, str) else ("cpu" if device.startswith("cpu") else "gpu")
        seconds[kind] = seconds.get(kind, 0.0) + float(wall)
    if not seconds:
        seconds[fallback] = 0.0
    return {SEARCH_COST_METRICS[k][0]: (v / 3600.0, SEARCH_COST_METRICS[k][1]) for k, v in seconds.items()}


def _warn_skip(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _metric_rows(score: Any, score_file: Path) -> Iterator[tuple[str, float, str]]:
    if not isinstance(score, dict) or not isinstance(score.get("metrics"), dict):
        raise CheckpointError(f"score file {score_file} has no 'metrics' object; {_DELETE_HINT}")
    for name, entry in score["metrics"].items():
        if isinstance(entry, dict):
            value, unit = entry.get("value"), entry.get("unit", "")
        else:
            value, unit = entry, ""
        if value is None:
            value = math.nan
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CheckpointError(
                f"metric {name!r} in {score_file} is not a number ({value!r}); {_DELETE_HINT}"
            )
        yield str(name), float(value), "" if unit is None else str(unit)


def _score_rows(f: Path) -> list[dict[str, Any]]:
    """The rows of one score file; :class:`CheckpointError` naming it when it is not a score file."""
    score = read_json(f)
    rows = [{"metric": m, "value": v, "unit": u} for m, v, u in _metric_rows(score, f)]
    for key in ("scorer", "dataset", "genotype_hash"):
        if score.get(key) is not None and not isinstance(score[key], str):
            raise CheckpointError(
                f"score file {f}: {key!r} is a {type(score[key]).__name__}, not a string; {_DELETE_HINT}"
            )
    for r in rows:
        if r["metric"] == "search_gpu_hours" and r["unit"] == "CPU-h":  # written before the split
            r["metric"] = SEARCH_COST_METRICS["cpu"][0]
        r.update(scorer=score.get("scorer") or f.stem, eval_dataset=score.get("dataset"))
        r["genotype_hash"] = score.get("genotype_hash")
    return rows


def _manifest_problem(run_path: Path) -> str | None:
    """Why a run's manifest cannot be trusted (corrupt, not an object, stages not an object), or None."""
    path = run_path / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = read_json(path)
    except (CheckpointError, OSError) as exc:
        return str(exc)
    if not isinstance(manifest, dict):
        return f"manifest {path} is not a JSON object"
    for key in ("stages", "config"):
        if key in manifest and not isinstance(manifest[key], dict):
            return f"manifest {path}: {key!r} is a {type(manifest[key]).__name__}, not an object"
    return None


def _is_rehearsal(run_path: Path) -> bool:
    """True for a rehearsal's run directory (its manifest's ``rehearse``, or its ``rehearsal.json``)."""
    if (run_path / "rehearsal.json").exists():
        return True
    manifest = run_path / "manifest.json"
    if not manifest.exists():
        return False
    try:
        data = read_json(manifest)
    except CheckpointError:
        return False
    config = data.get("config") if isinstance(data, dict) else None
    return isinstance(config, dict) and bool(config.get("rehearse"))


def collect_runs(
    runs_root: str | os.PathLike[str], warn: Callable[[str], None] | None = _warn_skip
) -> pd.DataFrame:
    """Every score in a runs tree as one tidy table, one row per (dataset, searcher, seed, scorer, metric).

    Columns: :data:`COLLECT_COLUMNS`. ``dataset`` is the dataset searched on (the directory),
    ``eval_dataset`` the one a score was measured on (the score file's ``dataset``). Runs with a
    ``search/history.jsonl`` also get ``search_cost`` rows (:func:`search_hours`: ``search_gpu_hours``
    in GPU-h, ``search_cpu_hours`` in CPU-h, by the device that ran).

    What cannot be read is skipped with one line to ``warn`` (default: ``warning: ...`` on stderr)
    naming it, so one bad file never blocks every board and comparison: a corrupt or malformed score
    file, a run whose manifest is corrupt (or has a list as ``stages``), a ``seed-<n>`` folder whose
    number is out of range. ``warn=None`` raises :class:`CheckpointError` instead.
    """

    def skip(message: str, exc: Exception | None = None) -> None:
        if warn is None:
            raise exc if exc is not None else CheckpointError(message)
        warn(message)

    root = Path(runs_root)
    rows: list[dict[str, Any]] = []
    if root.exists():
        run_dirs = []
        for p in sorted(root.rglob("seed-*")):
            if not p.is_dir():
                continue
            if _seed_from(p) is None:
                if re.fullmatch(r"seed--?\d+", p.name):
                    skip(f"skipped {p}: its seed is out of range (0..{MAX_RUN_SEED})")
                continue
            run_dirs.append(p)
        for run_path in run_dirs:
            if _is_rehearsal(run_path):
                continue  # `wcbench run --rehearse`: timings of capped stages, never results
            dataset, searcher = run_path.parent.parent.name, run_path.parent.name
            seed = _seed_from(run_path)
            problem = _manifest_problem(run_path)
            if problem is not None:
                skip(f"skipped run {run_path}: {problem}")
                continue
            hashes: set[str] = set()
            scores_dir = run_path / "scores"
            score_files = sorted(scores_dir.glob("*.json")) if scores_dir.is_dir() else []
            base = {"dataset": dataset, "searcher": searcher, "seed": seed}
            for f in score_files:
                if f.name.startswith("."):
                    continue
                try:
                    got = _score_rows(f)
                except (CheckpointError, OSError) as exc:
                    skip(f"skipped {f}: {str(exc).split('; delete it')[0]}", exc)
                    continue
                for r in got:
                    if r["genotype_hash"]:
                        hashes.add(str(r["genotype_hash"]))
                    rows.append({**base, **r, "eval_dataset": r["eval_dataset"] or dataset, "path": str(f)})
            try:
                hours = search_hours(run_path)
            except (CheckpointError, OSError) as exc:
                skip(f"skipped the search cost of {run_path}: {str(exc).split('; delete it')[0]}", exc)
                hours = {}
            for metric, (value, unit) in hours.items():
                rows.append(
                    {
                        **base,
                        "scorer": "search_cost",
                        "metric": metric,
                        "value": value,
                        "unit": unit,
                        "eval_dataset": dataset,
                        "genotype_hash": next(iter(hashes)) if len(hashes) == 1 else None,
                        "path": str(run_path / "search" / "history.jsonl"),
                    }
                )
    df = pd.DataFrame(rows, columns=COLLECT_COLUMNS)
    df["seed"] = df["seed"].astype("int64")
    df["value"] = df["value"].astype("float64")
    return df
