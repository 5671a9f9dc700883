"""Where work runs and what it cost in memory: shared by the search loop and the evaluators."""

from __future__ import annotations

import ctypes
import gc
import resource
import sys

import torch

from wcbench.errors import ConfigError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto" -> CUDA when available, else CPU; anything else as given (checked)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu")
    return dev


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """(MiB, source): ``torch.cuda.max_memory_allocated`` on CUDA (since its last reset), else the
    process's peak resident set size (``ru_maxrss``, which includes the torch import)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 2**20 if sys.platform == "darwin" else 2**10  # bytes on macOS, KiB on Linux
    return rss / scale, "process_peak_rss"


def release_memory(device: torch.device | None = None) -> None:
    """Hand freed memory back to the system between stages: the CUDA allocator's cached blocks, and
    on glibc the heap that ``malloc`` keeps after a stage frees its tensors (``malloc_trim(0)``). A
    CPU run's search otherwise leaves its peak resident for the retrain and the scorers after it."""
    gc.collect()
    if device is not None and device.type == "cuda":
        torch.cuda.empty_cache()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


def reset_phase_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (:func:`phase_peak_memory_mb`): the CUDA allocator's peak, or on
    Linux the process's ``VmHWM`` (written ``5`` to ``/proc/self/clear_refs``, Linux >= 4.0), after
    :func:`release_memory` (so a phase's peak does not start at the previous phase's retained heap)."""
    release_memory(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def phase_peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """(MiB, source) since :func:`reset_phase_peak_memory`: CUDA max allocated, else the process's
    ``VmHWM`` where ``/proc`` has it (reset per phase when Linux allowed it), else :func:`peak_memory_mb`."""
    if device.type == "cuda":
        return peak_memory_mb(device)
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, "process_peak_rss_vmhwm"
    except OSError:
        pass
    return peak_memory_mb(device)
