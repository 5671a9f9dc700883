"""`wcbench bench`: every figure is a ratio of two measurements taken in the same run (no timing asserts)."""

from __future__ import annotations

import json

import pytest

from wcbench.bench import measure_loaders, measure_scoring
from wcbench.cli import main


def test_loader_and_scoring_ratios_are_ratios_of_their_measurements() -> None:
    ld = measure_loaders(n=512, batch_size=128, epochs=1)
    assert ld["ratio"] == pytest.approx(ld["device_loader_images_per_s"] / ld["pil_dataloader_images_per_s"])
    sc = measure_scoring(n=64)
    assert sc["ratio"] == pytest.approx(sc["batched_images_per_s"] / sc["single_images_per_s"])


def test_bench_json_reports_searchers_against_darts2nd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--json", "--steps", "2", "--searchers", "darts1st,darts2nd"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["search"]["darts2nd"]["time_vs_darts2nd"] == pytest.approx(1.0)
    d1 = result["search"]["darts1st"]
    assert d1["time_vs_darts2nd"] == pytest.approx(
        d1["s_per_step"] / result["search"]["darts2nd"]["s_per_step"]
    )
    assert set(result["ours"]) == {"ours-darts2nd (CR)", "ours-darts2nd (NCR)"}
    assert {"loader", "scoring"} <= set(result)


def test_bench_rejects_an_unknown_searcher(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--searchers", "darts3rd"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
