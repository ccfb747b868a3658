"""Schedules, client selection, scaling and norm bounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dbalib import preset
from dbalib.core.attacks import AttackPlan, adapt_uploads, attacker_upload, project_to_ball, scale_update, select_clients
from dbalib.core.defenses import norm_bound, true_median
from dbalib.core.registry import ATTACKS, TRIGGERS, attack_spec


def test_single_shot_concentrated_expansion():
    plan = AttackPlan.from_config(preset("single_shot_dba"))
    assert plan.poison_rounds == {41: {12}, 73: {14}, 51: {16}, 74: {18}}
    assert plan.trigger_of == {41: 0, 73: 1, 51: 2, 74: 3}
    assert plan.scheduled(14) == [73] and plan.scheduled(13) == []


def test_cba_uses_the_global_trigger():
    plan = AttackPlan.from_config(preset("single_shot_cba"))
    assert plan.poison_rounds == {95: {18}} and plan.trigger_of == {95: None}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_each_attacker_uses_the_trigger_its_registry_entry_names(attack):
    """``ATTACKS[attack].trigger`` says what ``AttackPlan`` does: local triggers i mod trigger_parts,
    the global trigger (None), or nobody poisons."""
    spec = attack_spec(attack)
    assert spec.name == attack and spec.trigger in TRIGGERS and spec.description
    cfg = preset("multi_shot_dba", attack=attack, attackers=[41, 73, 51, 74, 7], clients_per_round=10)
    plan = AttackPlan.from_config(cfg)
    expected = {"local": {41: 0, 73: 1, 51: 2, 74: 3, 7: 0}, "global": dict.fromkeys(cfg.attackers), "none": {}}
    assert plan.trigger_of == expected[spec.trigger]
    assert bool(plan.poison_rounds) == (spec.trigger != "none")


def test_config_validates_attack_against_the_registry():
    from dbalib import Config, ConfigError

    assert Config(attack="cba").attack == "cba"
    with pytest.raises(ConfigError, match="attack='xba' is not one of dba, cba, none"):
        Config(attack="xba")
    with pytest.raises(ConfigError, match="unknown attack 'xba'; choose one of dba, cba, none"):
        attack_spec("xba")


def test_multi_shot_expansion():
    plan = AttackPlan.from_config(preset("multi_shot_dba"))
    assert all(rounds == set(range(11, 31)) for rounds in plan.poison_rounds.values())
    assert plan.scheduled(20) == [41, 73, 51, 74] and plan.scheduled(31) == []


def test_fixed_frequency_collaborative_expansion():
    dba = AttackPlan.from_config(preset("collaborative_dba"))
    assert dba.poison_rounds == {41: {12, 18, 24}, 73: {13, 19, 25}, 51: {14, 20, 26}, 74: {15, 21, 27}}
    cba = AttackPlan.from_config(preset("collaborative_cba"))
    assert cba.poison_rounds == {95: {15, 21, 27}}


def test_random_schedule_forces_nobody():
    plan = AttackPlan.from_config(preset("random_sampling_dba"))
    assert plan.scheduled(12) == [] and plan.poisons(41, 12) and not plan.poisons(41, 31)


def test_selection_forces_scheduled_attackers_and_fills_at_random():
    rng = np.random.default_rng(0)
    chosen = select_clients(100, 10, [41, 73], rng)
    assert chosen[:2] == [41, 73] and len(chosen) == len(set(chosen)) == 10
    draws = [tuple(select_clients(100, 10, [], np.random.default_rng(s))) for s in range(5)]
    assert len(set(draws)) == 5


def test_scaling_and_projection():
    delta = torch.tensor([3.0, 4.0])
    assert torch.equal(scale_update(delta, 100.0), torch.tensor([300.0, 400.0]))
    projected = project_to_ball(delta, 2.0)
    assert torch.allclose(projected.norm(), torch.tensor(2.0)) and torch.allclose(projected / projected.norm(), delta / 5)
    assert torch.equal(project_to_ball(delta, 10.0), delta)


def test_attacker_upload_scales_then_bounds():
    delta = torch.ones(4)
    cfg = preset("single_shot_dba")
    assert torch.equal(attacker_upload(delta, cfg), delta * 100)
    bounded = attacker_upload(delta, cfg.with_overrides(attack_norm_bound=5.0))
    assert abs(float(bounded.norm()) - 5.0) < 1e-5


def test_more_dba_attackers_than_local_triggers_reuse_them_round_robin():
    plan = AttackPlan.from_config(preset("multi_shot_dba", attackers=(41, 73, 51, 74, 22, 77)))
    assert plan.trigger_of == {41: 0, 73: 1, 51: 2, 74: 3, 22: 0, 77: 1}
    assert AttackPlan.from_config(preset("multi_shot_dba", attackers=(41,))).trigger_of == {41: 0}


def _round(seed=0):
    """Six benign updates sharing a direction, four attackers: orthogonal, one of them scaled."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=400)
    benign = common + 1.5 * rng.normal(size=(6, 400))
    attackers = rng.normal(size=(4, 400)) * 1.3
    attackers[0] *= 50.0
    deltas = torch.as_tensor(np.concatenate([attackers, benign]), dtype=torch.float32)
    return deltas, [True] * 4 + [False] * 6


def test_adaptive_none_and_rounds_without_attackers_change_nothing():
    deltas, malicious = _round()
    assert adapt_uploads(deltas, malicious, preset("multi_shot_dba")) is deltas
    assert adapt_uploads(deltas, [False] * 10, preset("multi_shot_dba", adaptive="cosine")) is deltas


def test_norm_spread_attackers_take_the_benign_median_norm():
    deltas, malicious = _round()
    out = adapt_uploads(deltas, malicious, preset("multi_shot_dba", adaptive="norm_spread"))
    target = float(true_median(deltas[4:].norm(dim=1)))
    assert torch.allclose(out[:4].norm(dim=1), torch.full((4,), target), rtol=1e-5)
    assert torch.equal(out[4:], deltas[4:])
    cos = torch.nn.functional.cosine_similarity(out[:4], deltas[:4])
    assert torch.allclose(cos, torch.ones(4), atol=1e-5)  # directions kept


@pytest.mark.parametrize("factor", [3.0, 1.25, 1.0])
def test_bound_attackers_stay_within_the_rounds_actual_bound(factor):
    deltas, malicious = _round(1)
    cfg = preset("multi_shot_dba", adaptive="bound", norm_bound_factor=factor)
    out = adapt_uploads(deltas, malicious, cfg)
    norms = out.norm(dim=1)
    assert torch.all(norms[:4] <= norm_bound(cfg, norms))  # the bound the defence computes from these uploads
    assert torch.equal(out[4:], deltas[4:])
    assert float(norms[0]) == pytest.approx(norm_bound(cfg, norms), rel=1e-5)  # the scaled one sits at M
    fixed = cfg.with_overrides(norm_bound_rule="fixed", norm_bound=2.0)
    assert torch.all(adapt_uploads(deltas, malicious, fixed)[:4].norm(dim=1) <= 2.0)


def test_cosine_attackers_reach_the_median_benign_cosine_and_keep_their_norms():
    deltas, malicious = _round(2)
    out = adapt_uploads(deltas, malicious, preset("multi_shot_dba", adaptive="cosine"))
    median = true_median(deltas, dim=0)
    cos = lambda d: torch.nn.functional.cosine_similarity(d, median[None].expand_as(d))  # noqa: E731
    target = float(true_median(cos(deltas[4:])))
    assert target > 0.2 and torch.all(cos(deltas[:4]) < target)  # the attackers started below
    assert torch.all(cos(out[:4]) >= target - 1e-5)
    assert torch.allclose(out[:4].norm(dim=1), deltas[:4].norm(dim=1), rtol=1e-5)
    assert torch.equal(out[4:], deltas[4:])
    again = adapt_uploads(out, malicious, preset("multi_shot_dba", adaptive="cosine"))
    assert torch.all(cos(again[:4]) >= target - 1e-2)  # nearly a fixed point
