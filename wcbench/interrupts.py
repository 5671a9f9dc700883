"""Ctrl-C and SIGTERM as one exception, :class:`wcbench.errors.Interrupted`, raised in the main thread.

The CLI installs the handlers around a command (:func:`interrupt_handlers`); the pipeline marks the
manifest and the running stage "interrupted" as the exception passes, the search and retrain loops
keep their last per-epoch checkpoint (every file is written atomically, so an interrupt never leaves
half a file), and the CLI prints "interrupted; rerun the same command to resume" and exits 130
(SIGINT) or 143 (SIGTERM, what SLURM sends before it kills a job).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from wcbench.errors import Interrupted

__all__ = ["interrupt_handlers"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupt_handlers() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` once; a second signal gets
    the default behaviour (a second Ctrl-C is a ``KeyboardInterrupt``, a second SIGTERM kills), so a
    hung cleanup can still be stopped. Processes forked inside the block (DataLoader workers) keep
    the default behaviour. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a forked child: behave as if no handler were installed
            signal.signal(signum, signal.SIG_DFL)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)
            return
        for s in SIGNALS:  # the next signal is the user insisting
            signal.signal(s, signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL)
        raise Interrupted(signum)

    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
