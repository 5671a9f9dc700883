"""`wcbench bench`: costs as ratios of two things measured in the same run, on this machine.

- search: seconds per search step (architecture + weight step) and peak memory of each searcher,
  each measured in its own fresh process (so peak RSS on a CPU belongs to that searcher alone),
  relative to `darts2nd`; and the paper's method with and without cost reduction (CR / NCR, Table 9)
  relative to its base algorithm;
- data: images/s of the device-resident CIFAR loader against a torchvision DataLoader with PIL
  transforms doing the same augmentation (random crop 4, flip, normalise, cutout 16);
- scoring: images/s of batched scoring on device-resident tensors against per-image scoring;
- load: the same search steps idle and then beside a fixed competing load that the bench starts itself
  (busy processes, one CPU each, that stop themselves after a deadline and are killed at the end),
  as a slowdown against the fair-share slowdown a scheduler owes the search (issue #16); optionally once
  per OpenMP wait policy, so one run shows torch's default next to wcbench's PASSIVE.

No test asserts a time: the numbers are for people and for `--json` consumers.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from wcbench import cpus

SEARCHERS = ("darts1st", "darts2nd", "pdarts", "pcdarts", "prdarts")
OURS = (("ours-darts2nd", {}), ("ours-darts2nd", {"strategy.cost_reduction": False}))
PARTS = ("search", "ours", "data", "scoring", "load")

# one busy process of the competing load: pure Python, one CPU, and it stops itself at the deadline
_SPIN = (
    "import time\n"
    "end = time.monotonic() + {seconds!r}\n"
    "x = 0\n"
    "while time.monotonic() < end:\n"
    "    for i in range(20000):\n"
    "        x += i\n"
)
# the child environment of each OpenMP wait policy ("default": the OpenMP runtime's own, torch's
# behaviour before wcbench set PASSIVE)
POLICY_ENV: dict[str, dict[str, str | None]] = {
    "passive": {"OMP_WAIT_POLICY": "PASSIVE", "WCBENCH_WAIT_POLICY": None},
    "active": {"OMP_WAIT_POLICY": "ACTIVE", "WCBENCH_WAIT_POLICY": None},
    "default": {"OMP_WAIT_POLICY": None, "WCBENCH_WAIT_POLICY": "default"},
}


@contextlib.contextmanager
def _environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``changes`` (None: unset) inside the block, for the processes started there."""
    old = {k: os.environ.get(k) for k in changes}
    try:
        for k, v in changes.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _search_once(searcher: str, overrides: dict[str, Any], steps: int, queue: Any, threads: int = 1) -> None:
    import torch

    torch.set_num_threads(threads)
    from searchers.loop import run_search
    from wcbench.files import read_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        over = {"epochs": 1, "max_steps_per_epoch": steps, "warmup_epochs": 0, **overrides}
        run_search(searcher, "digits", "smoke", 0, "darts", tmp, over, "cpu", progress=False)
        rec = read_jsonl(Path(tmp) / "history.jsonl")[-1]
    queue.put(
        {
            "wall_time_s": rec["wall_time_s"],
            "steps": rec.get("steps", steps),
            "peak_memory_mb": rec["peak_memory_mb"],
        }
    )


def measure_search(
    searcher: str,
    overrides: dict[str, Any] | None = None,
    steps: int = 8,
    threads: int = 1,
    env: Mapping[str, str | None] | None = None,
) -> dict[str, float]:
    """One epoch of `steps` steps of the smoke preset in a fresh process with `threads` intra-op
    threads (and `env` changes: None unsets): s/step and peak memory."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_search_once, args=(searcher, dict(overrides or {}), steps, queue, threads))
    with _environ(env or {}):
        proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"benchmark of {searcher} failed (exit {proc.exitcode})")
    rec = queue.get()
    return {"s_per_step": rec["wall_time_s"] / max(rec["steps"], 1), "peak_memory_mb": rec["peak_memory_mb"]}


def measure_loaders(n: int = 4096, batch_size: int = 256, epochs: int = 2) -> dict[str, float]:
    """Images/s: DeviceLoader (tensor augmentation) vs DataLoader + PIL transforms, same data."""
    import torch
    import torchvision.transforms as T
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    from wcbench.data import ArrayDataset, DeviceLoader

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    ds = ArrayDataset("bench", images, labels, tuple(str(i) for i in range(10)), mean, std)
    loader = DeviceLoader(ds, batch_size, shuffle=True, augment=True, cutout=16, drop_last=True)
    start = time.perf_counter()
    seen = 0
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for x, _ in loader:
            seen += x.shape[0]
    device_ips = seen / (time.perf_counter() - start)

    class Cutout:
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            h, w = x.shape[-2:]
            y0, x0 = torch.randint(h, (1,)).item(), torch.randint(w, (1,)).item()
            x[:, max(0, y0 - 8) : y0 + 8, max(0, x0 - 8) : x0 + 8] = 0
            return x

    pil = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
    tf = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
            Cutout(),
        ]
    )

    class PilSet(Dataset):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return tf(pil[i]), int(labels[i])

    dl = DataLoader(PilSet(), batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0)
    start = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        for x, _ in dl:
            seen += x.shape[0]
    pil_ips = seen / (time.perf_counter() - start)
    return {"device_loader_images_per_s": device_ips, "pil_dataloader_images_per_s": pil_ips,
            "ratio": device_ips / pil_ips}  # fmt: skip


def measure_scoring(n: int = 512) -> dict[str, float]:
    """Images/s of eval-mode scoring of a small DARTS_V2 network: batches of 256 vs one image at a time."""
    import torch

    from wcbench.genotype import PUBLISHED
    from wcbench.networks import NetworkCIFAR

    torch.manual_seed(0)
    net = NetworkCIFAR(PUBLISHED["DARTS_V2"], 8, 10, 5, auxiliary=False).eval()
    x = torch.randn(n, 3, 32, 32)
    with torch.no_grad():
        net(x[:8])
        start = time.perf_counter()
        for i in range(0, n, 256):
            net(x[i : i + 256])
        batched = n / (time.perf_counter() - start)
        m = min(n, 64)
        start = time.perf_counter()
        for i in range(m):
            net(x[i : i + 1])
        single = m / (time.perf_counter() - start)
    return {"batched_images_per_s": batched, "single_images_per_s": single, "ratio": batched / single}


@contextlib.contextmanager
def busy_processes(n: int, seconds: float) -> Iterator[list[subprocess.Popen]]:
    """`n` busy processes (one CPU each) that stop themselves after `seconds`; killed on leaving."""
    code = _SPIN.format(seconds=float(seconds))
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen([sys.executable, "-I", "-c", code], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )  # fmt: skip
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait()


def measure_load(
    steps: int = 3,
    procs: int | None = None,
    searcher: str = "darts2nd",
    policies: tuple[str, ...] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """The same search steps idle, then beside `procs` busy processes (default: one per allowed CPU).

    ``slowdown`` = loaded s/step / idle s/step, against ``fair_share_slowdown`` (wcbench.cpus): what a
    fair scheduler owes a search of this many threads. `policies` (passive, active, default) repeat the
    pair under each OpenMP wait policy; None: once, under this process's.
    """
    import torch

    threads = torch.get_num_threads()
    allowed = cpus.allowed_cpus()
    n = allowed if procs is None else procs
    fair = cpus.fair_share_slowdown(n, threads, allowed)
    out: dict[str, Any] = {
        "searcher": searcher,
        "steps": steps,
        "busy_processes": n,
        "threads": threads,
        "allowed_cpus": allowed,
        "fair_share_slowdown": fair,
        "by_wait_policy": {},
    }
    labels = policies or (cpus.record()["wait_policy"],)
    for label in labels:
        env = POLICY_ENV[label] if policies else {}
        key = label.upper() if label in ("passive", "active") else label
        log(f"load: {searcher} idle, OMP_WAIT_POLICY={key}")
        start = time.perf_counter()
        idle = measure_search(searcher, steps=steps, threads=threads, env=env)["s_per_step"]
        idle_wall = time.perf_counter() - start
        log(f"load: {searcher} beside {n} busy processes, OMP_WAIT_POLICY={key}")
        with busy_processes(n, seconds=60 + 20 * idle_wall) as busy:
            loaded = measure_search(searcher, steps=steps, threads=threads, env=env)["s_per_step"]
            ended_early = any(p.poll() is not None for p in busy)
        out["by_wait_policy"][key] = {
            "idle_s_per_step": idle,
            "loaded_s_per_step": loaded,
            "slowdown": loaded / idle,
            "slowdown_vs_fair_share": loaded / idle / fair,
            "load_ended_early": ended_early,  # True: the load stopped before the search did
        }
    return out


def load_summary(load: dict[str, Any] | None) -> list[str]:
    """One line per wait policy of `measure_load`'s result: "... slowdown X.Xx vs fair share Y.Yx"."""
    if not load:
        return []
    lines = []
    for policy, rec in load["by_wait_policy"].items():
        lines.append(
            f"load: {load['searcher']} with {load['threads']} threads beside {load['busy_processes']} busy "
            f"processes on {load['allowed_cpus']} CPUs, OMP_WAIT_POLICY={policy}: "
            f"{rec['idle_s_per_step']:.3f} -> {rec['loaded_s_per_step']:.3f} s/step, "
            f"slowdown {rec['slowdown']:.1f}x vs fair share {load['fair_share_slowdown']:.1f}x"
            + (" (the load ended before the search did)" if rec["load_ended_early"] else "")
        )
    return lines


def run_bench(
    steps: int = 8,
    searchers: tuple[str, ...] = SEARCHERS,
    log: Any = print,
    parts: tuple[str, ...] = PARTS,
    load_procs: int | None = None,
    wait_policies: tuple[str, ...] | None = None,
    load_searcher: str = "darts2nd",
) -> dict[str, Any]:
    """Every measurement in `parts`, and the ratios; all in this one run."""
    import torch

    result: dict[str, Any] = {"machine": {"torch": torch.__version__, "threads_per_search": 1,
                                          "device": "cpu"}, "cpus": cpus.record(), "search": {}}  # fmt: skip
    if "load" in parts:
        result["load"] = measure_load(steps, load_procs, load_searcher, wait_policies, log)
    for name in searchers if "search" in parts else ():
        log(f"search: {name}")
        result["search"][name] = measure_search(name, steps=steps)
    base = result["search"].get("darts2nd")
    if base:
        for rec in result["search"].values():
            rec["time_vs_darts2nd"] = rec["s_per_step"] / base["s_per_step"]
            rec["memory_vs_darts2nd"] = rec["peak_memory_mb"] / base["peak_memory_mb"]
    result["ours"] = {}
    if "ours" in parts:
        base = base or measure_search("darts2nd", steps=steps)
    for name, over in OURS if "ours" in parts else ():
        label = f"{name} ({'NCR' if over else 'CR'})"
        log(f"search: {label}")
        try:
            rec = measure_search(name, over, steps=steps)
        except Exception as exc:  # noqa: BLE001 - a missing strategy is reported, not fatal
            result["ours"][label] = {"error": str(exc)}
            continue
        rec["time_vs_darts2nd"] = rec["s_per_step"] / base["s_per_step"]
        rec["memory_vs_darts2nd"] = rec["peak_memory_mb"] / base["peak_memory_mb"]
        result["ours"][label] = rec
    if "data" in parts:
        log("data loaders")
        result["loader"] = measure_loaders()
    if "scoring" in parts:
        log("scoring")
        result["scoring"] = measure_scoring()
    return result


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2)
