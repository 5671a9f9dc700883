"""Ctrl-C and SIGTERM: one line, exit 130 / 143, "rerun the same command to resume" (issue #13)."""

from __future__ import annotations

import os
import signal

import pytest

from wcbench.cli import main
from wcbench.errors import Interrupted
from wcbench.interrupts import interrupt_handlers


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_inside_the_handlers_is_one_interrupted_exception(signum: int, code: int) -> None:
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as info, interrupt_handlers():
        os.kill(os.getpid(), signum)
    assert info.value.exit_code == code and not isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signum) is before  # restored afterwards


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_print_one_line_and_exit_128_plus_the_signal(
    signum: int, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signum)

    monkeypatch.setattr("wcbench.pipeline.make_plan", interrupted)
    assert main(["run", "--searcher", "darts1st", "--preset", "smoke"]) == code
    err = capsys.readouterr().err
    assert err.splitlines() == ["interrupted; rerun the same command to resume"]
