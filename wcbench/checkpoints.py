"""Checkpoints: ``torch.save`` written atomically with a sha256 sidecar, loaded with
``weights_only=True`` only (arbitrary objects are never unpickled)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wcbench.errors import CheckpointError
from wcbench.files import DELETE_HINT, atomic_target, atomic_write_json, sha256_file

__all__ = ["checkpoint_keys", "checksum_path", "load_checkpoint", "save_checkpoint"]


def checksum_path(path: str | os.PathLike[str]) -> Path:
    """The checksum sidecar of a checkpoint: ``<checkpoint>.sha256`` (JSON: ``sha256``, ``previous``)."""
    p = Path(path)
    return p.with_name(p.name + ".sha256")


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
    with atomic_target(target) as (fh, tmp):
        fh.write(buf.getbuffer())
        fh.flush()
        digest = sha256_file(tmp)
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
        if sha256_file(p) not in accepted:
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
            f"{DELETE_HINT}"
        ) from exc
    except MemoryError as exc:
        raise CheckpointError(
            f"corrupt checkpoint {p} (it asks for more memory than exists); {DELETE_HINT}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - garbage bytes fail anywhere in the zip and pickle readers
        raise CheckpointError(
            f"corrupt or truncated checkpoint {p} ({type(exc).__name__}: {_reason(exc)}); {DELETE_HINT}"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {p} holds a {type(state).__name__}, not a dict; {DELETE_HINT}")
    return state


def checkpoint_keys(state: Mapping[str, Any], keys: Sequence[str], path: str | os.PathLike[str]) -> None:
    """Raise :class:`CheckpointError` naming ``path`` when ``state`` lacks any of ``keys``."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(map(repr, missing))} (not a wcbench checkpoint of this "
            f"stage, or damaged); {DELETE_HINT}"
        )
