"""Exceptions that carry a one-line message for the user (the CLI prints them and exits 2)."""


class DbalibError(Exception):
    """Base class of every error dbalib raises on purpose, with a message that says what to do."""


class ConfigError(DbalibError, ValueError):
    """A run or sweep configuration is invalid (raised before any training)."""


class DataError(DbalibError, RuntimeError):
    """MNIST is missing, corrupt or cannot be rebuilt."""


class StorageError(DbalibError, OSError):
    """A result, checkpoint or lock file cannot be written (full disk, read-only folder, ...)."""


class CorruptResultError(DbalibError, RuntimeError):
    """A stored result or checkpoint is damaged (truncated, altered, or made for another run)."""


class DivergedError(DbalibError, ArithmeticError):
    """A run's global model stopped being finite (NaN or inf): nothing of it is stored."""


class SweepError(DbalibError):
    """Some jobs failed after their retries (the message lists them by config and seed; every
    healthy job was completed and is in the cache). ``failures``: [(config, seed, error or None)]."""

    def __init__(self, message: str, failures: list | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []

    def single(self) -> DbalibError:
        """The job's own error when exactly one job failed with a ``DbalibError``, else self."""
        if len(self.failures) == 1 and isinstance(self.failures[0][2], DbalibError):
            return self.failures[0][2]
        return self


class CodeChangedError(DbalibError):
    """A worker's simulator code differs from its parent's (files changed during a run)."""
