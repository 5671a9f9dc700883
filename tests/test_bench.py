"""`wcbench bench`: every figure is a ratio of two measurements taken in the same run (no timing asserts)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from wcbench import bench, cpus
from wcbench.bench import busy_processes, measure_loaders, measure_scoring
from wcbench.cli import main


def test_loader_and_scoring_ratios_are_ratios_of_their_measurements() -> None:
    ld = measure_loaders(n=512, batch_size=128, epochs=1)
    assert ld["ratio"] == pytest.approx(ld["device_loader_images_per_s"] / ld["pil_dataloader_images_per_s"])
    sc = measure_scoring(n=64)
    assert sc["ratio"] == pytest.approx(sc["batched_images_per_s"] / sc["single_images_per_s"])


def test_bench_json_reports_searchers_against_darts2nd(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the loader and scoring figures at test size (their ratios have their own test above)
    monkeypatch.setattr(
        bench, "measure_loaders", functools.partial(measure_loaders, n=256, batch_size=64, epochs=1)
    )
    monkeypatch.setattr(bench, "measure_scoring", functools.partial(measure_scoring, n=16))
    parts = "search,data,scoring"  # the ours and load figures have their own tests
    argv = ["bench", "--json", "--steps", "2", "--searchers", "darts1st,darts2nd", "--parts", parts]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["search"]["darts2nd"]["time_vs_darts2nd"] == pytest.approx(1.0)
    d1 = result["search"]["darts1st"]
    assert d1["time_vs_darts2nd"] == pytest.approx(
        d1["s_per_step"] / result["search"]["darts2nd"]["s_per_step"]
    )
    assert {"loader", "scoring"} <= set(result) and "load" not in result and result["ours"] == {}
    assert {"threads", "workers", "wait_policy"} <= set(result["cpus"])


def test_ours_figures_are_cr_and_ncr_searches_against_darts2nd(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    seconds = {"darts2nd": 2.0, "ours-darts2nd": 3.0, "ours-darts2nd NCR": 5.0}

    def measured(searcher: str, overrides: dict[str, Any] | None = None, **_: Any) -> dict[str, float]:
        calls.append((searcher, dict(overrides or {})))
        s = seconds[searcher + (" NCR" if overrides else "")]
        return {"s_per_step": s, "peak_memory_mb": 100 * s}

    monkeypatch.setattr(bench, "measure_search", measured)
    result = bench.run_bench(steps=2, searchers=(), parts=("ours",), log=lambda _: None)
    assert calls == [
        ("darts2nd", {}),
        ("ours-darts2nd", {}),
        ("ours-darts2nd", {"strategy.cost_reduction": False}),
    ]
    cr, ncr = result["ours"]["ours-darts2nd (CR)"], result["ours"]["ours-darts2nd (NCR)"]
    assert (cr["time_vs_darts2nd"], ncr["time_vs_darts2nd"]) == (1.5, 2.5)
    assert (cr["memory_vs_darts2nd"], ncr["memory_vs_darts2nd"]) == (1.5, 2.5)


def test_bench_rejects_an_unknown_searcher(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--searchers", "darts3rd"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_bench_rejects_an_unknown_part_or_wait_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--parts", "search,speed"]) == 2
    assert "speed" in capsys.readouterr().err
    assert main(["bench", "--parts", "load", "--wait-policies", "lazy"]) == 2
    assert "lazy" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ search under load


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_busy_processes_are_killed_on_leaving() -> None:
    with busy_processes(2, seconds=600) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.returncode is not None and not _alive(p.pid) for p in procs)


def test_busy_processes_stop_themselves_at_the_deadline() -> None:
    with busy_processes(1, seconds=0.2) as procs:
        assert procs[0].wait(timeout=120) == 0  # ended by its own deadline, not killed


def test_the_environment_of_a_child_is_put_back() -> None:
    before = dict(os.environ)
    with bench._environ({"OMP_WAIT_POLICY": None, "WCBENCH_WAIT_POLICY": "default"}):
        assert "OMP_WAIT_POLICY" not in os.environ and os.environ["WCBENCH_WAIT_POLICY"] == "default"
    assert dict(os.environ) == before


@pytest.fixture
def fake_search(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """measure_search replaced by a stand-in that notes the busy processes beside it (no real search):
    idle 0.1 s/step, loaded 0.3 s/step."""
    calls: list[dict[str, Any]] = []
    real = bench.busy_processes

    @contextlib.contextmanager
    def spy(n: int, seconds: float) -> Iterator[list[Any]]:
        with real(n, seconds) as procs:
            calls.append({"busy": procs})
            yield procs

    def measure(
        searcher: str, overrides: Any = None, steps: int = 8, threads: int = 1, env: Any = None
    ) -> dict[str, float]:
        busy = calls[-1]["busy"] if calls and "searcher" not in calls[-1] else []
        alive = sum(p.poll() is None for p in busy)
        calls.append({"searcher": searcher, "steps": steps, "threads": threads, "env": dict(env or {}),
                      "busy_alive": alive})  # fmt: skip
        return {"s_per_step": 0.3 if alive else 0.1, "peak_memory_mb": 1.0}

    monkeypatch.setattr(bench, "busy_processes", spy)
    monkeypatch.setattr(bench, "measure_search", measure)
    return calls


def test_load_figure_is_loaded_over_idle_against_the_fair_share(
    fake_search: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "--json", "--parts", "load", "--steps", "3", "--load-procs", "2", "--wait-policies",
            "default,passive"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    load = result["load"]
    assert set(result) == {"machine", "cpus", "search", "ours", "load"} and result["search"] == {}
    threads, allowed = torch.get_num_threads(), cpus.allowed_cpus()
    assert (load["busy_processes"], load["threads"], load["allowed_cpus"]) == (2, threads, allowed)
    assert load["fair_share_slowdown"] == pytest.approx(cpus.fair_share_slowdown(2, threads, allowed))
    assert list(load["by_wait_policy"]) == ["default", "PASSIVE"]
    for rec in load["by_wait_policy"].values():
        assert rec["slowdown"] == pytest.approx(rec["loaded_s_per_step"] / rec["idle_s_per_step"])
        assert rec["slowdown"] == pytest.approx(3.0)
        assert rec["slowdown_vs_fair_share"] == pytest.approx(3 / load["fair_share_slowdown"])
        assert rec["load_ended_early"] is False
    searches = [c for c in fake_search if "searcher" in c]
    # idle, then loaded beside two live busy processes, per policy; the busy ones are gone afterwards
    assert [c["busy_alive"] for c in searches] == [0, 2, 0, 2]
    assert all(c["threads"] == threads and c["steps"] == 3 for c in searches)
    assert searches[0]["env"] == {"OMP_WAIT_POLICY": None, "WCBENCH_WAIT_POLICY": "default"}
    assert searches[2]["env"]["OMP_WAIT_POLICY"] == "PASSIVE"
    busy = [p for c in fake_search if "busy" in c for p in c["busy"]]
    assert len(busy) == 4 and all(p.returncode is not None for p in busy)


def test_load_figure_in_text(fake_search: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--parts", "load", "--load-procs", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    policy = cpus.record()["wait_policy"]
    fair = cpus.fair_share_slowdown(1, torch.get_num_threads(), cpus.allowed_cpus())
    assert f"OMP_WAIT_POLICY={policy}" in out and f"slowdown 3.0x vs fair share {fair:.1f}x" in out
