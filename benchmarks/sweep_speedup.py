"""Speed-up of the local sweep backend: the same 8 short runs with 1 worker and with 2 workers.

Each measurement starts from an empty result cache and an empty pretraining cache (temporary
folders), runs ``dbalib.core.sweep`` over 8 grid points of a short single-shot DBA (rounds 11-16,
1,000 test images, seed 0) and records the wall time. Both use one torch thread per run (the
project's canonical setting), so they compute identical metrics; the difference is only how many
runs share the machine's cores. Writes ``benchmarks/sweep_speedup.json``.

    python benchmarks/sweep_speedup.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import dbalib
from dbalib.core.results import atomic_write_json, environment_info
from dbalib.core.sweep import cpu_count

HERE = Path(__file__).resolve().parent
GRID = {"scale": [10.0, 30.0, 60.0, 100.0], "trigger_gap": [1, 3]}  # 8 runs


def timed_sweep(workers: int) -> tuple[float, dbalib.SweepResult]:
    base = dbalib.preset("single_shot_dba", rounds=16, attack_rounds=(12, 13, 14, 15), test_samples=1000,
                         progress=False)
    with tempfile.TemporaryDirectory() as runs, tempfile.TemporaryDirectory() as cache:
        os.environ["DBALIB_CACHE"] = cache  # pretraining is part of the measured work
        start = time.perf_counter()
        result = dbalib.sweep(base, GRID, seeds=[0], out=runs, workers=workers, progress=True)
        return time.perf_counter() - start, result


def main() -> None:
    one, a = timed_sweep(1)
    two, b = timed_sweep(2)
    same = a.table.drop(columns=[c for c in a.table.columns if c.startswith("seconds") or c == "run_dir"]).equals(
        b.table.drop(columns=[c for c in b.table.columns if c.startswith("seconds") or c == "run_dir"]))
    report = {"runs": 8, "grid": GRID, "cores": cpu_count(), "seconds_1_worker": round(one, 1),
              "seconds_2_workers": round(two, 1), "speedup": round(one / two, 2), "identical_metrics": same,
              "environment": environment_info(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_json(HERE / "sweep_speedup.json", report)
    print(json.dumps({k: v for k, v in report.items() if k != "environment"}, indent=2))


if __name__ == "__main__":
    main()
