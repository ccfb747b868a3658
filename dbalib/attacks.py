"""Who attacks when, with which trigger, and what an attacker does to its update before upload.

Schedules (``Config.schedule``) expand ``Config.attack_rounds`` into each attacker's poison rounds:

- ``single_shot``: the k-th listed round belongs to attacker k (one attack each);
- ``fixed_frequency``: the k-th listed round belongs to attacker ``k mod #attackers`` (the
  study's collaborative DBA 12-15, 18-21, 24-27: attackers take turns, each every 6 rounds);
- ``multi_shot``: every attacker poisons in every listed round;
- ``random``: no attacker is forced into a round; an attacker drawn at random poisons if the round
  is listed (the number of attackers per round is then hypergeometric, as in Sun et al.).

In the first three, an attacker scheduled for a round is forced into that round's selection; an
attacker drawn on a round it does not attack trains benignly. DBA attacker ``i`` uses local
trigger ``i`` (of the attacker list order); a CBA attacker uses the global trigger.

After poisoned training an attacker uploads ``G + gamma * (X - G)`` (model replacement scaling),
optionally projected onto an L2 ball of radius ``attack_norm_bound`` around ``G`` (an attacker
that knows a norm threshold and stays below it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import Config


@dataclass(frozen=True)
class AttackPlan:
    """The expanded schedule of one run."""

    poison_rounds: dict[int, frozenset[int]]  # attacker id -> rounds in which it poisons
    trigger_of: dict[int, int | None]  # attacker id -> local trigger index (None = global trigger)
    forced: bool  # scheduled attackers are forced into the selection of their rounds

    @classmethod
    def from_config(cls, cfg: Config) -> "AttackPlan":
        if cfg.attack == "none":
            return cls({}, {}, forced=False)
        rounds, attackers = cfg.attack_rounds, cfg.attackers
        per_attacker: dict[int, set[int]] = {a: set() for a in attackers}
        if cfg.schedule in ("multi_shot", "random"):
            for a in attackers:
                per_attacker[a].update(rounds)
        else:  # single_shot, fixed_frequency: round-robin over the listed rounds
            for k, r in enumerate(rounds):
                per_attacker[attackers[k % len(attackers)]].add(r)
        triggers = {a: (i if cfg.attack == "dba" else None) for i, a in enumerate(attackers)}
        return cls({a: frozenset(r) for a, r in per_attacker.items()}, triggers,
                   forced=cfg.schedule != "random")

    def scheduled(self, round_: int) -> list[int]:
        """Attackers forced into ``round_`` (in attacker order)."""
        if not self.forced:
            return []
        return [a for a, rounds in self.poison_rounds.items() if round_ in rounds]

    def poisons(self, client: int, round_: int) -> bool:
        return round_ in self.poison_rounds.get(client, ())

    def attack_rounds(self) -> list[int]:
        return sorted(set().union(*self.poison_rounds.values())) if self.poison_rounds else []


def select_clients(n_clients: int, per_round: int, forced: list[int], rng: np.random.Generator) -> list[int]:
    """``forced`` clients first, then the remaining slots drawn without replacement from the rest."""
    others = np.setdiff1d(np.arange(n_clients), np.asarray(forced, dtype=np.int64), assume_unique=False)
    drawn = rng.choice(others, size=per_round - len(forced), replace=False)
    return list(forced) + sorted(int(c) for c in drawn)


def scale_update(delta: torch.Tensor, gamma: float) -> torch.Tensor:
    """Model-replacement scaling of an update ``X - G``: ``gamma * (X - G)``."""
    return delta * gamma


def project_to_ball(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """``delta`` shrunk onto the L2 ball of ``radius`` (unchanged when already inside)."""
    norm = float(delta.norm())
    return delta if norm <= radius else delta * (radius / norm)


def attacker_upload(delta: torch.Tensor, cfg: Config) -> torch.Tensor:
    """What an attacker sends after poisoned training: scaled, then norm-bounded if configured."""
    delta = scale_update(delta, cfg.scale)
    if cfg.attack_norm_bound > 0:
        delta = project_to_ball(delta, cfg.attack_norm_bound)
    return delta
