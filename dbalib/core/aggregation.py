"""The server side: one small interface from a round's client updates to the next global model.

Every server rule (FedAvg and each defence) is an ``Aggregator``: it receives the current global
model as a flat vector and the round's ``RoundUpdates`` (the clients' updates ``L_i - G`` as rows
of a matrix, their sample counts, ids and L2 norms) and returns an ``Aggregation``: the new global
model and, for every client, the weight its update received relative to plain FedAvg (1 = counted
as FedAvg counts it, 0 = ignored). The round loop never needs to know which rule it runs; the
weights let it measure how many benign and malicious updates a defence rejected.

Aggregators are made by name through ``make_aggregator(cfg, layout)`` (``dbalib.core.defenses``,
which holds every rule's factory); what each rule is and which config keys it reads is registered
in ``AGGREGATORS`` (``dbalib.core.registry``), so those keys enter a run's cache key only when its
aggregator uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


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
