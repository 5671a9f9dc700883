"""The GPU check of issue #15: run as is on a machine with GPUs; prints one table, exits 1 on any failure.

    python scripts/gpu_check.py                 # on CUDA: paper-size networks, a few steps of each
    python scripts/gpu_check.py --cpu --size smoke --only search --algorithms darts1st   # what the tests run

Checks, each one row (``ok``, ``FAIL`` or ``skip`` with the reason):

* ``search ours-<algorithm>``: a few steps of the `ours` strategy (CR, the default) with every
  registered search algorithm, at the preset's network size (``--size paper``: the paper's supernets
  and testers, capped as `wcbench run --rehearse` caps them), peak CUDA memory and seconds;
* ``retrain``: the first genotype found, retrained for a few steps with bf16 autocast, channels_last
  and ``torch.compile`` (each CUDA-only in the retrain loop; off with ``--cpu``);
* ``score <name>``: every registered scorer on that model (a slice of the test data); a scorer whose
  data is not on the machine is skipped, with the reason;
* ``ddp``: the retrain under ``torchrun`` with one process per visible GPU (the retrain loop's own DDP:
  NCCL, each rank its share of the global batch); with ``--cpu``, two processes on gloo;
* ``resume``: a search killed (SIGKILL) after its first epoch and resumed must end with the same
  RNG states (CPU, CUDA, the strategy's generator), genotype and architecture as one that ran through.

The data is the embedded ``digits`` set (no download, nothing outside the machine is needed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

CHECKS = ("search", "retrain", "score", "ddp", "resume")


@dataclass
class Row:
    """One line of the table."""

    check: str
    status: str = "ok"
    seconds: float = 0.0
    memory_mb: float | None = None
    detail: str = ""


@dataclass
class Context:
    """What the checks share: the options, the device, and what earlier checks made."""

    args: argparse.Namespace
    device: str
    work: Path
    rows: list[Row] = field(default_factory=list)
    genotype_dir: Path | None = None
    model_dir: Path | None = None

    @property
    def preset(self) -> str:
        return "paper" if self.args.size == "paper" else "smoke"


def _peak_mb(device: str) -> float | None:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return None


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def run_check(ctx: Context, name: str, fn: Callable[[], str]) -> Row:
    """Run one check; an exception is a FAIL row with its one-line reason (the traceback on stderr)."""
    from wcbench.errors import DatasetError

    row = Row(name)
    _reset_peak(ctx.device)
    t0 = time.perf_counter()
    try:
        row.detail = fn() or ""
    except DatasetError as exc:  # the data of this check is not on the machine
        row.status, row.detail = "skip", " ".join(str(exc).split())[:160]
    except Exception as exc:  # noqa: BLE001 - every failure is a row, the run goes on
        traceback.print_exc(file=sys.stderr)
        row.status, row.detail = "FAIL", f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    row.seconds = time.perf_counter() - t0
    row.memory_mb = _peak_mb(ctx.device)
    ctx.rows.append(row)
    return row


# ================================================================================== the checks


def _caps(ctx: Context, searcher: str) -> dict[str, Any]:
    """The rehearsal's step caps for ``searcher`` (``search.``, ``retrain.`` and scorer settings)."""
    from wcbench.pipeline import make_plan
    from wcbench.rehearsal import rehearsal_settings

    plan = make_plan(searcher, ctx.args.dataset, ctx.preset, "1", "clean", ctx.work / "runs")
    return rehearsal_settings(plan, ctx.args.steps, ctx.args.examples)


def check_search(ctx: Context, algorithm: str) -> str:
    from wcbench.stages import search_stage

    searcher = f"ours-{algorithm}"
    settings = {
        k.removeprefix("search."): v for k, v in _caps(ctx, searcher).items() if k.startswith("search.")
    }
    settings["strategy.cache_dir"] = str(ctx.work / "testers")
    out = ctx.work / "search" / searcher
    genotype = search_stage(
        searcher, ctx.args.dataset, out, preset=ctx.preset, seed=1, settings=settings, device=ctx.device,
        progress=False,
    )  # fmt: skip
    if ctx.genotype_dir is None:
        ctx.genotype_dir = out
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    losses = [h["train_loss"] for h in history]
    if not all(math.isfinite(v) for v in losses):
        raise RuntimeError(f"non-finite training loss {losses}")
    return f"{len(history)} epoch(s), strategy CR; genotype {genotype.hash()[:8]}"


def _retrain_settings(ctx: Context, searcher: str) -> dict[str, Any]:
    settings = {
        k.removeprefix("retrain."): v for k, v in _caps(ctx, searcher).items() if k.startswith("retrain.")
    }
    cuda = ctx.device.startswith("cuda")
    settings.update(amp=True, channels_last=True, compile=cuda)
    return settings


def check_retrain(ctx: Context) -> str:
    from wcbench.files import read_json
    from wcbench.stages import retrain_stage

    genotype = str(ctx.genotype_dir) if ctx.genotype_dir is not None else "DARTS_V2"
    out = ctx.work / "retrain"
    retrained = retrain_stage(
        genotype, ctx.args.dataset, out, preset=ctx.preset, seed=1,
        settings=_retrain_settings(ctx, "ours-darts1st"), device=ctx.device, progress=False,
    )  # fmt: skip
    history = retrained.result.history
    if not history or not all(math.isfinite(h["train_loss"]) for h in history):
        raise RuntimeError(f"retrain history {history}")
    ctx.model_dir = out
    cfg = read_json(out / "retrain.json")["config"]
    flags = "bf16 autocast, channels_last, torch.compile" if ctx.device.startswith("cuda") else "fp32 (CPU)"
    return (
        f"{cfg['init_channels']} channels / {cfg['layers']} cells, drop path {cfg['drop_path_prob']}, "
        f"aux {cfg['auxiliary_weight']}; {flags}; loss {history[-1]['train_loss']:.3f}"
    )


def check_score(ctx: Context, name: str) -> str:
    from evaluators.common import EXAMPLE_CAPS, ScoreContext, get_scorer, score

    if ctx.model_dir is None:
        raise RuntimeError("no retrained model (the retrain check failed or was not run)")
    sctx = ScoreContext.from_model_dir(ctx.model_dir, device=ctx.device, progress=False)
    fields = get_scorer(name).Params.model_fields
    settings = {cap: ctx.args.examples for cap in EXAMPLE_CAPS if cap in fields}
    record = score(sctx, name, settings)
    metrics = record.get("metrics", {})
    shown = ", ".join(
        f"{k} {v.get('value') if isinstance(v, dict) else v}" for k, v in list(metrics.items())[:3]
    )
    return f"{record.get('num_examples')} examples; {shown}"


def _wcbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "wcbench", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def check_ddp(ctx: Context) -> str:
    import torch

    from wcbench.files import read_json

    if ctx.genotype_dir is None:
        raise RuntimeError("no genotype (the search checks failed or were not run)")
    cuda = ctx.device.startswith("cuda")
    ranks = torch.cuda.device_count() if cuda else 2
    out = ctx.work / "ddp"
    settings = _retrain_settings(ctx, "ours-darts1st")
    sets = [f"--set={k}={json.dumps(v)}" for k, v in settings.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m",
           "wcbench", "retrain", "--genotype", str(ctx.genotype_dir), "--dataset", ctx.args.dataset,
           "--preset", ctx.preset, "--out", str(out), "--seed", "1", "--no-progress", *sets]  # fmt: skip
    env = _env()
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on CPUs
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=ctx.args.timeout)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"torchrun exited {proc.returncode}: {tail}")
    record = read_json(out / "retrain.json")
    if record["world_size"] != ranks or not (out / "model.pt").exists():
        raise RuntimeError(f"world_size {record['world_size']} (expected {ranks}), model.pt missing?")
    note = " (one GPU: a single rank, DDP's wrapper is not used)" if ranks == 1 else ""
    return f"{ranks} rank(s), {'nccl' if cuda else 'gloo'}{note}; retrain.json world_size {ranks}"


def _search_cmd(ctx: Context, out: Path) -> list[str]:
    return _wcbench(
        "search", "--searcher", "ours-darts1st", "--preset", "smoke", "--out", str(out), "--seed", "3",
        "--device", ctx.device, "--no-progress", "--set", "epochs=3", "--set", "max_steps_per_epoch=2",
        "--set", f"strategy.cache_dir={ctx.work / 'testers-resume'}", "--set", "strategy.pretrain_iters=2",
        "--set", "strategy.aux_pretrain_iters=2", "--set", "strategy.reference_iters=2",
        "--set", "strategy.probe_iters=0", "--set", "strategy.diag_samples=0", "--set", "max_examples=64",
    )  # fmt: skip


def _final_state(out: Path) -> dict[str, Any]:
    import torch

    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    return {
        "rng": state["rng"],
        "epoch": state["epoch"],
        "genotype": json.loads((out / "genotype.json").read_text()),
    }


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def check_resume(ctx: Context) -> str:
    """SIGKILL a search after its first checkpoint, resume it, compare with an uninterrupted one."""
    env, timeout = _env(), ctx.args.timeout
    through, killed = ctx.work / "resume-through", ctx.work / "resume-killed"
    subprocess.run(_search_cmd(ctx, through), env=env, check=True, capture_output=True, timeout=timeout)
    proc = subprocess.Popen(
        _search_cmd(ctx, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    try:
        while not (killed / "checkpoint.pt").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the search to be killed ended (or hung) before its first checkpoint")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    history = (killed / "history.jsonl").read_text().splitlines()
    if (killed / "genotype.json").exists():
        raise RuntimeError("the search finished before the kill; nothing was resumed")
    subprocess.run(_search_cmd(ctx, killed), env=env, check=True, capture_output=True, timeout=timeout)
    a, b = _final_state(through), _final_state(killed)
    kinds = ", ".join(sorted(a["rng"]))
    if not _same(a["rng"], b["rng"]):
        differ = [k for k in a["rng"] if not _same(a["rng"][k], b["rng"].get(k))]
        raise RuntimeError(f"RNG state after the resume differs from the uninterrupted run's: {differ}")
    if a["genotype"] != b["genotype"]:
        raise RuntimeError("the resumed search found another genotype than the uninterrupted one")
    return f"killed after {len(history)} epoch(s); final RNG states equal ({kinds}), same genotype"


# ================================================================================== main


def print_table(rows: list[Row], device: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"wcbench GPU check on {device}")
    for col in ("check", "status", "s", "peak MiB", "detail"):
        table.add_column(col, justify="right" if col in ("s", "peak MiB") else "left")
    for r in rows:
        style = {"ok": "green", "FAIL": "bold red", "skip": "yellow"}[r.status]
        mem = "-" if r.memory_mb is None else f"{r.memory_mb:.0f}"
        table.add_row(r.check, f"[{style}]{r.status}[/]", f"{r.seconds:.1f}", mem, r.detail)
    Console(width=max(Console().width, 160)).print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", action="store_true", help="run on the CPU (the parts the test suite runs)")
    p.add_argument("--size", choices=("paper", "smoke"), default=None, help="paper (GPU default) | smoke")
    p.add_argument("--steps", type=int, default=3, help="steps per stage")
    p.add_argument("--examples", type=int, default=64, help="test examples per scorer")
    p.add_argument("--only", default=",".join(CHECKS), help=f"comma-separated subset of {','.join(CHECKS)}")
    p.add_argument("--algorithms", default=None, help="search algorithms (default: every registered one)")
    p.add_argument("--scorers", default=None, help="scorers (default: every registered one)")
    p.add_argument("--dataset", default="digits", help="dataset (default: the embedded digits)")
    p.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    p.add_argument("--timeout", type=int, default=1200, help="seconds per subprocess")
    args = p.parse_args(argv)
    args.size = args.size or ("smoke" if args.cpu else "paper")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the checks; 0 when none failed, 1 otherwise, 2 on bad options."""
    args = parse_args(argv)
    import torch

    from wcbench.registry import ALGORITHMS, SCORERS

    if not args.cpu and not torch.cuda.is_available():
        print("error: no CUDA device here; pass --cpu to run the CPU parts", file=sys.stderr)
        return 2
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(only) - set(CHECKS))
    if unknown or args.steps < 1:
        print(
            f"error: --only {unknown} / --steps {args.steps}: choose from {', '.join(CHECKS)}",
            file=sys.stderr,
        )
        return 2
    device = "cpu" if args.cpu else "cuda"
    algorithms = args.algorithms.split(",") if args.algorithms else ALGORITHMS.names()
    scorers = args.scorers.split(",") if args.scorers else SCORERS.names()
    with tempfile.TemporaryDirectory(prefix="wcbench-gpu-check-") as tmp:
        work = args.work or Path(tmp)
        ctx = Context(args, device, work)
        os.environ.setdefault("WCBENCH_DATA", str(work / "data"))
        if "search" in only or ("ddp" in only or "retrain" in only):
            for algorithm in algorithms if "search" in only else algorithms[:1]:
                run_check(ctx, f"search ours-{algorithm}", lambda a=algorithm: check_search(ctx, a))
        if "retrain" in only or "score" in only:
            run_check(ctx, "retrain", lambda: check_retrain(ctx))
        if "score" in only:
            for name in scorers:
                run_check(ctx, f"score {name}", lambda n=name: check_score(ctx, n))
        if "ddp" in only:
            run_check(ctx, "ddp (torchrun)", lambda: check_ddp(ctx))
        if "resume" in only:
            run_check(ctx, "resume after SIGKILL", lambda: check_resume(ctx))
    print_table(ctx.rows, f"{device} ({torch.cuda.get_device_name() if device == 'cuda' else 'CPU'})")
    if args.json is not None:
        args.json.write_text(json.dumps([r.__dict__ for r in ctx.rows], indent=2))
    failed = [r.check for r in ctx.rows if r.status == "FAIL"]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
