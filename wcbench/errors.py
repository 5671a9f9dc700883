"""User-facing errors: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations


class WcbenchError(Exception):
    """A problem with the user's input or environment; the message names the fix."""

    exit_code = 2


class GenotypeError(WcbenchError):
    """A malformed genotype string, file or value."""


class DatasetError(WcbenchError):
    """A missing, unknown or malformed dataset."""


class ConfigError(WcbenchError):
    """An unknown preset, option or override."""


class RegistryError(WcbenchError):
    """An unknown searcher, algorithm, strategy, scorer or dataset name."""


class CheckpointError(WcbenchError):
    """A corrupt or incompatible checkpoint or run file."""


class TrainingError(WcbenchError):
    """Training diverged (NaN or inf loss)."""


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM (what SLURM sends before a kill) arrived (:mod:`wcbench.interrupts`).

    A ``BaseException`` but not a ``KeyboardInterrupt``: click turns those into a bare "Aborted",
    and ``except Exception`` handlers in libraries must not swallow it. The CLI prints one line and
    exits ``128 + signum`` (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
