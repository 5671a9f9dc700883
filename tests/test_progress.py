"""Progress bars: off when asked or when stderr is not a terminal, drawn on stderr when forced."""

from __future__ import annotations

import pytest

from wcbench.progress import ProgressBars, console_err


def test_off_unless_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert not console_err.is_terminal  # pytest captures stderr
    for enabled in (None, False):
        with ProgressBars(enabled) as bars:
            task = bars.add("search darts", total=3, status="epoch 1/1")
            assert task is None and bars.bar is None
            bars.advance(task)
            bars.update(task, status="x")
            bars.remove(task)
    assert capsys.readouterr().err == ""


def test_forced_bars_draw_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBars(True) as bars:
        task = bars.add("retrain digits", total=4, completed=1)
        assert task is not None
        bars.advance(task)
        bars.update(task, advance=1, status="loss 0.500")
    err = capsys.readouterr().err
    assert "retrain digits" in err and "3/4" in err and "loss 0.500" in err
    assert capsys.readouterr().out == ""


def test_off_a_terminal_each_epoch_is_one_plain_line(capsys: pytest.CaptureFixture[str]) -> None:
    # a SLURM log or a pipe gets no bar but a line per epoch, flushed at once
    with ProgressBars(None) as bars:
        assert bars.lines
        bars.epoch_line("search darts1st", 2, 10, 1.23456, 45.678, 12.34, "val_acc 40.00%")
    assert (
        capsys.readouterr().err == "search darts1st epoch 2/10 loss 1.2346 acc 45.68% val_acc 40.00% 12.3s\n"
    )
    with ProgressBars(False, lines=False) as bars:  # a DDP rank other than 0
        bars.epoch_line("retrain digits", 1, 1, 1.0, 50.0, 1.0)
    with ProgressBars(True) as bars:  # forced bars: the bar shows the epoch, no line besides it
        assert not bars.lines
        bars.epoch_line("retrain digits", 1, 1, 1.0, 50.0, 1.0)
    assert "epoch 1/1" not in capsys.readouterr().err
