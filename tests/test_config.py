"""Config validation, parsing and cache keys."""

from __future__ import annotations

import pytest

from dbalib import Config, ConfigError, preset
from dbalib.core.config import parse_overrides


@pytest.mark.parametrize("values, message", [
    ({"scal": 3}, "unknown config key 'scal'; did you mean 'scale'"),
    ({"scale": "big"}, "expects float"),
    ({"rounds": 12.5}, "expects int"),
    ({"attackers": [41, 73, 51, 100]}, "attacker id 100 is out of range"),
    ({"attack_rounds": [12, 14, 16, 99]}, "attack round 99 is outside"),
    ({"attack_rounds": [5, 14, 16, 18]}, "attack round 5 is outside"),
    ({"scale": 0}, "scale must be > 0"),
    ({"scale": -2}, "scale must be > 0"),
    ({"clients_per_round": 101}, "clients_per_round=101"),
    ({"attack": "xba"}, "attack='xba' is not one of"),
    ({"attack_rounds": [12, 14]}, "one attack round per attacker"),
    ({"poison_per_batch": 65}, "poison_per_batch"),
    ({"adaptive": "smart"}, "adaptive='smart' is not one of"),
    ({"adaptive": "bound", "norm_bound_rule": "fixed"}, "adaptive=bound with norm_bound_rule=fixed needs norm_bound > 0"),
    ({"attackers": list(range(11)), "attack_rounds": list(range(12, 23))}, "11 attackers cannot all fit"),
])
def test_bad_values_are_rejected_with_a_clear_message(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("'", "'")):
        Config.from_dict(values)


def test_strings_from_the_command_line_are_parsed():
    cfg = Config.from_dict(parse_overrides(["scale=30", "attack_rounds=12-15,18", "schedule=fixed_frequency",
                                            "eval_fast=false"]))
    assert cfg.scale == 30.0 and cfg.attack_rounds == (12, 13, 14, 15, 18) and cfg.eval_fast is False


def test_cache_key_tracks_results_only():
    base = preset("single_shot_dba")
    assert base.cache_key() == preset("single_shot_dba").cache_key()
    assert base.cache_key() == base.with_overrides(name="other", progress=False, data_dir="/x").cache_key()
    assert base.cache_key() != base.with_overrides(scale=99.0).cache_key()
    assert base.cache_key() != base.with_overrides(eval_fast=False).cache_key()


def test_several_attackers_may_share_a_round_in_single_shot():
    cfg = preset("single_shot_dba", attack_rounds=(12, 12, 12, 12))
    assert cfg.attack_rounds == (12, 12, 12, 12)


def test_unknown_preset_suggests_a_name():
    with pytest.raises(ConfigError, match="did you mean 'multi_shot_dba'"):
        preset("multi_shot_dbaa")


def test_override_keeps_preset_values():
    cfg = preset("collaborative_cba", rounds=40)
    assert cfg.rounds == 40 and cfg.scale == 30.0 and cfg.attackers == (95,)
