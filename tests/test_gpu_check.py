"""scripts/gpu_check.py, the GPU check of issue #15: its CPU parts, at smoke size (`--cpu`).

On a machine with GPUs the same script runs as is (`python scripts/gpu_check.py`); here each test runs
one group of its checks on the CPU and reads the table's rows (``--json``)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.timeouts import hang_guard

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def _run(gpu_check: ModuleType, tmp_path: Path, *args: str) -> tuple[int, dict[str, dict]]:
    out = tmp_path / "rows.json"
    argv = ["--cpu", "--steps", "1", "--examples", "8", "--work", str(tmp_path / "work"), "--json", str(out),
            "--timeout", str(int(hang_guard(300) or 3600)), *args]  # fmt: skip
    rc = gpu_check.main(argv)
    rows = {r["check"]: r for r in json.loads(out.read_text())}
    return rc, rows


def test_search_retrain_and_scorers_on_cpu(gpu_check: ModuleType, tmp_path: Path) -> None:
    rc, rows = _run(
        gpu_check, tmp_path, "--only", "search,retrain,score", "--algorithms", "darts1st",
        "--scorers", "clean,worst-case",
    )  # fmt: skip
    assert rc == 0, rows
    assert rows["search ours-darts1st"]["status"] == "ok"
    assert "strategy CR" in rows["search ours-darts1st"]["detail"]
    assert rows["retrain"]["status"] == "ok" and "fp32 (CPU)" in rows["retrain"]["detail"]
    assert rows["score clean"]["status"] == "ok" and rows["score clean"]["detail"].startswith("8 examples")
    # a scorer whose data is not on the machine is skipped with the reason, not failed
    assert rows["score worst-case"]["status"] == "skip" and "worst-case" in rows["score worst-case"]["detail"]


def test_ddp_retrain_under_torchrun_with_two_gloo_ranks(gpu_check: ModuleType, tmp_path: Path) -> None:
    rc, rows = _run(gpu_check, tmp_path, "--only", "ddp", "--algorithms", "darts1st")
    assert rc == 0, rows
    assert rows["ddp (torchrun)"]["status"] == "ok"
    assert "2 rank(s), gloo" in rows["ddp (torchrun)"]["detail"]


def test_search_killed_and_resumed_ends_with_the_uninterrupted_rng_state(
    gpu_check: ModuleType, tmp_path: Path
) -> None:
    rc, rows = _run(gpu_check, tmp_path, "--only", "resume")
    assert rc == 0, rows
    assert "final RNG states equal" in rows["resume after SIGKILL"]["detail"]


def test_a_failing_check_is_a_fail_row_and_exit_status_1(
    gpu_check: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(gpu_check, "check_search", lambda ctx, algorithm: "pretend")

    def broken(ctx: object) -> str:
        raise RuntimeError("loss is nan")

    monkeypatch.setattr(gpu_check, "check_retrain", broken)
    rc, rows = _run(gpu_check, tmp_path, "--only", "retrain", "--algorithms", "darts1st")
    assert rc == 1
    assert rows["retrain"] == {**rows["retrain"], "status": "FAIL", "detail": "RuntimeError: loss is nan"}
    assert "FAILED: retrain" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_asks_for_cpu(gpu_check: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--only", "search"]) == 2
    assert "--cpu" in capsys.readouterr().err
