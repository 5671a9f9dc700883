"""`wcbench bench`: costs as ratios of two things measured in the same run, on this machine.

- search: seconds per search step (architecture + weight step) and peak memory of each searcher,
  each measured in its own fresh process (so peak RSS on a CPU belongs to that searcher alone),
  relative to `darts2nd`; and the paper's method with and without cost reduction (CR / NCR, Table 9)
  relative to its base algorithm;
- data: images/s of the device-resident CIFAR loader against a torchvision DataLoader with PIL
  transforms doing the same augmentation (random crop 4, flip, normalise, cutout 16);
- scoring: images/s of batched scoring on device-resident tensors against per-image scoring.

No test asserts a time: the numbers are for people and for `--json` consumers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

SEARCHERS = ("darts1st", "darts2nd", "pdarts", "pcdarts", "prdarts")
OURS = (("ours-darts2nd", {}), ("ours-darts2nd", {"strategy.cost_reduction": False}))


def _search_once(searcher: str, overrides: dict[str, Any], steps: int, queue: Any) -> None:
    torch.set_num_threads(1)
    from searchers.loop import run_search
    from wcbench.runs import read_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        over = {"epochs": 1, "max_steps_per_epoch": steps, "warmup_epochs": 0, **overrides}
        run_search(searcher, "digits", "quick", 0, "darts", tmp, over, "cpu", progress=False)
        rec = read_jsonl(Path(tmp) / "history.jsonl")[-1]
    queue.put(
        {
            "wall_time_s": rec["wall_time_s"],
            "steps": rec.get("steps", steps),
            "peak_memory_mb": rec["peak_memory_mb"],
        }
    )


def measure_search(
    searcher: str, overrides: dict[str, Any] | None = None, steps: int = 8
) -> dict[str, float]:
    """One epoch of `steps` steps of the quick preset in a fresh process: s/step and peak memory."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_search_once, args=(searcher, dict(overrides or {}), steps, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"benchmark of {searcher} failed (exit {proc.exitcode})")
    rec = queue.get()
    return {"s_per_step": rec["wall_time_s"] / max(rec["steps"], 1), "peak_memory_mb": rec["peak_memory_mb"]}


def measure_loaders(n: int = 4096, batch_size: int = 256, epochs: int = 2) -> dict[str, float]:
    """Images/s: DeviceLoader (tensor augmentation) vs DataLoader + PIL transforms, same data."""
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


def run_bench(steps: int = 8, searchers: tuple[str, ...] = SEARCHERS, log: Any = print) -> dict[str, Any]:
    """Every measurement, and the ratios; all in this one run."""
    result: dict[str, Any] = {"machine": {"torch": torch.__version__, "threads_per_search": 1,
                                          "device": "cpu"}, "search": {}}  # fmt: skip
    for name in searchers:
        log(f"search: {name}")
        result["search"][name] = measure_search(name, steps=steps)
    base = result["search"].get("darts2nd")
    if base:
        for rec in result["search"].values():
            rec["time_vs_darts2nd"] = rec["s_per_step"] / base["s_per_step"]
            rec["memory_vs_darts2nd"] = rec["peak_memory_mb"] / base["peak_memory_mb"]
    result["ours"] = {}
    base = base or measure_search("darts2nd", steps=steps)
    for name, over in OURS:
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
    log("data loaders")
    result["loader"] = measure_loaders()
    log("scoring")
    result["scoring"] = measure_scoring()
    return result


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2)
