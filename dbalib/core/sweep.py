"""Running many (config, seed) jobs: in this process, in local worker processes, or on Ray.

Every run goes through the result cache (``dbalib.core.results.RunStore``): a finished seed is never
trained again, so a stopped sweep resumes where it stopped. Jobs are validated before any
training, ordered longest first (so parallel workers finish together) and executed by a backend:

- ``local``: a pool of ``workers`` processes on this machine, each with ``threads`` torch threads
  (default: the cores divided between the workers). Workers write their seed to the cache
  themselves, under the per-seed lock. Each worker runs one job at a time, so a worker that dies
  takes down only its own job, which is retried (``retries`` times) on a fresh worker. Workers end
  with their parent (kill -9 and SIGTERM included).
- ``ray``: one Ray task per job (``pip install -e .[ray]``), on a new local Ray instance, or on the
  cluster at ``ray_address`` (never one that merely runs nearby); tasks return their metrics and
  the caller writes them into its own cache, so the workers need no shared file system. Ray
  retries tasks whose worker died.

Every backend finishes every healthy job first; the jobs that still fail (a crash, a diverged
run, a full disk) are then reported together, by config and seed, in a ``SweepError``.

``run(config, seeds)`` (``dbalib.run``) runs one config over seeds, ``run_many`` several;
``sweep(base, grid, seeds)`` expands a grid ``{key: [values]}`` into the cartesian product of
configs over ``base`` and returns a ``SweepResult`` with one tidy table of every run.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
import torch
from tqdm.auto import tqdm

from .attacks import AttackPlan
from .config import Config, _coerce, _hint
from .data import prepare_mnist
from .errors import CodeChangedError, ConfigError, DbalibError, SweepError
from .fingerprint import code_fingerprint
from .jobs import (check_output_folders, check_seeds, completed_note, die_with_parent, failure_line, reason_of,
                   run_serial, terminate_pool)
from .paths import runs_dir
from .results import Result, RunStore, machine_info
from .simulation import check, lockstep_signature, run_lanes_cached, run_one_seed, run_seed

BACKENDS = ("local", "ray")
PARENT_CODE = "DBALIB_PARENT_CODE"  # the parent's code fingerprint, inherited by its worker processes


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(threads: int = 1) -> int:
    """Workers that fill the machine's cores with ``threads`` threads each."""
    return max(1, cpu_count() // max(1, threads))


def job_cost(cfg: Config) -> float:
    """Rough relative cost of one seed: client-epochs of training plus evaluation."""
    plan = AttackPlan.from_config(cfg)
    rounds = cfg.rounds - cfg.pretrain_rounds
    poisoned = sum(len(r) for r in plan.poison_rounds.values())
    return rounds * (cfg.clients_per_round + 1) + poisoned * (cfg.poison_epochs - 1)


# --- workers ---------------------------------------------------------------------------------------
def _init_worker(threads: int, parent: int | None = None) -> None:
    torch.set_num_threads(threads)
    os.environ["DBALIB_WORKER"] = "1"
    if parent is not None:
        die_with_parent(parent)


def _same_code_as_parent(parent: str | None) -> None:
    """Refuse to compute in a worker whose code differs from its parent's (files edited while a run
    was in flight): its results would be stored under other keys or, worse, under the parent's."""
    if parent and parent != code_fingerprint():
        raise CodeChangedError(f"the simulator's code changed while this run was in flight (fingerprint "
                               f"{parent} in the parent, {code_fingerprint()} in the worker); run it again")


def _local_job(config: dict, seed: int, out: str) -> int:
    """Run one seed through the cache (in a worker process)."""
    _same_code_as_parent(os.environ.get(PARENT_CODE))
    run_one_seed(Config.from_dict(config), seed, Path(out), show_progress=False)
    return seed


def _ray_job(config: dict, seed: int, threads: int, parent_code: str | None = None):
    """Compute one seed on a Ray worker and return its rows and info (no cache write there; the
    info names the worker's machine, not the driver's)."""
    _same_code_as_parent(parent_code)
    torch.set_num_threads(threads)
    frame, info = run_seed(Config.from_dict(config), seed, show_progress=False)
    return frame.to_dict("list"), machine_info() | info


# --- execution -------------------------------------------------------------------------------------
def run_many(configs: Iterable[Config], seeds: Iterable[int] = (0,), out: str | os.PathLike | None = None,
             backend: str = "local", workers: int | None = None, threads: int | None = None,
             retries: int = 2, ray_address: str | None = None, progress: bool = True) -> list[Result]:
    """Run every config for every seed (cached) and return one ``Result`` per config, in order.

    ``workers`` defaults to the cores divided by ``threads``; with one worker (or one job) the
    jobs run in this process, with a per-round progress bar.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    seeds = check_seeds(seeds)
    checked = [check(c) for c in configs]  # every error before any training
    if not checked:
        return []
    out_dir = runs_dir(out)
    stores = [RunStore(out_dir, c) for c in checked]
    pending, seen = [], set()
    for cfg, store in zip(checked, stores):
        for seed in seeds:
            if (store.dir, seed) not in seen and not store.has_seed(seed):
                seen.add((store.dir, seed))
                pending.append((cfg, seed))
    pending.sort(key=lambda job: -job_cost(job[0]))
    if pending:
        prepare_mnist(checked[0].data_dir or None, verbose=progress)
        check_output_folders(out_dir)
        lockstep = [job for job in pending if job[0].engine == "batched"]
        pending = [job for job in pending if job[0].engine != "batched"]
        _run_lockstep(lockstep, out_dir, progress)
    if pending:
        threads = threads or checked[0].threads
        n_workers = workers or default_workers(threads)
        if backend == "ray":
            _run_ray(pending, out_dir, threads, ray_address, progress)
        elif n_workers <= 1 or len(pending) == 1 or checked[0].device == "cuda":
            run_serial(pending, out_dir, progress, run_one_seed)
        else:
            os.environ[PARENT_CODE] = code_fingerprint()  # workers check they run the same code
            _run_local(pending, out_dir, min(n_workers, len(pending)), threads, retries, progress)
    return [store.load(seeds, cfg) for cfg, store in zip(checked, stores)]


def run(config: Config, seeds: Iterable[int] = (0,), out: str | os.PathLike | None = None,
        progress: bool | None = None, workers: int | None = None) -> Result:
    """Run ``config`` for each seed (reusing cached seeds) and return the combined ``Result``.

    ``out`` is the results folder (default ``runs/`` of the project, or ``$DBALIB_RUNS``);
    ``progress`` overrides ``config.progress``; several seeds run in parallel processes
    (``workers``, default: the cores divided by ``config.threads``). Each finished seed is
    stored at once, so a killed run resumes at the first unfinished seed.
    """
    show = config.progress if progress is None else progress
    try:
        return run_many([config], seeds, out=out, workers=workers, progress=show)[0]
    except SweepError as exc:  # one failed seed of one config: its own error is clearer
        raise exc.single() from None


def lockstep_groups(jobs: list[tuple[Config, int]], lanes: int = 0) -> list[list[tuple[Config, int]]]:
    """Lockstep groups of batched-engine jobs. ``lanes`` 0: every pending seed of a config in one
    group (one config per group). ``lanes`` N: jobs whose configs share a ``lockstep_signature``
    (they differ only in their aggregation) in groups of at most N lanes, first seeds first, so
    that a stop leaves the first seeds of every config."""
    by_key: dict[str, list[tuple[Config, int]]] = {}
    for cfg, seed in jobs:
        by_key.setdefault(lockstep_signature(cfg) if lanes > 0 else cfg.cache_key(), []).append((cfg, seed))
    groups = []
    for members in by_key.values():
        members = sorted(members, key=lambda job: job[1])  # by seed; stable: configs keep their order
        size = lanes if lanes > 0 else len(members)
        groups += [members[i : i + size] for i in range(0, len(members), size)]
    return groups


def group_text(group: list[tuple[Config, int]]) -> str:
    """A lockstep group for a progress bar: "multi_shot_dba: 3 seeds x 18 configs"."""
    configs = len({cfg.cache_key() for cfg, _ in group})
    seeds = len({seed for _, seed in group})
    return f"{group[0][0].name}: {seeds} seeds" + (f" x {configs} configs" if configs > 1 else "")


def _run_lockstep(jobs: list[tuple[Config, int]], out: Path, progress: bool) -> None:
    """Batched-engine jobs in lockstep groups (``lockstep_groups`` with ``lockstep_lanes()``), in
    this process (a group fills the device by itself) or on ``lockstep_workers()`` processes."""
    groups = lockstep_groups(jobs, lockstep_lanes())
    workers = min(lockstep_workers(), len(groups))
    if workers > 1:
        _run_lockstep_pool(groups, out, workers, progress)
        return
    bar = tqdm(groups, desc="lockstep groups", unit="group", disable=not progress or len(groups) == 1)
    for group in bar:
        bar.set_postfix_str(group_text(group))
        run_lanes_cached(group, out, show_progress=progress)


def _whole_env(name: str, default: str, minimum: int) -> int:
    """The whole number in environment variable ``name`` (``default`` when unset), at least ``minimum``."""
    value = os.environ.get(name, default)
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if n < minimum:
        raise ConfigError(f"{name} must be {minimum} or more, got {n}")
    return n


def lockstep_workers() -> int:
    """Processes that run lockstep groups side by side: ``$DBALIB_LOCKSTEP_WORKERS`` (default 1).
    On a GPU a single lockstep group leaves it mostly idle (its Python overhead bounds it), so
    several processes, each with its own group, fill it; on the CPU one is right."""
    return _whole_env("DBALIB_LOCKSTEP_WORKERS", "1", 1)


def lockstep_lanes() -> int:
    """``$DBALIB_LOCKSTEP_LANES`` (default 0): 0 plays each config's seeds as one group; N > 0 plays
    up to N lanes of configs that differ only in their aggregation together (a defence matrix row
    in one group: more work per step for a GPU; on the CPU larger stacks are slower)."""
    return _whole_env("DBALIB_LOCKSTEP_LANES", "0", 0)


def _lockstep_job(lanes: list[tuple[dict, int]], out: str) -> None:
    _same_code_as_parent(os.environ.get(PARENT_CODE))
    run_lanes_cached([(Config.from_dict(config), seed) for config, seed in lanes], Path(out), show_progress=False)


def _run_lockstep_pool(groups: list[list[tuple[Config, int]]], out: Path, workers: int, progress: bool) -> None:
    """Lockstep groups on ``workers`` spawned processes (one thread each); failures are raised
    together at the end, after every other group finished."""
    os.environ[PARENT_CODE] = code_fingerprint()
    context = multiprocessing.get_context("spawn")
    failures = []
    bar = tqdm(total=len(groups), desc=f"lockstep groups ({workers} processes)", unit="group", disable=not progress)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(1, os.getpid())) as pool:
        futures = {pool.submit(_lockstep_job, [(cfg.to_dict(), seed) for cfg, seed in group], str(out)): group
                   for group in groups}
        for future in as_completed(futures):
            group = futures[future]
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - reported with its config below
                cfg, seed = group[0]
                failures.append((cfg, seed, exc, failure_line(cfg, seed, reason_of(exc))))
            bar.update()
            bar.set_postfix_str(group_text(group))
    bar.close()
    if failures:
        raise SweepError(f"{len(failures)} lockstep group(s) failed: " + "; ".join(f[3] for f in failures),
                         [f[:3] for f in failures])


def _run_local(jobs: list[tuple[Config, int]], out: Path, workers: int, threads: int, retries: int,
               progress: bool, job=_local_job) -> None:
    """Run the jobs on ``workers`` processes, each its own one-worker pool fed one job at a time,
    so that a worker that dies takes down only its own job (which is retried ``retries`` times on a
    fresh worker) and every healthy job completes. A job that raises a ``DbalibError`` (a diverged
    run, a full disk) is not retried. Failures are raised together at the end in a ``SweepError``."""
    from collections import deque

    context = multiprocessing.get_context("spawn")
    queue = deque(jobs)
    tries: dict[tuple[str, int], int] = {}
    failures = []
    slots: list[ProcessPoolExecutor | None] = [None] * workers
    running: dict = {}  # future -> (slot, cfg, seed)
    bar = tqdm(total=len(jobs), desc=f"runs ({workers} workers x {threads} thread(s))", unit="run",
               disable=not progress)
    try:
        while queue or running:
            busy = {slot for slot, _, _ in running.values()}
            for slot in range(workers):
                if queue and slot not in busy:
                    if slots[slot] is None:
                        slots[slot] = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_init_worker,
                                                          initargs=(threads, os.getpid()))
                    cfg, seed = queue.popleft()
                    running[slots[slot].submit(job, cfg.to_dict(), seed, str(out))] = (slot, cfg, seed)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                slot, cfg, seed = running.pop(future)
                try:
                    future.result()
                    bar.update()
                    bar.set_postfix_str(f"{cfg.name} seed {seed} done")
                    continue
                except BrokenProcessPool:  # this job's worker died: a fresh worker for the slot
                    slots[slot].shutdown(wait=False, cancel_futures=True)
                    slots[slot] = None
                    error, reason = None, "worker died"
                except DbalibError as exc:  # deterministic (diverged, full disk, ...): not retried
                    failures.append((cfg, seed, exc, failure_line(cfg, seed, reason_of(exc))))
                    bar.update()
                    continue
                except Exception as exc:  # noqa: BLE001 - retried, then reported with the job
                    error, reason = exc, reason_of(exc)
                key = (cfg.cache_key(), seed)
                tries[key] = tries.get(key, 0) + 1
                if tries[key] <= retries:
                    queue.append((cfg, seed))
                else:
                    failures.append((cfg, seed, error, failure_line(cfg, seed, reason)))
                    bar.update()
    except BaseException:
        for pool in slots:
            if pool is not None:
                terminate_pool(pool)
        raise
    finally:
        bar.close()
    for pool in slots:
        if pool is not None:
            pool.shutdown(wait=True)
    if failures:
        after = f" after {retries} retries" if any(tries.get((c.cache_key(), s), 0) > retries
                                                   for c, s, *_ in failures) else ""
        raise SweepError(f"{len(failures)} run(s) failed{after}: " + "; ".join(f[3] for f in failures)
                         + completed_note(len(jobs) - len(failures)), [f[:3] for f in failures])


def _run_ray(jobs: list[tuple[Config, int]], out: Path, threads: int, address: str | None, progress: bool) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray: pip install -e '.[ray]' (or pip install 'ray[default]')") from None
    if not ray.is_initialized():
        # no address: a new local instance (never whatever cluster happens to run on this machine)
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    remote = ray.remote(num_cpus=threads, max_retries=2)(_ray_job)
    refs = {remote.remote(cfg.to_dict(), seed, threads, code_fingerprint()): (cfg, seed) for cfg, seed in jobs}
    bar = tqdm(total=len(refs), desc="runs (ray)", unit="run", disable=not progress)
    failures = []
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        cfg, seed = refs.pop(done[0])
        try:
            rows, info = ray.get(done[0])
        except Exception as exc:  # noqa: BLE001 - reported with the job
            cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError wraps the task's error
            error = cause if isinstance(cause, DbalibError) else None
            failures.append((cfg, seed, error, failure_line(cfg, seed, reason_of(error or exc))))
            continue
        store = RunStore(out, cfg)
        try:
            with store.seed_lock(seed):
                if not store.has_seed(seed):
                    store.save_seed(seed, pd.DataFrame(rows), info)
        except DbalibError as exc:
            failures.append((cfg, seed, exc, failure_line(cfg, seed, reason_of(exc))))
        bar.update()
    bar.close()
    if failures:
        raise SweepError(f"{len(failures)} ray task(s) failed: " + "; ".join(f[3] for f in failures)
                         + completed_note(len(jobs) - len(failures)), [f[:3] for f in failures])


# --- grids -----------------------------------------------------------------------------------------
def parse_grid(specs: list[str]) -> dict[str, list]:
    """``["scale=10,50", "attack_rounds=12,14,16,18;12,21,30,39"]`` -> {key: [values]}.

    Values are separated by commas; for list-valued keys (attack_rounds, attackers, ...) each
    value is a list and values are separated by semicolons.
    """
    grid: dict[str, list] = {}
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(f"--grid expects key=v1,v2,..., got '{spec}'")
        key, text = (part.strip() for part in spec.split("=", 1))
        is_list = key in Config.__dataclass_fields__ and str(_hint(key)).startswith("tuple")
        values = [v.strip() for v in text.split(";" if is_list else ",") if v.strip()]
        grid[key] = values
    return grid


def expand_grid(base: Config, grid: dict[str, list]) -> list[tuple[dict, Config]]:
    """Every combination of ``grid`` applied to ``base``: [(params, config)], validated."""
    if not grid:
        raise ConfigError("the grid is empty: give at least one --grid key=v1,v2")
    known = set(Config.__dataclass_fields__)
    for key, values in grid.items():
        if key not in known:
            Config.from_dict({key: None})  # raises the unknown-key error with a suggestion
        if not list(values):
            raise ConfigError(f"grid key '{key}' has no values")
        for value in values:
            _coerce(key, value, _hint(key))  # type errors name the key
    combos = []
    keys = list(grid)
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        params = dict(zip(keys, values))
        try:
            cfg = base.with_overrides(**params)
        except ConfigError as exc:
            raise ConfigError(f"grid point {params} is invalid: {exc}") from None
        combos.append(({k: _plain(getattr(cfg, k)) for k in keys}, cfg))
    return combos


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


@dataclass
class SweepResult:
    """The runs of a sweep: their grid parameters, Results, and one tidy table."""

    params: list[dict]
    results: list[Result]

    @property
    def table(self) -> pd.DataFrame:
        """One row per (grid point, seed, round), the grid keys as columns."""
        frames = []
        for params, result in zip(self.params, self.results):
            frame = result.metrics.copy()
            for key, value in params.items():
                frame.insert(0, key, str(value) if isinstance(value, list) else value)
            frame.insert(0, "run_dir", result.run_dir.name)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def at(self, round_: int, metric: str = "asr_global") -> pd.DataFrame:
        """Per grid point: mean and std over seeds of ``metric`` at ``round_``."""
        rows = []
        for params, result in zip(self.params, self.results):
            values = result.metrics[result.metrics["round"] == round_][metric]
            rows.append({**{k: str(v) if isinstance(v, list) else v for k, v in params.items()},
                         "mean": float(values.mean()), "std": float(values.std(ddof=0)), "seeds": len(values)})
        return pd.DataFrame(rows)


def sweep(base: Config, grid: dict[str, list], seeds: Iterable[int] = (0,), **run_options) -> SweepResult:
    """Run the cartesian product of ``grid`` over ``base`` for every seed (see ``run_many``)."""
    combos = expand_grid(base, grid)
    results = run_many([cfg for _, cfg in combos], seeds, **run_options)
    return SweepResult([p for p, _ in combos], results)
