"""Simulation engines: how the clients of a round are trained and the global models evaluated.

The round loop (``dbalib.core.simulation``) plays one or several seeds of a config in lockstep and
asks an engine for two things per round: the uploads of every selected client of every seed,
and the metrics of every seed's new global model. Two engines do this:

- ``sequential`` (the reference): one client after another on one ``MnistNet``
  (``dbalib.core.clients.LocalTrainer``), one model evaluation after another;
- ``batched``: every client of every seed of the round in one stacked computation
  (``dbalib.core.batched.BatchedTrainer``), the seeds' global models evaluated in one pass
  (``Evaluator.evaluate_many``). This is the GPU path: the data stay on the device and no
  per-batch value comes back to the host.

Both give each client the same batches, learning rates, poisoned samples and optimizer; their
updates agree to float32 rounding (``tests/test_engines.py`` states the tolerance). Results differ
in the last bits, so the engine is part of a run's cache key. ``auto`` picks, per device, the
engine that ``make bench`` measured faster: ``batched`` on CUDA, ``sequential`` on the CPU
(see ``benchmarks/NOTES.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .aggregation import RoundUpdates
from .attacks import AttackPlan, adapt_uploads, attacker_upload, select_clients
from .batched import BatchedTrainer, ClientJob
from .clients import LocalTrainer, Poison
from .config import Config, _auto_engine
from .evaluation import Evaluator
from .model import set_flat
from .registry import aggregator_spec

ENGINES = ("auto", "sequential", "batched")


def resolve_engine(name: str, device: str) -> str:
    """``auto`` -> the faster engine on ``device`` (batched on CUDA, sequential on the CPU)."""
    return _auto_engine(device) if name == "auto" else name


@dataclass
class SeedRound:
    """What the engine needs of one seed in one round."""

    seed: int
    global_flat: torch.Tensor
    plan: AttackPlan
    poisons: dict[int, Poison]


def selection_rng(seed: int, round_: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, round_, 0x5E1EC7]))


def selected_clients(cfg: Config, seed: int, round_: int, plan: AttackPlan) -> list[int]:
    """Participants of ``round_`` for ``seed``: the forced attackers, then a seeded random draw."""
    return select_clients(cfg.n_clients, cfg.clients_per_round, plan.scheduled(round_), selection_rng(seed, round_))


class Engine:
    """Base class: ``train_round`` and ``evaluate`` for a list of seeds (see the module docstring)."""

    name = "base"
    trainer_class: type = LocalTrainer

    def __init__(self, cfg: Config, train_x: torch.Tensor, train_y: torch.Tensor, shards: list[torch.Tensor],
                 evaluator: Evaluator, device: torch.device) -> None:
        self.cfg, self.evaluator, self.device = cfg, evaluator, device
        self.trainer = self.trainer_class(train_x, train_y, shards, cfg, device)
        self.record_grads = records_grad_sums(cfg)

    def _participants(self, s: SeedRound, round_: int) -> tuple[list[int], list[Poison | None]]:
        """The round's selected clients of seed ``s`` and what each poisons with (None: benign)."""
        selected = selected_clients(self.cfg, s.seed, round_, s.plan)
        return selected, [s.poisons.get(c) if s.plan.poisons(c, round_) else None for c in selected]

    @property
    def samples_trained(self) -> int:
        return self.trainer.samples_trained

    def size(self, client: int) -> int:
        return self.trainer.size(client)

    def _round_updates(self, round_: int, selected: list[int], deltas: torch.Tensor,
                       grad_sums: torch.Tensor | None = None) -> RoundUpdates:
        sizes = torch.tensor([self.size(c) for c in selected], dtype=torch.float32, device=self.device)
        return RoundUpdates(round_, selected, deltas, sizes, grad_sums)

    def train_round(self, seeds: list[SeedRound], round_: int) -> list[tuple[RoundUpdates, list[bool]]]:
        """Per seed: the round's uploads (attackers' already scaled) and which clients poisoned."""
        raise NotImplementedError

    def evaluate(self, flats: list[torch.Tensor]) -> list[dict]:
        raise NotImplementedError


class SequentialEngine(Engine):
    """One client, then the next, on one working network (the reference engine)."""

    name = "sequential"
    trainer_class = LocalTrainer

    def train_round(self, seeds: list[SeedRound], round_: int) -> list[tuple[RoundUpdates, list[bool]]]:
        out = []
        for s in seeds:
            selected, poisons = self._participants(s, round_)
            deltas, malicious, grads = [], [], []
            for client, poison in zip(selected, poisons):
                delta = self.trainer.train(s.global_flat, client, s.seed, round_, poison, self.record_grads)
                grads.append(self.trainer.grad_sum)
                deltas.append(attacker_upload(delta, self.cfg) if poison is not None else delta)
                malicious.append(poison is not None)
            grad_sums = torch.stack(grads) if self.record_grads else None
            deltas = adapt_uploads(torch.stack(deltas), malicious, self.cfg)
            out.append((self._round_updates(round_, selected, deltas, grad_sums), malicious))
        return out

    def evaluate(self, flats: list[torch.Tensor]) -> list[dict]:
        model = self.trainer.model
        results = []
        for flat in flats:
            set_flat(model, flat)
            results.append(self.evaluator.evaluate(model))
        return results


class BatchedEngine(Engine):
    """Every client of every seed of a round in one stacked computation (see ``dbalib.core.batched``)."""

    name = "batched"
    trainer_class = BatchedTrainer

    def train_round(self, seeds: list[SeedRound], round_: int) -> list[tuple[RoundUpdates, list[bool]]]:
        jobs, layout = [], []
        for i, s in enumerate(seeds):
            selected, poisons = self._participants(s, round_)
            layout.append((selected, [p is not None for p in poisons], len(jobs)))
            jobs += [ClientJob(i, c, s.seed, round_, p) for c, p in zip(selected, poisons)]
        deltas = self.trainer.train(torch.stack([s.global_flat for s in seeds]), jobs, self.record_grads)
        out = []
        for selected, malicious, first in layout:
            rows = deltas[first : first + len(selected)]
            rows = torch.stack([attacker_upload(d, self.cfg) if m else d for d, m in zip(rows, malicious)])
            rows = adapt_uploads(rows, malicious, self.cfg)
            grad_sums = self.trainer.grad_sums[first : first + len(selected)] if self.record_grads else None
            out.append((self._round_updates(round_, selected, rows, grad_sums), malicious))
        return out

    def evaluate(self, flats: list[torch.Tensor]) -> list[dict]:
        return self.evaluator.evaluate_many(torch.stack(flats))


def records_grad_sums(cfg: Config) -> bool:
    """Whether ``cfg``'s aggregator needs each client's gradient sum (``RoundUpdates.grad_sums``)."""
    return aggregator_spec(cfg.aggregator).needs_grad_sums


def make_engine(cfg: Config, train_x: torch.Tensor, train_y: torch.Tensor, shards: list[torch.Tensor],
                evaluator: Evaluator, device: torch.device) -> Engine:
    """The engine named by ``cfg.engine`` (already resolved by ``dbalib.core.simulation.check``)."""
    engine = resolve_engine(cfg.engine, device.type)
    if device.type == "cuda":  # plain fp32 as on the CPU: no TensorFloat-32 in convolutions or products
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    cls = {"sequential": SequentialEngine, "batched": BatchedEngine}[engine]
    return cls(cfg, train_x, train_y, shards, evaluator, device)
