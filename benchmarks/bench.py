"""`make bench`: time the standard experiment in both engines and record where the time goes.

The standard experiment is the single-shot concentrated DBA preset, rounds 11-70 after the
cached clean pretraining (computed first for every seed used, untimed). In one run on one
machine, this measures:

1. the fp32 matrix-multiply peak (2048 x 2048, with 1 thread and with every core's threads);
2. one seed in each engine with one torch thread (the default of cached runs);
3. ten seeds the way ``make figures`` runs them with the faster engine: the sequential engine as
   one process per core (one thread each), the batched engine as one lockstep computation;
4. for each run: seconds per seed, samples per second of training and of evaluation, and each
   against its fp32 floor (the FLOPs the engine must do divided by the measured peak of the
   threads it used), so that ``train_fraction_of_peak`` reads "training ran at this share of the
   matmul rate".

Runs go to a temporary folder, so the result cache never short-circuits them. Writes
``benchmarks/results.json`` (the paper quotes it) and prints a report. Speeds differ between
machine kinds: compare only numbers from one run. ``--device cuda`` measures the GPU path.

    python benchmarks/bench.py [--seeds 10] [--rounds 70] [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

import dbalib
from dbalib.core.evaluation import Evaluator
from dbalib.core.results import atomic_write_json, cpu_model, environment_info
from dbalib.core.simulation import check, trigger_of
from dbalib.core.sweep import cpu_count

HERE = Path(__file__).resolve().parent

# forward FLOPs of one image through the DBA MNIST network (multiply-adds x 2)
CONV1, CONV2, FC1, FC2 = 24 * 24 * 20 * 25 * 2, 8 * 8 * 50 * 500 * 2, 800 * 500 * 2, 500 * 10 * 2
FORWARD = CONV1 + CONV2 + FC1 + FC2
# training: forward, weight gradients of every layer (= forward) and input gradients of all but conv1
TRAIN = 3 * FORWARD - CONV1


def matmul_peak(threads: int, device: str, n: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 GFLOP/s of an n x n matrix product."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
        for _ in range(3):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        return repeats * 2 * n**3 / (time.perf_counter() - start) / 1e9
    finally:
        torch.set_num_threads(previous)


def eval_flops_per_round(cfg) -> tuple[int, float]:
    """(images, FLOPs) of one evaluation: the clean set, then each trigger's windowed re-computation."""
    from dbalib.core.data import load_mnist

    data = load_mnist()
    ev = Evaluator(data.test_x[:64], data.test_y[:64], trigger_of(cfg), cfg.target_label)
    rows, cols = ev._rows, ev._cols
    h, w = rows.input[1] - rows.input[0], cols.input[1] - cols.input[0]
    wh, ww = rows.pool1_window[1] - rows.pool1_window[0], cols.pool1_window[1] - cols.pool1_window[0]
    changed = len(ev._feature_index)
    triggered = (h - 4) * (w - 4) * 20 * 25 * 2 + (wh - 4) * (ww - 4) * 50 * 500 * 2 + changed * 500 * 2 + FC2
    n_clean = cfg.test_samples or 10_000
    n_nontarget = int((data.test_y[:n_clean] != cfg.target_label).sum())
    triggers = cfg.trigger_parts + 1
    return n_clean + triggers * n_nontarget, n_clean * FORWARD + triggers * n_nontarget * triggered


def measure(label: str, results: list[dbalib.Result], wall: float, peak: float, eval_flops: float,
            eval_images: int) -> dict:
    """Seconds, samples/s and fractions of the fp32 floor of one timed run (one or several seeds)."""
    frames = [r.metrics for r in results]
    infos = [i for r in results for i in r.info.values()]
    seeds = sum(len(r.seeds) for r in results)
    attacked = [f[f["round"] > f["round"].min()] for f in frames]
    train_s = sum(float(a["seconds_train"].sum()) for a in attacked)
    eval_s = sum(float(f["seconds_eval"].sum()) for f in frames)
    samples = sum(i["samples_trained"] for i in infos)
    evaluations = sum(len(f) for f in frames)
    rounds = int(attacked[0]["round"].nunique()) if attacked else 0  # attacked rounds of one seed
    train_rate = samples / train_s
    eval_rate = evaluations * eval_images / eval_s
    return {
        "label": label,
        "engine": infos[0]["engine"],
        "seeds": seeds,
        "threads_per_run": infos[0]["threads"],
        "wall_seconds": round(wall, 1),
        "seconds_per_seed": round(wall / seeds, 1),
        "seconds_per_round": round(wall / seeds / rounds, 3),
        "train_seconds_per_round": round(train_s / seeds / rounds, 3),
        "eval_seconds_per_round": round(eval_s / evaluations, 3),
        "train_samples_per_second": round(train_rate),
        "eval_samples_per_second": round(eval_rate),
        "train_gflops": round(train_rate * TRAIN / 1e9, 1),
        "eval_gflops": round(eval_s and evaluations * eval_flops / eval_s / 1e9, 1),
        # measured time over the floor (FLOPs / peak of the threads used): 1.0 would be peak speed
        "train_fraction_of_peak": round(train_rate * TRAIN / 1e9 / peak, 3),
        "eval_fraction_of_peak": round(evaluations * eval_flops / eval_s / 1e9 / peak, 3),
        # means over seeds at the last round
        "final_clean_acc": round(float(pd.concat(f[f["round"] == f["round"].max()] for f in frames)["clean_acc"].mean()), 4),
        "final_asr_global": round(float(pd.concat(f[f["round"] == f["round"].max()] for f in frames)["asr_global"].mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="single_shot_dba")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=70)
    parser.add_argument("--seeds", type=int, default=10, help="seeds of the many-seed measurement")
    parser.add_argument("--quick", action="store_true", help="rounds 11-20 and 4 seeds (a smoke test of the bench)")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seeds = 20, 4
        if args.out == str(HERE / "results.json"):
            args.out = str(HERE.parent / "build" / "bench-quick.json")  # never overwrites the tracked record

    cores = cpu_count()
    base = check(dbalib.preset(args.preset, rounds=args.rounds, device=args.device, progress=True))
    device = base.device
    seeds = list(range(args.seeds))
    configs = {e: base.with_overrides(engine=e) for e in ("sequential", "batched")}
    print(f"pretraining seeds 0-{args.seeds - 1} for both engines (cached, untimed) ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in configs.values():
            dbalib.run_many([cfg.with_overrides(rounds=cfg.pretrain_rounds + 1, attack="none")], seeds=seeds,
                            out=tmp, progress=False)
    peaks = {1: matmul_peak(1, device), cores: matmul_peak(cores, device)}
    eval_images, eval_flops = eval_flops_per_round(base)
    runs = {}
    for engine, cfg in configs.items():  # 2. one seed in each engine, one thread
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = dbalib.run(cfg, seeds=[0], out=tmp, workers=1)
            runs[f"1 seed, {engine}"] = measure(f"1 seed, {engine}", [result], time.perf_counter() - start,
                                                peaks[1], eval_flops, eval_images)
    faster = min(("sequential", "batched"), key=lambda e: runs[f"1 seed, {e}"]["seconds_per_seed"])
    if device == "cuda":
        faster = "batched"
    label = f"{args.seeds} seeds, {faster}"
    with tempfile.TemporaryDirectory() as tmp:  # 3. many seeds, as make figures runs them
        start = time.perf_counter()
        if faster == "sequential":  # one process per core, one thread each
            result = dbalib.run(configs[faster], seeds=seeds, out=tmp, workers=cores)
            peak = peaks[1]
        else:  # one lockstep computation with every core's threads
            result = dbalib.run(configs[faster].with_overrides(threads=cores), seeds=seeds, out=tmp)
            peak = peaks[cores]
        runs[label] = measure(label, [result], time.perf_counter() - start, peak, eval_flops, eval_images)
    one = runs[f"1 seed, {faster}"]
    report = {
        "experiment": f"{args.preset}, rounds {base.pretrain_rounds + 1}-{base.rounds} after cached pretraining",
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "cpu": cpu_model(),
        "cores": cores,
        "matmul_gflops_1_thread": round(peaks[1], 1),
        "matmul_gflops_all_threads": round(peaks[cores], 1),
        "train_mflop_per_sample": round(TRAIN / 1e6, 2),
        "eval_gflop_per_round": round(eval_flops / 1e9, 1),
        "eval_samples_per_round": eval_images,
        "faster_engine": faster,
        "runs": runs,
        "many_seeds_wall_seconds": runs[label]["wall_seconds"],
        "many_seeds": args.seeds,
        # the single-seed numbers the paper quotes (the faster engine, one thread)
        "seconds_total": one["wall_seconds"],
        "seconds_per_round": one["seconds_per_round"],
        "seconds_per_round_train": one["train_seconds_per_round"],
        "seconds_per_round_eval": one["eval_seconds_per_round"],
        "train_samples_per_second": one["train_samples_per_second"],
        "eval_samples_per_second": one["eval_samples_per_second"],
        "threads": one["threads_per_run"],
        "torch": torch.__version__,
        "environment": environment_info(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(Path(args.out), report)
    print(json.dumps({k: v for k, v in report.items() if k != "environment"}, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
