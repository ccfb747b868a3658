"""Named configurations: each experiment of the study (section VI) and its CBA counterpart.

Every preset starts from the defaults of ``Config`` (the DBA MNIST settings) and changes only
what its experiment changes. ``python -m dbalib presets`` lists them.

Single-shot runs use eta = 0.1 and gamma = 100 (gamma * eta / m = 1: one attacker replaces the
global model); multi-shot runs use eta = 1 and no scaling; the collaborative (fixed-frequency)
runs keep the single-shot eta and scale by 30% of the single-shot gamma, as the study does.
"""

from __future__ import annotations

from .config import Config, rounds_range
from .errors import ConfigError

DBA_ATTACKERS = (41, 73, 51, 74)
CBA_ATTACKER = (95,)

_PRESETS: dict[str, tuple[str, dict]] = {
    "clean": ("no attack: FedAvg (eta 0.1) after the clean pretraining, the baseline of every curve",
              dict(attack="none")),
    "single_shot_dba": ("VI-A: single-shot concentrated DBA, attackers at rounds 12, 14, 16, 18, gamma 100",
                        dict(attack="dba", attackers=DBA_ATTACKERS, schedule="single_shot",
                             attack_rounds=(12, 14, 16, 18), scale=100.0, eta=0.1)),
    "single_shot_cba": ("single-shot CBA of the DBA paper: one attacker, global trigger, round 18, gamma 100",
                        dict(attack="cba", attackers=CBA_ATTACKER, schedule="single_shot",
                             attack_rounds=(18,), scale=100.0, eta=0.1)),
    "single_shot_disperse_dba": ("VI-B: single-shot disperse DBA, attackers at rounds 12, 21, 30, 39, gamma 100",
                                 dict(attack="dba", attackers=DBA_ATTACKERS, schedule="single_shot",
                                      attack_rounds=(12, 21, 30, 39), scale=100.0, eta=0.1)),
    "single_shot_disperse_cba": ("CBA counterpart of VI-B: one attacker at round 39 (when the disperse DBA completes)",
                                 dict(attack="cba", attackers=CBA_ATTACKER, schedule="single_shot",
                                      attack_rounds=(39,), scale=100.0, eta=0.1)),
    "multi_shot_dba": ("VI-C: continuous DBA, all 4 attackers every round 11-30, no scaling, eta 1",
                       dict(attack="dba", attackers=DBA_ATTACKERS, schedule="multi_shot",
                            attack_rounds=rounds_range(11, 30), scale=1.0, eta=1.0)),
    "multi_shot_cba": ("VI-C: continuous CBA, one attacker every round 11-30, no scaling, eta 1",
                       dict(attack="cba", attackers=CBA_ATTACKER, schedule="multi_shot",
                            attack_rounds=rounds_range(11, 30), scale=1.0, eta=1.0)),
    "collaborative_dba": ("VI-D: fixed-frequency DBA, attackers in turn at 12-15, 18-21, 24-27, gamma 30",
                          dict(attack="dba", attackers=DBA_ATTACKERS, schedule="fixed_frequency",
                               attack_rounds=(*rounds_range(12, 15), *rounds_range(18, 21), *rounds_range(24, 27)),
                               scale=30.0, eta=0.1)),
    "collaborative_cba": ("VI-D: fixed-frequency CBA, one attacker at rounds 15, 21, 27, gamma 30",
                          dict(attack="cba", attackers=CBA_ATTACKER, schedule="fixed_frequency",
                               attack_rounds=(15, 21, 27), scale=30.0, eta=0.1)),
    "norm_bounded_dba": ("continuous DBA (rounds 11-30, eta 1) scaled by 100 but projected onto an L2 ball "
                         "of radius attack_norm_bound (an attacker that stays under a norm threshold; 3 by "
                         "default, notebook 05 derives it from the benign update norms)",
                         dict(attack="dba", attackers=DBA_ATTACKERS, schedule="multi_shot",
                              attack_rounds=rounds_range(11, 30), scale=100.0, eta=1.0, attack_norm_bound=3.0)),
    "random_sampling_dba": ("Sun et al.'s random sampling: the 4 DBA attackers poison whenever drawn, rounds 11-30, eta 1",
                            dict(attack="dba", attackers=DBA_ATTACKERS, schedule="random",
                                 attack_rounds=rounds_range(11, 30), scale=1.0, eta=1.0)),
}


def preset_names() -> list[str]:
    return list(_PRESETS)


def describe_presets() -> list[tuple[str, str]]:
    """(name, one-line description) of every preset."""
    return [(name, text) for name, (text, _) in _PRESETS.items()]


def preset(name: str, /, **overrides) -> Config:
    """The config of preset ``name`` with ``overrides`` applied (validated); an override of ``name``
    relabels the run."""
    if name not in _PRESETS:
        import difflib

        close = difflib.get_close_matches(name, _PRESETS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown preset '{name}'{hint} (python -m dbalib presets lists them)")
    _, values = _PRESETS[name]
    return Config.from_dict({"name": name, **values, **overrides})
