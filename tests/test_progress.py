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
