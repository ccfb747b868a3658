"""The federated round loop: clean pretraining (cached), then the attacked rounds with evaluation.

``dbalib.run(config, seeds)`` (``dbalib.core.sweep.run``) is the entry point: for each seed not
already in the result cache, the round loop here prepares the data, restores (or computes) the
clean pretrained model shared by every experiment with the same data/model/seed settings, and
plays rounds ``pretrain_rounds + 1 .. rounds``:

1. select ``clients_per_round`` participants: the attackers scheduled for the round, then the
   remaining slots drawn at random from everyone else (seeded by ``(seed, round)``);
2. each selected participant trains locally from the global model; a participant that poisons
   this round trains on poisoned batches and uploads its scaled (and maybe norm-bounded) update;
3. the aggregator turns the updates into the next global model;
4. the new global model is evaluated (clean accuracy, ASR of the global and each local trigger).

Row ``r`` of the metrics describes the global model after round ``r``; the first row is the
pretrained model (round ``pretrain_rounds``), so every curve starts from the clean baseline.

Several seeds of one config can be played in lockstep (``run_seeds``): each round trains every
seed's clients, aggregates each seed on its own, then evaluates every seed's global model. How
clients are trained and models evaluated is the engine's business (``dbalib.core.engines``): the
sequential reference engine, or the batched engine that does a round of all seeds in one
stacked computation. Cached runs of the batched engine compute all missing seeds of a config
together; those of the sequential engine run one seed per process, in parallel.

More generally a lockstep group is a list of *lanes*, each a (config, seed) pair (``run_lanes``):
configs that differ only in how the server aggregates (the aggregator and its parameters: the
same ``lockstep_signature``) train their clients identically, so the lanes of a defence matrix row,
every defence on every seed, share one stacked computation while each lane aggregates with its
own rule. A lane's numbers do not depend on the lanes beside it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .aggregation import RoundUpdates
from .attacks import AttackPlan
from .clients import Poison
from .config import RESULTS_VERSION, Config
from .data import MnistTensors, client_shards, load_mnist
from .checkpoint import load_checkpoint, save_checkpoint
from .defenses import make_aggregator
from .engines import Engine, SeedRound, make_engine, records_grad_sums, resolve_engine
from .errors import ConfigError, DivergedError
from .evaluation import Evaluator
from .fingerprint import code_fingerprint
from .jobs import describe_config
from .model import get_flat, layer_slices, new_model
from .paths import cache_dir
from .registry import aggregator_spec, all_defence_params
from .results import RunStore
from .server import ServerData
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
    """Every check that can fail before training; returns the config with its device and engine resolved."""
    trigger_of(cfg)  # raises when the trigger does not fit
    device = resolve_device(cfg.device)
    cfg = cfg.with_overrides(device=device, engine=resolve_engine(cfg.engine, device))
    make_aggregator(cfg, layer_slices(new_model(0)))  # aggregator-specific parameter checks
    return cfg


def lockstep_signature(cfg: Config) -> str:
    """What a config's local training depends on: every setting but the aggregator and the defence
    parameters (those of the norm rules stay when a ``bound`` attacker reads them). Lanes of configs
    with the same signature can be played together (``run_lanes``)."""
    aggregation_only = {"aggregator", *all_defence_params()} - {"name"}
    if cfg.adaptive == "bound":  # the bound attacker computes the norm rules' M itself
        aggregation_only -= {"norm_bound", "norm_bound_rule", "norm_bound_factor"}
    settings = {k: v for k, v in cfg.to_dict().items() if k not in aggregation_only and k not in ("name", "progress")}
    return json.dumps(settings, sort_keys=True, default=str)


@dataclass
class _Context:
    """Everything the rounds of a config need, built once for all its seeds (the data split does
    not depend on the run seed)."""

    cfg: Config
    device: torch.device
    data: MnistTensors
    engine: Engine
    layout: dict[str, slice]
    server: object = None  # dbalib.core.server.ServerData, for aggregators that need a root set


def _context(cfg: Config) -> _Context:
    device = torch.device(cfg.device)
    data = load_mnist(cfg.data_dir or None).to(device)
    shards = client_shards(cfg, data.train_y.cpu().numpy())
    empty = [i for i in cfg.attackers if cfg.attack != "none" and len(shards[i]) == 0]
    if empty:
        raise ConfigError(f"attackers {empty} hold no training samples under this partition")
    shard_tensors = [torch.as_tensor(s, dtype=torch.long, device=device) for s in shards]
    test_n = cfg.test_samples or len(data.test_y)
    evaluator = Evaluator(data.test_x[:test_n], data.test_y[:test_n], trigger_of(cfg), cfg.target_label,
                          device, cfg.eval_batch_size, cfg.eval_fast)
    engine = make_engine(cfg, data.train_x, data.train_y, shard_tensors, evaluator, device)
    return _Context(cfg, device, data, engine, layer_slices(new_model(0)), _server_data(cfg, data, device))


def _server_data(cfg: Config, data: MnistTensors, device: torch.device):
    """The server's root set when the aggregator asks for one (``AggregatorSpec.needs_root``)."""
    return ServerData.build(cfg, data, device) if aggregator_spec(cfg.aggregator).needs_root else None


def _pretrain_key(ctx: _Context, seed: int) -> dict:
    """What determines a seed's pretrained model (``PRETRAIN_KEYS``, seed, device type, torch, engine)."""
    cfg = ctx.cfg
    key = {k: getattr(cfg, k) for k in PRETRAIN_KEYS} | {
        "seed": seed, "device": ctx.device.type, "torch": str(torch.__version__)}
    if cfg.threads != 1:  # results depend on the thread count (1 is the default, left implicit)
        key["threads"] = cfg.threads
    if ctx.engine.name != "sequential":
        key["engine"] = ctx.engine.name
    if RESULTS_VERSION > 1:
        key["results_version"] = RESULTS_VERSION
    key["code"] = code_fingerprint()
    return key


def pretrain_digest(key: dict) -> str:
    """File name (without ``.pt``) of the pretraining checkpoint made for ``key``."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def pretrained_models(ctx: _Context, seeds: list[int], show_progress: bool = False) -> list[tuple[torch.Tensor, dict]]:
    """Each seed's global model after the clean rounds, from the shared cache or trained now (and cached).

    Pretraining is plain FedAvg with ``pretrain_eta`` on randomly selected clients, no attack;
    the seeds missing from the cache are trained together (in lockstep, by the run's engine).
    The cache key holds only what determines this model (``_pretrain_key``), so every experiment
    with the same data/model/seed settings shares it. File locks (taken in seed order) make
    concurrent runs wait for one computation instead of repeating it.
    """
    cfg = ctx.cfg
    folder = cache_dir() / "pretrain"
    folder.mkdir(parents=True, exist_ok=True)
    keys = {seed: _pretrain_key(ctx, seed) for seed in seeds}
    digests = {seed: pretrain_digest(keys[seed]) for seed in seeds}
    with ExitStack() as locks:
        for seed in sorted(set(seeds)):
            handle = locks.enter_context(open(folder / f"{digests[seed]}.lock", "w"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        out: dict[int, tuple[torch.Tensor, dict]] = {}
        for seed in seeds:
            path = folder / f"{digests[seed]}.pt"
            saved = load_checkpoint(path, keys[seed], ctx.device)  # verified; a bad one is deleted (warning)
            if saved is not None:
                out[seed] = saved["global"], {"pretrain_cached": True, "pretrain_seconds": saved["seconds"]}
        missing = [seed for seed in dict.fromkeys(seeds) if seed not in out]
        if missing:
            start = time.perf_counter()
            aggregator = make_aggregator(cfg.with_overrides(aggregator="fedavg"), ctx.layout, eta=cfg.pretrain_eta)
            no_attack = AttackPlan.from_config(cfg.with_overrides(attack="none"))
            flats = [get_flat(new_model(seed, ctx.device)) for seed in missing]
            for round_ in tqdm(range(1, cfg.pretrain_rounds + 1), desc=f"{cfg.name} {_seeds_text(missing)} pretraining",
                               disable=not show_progress, leave=False):
                trained = ctx.engine.train_round([SeedRound(s, f, no_attack, {}) for s, f in zip(missing, flats)], round_)
                flats = [aggregator.aggregate(f, updates).new_global for f, (updates, _) in zip(flats, trained)]
                for seed, flat in zip(missing, flats):
                    check_finite(flat, cfg, seed, round_)
            seconds = (time.perf_counter() - start) / len(missing)
            for seed, flat in zip(missing, flats):
                save_checkpoint(folder / f"{digests[seed]}.pt", flat, seconds, keys[seed])
                out[seed] = flat, {"pretrain_cached": False, "pretrain_seconds": seconds}
    return [out[seed] for seed in seeds]


def _seeds_text(seeds: list[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {','.join(map(str, seeds))}"


def check_finite(global_flat: torch.Tensor, cfg: Config, seed: int, round_: int) -> None:
    """``DivergedError`` when the global model after ``round_`` holds NaN or inf, or its norm
    overflows float32 (its activations would: a diverged run predicts one class and would report
    a meaningless ASR)."""
    if not (bool(torch.isfinite(global_flat).all()) and bool(torch.isfinite(global_flat.norm()))):
        error = DivergedError(f"run {describe_config(cfg)} seed {seed} diverged in round {round_}: the global "
                              f"model is no longer finite (NaN/inf or overflowing norm); lower scale or eta. "
                              f"Nothing was stored")
        error.round = round_
        raise error


def run_seed(cfg: Config, seed: int, show_progress: bool = True, observer=None) -> tuple[pd.DataFrame, dict]:
    """Play one seed of ``cfg`` (already checked); return its metric rows and run information.
    ``observer(updates, malicious)``, if given, sees every attacked round's uploads and which of
    them were poisoned (for analyses, not for defences)."""
    return run_seeds(cfg, [seed], show_progress, observer)[0]


def run_seeds(cfg: Config, seeds: list[int], show_progress: bool = True, observer=None) -> list[tuple[pd.DataFrame, dict]]:
    """Play several seeds of ``cfg`` (already checked) in lockstep with ``cfg.threads`` torch threads:
    every round trains all seeds' clients, aggregates each seed, then evaluates all global models.
    Each seed's numbers are what it gives alone with the same engine, up to float rounding of the
    batched kernels. Returns one (rows, info) per seed, in order."""
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds repeat: {seeds}")
    return run_lanes([(cfg, seed) for seed in seeds], show_progress, observer)


def run_lanes(lanes: list[tuple[Config, int]], show_progress: bool = True,
              observer=None) -> list[tuple[pd.DataFrame, dict]]:
    """Play lanes, (config, seed) pairs of checked configs with one ``lockstep_signature``, in
    lockstep with the first config's ``threads``: every round trains every lane's clients
    together, aggregates each lane with its own config's rule, then evaluates every lane's global
    model. Returns one (rows, info) per lane, in order."""
    if not lanes:
        return []
    if len(set((cfg.cache_key(), seed) for cfg, seed in lanes)) != len(lanes):
        raise ConfigError("a lane repeats: the same config and seed twice")
    first = lanes[0][0]
    others = sorted({describe_config(cfg) for cfg, _ in lanes
                     if lockstep_signature(cfg) != lockstep_signature(first)})
    if others:
        raise ConfigError(f"lanes of one lockstep group must differ only in their aggregation; "
                          f"{', '.join(others)} train otherwise than {describe_config(first)}")
    previous = torch.get_num_threads()
    torch.set_num_threads(first.threads)
    try:
        return _play(lanes, show_progress, observer)
    finally:
        torch.set_num_threads(previous)


def _lane_servers(ctx: _Context, cfgs: list[Config]) -> list:
    """Each lane's server root set (None when its aggregator needs none), built once per setting
    (the first lane's is the context's)."""
    built: dict[tuple, object] = {(ctx.cfg.root_samples,): ctx.server} if ctx.server is not None else {}
    out = []
    for cfg in cfgs:
        if not aggregator_spec(cfg.aggregator).needs_root:
            out.append(None)
            continue
        key = (cfg.root_samples,)  # the rest of what the root set depends on is in the lockstep signature
        if key not in built:
            built[key] = _server_data(cfg, ctx.data, ctx.device)
        out.append(built[key])
    return out


def _play(lanes: list[tuple[Config, int]], show_progress: bool, observer=None) -> list[tuple[pd.DataFrame, dict]]:
    started = time.perf_counter()
    cfgs, seeds = [cfg for cfg, _ in lanes], [seed for _, seed in lanes]
    cfg = cfgs[0]  # every lane trains as this config does (one lockstep signature)
    torch.manual_seed(seeds[0])
    ctx = _context(cfg)
    engine, n = ctx.engine, len(lanes)
    needs_grads = [records_grad_sums(c) for c in cfgs]
    engine.record_grads = any(needs_grads)
    trigger = trigger_of(cfg)
    plan = AttackPlan.from_config(cfg)
    poisons = {a: Poison(trigger.mask(t), trigger.value, cfg.target_label, cfg.poison_per_batch)
               for a, t in plan.trigger_of.items()}
    pretrained = pretrained_models(ctx, seeds, show_progress)
    flats = [flat for flat, _ in pretrained]
    servers = _lane_servers(ctx, cfgs)
    aggregators = [make_aggregator(c, ctx.layout, seed=seed, server=server)
                   for c, seed, server in zip(cfgs, seeds, servers)]

    t0 = time.perf_counter()
    metrics = engine.evaluate(flats)
    seconds_eval = (time.perf_counter() - t0) / n
    rows = [[_row(seed, cfg.pretrain_rounds, m, seconds_eval=seconds_eval)] for seed, m in zip(seeds, metrics)]
    trained_before = engine.samples_trained
    names = sorted({c.aggregator for c in cfgs})
    label = f"{cfg.name} {_seeds_text(sorted(set(seeds)))}" + (f" x {len(names)} rules" if len(names) > 1 else "")
    bar = tqdm(range(cfg.pretrain_rounds + 1, cfg.rounds + 1), desc=label, disable=not show_progress, unit="round",
               leave=False)
    for round_ in bar:
        t0 = time.perf_counter()
        trained = engine.train_round([SeedRound(s, f, plan, poisons) for s, f in zip(seeds, flats)], round_)
        trained = [(updates if needs else dataclasses.replace(updates, grad_sums=None), malicious)
                   for (updates, malicious), needs in zip(trained, needs_grads)]  # as each lane alone sees them
        if observer is not None:
            for updates, malicious in trained:
                observer(updates, malicious)
        t1 = time.perf_counter()
        results = [agg.aggregate(f, updates) for agg, f, (updates, _) in zip(aggregators, flats, trained)]
        steps = [r.new_global - f for r, f in zip(results, flats)]
        flats = [r.new_global for r in results]
        for c, seed, flat in zip(cfgs, seeds, flats):
            check_finite(flat, c, seed, round_)
        t2 = time.perf_counter()
        metrics = engine.evaluate(flats)
        t3 = time.perf_counter()
        for i, seed in enumerate(seeds):
            updates, malicious = trained[i]
            rows[i].append(_row(seed, round_, metrics[i], updates=updates, malicious=malicious,
                                weights=results[i].weights, step_norm=float(steps[i].norm()),
                                norm_bound=results[i].info.get("norm_bound", float("nan")),
                                seconds_train=(t1 - t0) / n, seconds_aggregate=(t2 - t1) / n,
                                seconds_eval=(t3 - t2) / n))
        bar.set_postfix(round=round_, acc=f"{np.mean([m['clean_acc'] for m in metrics]):.3f}",
                        asr=f"{np.mean([m['asr_global'] for m in metrics]):.3f}",
                        attackers=int(sum(trained[0][1])))
    out = []
    for i, seed in enumerate(seeds):
        frame = pd.DataFrame(rows[i])
        info = pretrained[i][1] | {
            "seed": seed,
            "device": str(ctx.device),
            "device_name": torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(),
            "engine": engine.name,
            "lockstep_seeds": n,  # lanes computed together (their shared time is split evenly)
            "lockstep_configs": len({c.cache_key() for c in cfgs}),
            "attack_rounds": plan.attack_rounds(),
            "client_sizes": {str(c): engine.size(c) for c in cfg.attackers},
            "samples_trained": (engine.samples_trained - trained_before) // n,
            "seconds_train": float(frame["seconds_train"].sum()),
            "seconds_eval": float(frame["seconds_eval"].sum()),
            "seconds_total": (time.perf_counter() - started) / n,
        }
        out.append((frame, info))
    return out


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
    run_seeds_cached(cfg, [seed], out, show_progress)


def run_seeds_cached(cfg: Config, seeds: list[int], out: Path, show_progress: bool = True) -> None:
    """Compute (in lockstep) and store the seeds of a checked config that are not cached yet,
    holding every seed's lock (taken in seed order) so concurrent processes wait, not repeat."""
    run_lanes_cached([(cfg, seed) for seed in seeds], out, show_progress)


def run_lanes_cached(lanes: list[tuple[Config, int]], out: Path, show_progress: bool = True) -> None:
    """Compute (in lockstep, ``run_lanes``) and store the lanes that are not cached yet, holding
    every lane's seed lock (taken in store and seed order) so concurrent processes wait, not repeat."""
    lanes = list(dict.fromkeys((cfg, seed) for cfg, seed in lanes))
    stores = {cfg.cache_key(): RunStore(out, cfg) for cfg, _ in lanes}
    with ExitStack() as locks:
        for key, seed in sorted({(cfg.cache_key(), seed) for cfg, seed in lanes}):
            locks.enter_context(stores[key].seed_lock(seed))
        missing = [(cfg, seed) for cfg, seed in lanes if not stores[cfg.cache_key()].has_seed(seed)]
        if len(missing) == 1:
            computed = [run_seed(*missing[0], show_progress)]
        else:
            computed = run_lanes(missing, show_progress) if missing else []
        for (cfg, seed), (frame, info) in zip(missing, computed):
            stores[cfg.cache_key()].save_seed(seed, frame, info)
