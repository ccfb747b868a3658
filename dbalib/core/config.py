"""Run configuration: plain typed data with documented defaults, validated before any training.

A ``Config`` holds every setting of one federated run (the seed is given separately, so that one
config can be run over several seeds). Defaults are the DBA MNIST settings of
``dba-reference-facts.md``; the presets in ``dbalib.core.presets`` change only what each study
experiment changes. ``Config.from_dict`` / ``Config.with_overrides`` reject unknown keys (with a
close-match suggestion), wrong types and inconsistent values with a one-line ``ConfigError``.

``cache_key`` hashes the whole config except keys that cannot change a result (where the data
lives, how progress is shown) and defence settings the chosen aggregator does not read, plus the
code fingerprint (``dbalib.core.fingerprint``), so a cached run is reused only for an identical
experiment made by the same code. The number of torch threads is part of it:
a different thread count sums floats in another order, and the difference grows over rounds.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import typing
from dataclasses import dataclass, fields

from . import fingerprint
from .errors import ConfigError
from .registry import aggregator_names, aggregator_params, all_defence_params, attack_names

SCHEDULES = ("single_shot", "fixed_frequency", "multi_shot", "random")
PARTITIONS = ("dirichlet", "iid")
DEVICES = ("auto", "cpu", "cuda")
ENGINES = ("auto", "sequential", "batched")  # see dbalib.core.engines
NORM_RULES = ("fixed", "median")
ADAPTIVE = ("none", "cosine", "norm_spread", "bound")  # see dbalib.core.attacks.adapt_uploads
# keys that do not change what a run computes: left out of the cache key. The device is one of
# them: a CPU and a GPU run of one engine differ only by float rounding, each seed records the
# device and torch version it was made with, and a result made on a GPU serves a CPU request
# (the engine, a different computation, stays in the key)
NON_RESULT_KEYS = frozenset({"name", "data_dir", "progress", "device"})
# keys added after results were cached: hashed only when they differ from their default
OPTIONAL_KEYS = frozenset({"threads", "adaptive"})
# bump when a code change alters what a run computes for the same config (stale caches then miss);
# version 1 is left out of the hash so that the first results keep their keys
RESULTS_VERSION = 2  # 2: every evaluation records asr_no_trigger (the control of the ASRs)


@dataclass(frozen=True)
class Config:
    """All settings of one run. Rounds are numbered from 1; round ``r``'s metrics describe the
    global model after round ``r``'s aggregation."""

    name: str = "custom"  # label of the run (preset name); not part of the cache key
    # --- federation -------------------------------------------------------------------------
    n_clients: int = 100  # participants in total
    clients_per_round: int = 10  # participants selected each round (m)
    rounds: int = 70  # last round of the run
    pretrain_rounds: int = 10  # clean rounds 1..pretrain_rounds, cached and shared between runs
    pretrain_eta: float = 1.0  # server learning rate of the clean rounds (plain FedAvg)
    eta: float = 0.1  # server learning rate after pretraining: G += eta/m * sum(L_i - G)
    aggregator: str = "fedavg"  # server rule (``python -m dbalib aggregators`` lists them)
    # --- defence settings, read only by the aggregators that use them ----------------------
    norm_bound_rule: str = "median"  # fixed (M = norm_bound) | median (M = factor x round's median norm)
    norm_bound: float = 0.0  # M of the norm-based defences when norm_bound_rule = fixed
    norm_bound_factor: float = 3.0  # M = factor x median update norm when norm_bound_rule = median
    dp_sigma: float = 0.01  # weak_dp: std of the Gaussian noise on every coordinate of the aggregate
    krum_f: int = 4  # krum / multikrum: number of attackers assumed per round
    multikrum_m: int = 0  # multikrum: updates averaged (0: clients_per_round - krum_f)
    trim_beta: float = 0.2  # trimmed_mean: share trimmed at each end (< 0.5)
    flame_lambda: float = 0.001  # flame: noise std = lambda x median update norm
    consensus_ratio: float = 0.5  # consensus: reject cosine-to-median below ratio x its median
    root_samples: int = 100  # fltrust, validation_filter: the server's clean images (held by no participant)
    validation_tolerance: float = 0.0  # validation_filter: drop a client whose removal gains more root accuracy
    # --- data -------------------------------------------------------------------------------
    partition: str = "dirichlet"  # dirichlet | iid
    dirichlet_alpha: float = 0.5  # concentration of the per-class Dirichlet split
    partition_seed: int = 1  # seed of the split; 1 reproduces the DBA reference split exactly
    data_fraction: float = 1.0  # share of each client's samples used (smoke runs: < 1)
    test_samples: int = 0  # evaluate on the first N test images (0 = all 10,000)
    data_dir: str = ""  # MNIST folder ("" = $DBALIB_DATA or ~/.cache/dbalib/data)
    # --- local training ---------------------------------------------------------------------
    batch_size: int = 64
    benign_lr: float = 0.1
    benign_epochs: int = 1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poison_lr: float = 0.05
    poison_epochs: int = 10
    poison_lr_milestones: tuple[float, ...] = (0.2, 0.8)  # fractions of poison_epochs
    poison_lr_gamma: float = 0.1  # lr factor at each milestone
    # --- attack -----------------------------------------------------------------------------
    attack: str = "dba"  # dba (each attacker its local trigger) | cba (global trigger) | none (registry.ATTACKS)
    attackers: tuple[int, ...] = (41, 73, 51, 74)  # participant ids of the attackers
    schedule: str = "single_shot"  # single_shot | fixed_frequency | multi_shot | random
    # single_shot / fixed_frequency: the k-th round is attacked by attacker k mod #attackers
    # (a round may repeat: several attackers at once);
    # multi_shot: every attacker attacks every listed round; random: the rounds in which an
    # attacker that is drawn at random poisons
    attack_rounds: tuple[int, ...] = (12, 14, 16, 18)
    scale: float = 100.0  # gamma: uploaded = G + gamma * (X - G)
    poison_per_batch: int = 20  # poisoned samples in each batch of batch_size
    target_label: int = 2
    attack_norm_bound: float = 0.0  # > 0: project the scaled update onto this L2 ball
    adaptive: str = "none"  # none | cosine | norm_spread | bound: attackers adapt to the round (dbalib.core.attacks)
    # --- trigger ----------------------------------------------------------------------------
    trigger_parts: int = 4  # local triggers (DBA attacker i uses trigger i mod trigger_parts)
    trigger_height: int = 1  # pixels of each local trigger
    trigger_width: int = 4
    trigger_gap: int = 2  # blank pixels between local triggers
    trigger_shift: int = 0  # offset of the whole trigger from the top-left corner
    # --- execution --------------------------------------------------------------------------
    device: str = "auto"  # auto | cpu | cuda
    engine: str = "auto"  # auto (batched on CUDA, sequential on CPU) | sequential (reference) | batched
    eval_batch_size: int = 500
    eval_fast: bool = True  # share clean activations between triggered test sets (exact)
    threads: int = 1  # torch threads of a run; results depend on it, so it is part of the cache key
    progress: bool = True  # tqdm bar; not part of the cache key

    # ------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), _hint(f.name)))
        self._validate()

    def _validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        _check_finite_and_name(self)
        for key, allowed in (("attack", tuple(attack_names())), ("schedule", SCHEDULES), ("partition", PARTITIONS),
                             ("device", DEVICES), ("engine", ENGINES), ("norm_bound_rule", NORM_RULES),
                             ("aggregator", tuple(aggregator_names())), ("adaptive", ADAPTIVE)):
            value = getattr(self, key)
            need(value in allowed, f"{key}={value!r} is not one of {', '.join(allowed)}")
        need(self.n_clients >= 1, f"n_clients must be >= 1, got {self.n_clients}")
        need(1 <= self.clients_per_round <= self.n_clients,
             f"clients_per_round={self.clients_per_round} must be between 1 and n_clients={self.n_clients}")
        need(0 <= self.pretrain_rounds < self.rounds,
             f"pretrain_rounds={self.pretrain_rounds} must be >= 0 and below rounds={self.rounds}")
        for key in ("eta", "pretrain_eta", "benign_lr", "poison_lr", "dirichlet_alpha"):
            need(getattr(self, key) > 0, f"{key} must be > 0, got {getattr(self, key)}")
        need(self.scale > 0, f"scale must be > 0, got {self.scale}")
        need(0 < self.data_fraction <= 1, f"data_fraction must be in (0, 1], got {self.data_fraction}")
        need(self.test_samples >= 0, f"test_samples must be >= 0, got {self.test_samples}")
        need(self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be >= 1")
        need(self.threads >= 1, f"threads must be >= 1, got {self.threads}")
        need(self.benign_epochs >= 1 and self.poison_epochs >= 1, "epochs must be >= 1")
        need(0 <= self.poison_per_batch <= self.batch_size,
             f"poison_per_batch={self.poison_per_batch} must be between 0 and batch_size={self.batch_size}")
        need(0 <= self.target_label <= 9, f"target_label must be a digit 0..9, got {self.target_label}")
        need(self.attack_norm_bound >= 0, f"attack_norm_bound must be >= 0, got {self.attack_norm_bound}")
        need(self.momentum >= 0 and self.weight_decay >= 0, "momentum and weight_decay must be >= 0")
        for key in ("norm_bound", "norm_bound_factor", "dp_sigma", "flame_lambda", "trim_beta", "consensus_ratio",
                    "validation_tolerance"):
            need(getattr(self, key) >= 0, f"{key} must be >= 0, got {getattr(self, key)}")
        need(self.root_samples >= 1, f"root_samples must be >= 1, got {self.root_samples}")
        need(self.krum_f >= 0 and self.multikrum_m >= 0, "krum_f and multikrum_m must be >= 0")
        need(self.trim_beta < 0.5, f"trim_beta must be below 0.5 (it trims that share at each end), got {self.trim_beta}")
        if self.attack == "none":
            return
        need(len(self.attackers) >= 1, "attack needs at least one attacker id")
        need(len(set(self.attackers)) == len(self.attackers), f"attackers repeat an id: {self.attackers}")
        for a in self.attackers:
            need(0 <= a < self.n_clients, f"attacker id {a} is out of range 0..{self.n_clients - 1}")
        if self.schedule != "random":
            need(len(self.attackers) <= self.clients_per_round,
                 f"{len(self.attackers)} attackers cannot all fit in clients_per_round={self.clients_per_round}")
        need(not (self.adaptive == "bound" and self.norm_bound_rule == "fixed" and self.norm_bound <= 0),
             "adaptive=bound with norm_bound_rule=fixed needs norm_bound > 0")
        need(len(self.attack_rounds) >= 1, "attack_rounds is empty")
        first, last = self.pretrain_rounds + 1, self.rounds
        for r in self.attack_rounds:
            need(first <= r <= last, f"attack round {r} is outside the attacked rounds {first}..{last} "
                 f"(pretraining covers 1..{self.pretrain_rounds})")
        if self.schedule in ("multi_shot", "random"):
            need(len(set(self.attack_rounds)) == len(self.attack_rounds),
                 f"attack_rounds repeat a round: {self.attack_rounds}")
        if self.schedule == "single_shot":
            need(len(self.attack_rounds) == len(self.attackers),
                 f"single_shot needs one attack round per attacker: {len(self.attackers)} attackers, "
                 f"{len(self.attack_rounds)} rounds (use fixed_frequency for repeated attacks)")

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict, base: "Config | None" = None) -> "Config":
        """A config from ``values`` over ``base`` (default: the defaults); strings are parsed."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"unknown config key '{key}'{hint}")
        merged = (base.to_dict() if base else {}) | dict(values)
        return cls(**merged)

    def with_overrides(self, **values) -> "Config":
        return Config.from_dict(values, base=self)

    def to_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    def cache_key(self) -> str:
        """Hex digest of every result-relevant setting (defence settings only when the
        aggregator reads them, so adding a defence never invalidates other runs)."""
        used = set(aggregator_params(self.aggregator))
        if self.adaptive == "bound":  # the bound attacker computes the norm rules' M itself
            used |= {"norm_bound", "norm_bound_rule", "norm_bound_factor"}
        unused = all_defence_params() - used
        defaults = Config.__dataclass_fields__
        relevant = {k: v for k, v in self.to_dict().items() if k not in NON_RESULT_KEYS and k not in unused
                    and not (k in OPTIONAL_KEYS and v == defaults[k].default)}
        if relevant.get("engine") == "auto":  # the key of the engine a run will use (dbalib.core.engines)
            relevant["engine"] = _auto_engine(self.device)
        if relevant.get("engine") == "sequential":  # the reference engine (all results before engines)
            del relevant["engine"]
        if RESULTS_VERSION > 1:
            relevant["results_version"] = RESULTS_VERSION
        relevant["code"] = fingerprint.code_fingerprint()  # results of other code never come back from the cache
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]

    @staticmethod
    def describe() -> list[tuple[str, str, object]]:
        """(key, type, default) of every setting, for the CLI and the docs."""
        return [(f.name, _type_name(_hint(f.name)), f.default) for f in fields(Config)]


def parse_overrides(pairs: list[str]) -> dict:
    """``["scale=30", "attack_rounds=12,14"]`` -> ``{"scale": "30", ...}`` (values parsed later)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got '{pair}'")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _check_finite_and_name(cfg: Config) -> None:
    """Every float key finite (``scale=inf`` would silently diverge); ``name`` usable in a folder name."""
    for f in fields(cfg):
        hint = _hint(f.name)
        if hint is float or (typing.get_origin(hint) is tuple and typing.get_args(hint)[0] is float):
            value = getattr(cfg, f.name)
            for v in value if isinstance(value, tuple) else (value,):
                if not math.isfinite(v):
                    raise ConfigError(f"config key '{f.name}' must be a finite number, got {value!r}")
    if not _NAME.fullmatch(cfg.name):
        raise ConfigError(f"config key 'name' must be letters, digits, '_', '-', '+' or '.' (not first), "
                          f"got {cfg.name!r}")


_NAME = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]{0,99}")


# --- type handling ------------------------------------------------------------------------------
_HINTS: dict[str, object] = {}


def _auto_engine(device: str) -> str:
    """The engine ``engine=auto`` resolves to on ``device`` (see ``dbalib.core.engines.resolve_engine``)."""
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return "batched" if device == "cuda" else "sequential"


def _hint(name: str):
    if not _HINTS:
        _HINTS.update(typing.get_type_hints(Config))
    return _HINTS[name]


def _type_name(hint) -> str:
    if typing.get_origin(hint) is tuple:
        return f"list of {typing.get_args(hint)[0].__name__}"
    return getattr(hint, "__name__", str(hint))


def _coerce(name: str, value, hint):
    """Value converted to the field's type, parsing CLI strings; ConfigError when impossible."""
    try:
        if typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            if isinstance(value, str):
                value = _parse_list(value, item)
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return tuple(_scalar(v, item) for v in value)
        return _scalar(value, hint)
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{name}' expects {_type_name(hint)}, got {value!r}") from None


def _scalar(value, kind):
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise TypeError
    if kind is int:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, float) and not value.is_integer():
            raise TypeError
        if isinstance(value, str):
            return int(value.strip())
        if not isinstance(value, (int, float)):
            raise TypeError
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str):
            return float(value.strip())
        if not isinstance(value, (int, float)):
            raise TypeError
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise TypeError
        return value
    raise TypeError


def _parse_list(text: str, item) -> list:
    """'12,14,16' or '11-30' or '12-15,18-21' (ranges inclusive, for int lists)."""
    out: list = []
    for token in filter(None, (t.strip() for t in text.replace(";", ",").split(","))):
        if item is int and "-" in token.lstrip("-"):
            lo, hi = token.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(item(token))
    return out


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def rounds_range(first: int, last: int) -> tuple[int, ...]:
    """Inclusive range of rounds, e.g. ``rounds_range(11, 30)``."""
    return tuple(range(first, last + 1))


__all__ = ["Config", "ConfigError", "parse_overrides", "rounds_range"]
