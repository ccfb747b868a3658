"""Schedules, client selection, scaling and norm bounding."""

from __future__ import annotations

import numpy as np
import torch

from dbalib import preset
from dbalib.attacks import AttackPlan, attacker_upload, project_to_ball, scale_update, select_clients


def test_single_shot_concentrated_expansion():
    plan = AttackPlan.from_config(preset("single_shot_dba"))
    assert plan.poison_rounds == {41: {12}, 73: {14}, 51: {16}, 74: {18}}
    assert plan.trigger_of == {41: 0, 73: 1, 51: 2, 74: 3}
    assert plan.scheduled(14) == [73] and plan.scheduled(13) == []


def test_cba_uses_the_global_trigger():
    plan = AttackPlan.from_config(preset("single_shot_cba"))
    assert plan.poison_rounds == {95: {18}} and plan.trigger_of == {95: None}


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
