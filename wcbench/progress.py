"""Progress on stderr, shared by the search loop and retraining: rich bars on a terminal, plain lines
elsewhere.

Bars are drawn only when asked and when stderr is a terminal; ``enabled=True`` forces them on. Where
stderr is not a terminal (a SLURM log, a pipe, a notebook) no bar is drawn and each finished epoch is
one plain line instead (:meth:`ProgressBars.epoch_line`), so a batch job's log shows a long stage
advancing. :data:`console_err` is the one stderr console: the command line prints its messages through
it too, so they appear above a running bar instead of inside it.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console_err = Console(stderr=True)


class ProgressBars:
    """Named bars (description, bar, done/total, elapsed, remaining, status); silent when off.

    ``enabled``: None draws bars only on a terminal, True always, False never. Every method is a
    no-op when the bars are off, so callers need no ``if``; tasks are then None. ``lines``: the
    per-epoch plain lines of :meth:`epoch_line`; None prints them when no bar is drawn and stderr is
    not a terminal, False never (a DDP rank other than 0).
    """

    def __init__(self, enabled: bool | None = None, lines: bool | None = None) -> None:
        self.enabled = console_err.is_terminal if enabled is None else bool(enabled)
        self.lines = (not self.enabled and not console_err.is_terminal) if lines is None else bool(lines)
        self.bar: Progress | None = None
        if self.enabled:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                console=console_err,
                transient=False,
            )

    def start(self) -> None:
        if self.bar is not None:
            self.bar.start()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __enter__(self) -> ProgressBars:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, description: str, total: int, completed: int = 0, status: str = "") -> TaskID | None:
        """A new bar; None when the bars are off."""
        if self.bar is None:
            return None
        return self.bar.add_task(description, total=total, completed=completed, status=status)

    def advance(self, task: TaskID | None, steps: int = 1) -> None:
        if self.bar is not None and task is not None:
            self.bar.advance(task, steps)

    def update(self, task: TaskID | None, **fields: Any) -> None:
        """``rich.progress.Progress.update``: ``advance=``, ``completed=``, ``status=`` ..."""
        if self.bar is not None and task is not None:
            self.bar.update(task, **fields)

    def remove(self, task: TaskID | None) -> None:
        if self.bar is not None and task is not None:
            self.bar.remove_task(task)

    def epoch_line(
        self, stage: str, epoch: int, total: int, loss: float, acc: float, seconds: float, extra: str = ""
    ) -> None:
        """One plain line on stderr for a finished epoch (1-based ``epoch`` of ``total``; ``acc`` in
        %), flushed at once, when :attr:`lines` is on: ``search ours-pdarts epoch 3/10 loss 1.2345
        acc 56.78% val_loss 1.3000 val_acc 52.10% 12.3s``."""
        if not self.lines:
            return
        text = f"{stage} epoch {epoch}/{total} loss {loss:.4f} acc {acc:.2f}%"
        if extra:
            text += f" {extra}"
        print(f"{text} {seconds:.1f}s", file=sys.stderr, flush=True)
