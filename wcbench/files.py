"""Files that survive a kill: atomic writes, JSON, and JSON lines appended under a lock.

Every write goes to a temp file in the same directory, is fsynced and ``os.replace``d onto its
name, so a killed process leaves either the old file or the new one, never half of one. JSONL
appends take a file lock (``<file>.lock``), so several processes can share a history.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import filelock

from wcbench.errors import CheckpointError

__all__ = [
    "DELETE_HINT",
    "append_jsonl",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_writer",
    "read_json",
    "read_jsonl",
    "sha256_file",
]

DELETE_HINT = "delete it to recompute that stage"
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
def atomic_target(path: str | os.PathLike[str]) -> Iterator[tuple[io.BufferedWriter, Path]]:
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
    with atomic_target(path) as (fh, _):
        yield fh


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Like :func:`atomic_writer`, for writers that need a file name (``np.lib.format.open_memmap``).

    Write the yielded temp path in place (same file, not replaced); it becomes ``path`` on success.
    """
    with atomic_target(path) as (_, tmp):
        yield tmp


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same dir, fsync, rename); parents created."""
    with atomic_target(path) as (fh, _):
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        raise CheckpointError(f"corrupt JSON file {p}: {exc}; {DELETE_HINT}") from exc


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
            raise CheckpointError(f"corrupt line {lineno} in {p}: {exc}; {DELETE_HINT}") from exc
        if not isinstance(rec, dict):
            raise CheckpointError(f"line {lineno} in {p} is not a JSON object; {DELETE_HINT}")
        records.append(rec)
    return records
