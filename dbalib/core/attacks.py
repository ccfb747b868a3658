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
trigger ``i mod trigger_parts`` (of the attacker list order); a CBA attacker uses the global
trigger. With more DBA attackers than local triggers (6 attackers, 4 triggers) the triggers are
reused round-robin, so that the global trigger, what the ASR measures, is the same whatever the
number of attackers; with fewer (1 or 2), the remaining local triggers are poisoned by nobody.

After poisoned training an attacker uploads ``G + gamma * (X - G)`` (model replacement scaling),
optionally projected onto an L2 ball of radius ``attack_norm_bound`` around ``G`` (an attacker
that knows a norm threshold and stays below it).

Adaptive attackers (``Config.adaptive``, ``adapt_uploads``): once every client of a seed's round
has trained, each attacker that poisons in the round changes its upload knowing the defence's
rule and, as the usual worst case, the round's benign updates (an omniscient attacker):

- ``cosine``: against direction tests (``consensus``, FLTrust, FLAME): the attacker's update is
  rotated toward the coordinate-wise (true) median of the round's uploads, in the plane the two
  span and keeping its norm, until its cosine with that median reaches the median cosine of the
  benign updates (unchanged when it is already there);
- ``norm_spread``: against norm rules: rescaled to the (true) median norm of the benign updates;
- ``bound``: the norm-bounded attacker with the round's actual bound: projected onto the ball of
  radius M = ``norm_bound(cfg, norms)`` of the round (``norm_bound_factor`` x the true median
  upload norm, or ``norm_bound`` when the rule is fixed), recomputed until the bound holds with
  the projected norms (projecting an attacker can lower the median), with a relative margin of
  1e-6 below M so that rounding cannot push it over.

The medians are those of the round's uploads before adaptation (after scaling). Rounds without
a benign update leave ``cosine`` and ``norm_spread`` attackers as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .config import Config
from .defenses import norm_bound, true_median


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
        triggers = {a: (i % cfg.trigger_parts if cfg.attack == "dba" else None) for i, a in enumerate(attackers)}
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


BOUND_MARGIN = 1e-6  # the bound attacker stays this far (relatively) below M


def adapt_uploads(deltas: torch.Tensor, malicious: list[bool], cfg: Config) -> torch.Tensor:
    """The round's uploads (m, P) after the adaptive attackers (``cfg.adaptive``) changed theirs;
    see the module docstring. ``malicious[i]``: client i poisons this round. Returns a new tensor
    (or ``deltas`` itself when nothing changes)."""
    bad = torch.as_tensor(malicious, dtype=torch.bool, device=deltas.device)
    if cfg.adaptive == "none" or not bool(bad.any()):
        return deltas
    if cfg.adaptive == "bound":
        return _bound(deltas, bad, cfg)
    if bool(bad.all()):
        return deltas
    out = deltas.clone()
    norms = deltas.norm(dim=1)
    if cfg.adaptive == "norm_spread":
        target = true_median(norms[~bad])
        out[bad] = deltas[bad] * (target / torch.clamp(norms[bad], min=1e-12))[:, None]
        return out
    # cosine
    median = true_median(deltas, dim=0).double()
    if float(median.norm()) == 0:
        return deltas
    c = median / median.norm()
    cosines = (deltas.double() @ c) / torch.clamp(norms.double(), min=1e-300)
    target = float(true_median(cosines[~bad]).clamp(-1.0, 1.0))
    for i in torch.nonzero(bad & (cosines < target)).flatten().tolist():
        u = deltas[i].double()
        orthogonal = u / u.norm() - cosines[i] * c
        size = float(orthogonal.norm())
        direction = c if size == 0 else target * c + math.sqrt(max(0.0, 1.0 - target**2)) * orthogonal / size
        out[i] = (u.norm() * direction).to(deltas.dtype)
    return out


def _bound(deltas: torch.Tensor, bad: torch.Tensor, cfg: Config) -> torch.Tensor:
    out = deltas.clone()
    for _ in range(100):
        norms = out.norm(dim=1)
        radius = norm_bound(cfg, norms) * (1 - BOUND_MARGIN)
        over = bad & (norms > radius)
        if not bool(over.any()):
            break
        out[over] = out[over] * (radius / norms[over])[:, None]
    return out