"""The federated round loop: clean pretraining (cached), then the attacked rounds with evaluation.

``run(config, seeds)`` is the entry point: for each seed not already in the result cache it
prepares the data, restores (or computes) the clean pretrained model shared by every experiment
with the same data/model/seed settings, and plays rounds ``pretrain_rounds + 1 .. rounds``:

1. select ``clients_per_round`` participants: the attackers scheduled for the round, then the
   remaining slots drawn at random from everyone else (seeded by ``(seed, round)``);
2. each selected participant trains locally from the global model; a participant that poisons
   this round trains on poisoned batches and uploads its scaled (and maybe norm-bounded) update;
3. the aggregator turns the updates into the next global model;
4. the new global model is evaluated (clean accuracy, ASR of the global and each local trigger).

Row ``r`` of the metrics describes the global model after round ``r``; the first row is the
pretrained model (round ``pretrain_rounds``), so every curve starts from the clean baseline.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .aggregation import RoundUpdates, make_aggregator
from .attacks import AttackPlan, attacker_upload, select_clients
from .clients import LocalTrainer, Poison
from .config import RESULTS_VERSION, Config
from .data import MnistTensors, dirichlet_partition, iid_partition, load_mnist
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import ConfigError, DivergedError
from .evaluation import Evaluator
from .model import get_flat, layer_slices, new_model, set_flat
from .paths import cache_dir
from .results import Result, RunStore
from .triggers import TriggerSpec

# settings that determine the pretrained model (everything else can differ between experiments)
PRETRAIN_KEYS = ("n_clients", "clients_per_round", "pretrain_rounds", "pretrain_eta", "partition",
                 "dirichlet_alpha", "partition_seed", "data_fraction", "batch_size", "benign_lr",
                 "benign_epochs", "momentum", "weight_decay")


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; 'cuda' without a GPU is a ConfigError."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available; use --device cpu or auto")
    return name


def trigger_of(cfg: Config) -> TriggerSpec:
    return TriggerSpec(parts=cfg.trigger_parts, height=cfg.trigger_height, width=cfg.trigger_width,
                       gap=cfg.trigger_gap, shift=cfg.trigger_shift)


def check(cfg: Config) -> Config:
    """Every check that can fail before training; returns the config with its device resolved."""
    trigger_of(cfg)  # raises when the trigger does not fit
    cfg = cfg.with_overrides(device=resolve_device(cfg.device))
    make_aggregator(cfg, layer_slices(new_model(0)))  # aggregator-specific parameter checks
    return cfg


@dataclass
class _Context:
    """Everything one seed's rounds need, built once."""

    cfg: Config
    seed: int
    device: torch.device
    data: MnistTensors
    trainer: LocalTrainer
    layout: dict[str, slice]


def client_shards(cfg: Config, labels: np.ndarray) -> list[np.ndarray]:
    """Each participant's training indices (the partition, then the ``data_fraction`` subset)."""
    if cfg.partition == "dirichlet":
        shards = dirichlet_partition(labels, cfg.n_clients, cfg.dirichlet_alpha, cfg.partition_seed)
    else:
        shards = iid_partition(len(labels), cfg.n_clients, cfg.partition_seed)
    if cfg.data_fraction < 1:
        rng = np.random.default_rng(cfg.partition_seed)
        shards = [np.sort(rng.permutation(s)[: max(1, math.ceil(cfg.data_fraction * len(s)))]) if len(s) else s
                  for s in shards]
    return shards


def _context(cfg: Config, seed: int) -> _Context:
    device = torch.device(cfg.device)
    data = load_mnist(cfg.data_dir or None).to(device)
    shards = client_shards(cfg, data.train_y.cpu().numpy())
    empty = [i for i in cfg.attackers if cfg.attack != "none" and len(shards[i]) == 0]
    if empty:
        raise ConfigError(f"attackers {empty} hold no training samples under this partition")
    shard_tensors = [torch.as_tensor(s, dtype=torch.long, device=device) for s in shards]
    trainer = LocalTrainer(data.train_x, data.train_y, shard_tensors, cfg, device)
    return _Context(cfg, seed, device, data, trainer, layer_slices(trainer.model))


def _selection_rng(seed: int, round_: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, round_, 0x5E1EC7]))


def _train_round(ctx: _Context, global_flat: torch.Tensor, round_: int, plan: AttackPlan,
                 poisons: dict[int, Poison]) -> tuple[RoundUpdates, list[bool]]:
    cfg = ctx.cfg
    selected = select_clients(cfg.n_clients, cfg.clients_per_round, plan.scheduled(round_),
                              _selection_rng(ctx.seed, round_))
    deltas, malicious = [], []
    for client in selected:
        poison = poisons.get(client) if plan.poisons(client, round_) else None
        delta = ctx.trainer.train(global_flat, client, ctx.seed, round_, poison)
        if poison is not None:
            delta = attacker_upload(delta, cfg)
        deltas.append(delta)
        malicious.append(poison is not None)
    sizes = torch.tensor([ctx.trainer.size(c) for c in selected], dtype=torch.float32, device=ctx.device)
    return RoundUpdates(round_, selected, torch.stack(deltas), sizes), malicious


def pretrained_model(ctx: _Context, show_progress: bool = False) -> tuple[torch.Tensor, dict]:
    """The global model after the clean rounds, from the shared cache or trained now (and cached).

    Pretraining is plain FedAvg with ``pretrain_eta`` on randomly selected clients, no attack.
    The cache key holds only what determines this model (``PRETRAIN_KEYS``, seed, device type,
    torch version), so every experiment with the same data/model/seed settings shares it. A file
    lock makes concurrent runs (a sweep) wait for one computation instead of repeating it.
    """
    cfg = ctx.cfg
    key = {k: getattr(cfg, k) for k in PRETRAIN_KEYS} | {
        "seed": ctx.seed, "device": ctx.device.type, "torch": str(torch.__version__)}
    if cfg.threads != 1:  # results depend on the thread count (1 is the default, left implicit)
        key["threads"] = cfg.threads
    if RESULTS_VERSION > 1:
        key["results_version"] = RESULTS_VERSION
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir() / "pretrain"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.pt"
    with open(folder / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = load_checkpoint(path, key, ctx.device)  # verified; a bad one is deleted (warning)
        if saved is not None:
            return saved["global"], {"pretrain_cached": True, "pretrain_seconds": saved["seconds"]}
        start = time.perf_counter()
        global_flat = get_flat(new_model(ctx.seed, ctx.device))
        aggregator = make_aggregator(cfg.with_overrides(aggregator="fedavg"), ctx.layout, eta=cfg.pretrain_eta)
        no_attack = AttackPlan.from_config(cfg.with_overrides(attack="none"))
        for round_ in tqdm(range(1, cfg.pretrain_rounds + 1), desc=f"{cfg.name} seed {ctx.seed} pretraining",
                           disable=not show_progress, leave=False):
            updates, _ = _train_round(ctx, global_flat, round_, no_attack, {})
            global_flat = aggregator.aggregate(global_flat, updates).new_global
            check_finite(global_flat, cfg, ctx.seed, round_)
        seconds = time.perf_counter() - start
        save_checkpoint(path, global_flat, seconds, key)
        return global_flat, {"pretrain_cached": False, "pretrain_seconds": seconds}


def check_finite(global_flat: torch.Tensor, cfg: Config, seed: int, round_: int) -> None:
    """``DivergedError`` when the global model after ``round_`` holds NaN or inf, or its norm
    overflows float32 (its activations would: a diverged run predicts one class and would report
    a meaningless ASR)."""
    if not (bool(torch.isfinite(global_flat).all()) and bool(torch.isfinite(global_flat.norm()))):
        from .jobs import describe_config

        error = DivergedError(f"run {describe_config(cfg)} seed {seed} diverged in round {round_}: the global "
                              f"model is no longer finite (NaN/inf or overflowing norm); lower scale or eta. "
                              f"Nothing was stored")
        error.round = round_
        raise error


def run_seed(cfg: Config, seed: int, show_progress: bool = True, observer=None) -> tuple[pd.DataFrame, dict]:
    """Play one seed of ``cfg`` (already checked) with ``cfg.threads`` torch threads; return its
    metric rows and run information. ``observer(updates, malicious)``, if given, sees every
    attacked round's uploads and which of them were poisoned (for analyses, not for defences)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _play(cfg, seed, show_progress, observer)
    finally:
        torch.set_num_threads(previous)


def _play(cfg: Config, seed: int, show_progress: bool, observer=None) -> tuple[pd.DataFrame, dict]:
    started = time.perf_counter()
    torch.manual_seed(seed)
    ctx = _context(cfg, seed)
    trigger = trigger_of(cfg)
    plan = AttackPlan.from_config(cfg)
    poisons = {a: Poison(trigger.mask(t), trigger.value, cfg.target_label, cfg.poison_per_batch)
               for a, t in plan.trigger_of.items()}
    test_n = cfg.test_samples or len(ctx.data.test_y)
    evaluator = Evaluator(ctx.data.test_x[:test_n], ctx.data.test_y[:test_n], trigger, cfg.target_label,
                          ctx.device, cfg.eval_batch_size, cfg.eval_fast)
    global_flat, info = pretrained_model(ctx, show_progress)
    aggregator = make_aggregator(cfg, ctx.layout, seed=seed)
    model = ctx.trainer.model

    def evaluate(flat: torch.Tensor) -> tuple[dict, float]:
        t0 = time.perf_counter()
        set_flat(model, flat)
        metrics = evaluator.evaluate(model)
        return metrics, time.perf_counter() - t0

    metrics, seconds_eval = evaluate(global_flat)
    rows = [_row(seed, cfg.pretrain_rounds, metrics, seconds_eval=seconds_eval)]
    trained_before = ctx.trainer.samples_trained
    bar = tqdm(range(cfg.pretrain_rounds + 1, cfg.rounds + 1), desc=f"{cfg.name} seed {seed}",
               disable=not show_progress, unit="round", leave=False)
    for round_ in bar:
        t0 = time.perf_counter()
        updates, malicious = _train_round(ctx, global_flat, round_, plan, poisons)
        if observer is not None:
            observer(updates, malicious)
        t1 = time.perf_counter()
        result = aggregator.aggregate(global_flat, updates)
        step = result.new_global - global_flat
        global_flat = result.new_global
        check_finite(global_flat, cfg, seed, round_)
        t2 = time.perf_counter()
        metrics, seconds_eval = evaluate(global_flat)
        rows.append(_row(seed, round_, metrics, updates=updates, malicious=malicious, weights=result.weights,
                         step_norm=float(step.norm()), norm_bound=result.info.get("norm_bound", float("nan")),
                         seconds_train=t1 - t0, seconds_aggregate=t2 - t1, seconds_eval=seconds_eval))
        bar.set_postfix(round=round_, acc=f"{metrics['clean_acc']:.3f}", asr=f"{metrics['asr_global']:.3f}",
                        attackers=int(sum(malicious)))
    frame = pd.DataFrame(rows)
    info |= {
        "seed": seed,
        "device": str(ctx.device),
        "device_name": torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "attack_rounds": plan.attack_rounds(),
        "client_sizes": {str(c): ctx.trainer.size(c) for c in cfg.attackers},
        "samples_trained": ctx.trainer.samples_trained - trained_before,
        "seconds_train": float(frame["seconds_train"].sum()),
        "seconds_eval": float(frame["seconds_eval"].sum()),
        "seconds_total": time.perf_counter() - started,
    }
    return frame, info


def _row(seed: int, round_: int, metrics: dict, updates: RoundUpdates | None = None,
         malicious: list[bool] | None = None, weights: torch.Tensor | None = None, step_norm: float = 0.0,
         norm_bound: float = float("nan"), seconds_train: float = 0.0, seconds_aggregate: float = 0.0,
         seconds_eval: float = 0.0) -> dict:
    """One tidy metrics row: accuracy, ASRs, who attacked, update norms, defence decisions, timings."""
    row = {"seed": seed, "round": round_} | metrics
    nan = float("nan")
    if updates is None:
        row |= {"n_attackers": 0, "attackers": "", "benign_norm_mean": nan, "benign_norm_max": nan,
                "malicious_norm_mean": nan, "malicious_norm_max": nan, "global_update_norm": 0.0,
                "benign_rejected": 0, "malicious_rejected": 0, "benign_weight_mean": nan,
                "malicious_weight_mean": nan, "norm_bound": nan}
    else:
        bad = torch.tensor(malicious, dtype=torch.bool, device=updates.norms.device)
        norms, w = updates.norms, weights.to(updates.norms.device)
        stat = lambda t, f: float(f(t)) if t.numel() else nan  # noqa: E731
        row |= {
            "n_attackers": int(bad.sum()),
            "attackers": ";".join(str(c) for c, m in zip(updates.client_ids, malicious) if m),
            "benign_norm_mean": stat(norms[~bad], torch.mean),
            "benign_norm_max": stat(norms[~bad], torch.max),
            "malicious_norm_mean": stat(norms[bad], torch.mean),
            "malicious_norm_max": stat(norms[bad], torch.max),
            "global_update_norm": step_norm,
            "benign_rejected": int((w[~bad] < 0.5).sum()),
            "malicious_rejected": int((w[bad] < 0.5).sum()),
            "benign_weight_mean": stat(w[~bad], torch.mean),
            "malicious_weight_mean": stat(w[bad], torch.mean),
            "norm_bound": norm_bound,  # M of a norm-based defence this round (NaN otherwise)
        }
    return row | {"seconds_train": seconds_train, "seconds_aggregate": seconds_aggregate,
                  "seconds_eval": seconds_eval}


def run_one_seed(cfg: Config, seed: int, out: Path, show_progress: bool = True) -> None:
    """Compute and store one seed of a checked config unless it is cached (under its seed lock)."""
    store = RunStore(out, cfg)
    with store.seed_lock(seed):  # a concurrent process computing this seed is waited for
        if not store.has_seed(seed):
            frame, info = run_seed(cfg, seed, show_progress)
            store.save_seed(seed, frame, info)


def run(config: Config, seeds: Iterable[int] = (0,), out: str | os.PathLike | None = None,
        progress: bool | None = None, workers: int | None = None) -> Result:
    """Run ``config`` for each seed (reusing cached seeds) and return the combined ``Result``.

    ``out`` is the results folder (default ``runs/`` of the project, or ``$DBALIB_RUNS``);
    ``progress`` overrides ``config.progress``; several seeds run in parallel processes
    (``workers``, default: the cores divided by ``config.threads``). Each finished seed is
    stored at once, so a killed run resumes at the first unfinished seed.
    """
    from .sweep import SweepError, run_many

    show = config.progress if progress is None else progress
    try:
        return run_many([config], seeds, out=out, workers=workers, progress=show)[0]
    except SweepError as exc:  # one failed seed of one config: its own error is clearer
        raise exc.single() from None
