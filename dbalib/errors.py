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
