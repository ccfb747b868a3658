"""What a config can name: the server rules (aggregators) and the attacks, with what validation,
the cache key and the CLI need to know about each.

This module is plain data: it imports nothing of the simulator but its errors, so that
``dbalib.core.config`` can validate ``aggregator`` and ``attack`` against it at import time
and no module needs a function-level import to break a cycle.

- ``AGGREGATORS``: every server rule by name, with a one-line description and the defence
  settings of ``Config`` it reads (only those enter a run's cache key, so adding a defence never
  invalidates other runs), and whether the engines must record gradient sums for it or the
  round loop must build the server's root set. The code of each rule is in
  ``dbalib.core.aggregation`` (FedAvg) and ``dbalib.core.defenses`` (the others, and
  ``FACTORIES``, which builds each registered rule from a config; a test checks that both tables
  name the same rules).
- ``ATTACKS``: every value of ``Config.attack``, with a one-line description and the trigger each
  attacker poisons with (``local``: DBA attacker ``i`` uses local trigger ``i mod trigger_parts``;
  ``global``: the whole trigger; ``none``: nobody poisons). How attackers are scheduled, scaled
  and adapted is ``dbalib.core.attacks``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class AggregatorSpec:
    """A server rule: what it is and which config keys it reads."""

    description: str
    params: tuple[str, ...] = ()  # defence settings of Config it uses (part of the cache key only then)
    needs_grad_sums: bool = False  # the engines record RoundUpdates.grad_sums for it
    # its factory takes a fifth argument, the server's clean root data (``dbalib.core.server.ServerData``,
    # None when only checking the config)
    needs_root: bool = False


NORM_PARAMS = ("norm_bound", "norm_bound_rule", "norm_bound_factor")

AGGREGATORS: dict[str, AggregatorSpec] = {
    "fedavg": AggregatorSpec("FedAvg: G + eta/m * sum of updates (no defence)"),
    "norm_threshold": AggregatorSpec("ignore updates with norm > M, average over all m (Sun et al.)", NORM_PARAMS),
    "abandon": AggregatorSpec("drop updates with norm > M, average the rest (the study's proposal)", NORM_PARAMS),
    "norm_clip": AggregatorSpec("scale each update by 1/max(1, norm/M) (the study's Eq. 4)", NORM_PARAMS),
    "weak_dp": AggregatorSpec("norm clipping + Gaussian noise dp_sigma on the aggregate (Sun et al.)",
                              NORM_PARAMS + ("dp_sigma",)),
    "rfa": AggregatorSpec("geometric median, smoothed Weiszfeld (Pillutla et al.)"),
    "foolsgold": AggregatorSpec("ours after Fung et al.: down-weight clients with similar histories of their "
                                "uploaded updates"),
    "foolsgold_dba": AggregatorSpec("the DBA code's FoolsGold: gradient sums, similarity on fc2.weight, one SGD step",
                                    needs_grad_sums=True),
    "krum": AggregatorSpec("the update nearest its n-f-2 neighbours (Blanchard et al.)", ("krum_f",)),
    "multikrum": AggregatorSpec("mean of the m best Krum scores", ("krum_f", "multikrum_m")),
    "median": AggregatorSpec("coordinate-wise median (Yin et al.)"),
    "trimmed_mean": AggregatorSpec("coordinate-wise trimmed mean (Yin et al.)", ("trim_beta",)),
    "flame": AggregatorSpec("HDBSCAN cosine clustering of the local models + clip to median norm + noise "
                            "(Nguyen et al.)", ("flame_lambda",)),
    "flame_updates": AggregatorSpec("ours: FLAME clustering the updates instead of the local models", ("flame_lambda",)),
    "weak_dp_dba": AggregatorSpec("the DBA code's weak DP: FedAvg + Gaussian noise dp_sigma, no clipping", ("dp_sigma",)),
    "consensus": AggregatorSpec("ours: cosine trust vs the coordinate-wise median, clip to median norm",
                                ("consensus_ratio",)),
    "fltrust": AggregatorSpec("trust = ReLU(cos with the server's root-set update), rescaled (Cao et al.)",
                              ("root_samples",), needs_root=True),
    "validation_filter": AggregatorSpec("ours: drop clients whose leave-one-out raises the root-set accuracy, "
                                        "FedAvg the rest", ("root_samples", "validation_tolerance"), needs_root=True),
}


def aggregator_names() -> list[str]:
    return list(AGGREGATORS)


def aggregator_params(name: str) -> tuple[str, ...]:
    """Config keys aggregator ``name`` reads (empty for unknown names)."""
    spec = AGGREGATORS.get(name)
    return spec.params if spec else ()


def all_defence_params() -> set[str]:
    return {p for spec in AGGREGATORS.values() for p in spec.params}


def aggregator_spec(name: str) -> AggregatorSpec:
    if name not in AGGREGATORS:
        raise ConfigError(f"unknown aggregator '{name}'; choose one of {', '.join(AGGREGATORS)}")
    return AGGREGATORS[name]


TRIGGERS = ("local", "global", "none")  # the trigger an attack's attackers poison with (see the module docstring)


@dataclass(frozen=True)
class AttackSpec:
    """An attack: its name (the value of ``Config.attack``), what it is, and the trigger its attackers use."""

    name: str
    description: str
    trigger: str  # one of TRIGGERS


ATTACKS: dict[str, AttackSpec] = {spec.name: spec for spec in (
    AttackSpec("dba", "distributed backdoor attack: attacker i poisons with local trigger i mod trigger_parts "
               "(Xie et al.)", "local"),
    AttackSpec("cba", "centralised backdoor attack: every attacker poisons with the whole global trigger", "global"),
    AttackSpec("none", "no attack: the listed attackers train benignly", "none"),
)}


def attack_names() -> list[str]:
    return list(ATTACKS)


def attack_spec(name: str) -> AttackSpec:
    if name not in ATTACKS:
        raise ConfigError(f"unknown attack '{name}'; choose one of {', '.join(ATTACKS)}")
    return ATTACKS[name]
