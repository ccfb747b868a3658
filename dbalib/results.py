"""Results as data: per-round metrics on disk, keyed by the full config, written atomically.

A run of config ``c`` lives in ``<out>/<c.name>-<c.cache_key()>/`` (or in an existing folder with
the same key made under another name: the cache is keyed by the config, not its label):

- ``seeds/seed-<s>.csv`` and ``seeds/seed-<s>.json``: one finished seed (its rows and its
  timings); they are the cache: a seed whose files exist is never trained again;
- ``metrics.csv``: every finished seed's rows (one row per seed and round, tidy);
- ``run.json``: the full config, the cache key, the seeds, package versions, git commit, device,
  threads and seconds.

Files are written to a temporary name and renamed, so a killed run leaves the previous complete
state (and whichever seeds finished) and never a half-written file.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .config import Config
from .paths import PROJECT_DIR

ID_COLUMNS = ["seed", "round"]


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


@lru_cache(maxsize=1)
def environment_info() -> dict:
    """Versions and git state recorded with every run."""
    import numpy
    import torch

    import dbalib

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=PROJECT_DIR, capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {
        "dbalib": dbalib.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "git_commit": commit,
        "git_dirty": dirty,
    }


class RunStore:
    """The folder of one config's results (see the module docstring)."""

    def __init__(self, out: Path, config: Config) -> None:
        self.config = config
        key = config.cache_key()
        # the cache is keyed by the config alone: reuse a folder made under another name
        existing = sorted(Path(out).glob(f"*-{key}")) if Path(out).is_dir() else []
        self.dir = existing[0] if existing else Path(out) / f"{config.name}-{key}"
        self.seeds_dir = self.dir / "seeds"

    def _seed_paths(self, seed: int) -> tuple[Path, Path]:
        return self.seeds_dir / f"seed-{seed}.csv", self.seeds_dir / f"seed-{seed}.json"

    @contextmanager
    def seed_lock(self, seed: int):
        """Exclusive lock on one seed of this config, across processes (flock on a lock file)."""
        self.seeds_dir.mkdir(parents=True, exist_ok=True)
        with open(self.seeds_dir / f"seed-{seed}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def has_seed(self, seed: int) -> bool:
        return all(p.is_file() for p in self._seed_paths(seed))

    def finished_seeds(self) -> list[int]:
        if not self.seeds_dir.is_dir():
            return []
        seeds = [int(p.stem.split("-", 1)[1]) for p in self.seeds_dir.glob("seed-*.csv")]
        return sorted(s for s in seeds if self.has_seed(s))

    def load_seed(self, seed: int) -> tuple[pd.DataFrame, dict]:
        csv_path, json_path = self._seed_paths(seed)
        rows = pd.read_csv(csv_path, dtype={"attackers": "string"})
        rows["attackers"] = rows["attackers"].fillna("")
        return rows, json.loads(json_path.read_text())

    def save_seed(self, seed: int, rows: pd.DataFrame, info: dict) -> None:
        """Store a finished seed (info first: the csv marks completion), then refresh the summary."""
        csv_path, json_path = self._seed_paths(seed)
        atomic_write_json(json_path, info)
        atomic_write_text(csv_path, rows.to_csv(index=False))
        self.write_summary()

    def load(self, seeds: list[int], config: Config) -> "Result":
        """The Result of ``seeds`` (all finished) of this config."""
        frames, infos = [], {}
        for seed in seeds:
            frame, infos[seed] = self.load_seed(seed)
            frames.append(frame)
        return Result(config, list(seeds), pd.concat(frames, ignore_index=True), self.dir, infos)

    def write_summary(self) -> None:
        seeds = self.finished_seeds()
        frames, infos = [], {}
        for seed in seeds:
            rows, info = self.load_seed(seed)
            frames.append(rows)
            infos[str(seed)] = info
        if frames:
            atomic_write_text(self.dir / "metrics.csv", pd.concat(frames).to_csv(index=False))
        atomic_write_json(self.dir / "run.json", {
            "name": self.config.name,
            "cache_key": self.config.cache_key(),
            "config": self.config.to_dict(),
            "seeds": seeds,
            "per_seed": infos,
            "total_seconds": round(sum(i.get("seconds_total", 0.0) for i in infos.values()), 3),
            "environment": environment_info(),
        })


@dataclass
class Result:
    """Metrics of one config over one or more seeds (a tidy ``DataFrame``, one row per seed and
    round), with the config, where they are stored and the per-seed run information."""

    config: Config
    seeds: list[int]
    metrics: pd.DataFrame
    run_dir: Path
    info: dict  # seed -> {seconds, pretraining accuracy, device, ...}

    def curve(self, metric: str) -> pd.DataFrame:
        """Per round: mean, std, min and max of ``metric`` over the seeds."""
        grouped = self.metrics.groupby("round")[metric]
        return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=0),
                             "min": grouped.min(), "max": grouped.max()})

    def at(self, round_: int, metric: str) -> float:
        """Mean over seeds of ``metric`` at ``round_``."""
        rows = self.metrics[self.metrics["round"] == round_]
        if rows.empty:
            raise KeyError(f"round {round_} is not in this run ({self.first_round}..{self.last_round})")
        return float(rows[metric].mean())

    @property
    def first_round(self) -> int:
        return int(self.metrics["round"].min())

    @property
    def last_round(self) -> int:
        return int(self.metrics["round"].max())

    @property
    def asr_columns(self) -> list[str]:
        return [c for c in self.metrics.columns if c.startswith("asr_")]

    def table(self, rounds: list[int], metrics: list[str] | None = None) -> pd.DataFrame:
        """Mean over seeds of ``metrics`` (default: clean accuracy and every ASR) at ``rounds``."""
        metrics = metrics or ["clean_acc", *self.asr_columns]
        rows = self.metrics[self.metrics["round"].isin(rounds)]
        return rows.groupby("round")[metrics].mean()
