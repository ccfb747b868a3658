"""The server side: one small interface from a round's client updates to the next global model.

Every server rule (FedAvg and each defence) is an ``Aggregator``: it receives the current global
model as a flat vector and the round's ``RoundUpdates`` (the clients' updates ``L_i - G`` as rows
of a matrix, their sample counts, ids and L2 norms) and returns an ``Aggregation``: the new global
model and, for every client, the weight its update received relative to plain FedAvg (1 = counted
as FedAvg counts it, 0 = ignored). The round loop never needs to know which rule it runs; the
weights let it measure how many benign and malicious updates a defence rejected.

Aggregators are made by name through ``make_aggregator(cfg, layout)``; defences register
themselves in ``AGGREGATORS`` (see ``dbalib.core.defenses``) with the config keys they read, so those
keys enter a run's cache key only when its aggregator uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .config import Config
from .errors import ConfigError


@dataclass
class RoundUpdates:
    """The round's uploads. ``deltas[i]`` is client ``client_ids[i]``'s ``L_i - G``."""

    round: int
    client_ids: list[int]
    deltas: torch.Tensor  # (m, P)
    sizes: torch.Tensor  # (m,) local sample counts, float
    # (m, P) each client's sum of its raw per-batch loss gradients over its local training (no
    # weight decay, before any scaling); recorded only for an aggregator whose spec asks for it
    grad_sums: torch.Tensor | None = None
    norms: torch.Tensor = field(init=False)  # (m,) L2 norms of the deltas

    def __post_init__(self) -> None:
        self.norms = self.deltas.norm(dim=1)

    def __len__(self) -> int:
        return len(self.client_ids)


@dataclass
class Aggregation:
    """Result of one aggregation."""

    new_global: torch.Tensor
    weights: torch.Tensor  # (m,) each client's weight relative to FedAvg's (1 = full, 0 = rejected)
    info: dict = field(default_factory=dict)  # rule-specific diagnostics (e.g. a threshold used)


class Aggregator:
    """Base class: subclasses implement ``aggregate``; state (e.g. histories) lives on the instance."""

    name = "base"

    def __init__(self, eta: float) -> None:
        self.eta = eta

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        raise NotImplementedError


class FedAvg(Aggregator):
    """``G + eta / m * sum_i (L_i - G)`` with m the number of clients this round (the DBA code)."""

    name = "fedavg"

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        m = len(updates)
        return Aggregation(global_flat + (self.eta / m) * updates.deltas.sum(0),
                           torch.ones(m, device=updates.deltas.device))


@dataclass(frozen=True)
class AggregatorSpec:
    """How to build an aggregator by name, what it is, and which config keys it reads."""

    factory: Callable[..., Aggregator]  # factory(cfg, layout, eta, seed) -> Aggregator
    description: str
    params: tuple[str, ...] = ()  # defence settings of Config it uses (part of the cache key only then)
    needs_grad_sums: bool = False  # the engines record RoundUpdates.grad_sums for it
    # the factory takes a fifth argument, the server's clean root data (``dbalib.core.server.ServerData``,
    # None when only checking the config)
    needs_root: bool = False


AGGREGATORS: dict[str, AggregatorSpec] = {
    "fedavg": AggregatorSpec(lambda cfg, layout, eta, seed: FedAvg(eta),
                             "FedAvg: G + eta/m * sum of updates (no defence)"),
}


def register(name: str, spec: AggregatorSpec) -> None:
    AGGREGATORS[name] = spec


def _load_all() -> None:
    from . import defenses  # noqa: F401  (registers the defences)


def aggregator_names() -> list[str]:
    _load_all()
    return list(AGGREGATORS)


def aggregator_params(name: str) -> tuple[str, ...]:
    """Config keys aggregator ``name`` reads (empty for unknown names)."""
    _load_all()
    spec = AGGREGATORS.get(name)
    return spec.params if spec else ()


def all_defence_params() -> set[str]:
    _load_all()
    return {p for spec in AGGREGATORS.values() for p in spec.params}


def aggregator_spec(name: str) -> AggregatorSpec:
    _load_all()
    if name not in AGGREGATORS:
        raise ConfigError(f"unknown aggregator '{name}'; choose one of {', '.join(AGGREGATORS)}")
    return AGGREGATORS[name]


def make_aggregator(cfg: Config, layout: dict[str, slice], eta: float | None = None, seed: int = 0,
                    server=None) -> Aggregator:
    """The aggregator named by ``cfg.aggregator`` (``eta`` overrides ``cfg.eta``, for pretraining);
    ``seed`` seeds any randomness it adds (noise); ``server`` is the server's clean data, passed
    to the aggregators that need it (``AggregatorSpec.needs_root``)."""
    spec = aggregator_spec(cfg.aggregator)
    eta = cfg.eta if eta is None else eta
    if spec.needs_root:
        return spec.factory(cfg, layout, eta, seed, server)
    return spec.factory(cfg, layout, eta, seed)
