"""Reliability helpers of the job runners (``dbalib.core.sweep``): naming a config in an error,
validating seeds and output folders, running jobs so that a failing one is reported after the
healthy ones, and pool workers that die with their parent."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from .atomic import check_writable_dir, remove_temporaries
from .config import Config
from .errors import ConfigError, SweepError
from .paths import cache_dir
from .presets import preset, preset_names


def describe_config(cfg: Config) -> str:
    """``name`` plus the keys that differ from its preset (or the defaults), e.g. ``clean (eta=0.5)``."""
    try:
        base = preset(cfg.name) if cfg.name in preset_names() else Config()
    except ConfigError:
        base = Config()
    ignored = {"name", "progress", "data_dir", "device", "engine"}  # device and engine: resolved by check()
    changed = {k: v for k, v in cfg.to_dict().items() if k not in ignored and v != base.to_dict().get(k)}
    params = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in changed.items())
    return f"{cfg.name} ({params})" if params else cfg.name


def failure_line(cfg: Config, seed: int, reason: str) -> str:
    params = describe_config(cfg)[len(cfg.name):].strip()
    return f"{cfg.name} seed {seed}: {reason}" + (f" {params}" if params else "")


def check_seeds(seeds) -> list[int]:
    """Seeds as a list of non-negative ints; an int is one seed. A string (papermill passes
    ``SEEDS: "10"`` as text, which would otherwise run seeds 1 and 0) is a ``ConfigError``."""
    import math
    import numbers

    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [seeds]
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ConfigError(f"seeds (notebook parameter SEEDS) must be a list of integers like [0, 1], got {seeds!r}")
    seeds = list(seeds)
    out = []
    for s in seeds:
        if (isinstance(s, bool) or not isinstance(s, numbers.Real) or not math.isfinite(s) or s != int(s)
                or s < 0):
            raise ConfigError(f"seeds (notebook parameter SEEDS) must be non-negative integers, got {s!r} in {seeds}")
        out.append(int(s))
    if not out:
        raise ConfigError("no seeds given")
    return out


def reason_of(exc: BaseException) -> str:
    if getattr(exc, "round", None) is not None:  # DivergedError: the config is named by the caller
        return f"diverged in round {exc.round} (the global model is no longer finite)"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_output_folders(out: Path) -> None:
    """The results folder and the pretraining cache are writable folders (one-line error before training)."""
    check_writable_dir(out, "the results folder (--out)")
    check_writable_dir(cache_dir(), "the pretraining cache ($DBALIB_CACHE)")


def completed_note(n: int) -> str:
    return f" (the other {n} run(s) completed and are cached)" if n else ""


def run_serial(jobs: list[tuple[Config, int]], out: Path, progress: bool, run_one) -> None:
    """Every job in this process; a failing job is reported at the end, after every other job."""
    failures = []
    bar = tqdm(jobs, desc="runs", unit="run", disable=not progress or len(jobs) == 1)
    for cfg, seed in bar:
        bar.set_postfix_str(f"{cfg.name} seed {seed}")
        try:
            run_one(cfg, seed, out, show_progress=progress)
        except Exception as exc:  # noqa: BLE001 - reported below, with the job
            failures.append((cfg, seed, exc, failure_line(cfg, seed, reason_of(exc))))
    bar.close()
    if failures:
        raise SweepError(f"{len(failures)} run(s) failed: " + "; ".join(f[3] for f in failures)
                         + completed_note(len(jobs) - len(failures)), [f[:3] for f in failures])


def _exit_now(*_) -> None:
    """Leave at once (no half-written temporary file left behind)."""
    remove_temporaries()
    os._exit(143)


def die_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """Make this worker process end when ``parent`` ends (kill -9 or SIGTERM included): the kernel
    sends SIGTERM on the parent's death (Linux ``prctl(PR_SET_PDEATHSIG)``), SIGTERM removes our
    temporary files and exits, and a watchdog thread exits when the parent pid changes (other
    systems, or a parent that died before the prctl)."""
    import signal
    import sys
    import threading

    signal.signal(signal.SIGTERM, _exit_now)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        _exit_now()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        _exit_now()

    threading.Thread(target=watch, name="dbalib-parent-watchdog", daemon=True).start()


def terminate_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now (an interrupt): its workers get SIGTERM (they remove their temporary files)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        try:
            process.terminate()
        except (OSError, ValueError, AttributeError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)


