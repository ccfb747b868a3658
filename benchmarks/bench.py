"""`make bench`: time the standard experiment and record where a round's time goes.

The standard experiment is the single-shot concentrated DBA preset, rounds 11-70 after the cached
clean pretraining (computed first if missing and not timed), with all cores' threads (the study's
cached runs use one thread per process and one process per core). The run goes to a temporary folder,
so the result cache never short-circuits it. Writes ``benchmarks/results.json``: seconds per
round split into training and evaluation, training and evaluation samples per second, device,
CPU, torch version and threads; prints a short report. Speeds differ between machine kinds, so
compare only numbers measured on the same machine.

    python benchmarks/bench.py [--preset single_shot_dba] [--device cpu] [--rounds 70]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

import dbalib
from dbalib.results import atomic_write_json, environment_info
from dbalib.simulation import check, run_seed
from dbalib.sweep import cpu_count

HERE = Path(__file__).resolve().parent


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="single_shot_dba")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=70)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args()

    cfg = check(dbalib.preset(args.preset, rounds=args.rounds, device=args.device, progress=True,
                              threads=args.threads))
    with tempfile.TemporaryDirectory() as tmp:  # make sure pretraining is cached, untimed
        dbalib.run(cfg.with_overrides(rounds=cfg.pretrain_rounds + 1, attack="none"), seeds=[args.seed],
                   out=tmp, progress=False, workers=1)
    started = time.perf_counter()
    frame, info = run_seed(cfg, args.seed, show_progress=True)
    wall = time.perf_counter() - started
    attacked = frame[frame["round"] > cfg.pretrain_rounds]
    n_rounds = len(attacked)
    eval_images = len(frame) * (10_000 + (cfg.trigger_parts + 1) * 8_968)  # clean + triggered sets
    seconds_train = float(attacked["seconds_train"].sum())
    seconds_eval = float(frame["seconds_eval"].sum())
    report = {
        "experiment": f"{args.preset}, rounds {cfg.pretrain_rounds + 1}-{cfg.rounds} after cached pretraining",
        "rounds": n_rounds,
        "seconds_total": round(wall, 2),
        "seconds_per_round": round(wall / n_rounds, 3),
        "seconds_per_round_train": round(seconds_train / n_rounds, 3),
        "seconds_per_round_eval": round(seconds_eval / len(frame), 3),
        "seconds_per_round_aggregate": round(float(attacked["seconds_aggregate"].sum()) / n_rounds, 4),
        "train_samples_per_second": round(info["samples_trained"] / seconds_train),
        "eval_samples_per_second": round(eval_images / seconds_eval),
        "eval_samples_per_round": eval_images // len(frame),
        "attack_rounds": info["attack_rounds"],
        "final_clean_acc": float(frame["clean_acc"].iloc[-1]),
        "final_asr_global": float(frame["asr_global"].iloc[-1]),
        "device": info["device_name"],
        "cpu": cpu_name(),
        "threads": cfg.threads,
        "torch": torch.__version__,
        "environment": environment_info(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(Path(args.out), report)
    print(json.dumps({k: v for k, v in report.items() if k != "environment"}, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
