"""Compute the notebooks' runs on a GPU machine without papermill, into a run store to bring home.

    python benchmarks/device_runs.py --out RUNS_DIR --deadline 480 [--workers 10] [--tar FILE]
        [--notebooks 01_single_shot_concentrated ...] [--full 05_defenses] [--chunk 5 | --lanes 54]

For each notebook named by ``--notebooks``, its code cells are executed with the notebook's own
defaults up to its first ``dbalib.run_many`` call, which is captured instead of run: the configs
and seeds it asks for. All captured (config, seed) jobs then run as lockstep groups (the batched
engine, every seed of a config at once) on ``--workers`` processes sharing the GPU (or, with
``--workers 2``, the two cores of a CPU machine: one thread each), first seeds before later ones. Notebooks
named by ``--full`` are executed whole afterwards (their later runs depend on earlier results),
with the same parallel lockstep groups. With ``--lanes N`` a group holds up to N (config, seed)
lanes of configs that differ only in their aggregation (``dbalib.core.sweep.lockstep_groups``): a
defence matrix row, every rule on every seed, trains its clients in one stacked computation while
each lane aggregates with its own rule. Work stops at ``--deadline`` seconds: finished seeds are
stored atomically, so a stop loses only the groups in flight. The run store is then packed into
``--tar`` (gzip). The notebooks' figures and key numbers are made at home from that store.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _Captured(Exception):
    """Raised by the stand-in ``run_many`` once it has recorded a notebook's first request."""


def _code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def _execute(notebook: Path, namespace: dict) -> None:
    for source in _code_cells(notebook):
        exec(compile(source, str(notebook), "exec"), namespace)  # noqa: S102 - our own notebooks


def captured_jobs(notebook: Path) -> list[tuple]:
    """The (config, seed) jobs of ``notebook``'s first ``run_many`` call, at its defaults."""
    import dbalib

    asked = []

    def capture(configs, seeds=(0,), out=None, **_):
        asked.extend((c, s) for c in configs for s in seeds)
        raise _Captured

    from dbalib.core import sweep  # the study layer (defense_eval.run_cells) calls sweep.run_many

    real, dbalib.run_many, sweep.run_many = dbalib.run_many, capture, capture
    try:
        _execute(notebook, {"display": print, "__name__": "__main__"})
    except _Captured:
        pass
    finally:
        dbalib.run_many = sweep.run_many = real
    return asked


def work(args) -> None:
    """Runs in a child process (so that the deadline can stop it): capture, then compute."""
    import matplotlib

    matplotlib.use("Agg")
    os.environ["DBALIB_LOCKSTEP_WORKERS"] = str(args.workers)
    os.environ["DBALIB_LOCKSTEP_LANES"] = str(args.lanes)  # also for the --full notebooks' run_many
    os.environ["DBALIB_RUNS"] = str(args.out)
    from dbalib.core import sweep  # the module (dbalib.sweep is the function)
    from dbalib.core.results import RunStore
    from dbalib.core.simulation import check

    jobs = []
    for name in args.notebooks:
        try:
            found = captured_jobs(ROOT / "notebooks" / f"{name}.ipynb")
        except Exception as exc:  # noqa: BLE001 - the other notebooks still run
            print(f"{name}: could not capture its runs: {exc!r}", flush=True)
            continue
        print(f"{name}: {len({c.cache_key() for c, _ in found})} configs, {len(found)} seed-runs", flush=True)
        jobs += found
    pending = []
    for cfg, seed in jobs:
        cfg = check(cfg)
        if not RunStore(Path(args.out), cfg).has_seed(seed) and (cfg, seed) not in pending:
            pending.append((cfg, seed))
    configs = len({cfg.cache_key() for cfg, _ in pending})
    if args.lanes > 0:  # configs that differ only in their aggregation share groups of --lanes lanes
        chunks = sweep.lockstep_groups(pending, args.lanes)
        what = f"at most {args.lanes} lanes (configs that differ only in their aggregation together)"
    else:
        chunks = [group[i : i + args.chunk] for group in sweep.lockstep_groups(pending)
                  for i in range(0, len(group), args.chunk)]
        what = f"at most {args.chunk} seeds of one config"
    # seeds first, configs second: a stop leaves the first seeds of every config, not whole configs
    chunks.sort(key=lambda group: min(seed for _, seed in group))
    print(f"{configs} configs in {len(chunks)} lockstep groups of {what}", flush=True)
    if args.plan:
        for group in chunks:
            print(f"  {sweep.group_text(group)}", flush=True)
        return
    start = time.time()
    try:
        sweep._run_lockstep_pool(chunks, Path(args.out), args.workers, progress=True)
    except Exception as exc:  # noqa: BLE001 - the finished groups are kept
        print(f"some groups failed: {exc}", flush=True)
    print(f"captured runs: {time.time() - start:.1f} s", flush=True)
    for name in args.full:
        start = time.time()
        try:
            _execute(ROOT / "notebooks" / f"{name}.ipynb", {"display": print, "__name__": "__main__",
                                                            "RUNS_DIR": str(args.out)})
        except Exception as exc:  # noqa: BLE001
            print(f"{name} stopped: {exc!r}", flush=True)
        print(f"{name} (whole notebook): {time.time() - start:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="run store folder")
    parser.add_argument("--deadline", type=float, default=480.0, help="seconds before the work is stopped")
    parser.add_argument("--workers", type=int, default=10, help="lockstep groups at a time")
    parser.add_argument("--tar", type=Path, help="pack the run store into this .tar.gz at the end")
    parser.add_argument("--notebooks", nargs="*", default=[], help="notebooks whose first run_many is captured")
    parser.add_argument("--chunk", type=int, default=10, help="most seeds per lockstep group")
    parser.add_argument("--lanes", type=int, default=0,
                        help="0: one config per group (--chunk seeds); N: up to N (config, seed) lanes of configs "
                             "that differ only in their aggregation per group (a defence matrix row)")
    parser.add_argument("--full", nargs="*", default=[], help="notebooks executed whole afterwards")
    parser.add_argument("--plan", action="store_true", help="print the groups of the captured runs and stop")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work(args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen([sys.executable, __file__, "--child", *sys.argv[1:]], start_new_session=True)
    try:
        child.wait(timeout=args.deadline)
    except subprocess.TimeoutExpired:
        print(f"deadline of {args.deadline:g} s: stopping the work (finished seeds are kept)", flush=True)
        os.killpg(child.pid, 15)
        time.sleep(3)
        try:
            os.killpg(child.pid, 9)
        except ProcessLookupError:
            pass
    if args.tar:
        with tarfile.open(args.tar, "w:gz") as tar:
            for path in sorted(args.out.rglob("*")):
                if path.is_file() and not path.name.endswith((".lock", ".tmp")):
                    tar.add(path, arcname=str(path.relative_to(args.out)))
        print(f"packed {args.tar} ({args.tar.stat().st_size / 1e6:.1f} MB)", flush=True)


if __name__ == "__main__":
    main()
