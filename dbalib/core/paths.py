"""The project's folders as `pathlib` constants, and the data folder rule.

The data folder is, in order of precedence: the run config's ``data_dir`` key, the
``DBALIB_DATA`` environment variable, then ``$XDG_CACHE_HOME/dbalib/data`` (by default
``~/.cache/dbalib/data``). The result and pretraining caches follow the same pattern with
``DBALIB_RESULTS`` / ``DBALIB_CACHE``.

Notebooks write their figures and key numbers to ``build/figures`` and ``build/results``;
only a run that publishes (``DBALIB_PUBLISH=1``, which ``make figures`` sets for a run with the
notebooks' defaults or ``PUBLISH=1``) writes the tracked ``figures/`` and ``results/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .atomic import atomic_write_bytes

CORE_DIR = Path(__file__).resolve().parent  # dbalib/core: the simulator core
PACKAGE_DIR = CORE_DIR.parent  # dbalib
PROJECT_DIR = PACKAGE_DIR.parent
FIGURES_DIR = PROJECT_DIR / "figures"
RESULTS_DIR = PROJECT_DIR / "results"  # tracked key numbers of each notebook (JSON)
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
PAPER_DIR = PROJECT_DIR / "paper"
BUILD_DIR = PROJECT_DIR / "build"


def publishing() -> bool:
    """Whether notebook outputs go to the tracked folders: ``DBALIB_PUBLISH`` is 1, true or yes."""
    return os.environ.get("DBALIB_PUBLISH", "").strip().lower() in ("1", "true", "yes")


def figures_dir(override: str | os.PathLike | None = None) -> Path:
    """Where a notebook's figures go: ``override``, else figures/ when publishing, else build/figures."""
    if override:
        return Path(override).expanduser()
    return FIGURES_DIR if publishing() else BUILD_DIR / "figures"


def results_dir(override: str | os.PathLike | None = None) -> Path:
    """Where a notebook's key numbers go: ``override``, else results/ when publishing, else build/results."""
    if override:
        return Path(override).expanduser()
    return RESULTS_DIR if publishing() else BUILD_DIR / "results"


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


def write_output(path: str | os.PathLike, payload: bytes) -> Path:
    """Write a figure or key-number file atomically (temporary file, fsync, rename); in the tracked
    figures/ and results/ it is then given mode 0644, the mode git checks out."""
    path = Path(path)
    atomic_write_bytes(path, payload)
    if path.resolve().parent in (FIGURES_DIR, RESULTS_DIR):
        os.chmod(path, 0o644)
    return path
