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
