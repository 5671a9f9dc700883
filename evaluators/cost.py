"""`cost`: what an architecture costs (paper Tables 2-5, 18 and 23: params, multiply-adds, search cost).

- ``params`` / ``params_with_aux``: trainable parameters without / with the auxiliary head (the papers
  count without); ``macs``: multiply-adds of one eval forward pass at the training image size, by
  ``torch.utils.flop_counter`` (conv + linear, FLOPs / 2), the counter of ``wcbench genotype show``;
- ``latency_bs1_ms`` / ``latency_bs256_ms``: median wall time of an eval forward pass (after warm-up);
- ``peak_train_memory_mb``: one training step (forward with the auxiliary head, backward, SGD step)
  at the retrain's batch size: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the peak RSS
  increase of a fresh process over that step (the score says which);
- ``search_gpu_hours`` / ``search_cpu_hours``: the sum of ``wall_time_s`` in
  ``<run>/search/history.jsonl`` when the model comes from a search run, in GPU-h for epochs run on a
  GPU and CPU-h for epochs run on the CPU (a unit is the unit of the device that ran).

The network is the one retrained (``retrain.json``), or, for ``wcbench score --genotype G --dataset
cifar10|cifar100|imagenet``, the paper's evaluation network exactly as ``wcbench genotype show`` builds it,
or an external model (:mod:`wcbench.models`) at its input resolution.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from evaluators.common import ScoreContext, Scorer, ScoreResult, build_from_record, metric
from wcbench.metrics import MetricSpec
from wcbench.networks import count_macs, count_params
from wcbench.published import MACS_COUNTER
from wcbench.registry import SCORERS
from wcbench.results import search_hours


class CostParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_batch_sizes: list[int] = Field([1, 256], description="batch sizes timed (latency_bs<N>_ms)")
    latency_warmup: int = Field(2, ge=0)
    latency_repeats: int = Field(5, ge=1)
    measure_memory: bool = True
    memory_batch_size: int | None = Field(None, ge=1, description="None = the retrain's batch size")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def latency_ms(
    net: nn.Module,
    input_size: tuple[int, int, int],
    batch: int,
    device: torch.device,
    warmup: int,
    repeats: int,
) -> float:
    """Median milliseconds of one eval forward pass of a batch of ``batch`` images."""
    net = net.to(device).eval()
    x = torch.randn(batch, *input_size, device=device)
    with torch.inference_mode():
        for _ in range(warmup):
            net(x)
        _sync(device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x)
            _sync(device)
            times.append((time.perf_counter() - t0) * 1000.0)
    return float(statistics.median(times))


def _train_step(
    net: nn.Module,
    batch: int,
    input_size: tuple[int, int, int],
    num_classes: int,
    device: torch.device,
    aux_weight: float,
) -> None:
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *input_size, device=device)
    y = torch.randint(num_classes, (batch,), device=device)
    out = net(x)
    logits, aux = (out[0], out[1] if len(out) > 1 else None) if isinstance(out, tuple | list) else (out, None)
    loss = nn.functional.cross_entropy(logits, y)
    if aux is not None:
        loss = loss + aux_weight * nn.functional.cross_entropy(aux, y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def _current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def _peak_rss_mb() -> float:
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def _child_memory(
    record: dict[str, Any], batch: int, input_size: tuple[int, int, int], threads: int, queue: Any
) -> None:  # pragma: no cover - runs in a spawned process
    try:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        net = build_from_record(record)
        aux_w = float(record["config"].get("auxiliary_weight", 0.0))
        before = _current_rss_mb()
        _train_step(net, batch, input_size, int(record["num_classes"]), torch.device("cpu"), aux_w)
        queue.put(("ok", max(_peak_rss_mb() - before, 0.0)))
    except BaseException as exc:  # report, never hang the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def _child_result(proc: Any, queue: Any, deadline: float) -> tuple[str, Any]:
    """What the spawned process reported; an error, not a 30-minute wait, when it died first (a
    script calling wcbench without an ``if __name__ == "__main__":`` guard re-runs itself there)."""
    import queue as queues

    while time.monotonic() < deadline:
        try:
            return queue.get(timeout=1.0)
        except queues.Empty:
            if not proc.is_alive():
                try:
                    return queue.get(timeout=1.0)  # it may have reported just before exiting
                except queues.Empty:
                    return "error", (
                        f"the measuring process exited with code {proc.exitcode} before reporting (a script "
                        f'that calls wcbench needs its top level under `if __name__ == "__main__":`)'
                    )
    return "error", "the measuring process did not report within 30 minutes"


def train_memory_mb(ctx: ScoreContext, batch: int) -> tuple[float | None, str]:
    """(peak training memory in MB, how it was measured) for one step at ``batch``."""
    input_size = ctx.input_size()
    if ctx.device.type == "cuda":
        net = ctx.build_untrained().to(ctx.device)
        torch.cuda.synchronize(ctx.device)
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(ctx.device)
        torch.cuda.reset_peak_memory_stats(ctx.device)
        _train_step(
            net,
            batch,
            input_size,
            ctx.num_classes,
            ctx.device,
            float(ctx.config.get("auxiliary_weight", 0.0)),
        )
        torch.cuda.synchronize(ctx.device)
        peak = torch.cuda.max_memory_allocated(ctx.device)
        del net
        return (
            peak / 2**20,
            f"torch.cuda.max_memory_allocated (fp32, model and optimizer included; "
            f"{base / 2**20:.1f} MB before the step)",
        )
    spawn = mp.get_context("spawn")
    queue = spawn.Queue()
    proc = spawn.Process(
        target=_child_memory, args=(ctx.network_record(), batch, input_size, torch.get_num_threads(), queue)
    )
    try:
        proc.start()
    except (TypeError, AttributeError, pickle.PicklingError) as exc:  # an nn.Module object that cannot travel
        return None, f"CPU measurement skipped: the model cannot be sent to a child process ({exc})"
    try:
        status, value = _child_result(proc, queue, deadline=time.monotonic() + 1800)
    finally:
        proc.join(timeout=60)
    if status != "ok":
        return None, f"CPU measurement failed: {value}"
    return float(
        value
    ), "CPU: peak RSS increase of a fresh process over one training step (ru_maxrss - RSS before)"


def search_cost(ctx: ScoreContext) -> dict[str, tuple[float, str]]:
    """``{metric: (hours, unit)}`` of the search run the model comes from
    (:func:`wcbench.results.search_hours`: ``search_gpu_hours`` in GPU-h, ``search_cpu_hours`` in
    CPU-h, by the device that ran); empty otherwise."""
    if ctx.run_dir is None:
        return {}
    return search_hours(ctx.run_dir)


@SCORERS.register("cost")
class CostScorer(Scorer):
    """Params (with/without aux head), multiply-adds, latency, peak training memory, search cost."""

    name = "cost"
    version = "1"
    needs_weights = False
    Params = CostParams
    metrics = (
        MetricSpec("params", "params", "lower", "params"),
        MetricSpec("params_with_aux", "params", "lower", "params with aux head"),
        MetricSpec("macs", "MACs", "lower", "multiply-adds"),
        MetricSpec("latency_bs1_ms", "ms", "lower", "latency b=1"),
        MetricSpec("latency_bs256_ms", "ms", "lower", "latency b=256"),
        MetricSpec("peak_train_memory_mb", "MB", "lower", "peak memory"),
        MetricSpec("search_gpu_hours", "GPU-h", "lower", "search cost"),
        MetricSpec("search_cpu_hours", "CPU-h", "lower", "search cost"),
    )

    def run(self, ctx: ScoreContext, params: CostParams) -> ScoreResult:
        torch.manual_seed(ctx.seed)
        net = ctx.build_untrained()
        input_size = ctx.input_size()
        metrics: dict[str, dict[str, Any]] = {
            "params": metric(count_params(net), "params"),
            "params_with_aux": metric(count_params(net, include_aux=True), "params"),
            "macs": metric(count_macs(net, input_size), "MACs"),
        }
        for bs in params.latency_batch_sizes:
            ms = latency_ms(net, input_size, bs, ctx.device, params.latency_warmup, params.latency_repeats)
            metrics[f"latency_bs{bs}_ms"] = metric(ms, "ms")
        memory_how = None
        if params.measure_memory:
            batch = params.memory_batch_size or int(ctx.config.get("batch_size", 96))
            mb, memory_how = train_memory_mb(ctx, batch)
            metrics["peak_train_memory_mb"] = metric(mb, "MB", batch_size=batch)
        found = search_cost(ctx)
        for name, (hours, unit) in found.items():
            metrics[name] = metric(hours, unit)
        return ScoreResult(
            metrics=metrics,
            dataset=ctx.dataset,
            split="-",
            num_examples=0,
            details={"input_size": list(input_size), "device_timed": str(ctx.device)},
            extra={
                "network": ctx.external.describe()
                if ctx.external is not None
                else {
                    "kind": ctx.config.get("network", "cifar"),
                    "init_channels": ctx.config.get("init_channels"),
                    "layers": ctx.config.get("layers"),
                    "num_classes": ctx.num_classes,
                    "auxiliary": float(ctx.config.get("auxiliary_weight", 0.0)) > 0,
                },
                "macs_counter": MACS_COUNTER,
                "latency": "median of eval forward passes after warm-up, fp32, torch.inference_mode",
                "memory_measure": memory_how,
                "search_history": str(Path(ctx.run_dir) / "search" / "history.jsonl") if found else None,
                "threads": torch.get_num_threads(),
            },
        )
