"""Record the GPU timings of the runs in a run store (the production runs of device_runs.py).

    python benchmarks/gpu_timings.py [RUNS_DIR] [--out benchmarks/results.json]

Reads each run's ``run.json`` and keeps, for every config made on a GPU, the device, torch version,
lockstep group size, seeds, rounds and per-seed seconds (total, training, evaluation; each seed's
share of its lockstep group's wall time), and writes them under the ``gpu_runs`` key of the bench
record, next to the CPU figures of ``make bench``. Nothing is re-measured: these are the timings of
the runs behind the tracked results.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def gpu_timings(runs: Path) -> list[dict]:
    rows = []
    for path in sorted(runs.glob("*/run.json")):
        record = json.loads(path.read_text())
        seeds = [s for s in record.get("per_seed", {}).values() if s.get("device") == "cuda"]
        if not seeds:
            continue
        mean = lambda key: round(statistics.mean(s[key] for s in seeds), 2)  # noqa: E731
        rows.append({"config": record["name"], "cache_key": record["cache_key"], "device": seeds[0].get("device_name"),
                     "torch": record.get("environment", {}).get("torch"), "seeds": len(seeds),
                     "lockstep_seeds": sorted({s["lockstep_seeds"] for s in seeds}), "rows_per_seed": seeds[0]["rows"],
                     "seconds_per_seed": mean("seconds_total"), "seconds_train_per_seed": mean("seconds_train"),
                     "seconds_eval_per_seed": mean("seconds_eval"),
                     "group_wall_seconds": round(statistics.mean(s["seconds_total"] * s["lockstep_seeds"] for s in seeds), 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", type=Path, default=HERE.parent / "runs")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    record = json.loads(args.out.read_text()) if args.out.is_file() else {}
    record["gpu_runs"] = gpu_timings(args.runs)
    args.out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    for row in record["gpu_runs"]:
        print(f"{row['config']:26s} {row['device']}: {row['seeds']} seeds in groups of {row['lockstep_seeds']}, "
              f"{row['seconds_per_seed']:.1f} s per seed ({row['group_wall_seconds']:.0f} s per group)")


if __name__ == "__main__":
    main()
