"""The project's folders as `pathlib` constants, and the data folder rule.

The data folder is, in order of precedence: the run config's ``data_dir`` key, the
``DBALIB_DATA`` environment variable, then ``$XDG_CACHE_HOME/dbalib/data`` (by default
``~/.cache/dbalib/data``). The result and pretraining caches follow the same pattern with
``DBALIB_RESULTS`` / ``DBALIB_CACHE``.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
FIGURES_DIR = PROJECT_DIR / "figures"
RESULTS_DIR = PROJECT_DIR / "results"  # tracked key numbers of each notebook (JSON)
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
PAPER_DIR = PROJECT_DIR / "paper"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dbalib`` or ``~/.cache/dbalib``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dbalib"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder that holds ``MNIST/raw/*-ubyte`` (torchvision's layout)."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("DBALIB_DATA")
    return Path(env).expanduser() if env else user_cache_dir() / "data"


def runs_dir(override: str | os.PathLike | None = None) -> Path:
    """Default output folder of runs (``<runs>/<run-id>/metrics.csv``)."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("DBALIB_RUNS")
    return Path(env).expanduser() if env else PROJECT_DIR / "runs"


def cache_dir() -> Path:
    """Folder of the shared pretraining checkpoints."""
    env = os.environ.get("DBALIB_CACHE")
    return Path(env).expanduser() if env else user_cache_dir() / "cache"
