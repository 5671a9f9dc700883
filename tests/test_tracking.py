"""Training curves for TensorBoard (issue #12, item 4): `--log tensorboard`, `log=` or `WCBENCH_LOG`
write the search's and the retrain's curves and the tester's sample grids under the stage directory."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from wcbench.cli import main
from wcbench.errors import ConfigError
from wcbench.tracking import ENV, Tracker, log_backends


def _require_tensorboard() -> None:
    if importlib.util.find_spec("tensorboard") is None:
        if os.environ.get("WCBENCH_REQUIRE_EXTRAS"):  # CI installs the extras: a missing one fails
            pytest.fail("tensorboard is not installed: pip install -e '.[tensorboard]'")
        pytest.skip("pip install 'wcbench[tensorboard]'")


def _events(log_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[int]]]:
    """The scalars (tag -> [(step, value)]) and images (tag -> [step]) TensorBoard reads back."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    images = {t: [e.step for e in acc.Images(t)] for t in acc.Tags()["images"]}
    return scalars, images


def test_the_logger_is_chosen_by_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert log_backends(None) == () and log_backends("none") == ()
    monkeypatch.setenv(ENV, "off")
    assert log_backends(None) == ()
    monkeypatch.setenv(ENV, "tensorbord")
    with pytest.raises(ConfigError, match="WCBENCH_LOG='tensorbord': unknown logger 'tensorbord'"):
        log_backends(None)
    assert log_backends("none") == ()  # the argument wins over the environment
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "tensorboard" else real(n, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'wcbench\[tensorboard\]'"):
        log_backends("tensorboard")


def test_no_logger_writes_nothing(tmp_path: Path) -> None:
    with Tracker(tmp_path, "search", "none") as tracker:
        tracker.scalars(0, {"val_acc": 50.0})
    assert list(tmp_path.iterdir()) == []


def test_bad_log_on_the_command_line_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["search", "--searcher", "darts1st", "--preset", "smoke", "--out", str(tmp_path / "s")]
    assert main([*argv, "--log", "wandb"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --log 'wandb': unknown logger") and err.count("\n") == 1
    assert not (tmp_path / "s").exists()  # checked before any work


def test_scalars_and_sample_grids_reach_tensorboard(tmp_path: Path) -> None:
    _require_tensorboard()
    import numpy as np
    from PIL import Image

    from searchers.loop import _track_epoch

    grid = tmp_path / "tester" / "epoch-001.png"
    grid.parent.mkdir()
    Image.fromarray(np.full((12, 20, 3), 200, dtype=np.uint8)).save(grid)
    stats = {"tester_loss": 0.5, "grid_png": "tester/epoch-001.png"}
    record = {"train_loss": 2.0, "train_acc": 0.25, "val_loss": 2.5, "val_acc": 0.125, "lr": 0.025,
              "arch_loss": None, "strategy": stats}  # fmt: skip
    with Tracker(tmp_path, "search", "tensorboard") as tracker:
        _track_epoch(tracker, tmp_path, 1, record)
    scalars, images = _events(tmp_path / "tensorboard")
    assert scalars["search/val_acc"] == [(1, 12.5)] and scalars["search/train_loss"] == [(1, 2.0)]
    assert scalars["search/strategy/tester_loss"] == [(1, 0.5)]
    assert "search/arch_loss" not in scalars  # None is no point
    assert images == {"search/tester_samples": [1]}


def test_a_search_and_a_retrain_log_their_curves(tmp_path: Path) -> None:
    _require_tensorboard()
    import wcbench

    tiny = {"epochs": 1, "max_steps_per_epoch": 2, "max_examples": 64}
    g = wcbench.search(
        "darts1st", tmp_path / "s", preset="smoke", settings=tiny, progress=False, log="tensorboard"
    )
    train = {"epochs": 2, "max_train_examples": 64, "max_valid_examples": 64, "layers": 2, "init_channels": 4}
    result = wcbench.retrain(g, "digits", tmp_path / "r", preset="smoke", settings=train, log="tensorboard")
    assert result.finished and result.out_dir == tmp_path / "r"  # a Genotype object retrains too
    search, _ = _events(tmp_path / "s" / "tensorboard")
    assert {"search/train_loss", "search/val_acc", "search/lr"} <= set(search)
    retrain, _ = _events(tmp_path / "r" / "tensorboard")
    assert [step for step, _ in retrain["retrain/train_loss"]] == [0, 1]
    assert {"retrain/valid_acc", "retrain/lr"} <= set(retrain)
