"""Results as data: per-round metrics on disk, keyed by the full config, written atomically.

A run of config ``c`` lives in ``<out>/<c.name>-<c.cache_key()>/`` (or in an existing folder with
the same key made under another name: the cache is keyed by the config, not its label):

- ``seeds/seed-<s>.csv`` and ``seeds/seed-<s>.json``: one finished seed (its rows and its
  timings); they are the cache: a seed whose files exist is never trained again;
- ``metrics.csv``: every finished seed's rows (one row per seed and round, tidy);
- ``run.json``: the full config, the cache key, the seeds, package versions, git commit, device,
  threads and seconds.

Each seed's JSON also names the machine's CPU and the vector instruction set torch used
(``machine_info``): CPU results are identical for one config and seed only on machines that run
the same kernels (see the README's "Determinism and threads").

Files are written to a temporary name, fsynced and renamed (``dbalib.core.atomic``), so a killed run
leaves the previous complete state (and whichever seeds finished) and never a half-written file.
Nothing damaged is used silently: each seed's JSON records the SHA-256 of its csv, the cache key
and the row count, checked on load with the rounds and finite metrics (a damaged seed counts as
missing and is computed again, with a warning naming the file). The summary is written under a
per-run lock and rebuilt on load whenever it disagrees with the seed files.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from . import __version__
from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, file_lock, sha256_bytes
from .config import Config
from .errors import CorruptResultError
from .fingerprint import code_fingerprint, source_dirty
from .paths import PROJECT_DIR

ID_COLUMNS = ["seed", "round"]
__all__ = ["Result", "RunStore", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "environment_info",
           "cpu_model", "machine_info"]
_SEED_FILE = re.compile(r"seed-(\d+)\.csv")


# environment variables that choose torch's CPU kernels (and so the last bits of CPU results)
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def machine_info() -> dict:
    """What decides which CPU kernels torch runs, recorded with every seed: the CPU model, ATen's
    vector instruction set (``torch.backends.cpu.get_cpu_capability()``: DEFAULT, AVX2, AVX512, ...)
    and the environment variables that cap it (empty when none is set). Two machines whose kernels
    differ give the same config and seed different last bits, which training can amplify."""
    import torch

    capped = " ".join(f"{name}={os.environ[name]}" for name in ISA_VARIABLES if os.environ.get(name))
    return {"cpu_model": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_isa_variables": capped}


@lru_cache(maxsize=1)
def environment_info() -> dict:
    """Versions and git state recorded with every run."""
    import numpy
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "dbalib": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "git_commit": commit,
        "git_dirty": source_dirty(),  # a tracked source file differs from the commit (outputs do not count)
        "code_fingerprint": code_fingerprint(),
    } | machine_info()


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
        with file_lock(self.seeds_dir / f"seed-{seed}.lock"):
            yield

    @contextmanager
    def summary_lock(self):
        """Exclusive lock on ``metrics.csv`` and ``run.json`` (no lost update between seeds)."""
        with file_lock(self.dir / "run.lock"):
            yield

    # --- seeds ------------------------------------------------------------------------------------
    def has_seed(self, seed: int) -> bool:
        """Whether ``seed`` is stored and intact; a damaged seed is reported (warning) and counts as
        missing, so that it is computed again."""
        try:
            return self.verified_seed(seed) is not None
        except CorruptResultError as exc:
            warnings.warn(f"{exc}; it will be recomputed", stacklevel=2)
            return False

    def finished_seeds(self) -> list[int]:
        """The intact stored seeds."""
        return [s for s in self._stored_seeds() if self.has_seed(s)]

    def _stored_seeds(self) -> list[int]:
        if not self.seeds_dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.seeds_dir.iterdir() if (m := _SEED_FILE.fullmatch(p.name)))

    def verified_seed(self, seed: int) -> tuple[pd.DataFrame, dict] | None:
        """The rows and info of a stored seed after every check (checksum, cache key, seed, rounds,
        finite metrics); None when the seed is not stored; ``CorruptResultError`` naming the file
        when it is damaged."""
        csv_path, json_path = self._seed_paths(seed)
        if not csv_path.is_file():
            return None
        if not json_path.is_file():
            raise CorruptResultError(f"damaged result {csv_path}: its {json_path.name} is missing")
        try:
            info = json.loads(json_path.read_text())
            if not isinstance(info, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptResultError(f"damaged result {json_path}: unreadable JSON ({exc})") from None
        payload = csv_path.read_bytes()
        expected = info.get("csv_sha256")  # absent in seeds stored before checksums: structure checks only
        if expected is not None and sha256_bytes(payload) != expected:
            raise CorruptResultError(f"damaged result {csv_path}: its SHA-256 does not match {json_path.name}")
        if info.get("cache_key", self.config.cache_key()) != self.config.cache_key():
            raise CorruptResultError(f"damaged result {json_path}: it was made for another config "
                                     f"(cache key {info.get('cache_key')})")
        if info.get("seed", seed) != seed:
            raise CorruptResultError(f"damaged result {json_path}: it holds seed {info.get('seed')}, not {seed}")
        rows = self._parse_rows(csv_path, payload)
        problem = self._rows_problem(rows, seed)
        if problem:
            raise CorruptResultError(f"damaged result {csv_path}: {problem}")
        return rows, info

    @staticmethod
    def _parse_rows(csv_path: Path, payload: bytes) -> pd.DataFrame:
        import io

        try:
            rows = pd.read_csv(io.BytesIO(payload), dtype={"attackers": "string"})
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:  # EmptyDataError is a ValueError
            raise CorruptResultError(f"damaged result {csv_path}: unreadable CSV "
                                     f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        if "attackers" in rows:
            rows["attackers"] = rows["attackers"].fillna("")
        return rows

    def _rows_problem(self, rows: pd.DataFrame, seed: int) -> str | None:
        cfg = self.config
        expected = list(range(cfg.pretrain_rounds, cfg.rounds + 1))
        missing = [c for c in ("seed", "round", "clean_acc", "asr_global") if c not in rows.columns]
        if missing:
            return f"columns {missing} are missing"
        if len(rows) != len(expected):
            return f"{len(rows)} rows, expected {len(expected)} (rounds {expected[0]}..{expected[-1]})"
        if rows["round"].tolist() != expected:
            return f"rounds are not {expected[0]}..{expected[-1]}"
        if set(rows["seed"].tolist()) != {seed}:
            return f"it holds the rows of seed(s) {sorted(set(rows['seed'].tolist()))}, not {seed}"
        for column in ["clean_acc"] + [c for c in rows.columns if c.startswith("asr_")]:
            values = pd.to_numeric(rows[column], errors="coerce")
            bad = ~values.between(0.0, 1.0)  # NaN, inf and out-of-range fractions
            if bad.any():
                round_ = int(rows["round"][bad].iloc[0])
                return f"{column} is not a finite fraction in round {round_} ({rows[column][bad].iloc[0]})"
        return None

    def load_seed(self, seed: int) -> tuple[pd.DataFrame, dict]:
        """The verified rows and info of a stored seed (``CorruptResultError`` naming the file
        when it is missing or damaged)."""
        found = self.verified_seed(seed)
        if found is None:
            raise CorruptResultError(f"missing result {self._seed_paths(seed)[0]}")
        return found

    def save_seed(self, seed: int, rows: pd.DataFrame, info: dict) -> None:
        """Store a finished seed (info first: the csv marks completion), then refresh the summary.

        The info records the csv's SHA-256, the cache key and the row count, checked on load, and
        the machine that computed it (``machine_info``)."""
        problem = self._rows_problem(rows, seed)
        if problem:  # never store what would be refused on load
            raise CorruptResultError(f"refusing to store seed {seed} of {self.config.name}: {problem}")
        csv_path, json_path = self._seed_paths(seed)
        payload = rows.to_csv(index=False).encode()
        info = machine_info() | dict(info) | {"seed": seed, "cache_key": self.config.cache_key(),
                                               "rows": len(rows), "csv_sha256": sha256_bytes(payload)}
        atomic_write_json(json_path, info)
        atomic_write_bytes(csv_path, payload)
        self.write_summary()

    # --- summary ----------------------------------------------------------------------------------
    def load(self, seeds: list[int], config: Config) -> "Result":
        """The Result of ``seeds`` (all finished) of this config; the summary is rebuilt first when
        it disagrees with the seed files."""
        frames, infos = [], {}
        for seed in seeds:
            frame, infos[seed] = self.load_seed(seed)
            frames.append(frame)
        self.repair_summary()
        return Result(config, list(seeds), pd.concat(frames, ignore_index=True), self.dir, infos)

    def summary_is_current(self) -> bool:
        """Whether ``run.json`` and ``metrics.csv`` describe exactly the intact seed files."""
        seeds = self.finished_seeds()
        try:
            summary = json.loads((self.dir / "run.json").read_text())
            if summary.get("seeds") != seeds or summary.get("cache_key") != self.config.cache_key():
                return False
            for seed in seeds:
                stored = json.loads(self._seed_paths(seed)[1].read_text()).get("csv_sha256")
                if summary["per_seed"][str(seed)].get("csv_sha256") != stored:
                    return False
            metrics = self.dir / "metrics.csv"
            if not seeds:
                return not metrics.exists()
            return sha256_bytes(metrics.read_bytes()) == summary.get("metrics_sha256")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False

    def repair_summary(self) -> bool:
        """Rebuild the summary when it is stale (a kill or full disk between a seed and its summary,
        an edited file); True when it was rebuilt."""
        if self.summary_is_current():
            return False
        self.write_summary()
        return True

    def write_summary(self) -> None:
        """Write ``metrics.csv`` and ``run.json`` from the intact seed files, under the run lock (the
        last writer sees every seed, so two seeds finishing at once lose nothing)."""
        with self.summary_lock():
            seeds, frames, infos = [], [], {}
            for seed in self._stored_seeds():
                try:
                    found = self.verified_seed(seed)
                except CorruptResultError as exc:
                    warnings.warn(f"{exc}; left out of the summary", stacklevel=2)
                    continue
                if found is not None:
                    seeds.append(seed)
                    frames.append(found[0])
                    infos[str(seed)] = found[1]
            metrics = self.dir / "metrics.csv"
            digest = None
            if frames:
                payload = pd.concat(frames).to_csv(index=False).encode()
                digest = sha256_bytes(payload)
                atomic_write_bytes(metrics, payload)
            else:
                metrics.unlink(missing_ok=True)
            atomic_write_json(self.dir / "run.json", {
                "name": self.config.name,
                "cache_key": self.config.cache_key(),
                "config": self.config.to_dict(),
                "seeds": seeds,
                "per_seed": infos,
                "metrics_sha256": digest,
                "total_seconds": round(sum(_seconds(i) for i in infos.values()), 3),
                "environment": environment_info(),
            })


def _seconds(info: dict) -> float:
    value = info.get("seconds_total", 0.0)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


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

    def with_seeds(self, seeds: list[int]) -> "Result":
        """The same result restricted to ``seeds`` (e.g. to see what fewer seeds would have said)."""
        missing = sorted(set(seeds) - set(self.seeds))
        if missing:
            raise KeyError(f"seeds {missing} are not in this result (it has {self.seeds})")
        keep = [s for s in self.seeds if s in set(seeds)]
        return Result(self.config, keep, self.metrics[self.metrics["seed"].isin(keep)].reset_index(drop=True),
                      self.run_dir, {k: v for k, v in self.info.items() if int(k) in set(keep)})

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
