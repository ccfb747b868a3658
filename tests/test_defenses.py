"""Defences on hand-made updates: the math of each aggregator, and its configuration errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dbalib import Config, ConfigError, preset
from dbalib.core.aggregation import FedAvg, RoundUpdates
from dbalib.core.defenses import RFA, Flame, FoolsGold, Krum, make_aggregator, norm_bound, true_median
from dbalib.core.model import get_flat, new_model
from dbalib.core.simulation import check

LAYOUT = {"fc1.weight": slice(0, 30), "fc2.weight": slice(30, 45), "fc2.bias": slice(45, 50)}


def updates(deltas, sizes=None, round_=11):
    deltas = torch.as_tensor(np.asarray(deltas), dtype=torch.float32)
    sizes = torch.full((len(deltas),), 600.0) if sizes is None else torch.as_tensor(sizes, dtype=torch.float32)
    return RoundUpdates(round_, list(range(len(deltas))), deltas, sizes)


def aggregator(name, **overrides):
    values = dict(aggregator=name, eta=0.1, dp_sigma=0.0, flame_lambda=0.0) | overrides
    return make_aggregator(Config.from_dict(values), LAYOUT)


ALL_BUT_FOOLSGOLD = ["fedavg", "norm_threshold", "abandon", "norm_clip", "weak_dp", "weak_dp_dba", "rfa", "krum",
                     "multikrum", "median", "trimmed_mean", "flame", "flame_updates", "consensus"]


@pytest.mark.parametrize("name", ALL_BUT_FOOLSGOLD)
def test_identical_updates_give_fedavgs_result(name):
    g = torch.randn(50)
    delta = torch.randn(50)
    batch = updates([delta.tolist()] * 10)
    expected = FedAvg(0.1).aggregate(g, batch).new_global
    out = aggregator(name).aggregate(g, batch)
    assert torch.allclose(out.new_global, expected, atol=1e-5)
    if name not in ("krum", "multikrum", "median", "trimmed_mean"):  # these select among equals
        assert torch.allclose(out.weights, torch.ones(10), atol=1e-5)
    assert float(out.weights.sum()) == pytest.approx(10.0, rel=1e-4)


def test_clipping_never_increases_a_norm_and_leaves_small_updates_alone():
    rng = np.random.default_rng(0)
    deltas = rng.normal(size=(10, 50)) * rng.uniform(0.1, 10, size=(10, 1))
    batch = updates(deltas)
    agg = aggregator("norm_clip", norm_bound_rule="fixed", norm_bound=3.0)
    out = agg.aggregate(torch.zeros(50), batch)
    factors = out.weights
    clipped_norms = factors * batch.norms
    assert torch.all(clipped_norms <= batch.norms + 1e-6)
    assert torch.all(clipped_norms <= 3.0 + 1e-5)
    small = batch.norms <= 3.0
    assert torch.all(factors[small] == 1.0)
    assert torch.allclose(out.new_global, 0.1 * (factors @ batch.deltas) / 10)


def test_thresholding_and_abandoning_differ_exactly_in_the_denominator():
    deltas = np.ones((10, 50))
    deltas[3] *= 1000.0  # the only update above M
    batch = updates(deltas)
    kwargs = dict(norm_bound_rule="fixed", norm_bound=10.0)
    g = torch.zeros(50)
    threshold = aggregator("norm_threshold", **kwargs).aggregate(g, batch)
    abandon = aggregator("abandon", **kwargs).aggregate(g, batch)
    assert torch.allclose(threshold.new_global, torch.full((50,), 0.1 * 9 / 10))
    assert torch.allclose(abandon.new_global, torch.full((50,), 0.1 * 9 / 9))
    assert threshold.weights[3] == 0 and abandon.weights[3] == 0
    assert torch.allclose(abandon.weights[[0, 1, 2, 4]], torch.full((4,), 10 / 9))


def test_median_norm_rule():
    cfg = Config(norm_bound_rule="median", norm_bound_factor=2.0)
    assert norm_bound(cfg, torch.tensor([1.0, 2.0, 3.0, 100.0, 5.0])) == pytest.approx(6.0)
    assert norm_bound(cfg, torch.tensor([1.0, 2.0, 3.0, 100.0])) == pytest.approx(5.0)  # true median 2.5


def test_true_median_averages_the_two_middle_values_of_an_even_count():
    assert float(true_median(torch.tensor([4.0, 1.0, 3.0, 2.0]))) == 2.5  # torch.median gives 2
    assert float(true_median(torch.tensor([5.0, 1.0, 3.0]))) == 3.0
    rows = torch.tensor([[1.0, 10.0], [2.0, 40.0], [3.0, 20.0], [4.0, 30.0]])
    assert torch.equal(true_median(rows, dim=0), torch.tensor([2.5, 25.0]))
    assert torch.equal(true_median(rows[:3], dim=0), torch.tensor([2.0, 20.0]))


def test_median_clip_bounds_use_the_true_median():
    norms = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]  # true median 5.5, torch's 5
    deltas = np.zeros((10, 50))
    deltas[np.arange(10), np.arange(10)] = norms
    flame = aggregator("flame_updates").aggregate(torch.zeros(50), updates(deltas))
    assert flame.info["clip_to"] == pytest.approx(5.5)
    consensus = aggregator("consensus", consensus_ratio=0.0).aggregate(torch.zeros(50), updates(deltas + 1.0))
    assert consensus.info["clip_to"] == pytest.approx(float(true_median(updates(deltas + 1.0).norms)))


@pytest.mark.parametrize("name", ["median", "trimmed_mean"])
def test_coordinatewise_rules_ignore_one_huge_outlier(name):
    rng = np.random.default_rng(1)
    deltas = 1.0 + 0.01 * rng.normal(size=(10, 50))
    deltas[7] = 1e6
    out = aggregator(name).aggregate(torch.zeros(50), updates(deltas))
    assert torch.allclose(out.new_global, torch.full((50,), 0.1), atol=0.01)
    assert out.weights[7] == 0


def test_krum_picks_a_point_of_the_tight_cluster():
    rng = np.random.default_rng(2)
    deltas = np.concatenate([rng.normal(0, 0.01, size=(6, 20)), rng.normal(5, 3.0, size=(4, 20))])
    out = Krum(1.0, f=4).aggregate(torch.zeros(20), updates(deltas))
    chosen = int(out.weights.argmax())
    assert chosen < 6 and out.weights[chosen] == 10 and out.weights.sum() == 10
    multi = aggregator("multikrum", krum_f=4).aggregate(torch.zeros(20), updates(deltas))
    assert set(torch.nonzero(multi.weights).flatten().tolist()) == set(range(6))


def test_rfa_matches_a_known_geometric_median():
    from scipy.optimize import minimize

    points = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0], [10.0, 10.0], [1.0, 1.0]])
    weights = np.array([1.0, 2.0, 1.0, 1.0, 1.0])
    reference = minimize(lambda v: (weights * np.linalg.norm(points - v, axis=1)).sum(), points.mean(0),
                         method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12}).x
    median, _, _ = RFA(1.0, max_iter=5000, ftol=1e-14).median(torch.tensor(points, dtype=torch.float64),
                                                  torch.tensor(weights, dtype=torch.float64))
    assert np.allclose(median.numpy(), reference, atol=1e-4)
    ten, _, iterations = RFA(1.0).median(torch.tensor(points), torch.tensor(weights))
    assert iterations <= 10 and np.linalg.norm(ten.numpy() - reference) < 0.2


def test_dp_noise_has_the_requested_scale():
    g = torch.zeros(200_000)
    out = aggregator("weak_dp", dp_sigma=0.05).aggregate(g, updates(np.zeros((10, 200_000))))
    assert float(out.new_global.std()) == pytest.approx(0.05, rel=0.02)
    assert abs(float(out.new_global.mean())) < 0.001
    again = aggregator("weak_dp", dp_sigma=0.05).aggregate(g, updates(np.zeros((10, 200_000))))
    assert torch.equal(out.new_global, again.new_global)  # reproducible from (seed, round)


def test_weak_dp_dba_adds_noise_to_fedavg_without_clipping():
    rng = np.random.default_rng(6)
    deltas = rng.normal(size=(10, 100_000))
    deltas[3] *= 1000.0  # clipped by weak_dp, not by the DBA code's weak DP
    g = torch.zeros(100_000)
    batch = updates(deltas)
    out = aggregator("weak_dp_dba", dp_sigma=0.05).aggregate(g, batch)
    noise = out.new_global - FedAvg(0.1).aggregate(g, batch).new_global
    assert float(noise.std()) == pytest.approx(0.05, rel=0.02) and abs(float(noise.mean())) < 0.001
    assert torch.equal(out.weights, torch.ones(10))


def test_flame_on_models_and_on_updates_can_disagree():
    """Six updates share one direction but spread over norms 1..20; four (the 'attackers') point
    elsewhere but are small and close together. By direction (updates) the six form the cluster;
    as models G + delta near a large G, whose cosine distances follow Euclidean distances across
    G, the four small ones and the two smallest of the six are the tight group."""
    p = 40
    u, v, w = np.eye(p)[0], np.eye(p)[1], np.eye(p)[2]
    deltas = np.array([c * u for c in (1.0, 4.0, 8.0, 12.0, 16.0, 20.0)]
                      + [0.3 * v + 0.01 * k * w for k in range(4)])
    g = torch.as_tensor(1000.0 * np.eye(p)[3], dtype=torch.float32)
    batch = updates(deltas)
    on_updates = Flame.cluster(batch.deltas)
    on_models = Flame.cluster(batch.deltas.double() + g.double())
    assert on_updates[:6].all() and not on_updates[6:].any()
    assert on_models[6:].all() and not on_models[2:6].any()
    flame = aggregator("flame").aggregate(g, batch)
    assert torch.equal(flame.weights > 0, torch.as_tensor(on_models))


def test_foolsgold_down_weights_two_identical_clients():
    rng = np.random.default_rng(3)
    deltas = rng.normal(size=(10, 50))
    deltas[8] = deltas[9]  # two sybils with identical updates
    out = FoolsGold(0.1, LAYOUT["fc2.weight"]).aggregate(torch.zeros(50), updates(deltas))
    assert out.weights[8] == 0 and out.weights[9] == 0
    assert torch.all(out.weights[:8] > 0)


def test_foolsgold_keeps_per_client_history():
    agg = FoolsGold(0.1, slice(0, 5))
    agg.aggregate(torch.zeros(5), updates(np.eye(5)[:4]))
    assert torch.equal(agg.history[2], torch.tensor([0.0, 0, 1, 0, 0]))
    agg.aggregate(torch.zeros(5), updates(np.eye(5)[:4]))
    assert torch.equal(agg.history[2], torch.tensor([0.0, 0, 2, 0, 0]))


def test_flame_drops_a_minority_cluster():
    rng = np.random.default_rng(4)
    base = rng.normal(size=50)
    deltas = np.concatenate([base + 0.05 * rng.normal(size=(7, 50)), -base + 0.05 * rng.normal(size=(3, 50))])
    out = aggregator("flame").aggregate(torch.zeros(50), updates(deltas))
    assert torch.all(out.weights[7:] == 0)
    assert int((out.weights[:7] > 0).sum()) >= 6  # the cluster holds at least n/2 + 1 members


def test_consensus_rejects_orthogonal_and_scaled_updates():
    rng = np.random.default_rng(5)
    common = rng.normal(size=2000)
    benign = common + 1.5 * rng.normal(size=(6, 2000))  # agree with each other (cosine ~0.3)
    attackers = rng.normal(size=(4, 2000)) * 1.2  # orthogonal to the benign direction, similar norms
    attackers[0] *= 100.0  # one of them also scaled
    out = aggregator("consensus").aggregate(torch.zeros(2000), updates(np.concatenate([benign, attackers])))
    assert torch.all(out.weights[6:] == 0) and torch.all(out.weights[:6] > 0)
    assert float(out.weights.sum()) <= 10.0 + 1e-4  # FedAvg's scale; clipping can only lower it
    assert float(out.new_global.norm()) <= 0.1 * float(torch.as_tensor(benign).norm(dim=1).max()) + 1e-5


@pytest.mark.parametrize("values, message", [
    ({"aggregator": "krumm"}, "aggregator='krumm' is not one of"),
    ({"aggregator": "norm_clip", "norm_bound": -1.0}, "norm_bound must be >= 0"),
    ({"aggregator": "weak_dp", "dp_sigma": -0.1}, "dp_sigma must be >= 0"),
    ({"aggregator": "trimmed_mean", "trim_beta": 0.5}, "trim_beta must be below 0.5"),
])
def test_defence_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(values)


def test_defence_checks_before_training():
    with pytest.raises(ConfigError, match="norm_bound > 0"):
        check(preset("single_shot_dba", aggregator="norm_threshold", norm_bound_rule="fixed"))
    with pytest.raises(ConfigError, match="krum_f"):
        check(preset("single_shot_dba", aggregator="krum", krum_f=9))


def test_defence_settings_enter_the_cache_key_only_when_used():
    base = preset("single_shot_dba")
    assert base.cache_key() == base.with_overrides(dp_sigma=0.5, krum_f=2).cache_key()
    dp = base.with_overrides(aggregator="weak_dp")
    assert dp.cache_key() != dp.with_overrides(dp_sigma=0.5).cache_key()
    assert dp.cache_key() == dp.with_overrides(krum_f=2).cache_key()


def _with_grads(deltas, grads):
    batch = updates(deltas)
    batch.grad_sums = torch.as_tensor(np.asarray(grads), dtype=torch.float32)
    return batch


def test_foolsgold_dba_is_one_sgd_step_on_the_weighted_gradient_sum_over_n():
    rng = np.random.default_rng(7)
    grads = rng.normal(size=(10, 50))
    grads[8] = grads[9]  # identical sybils: weight 0 (FoolsGold)
    g = torch.as_tensor(rng.normal(size=50), dtype=torch.float32)
    agg = aggregator("foolsgold_dba", eta=0.5)
    out = agg.aggregate(g, _with_grads(rng.normal(size=(10, 50)), grads))
    wv = out.weights
    assert wv[8] == 0 and wv[9] == 0 and float(wv.sum()) < 10
    step = (wv @ torch.as_tensor(grads, dtype=torch.float32)) / 10  # over n, not over sum(wv)
    expected = g - 0.1 * (0.5 * step + 5e-4 * g)
    assert torch.allclose(out.new_global, expected, atol=1e-6)


def test_foolsgold_dba_ignores_the_uploads_hence_the_scale():
    rng = np.random.default_rng(8)
    grads, deltas = rng.normal(size=(10, 50)), rng.normal(size=(10, 50))
    g = torch.zeros(50)
    plain = aggregator("foolsgold_dba").aggregate(g, _with_grads(deltas, grads))
    scaled = deltas.copy()
    scaled[:4] *= 100.0  # model-replacement scaling changes the uploads, not the gradient sums
    assert torch.equal(plain.new_global, aggregator("foolsgold_dba").aggregate(g, _with_grads(scaled, grads)).new_global)


def test_foolsgold_dba_compares_fc2_weight_histories_only():
    grads = np.random.default_rng(9).normal(size=(10, 50))
    grads[8, 30:45] = grads[9, 30:45]  # identical fc2.weight, different elsewhere
    out = aggregator("foolsgold_dba").aggregate(torch.zeros(50), _with_grads(np.zeros((10, 50)), grads))
    assert out.weights[8] == 0 and out.weights[9] == 0
    with pytest.raises(RuntimeError, match="gradient sums"):
        aggregator("foolsgold_dba").aggregate(torch.zeros(50), updates(np.zeros((10, 50))))


class FakeServer:
    """A root set stand-in: a fixed server update, and a root accuracy read off the model."""

    def __init__(self, g0=None, accuracy=None):
        self.g0, self.score = g0, accuracy

    def train(self, global_flat, seed, round_):
        return self.g0.clone()

    def accuracy(self, flats):
        return torch.stack([self.score(f) for f in flats])


def server_rule(name, server, **overrides):
    values = dict(aggregator=name, eta=1.0) | overrides
    return make_aggregator(Config.from_dict(values), LAYOUT, server=server)


def test_fltrust_gives_no_weight_against_the_server_update_and_rescales_the_rest():
    rng = np.random.default_rng(10)
    g0 = torch.as_tensor(rng.normal(size=50), dtype=torch.float32)
    deltas = np.stack([g0.numpy() * c + 0.1 * rng.normal(size=50) for c in (1.0, 2.0, 5.0, 0.5)]
                      + [-3.0 * g0.numpy(), rng.normal(size=50) * 0.01 - g0.numpy()])
    out = server_rule("fltrust", FakeServer(g0)).aggregate(torch.zeros(50), updates(deltas))
    assert out.weights[4] == 0 and out.weights[5] == 0 and torch.all(out.weights[:4] > 0)
    assert float(out.weights.sum()) == pytest.approx(6.0, rel=1e-5)
    batch = updates(deltas)
    trust = torch.relu(batch.deltas @ g0 / (batch.norms * g0.norm()))
    expected = ((trust * g0.norm() / batch.norms) @ batch.deltas) / trust.sum()
    assert torch.allclose(out.new_global, expected, atol=1e-5)
    assert float(out.new_global.norm()) <= float(g0.norm()) + 1e-5  # a convex mix of vectors of norm |g0|
    nobody = server_rule("fltrust", FakeServer(g0)).aggregate(torch.ones(50), updates(np.stack([-g0.numpy()] * 3)))
    assert torch.equal(nobody.new_global, torch.ones(50)) and float(nobody.weights.sum()) == 0


def test_validation_filter_drops_the_update_whose_removal_raises_root_accuracy():
    deltas = np.full((10, 50), 0.01)
    deltas[3, 0] = 5.0  # coordinate 0 stands for the backdoor: it costs root accuracy
    accuracy = lambda flat: 1.0 - torch.clamp(flat[0], 0, 1)  # noqa: E731
    out = server_rule("validation_filter", FakeServer(accuracy=accuracy), eta=0.1).aggregate(
        torch.zeros(50), updates(deltas))
    assert out.weights[3] == 0 and torch.allclose(out.weights[[0, 1, 2, 4]], torch.full((4,), 10 / 9))
    assert torch.allclose(out.new_global, torch.full((50,), 0.1 * 0.01))
    lenient = server_rule("validation_filter", FakeServer(accuracy=accuracy), eta=0.1, validation_tolerance=0.2)
    assert torch.all(lenient.aggregate(torch.zeros(50), updates(deltas)).weights == 1)  # gain 5/90 < 0.2


def test_server_rules_need_the_root_set():
    with pytest.raises(RuntimeError, match="root set"):
        server_rule("fltrust", None).aggregate(torch.zeros(50), updates(np.ones((10, 50))))


def test_root_set_is_disjoint_from_every_shard_and_reproducible(mnist):
    from dbalib.core.data import client_shards
    from dbalib.core.server import ServerData, root_indices

    labels = mnist.train_y.numpy()
    cfg = Config(data_fraction=0.5)
    root = root_indices(cfg, labels)
    assert len(root) == 100 == len(np.unique(root))
    for shard in client_shards(cfg.with_overrides(data_fraction=1.0), labels):
        assert not np.intersect1d(shard, root).size
    assert np.array_equal(root, root_indices(Config(), labels))  # the same for any data_fraction
    assert not np.array_equal(root, root_indices(Config(partition_seed=2), labels))
    with pytest.raises(ConfigError, match="outside every participant's shard"):
        root_indices(Config(partition="iid"), labels)
    server = ServerData.build(Config(root_samples=30), mnist, "cpu")
    assert len(server) == 30 and sum(server.class_counts()) == 30
    g = get_flat(new_model(0))
    update = server.train(g, seed=0, round_=11)
    assert update.shape == g.shape and float(update.norm()) > 0
    assert torch.equal(update, server.train(g, seed=0, round_=11))
    assert 0 <= float(server.accuracy(torch.stack([g, g + update]))[1]) <= 1


def test_a_run_builds_the_root_set_only_for_a_rule_that_needs_it(tiny_config):
    from dbalib.core.simulation import _context

    cfg = check(tiny_config("clean", aggregator="fltrust", root_samples=50))
    assert _context(cfg).server.x.shape == (50, 1, 28, 28)
    assert _context(cfg.with_overrides(aggregator="fedavg")).server is None


@pytest.mark.parametrize("values, message", [
    ({"root_samples": 0}, "root_samples must be >= 1"),
    ({"validation_tolerance": -0.01}, "validation_tolerance must be >= 0"),
])
def test_root_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(values)


@pytest.mark.parametrize("name", ["krum", "multikrum"])
def test_krum_f_is_set_per_run_and_validated(name):
    assert check(preset("multi_shot_dba", aggregator=name, krum_f=7)).krum_f == 7  # n - f - 2 = 1
    with pytest.raises(ConfigError, match=r"clients_per_round - krum_f - 2 >= 1 \(clients_per_round=10, krum_f=8\)"):
        check(preset("multi_shot_dba", aggregator=name, krum_f=8))
    keys = {f: preset("multi_shot_dba", aggregator=name, krum_f=f).cache_key() for f in (2, 4, 6)}
    assert len(set(keys.values())) == 3  # under-, right and over-estimated f are three experiments


def test_the_bound_attacker_puts_the_norm_rule_into_the_cache_key():
    cfg = preset("multi_shot_dba", adaptive="bound")
    assert cfg.cache_key() != cfg.with_overrides(norm_bound_factor=2.0).cache_key()
    plain = preset("multi_shot_dba")
    assert plain.cache_key() == plain.with_overrides(norm_bound_factor=2.0).cache_key()


def _fake_result(cfg, asr_final, clean_final, seeds=(0, 1)):
    import pandas as pd

    from dbalib.core.results import Result

    rows = []
    for seed in seeds:
        for round_, asr, clean in ((10, 0.0, 0.9), (11, asr_final, clean_final)):
            rows.append({"seed": seed, "round": round_, "asr_global": asr, "clean_acc": clean, "n_attackers": 1,
                         "benign_rejected": 0, "malicious_rejected": 0})
    return Result(cfg, list(seeds), pd.DataFrame(rows), None, {})


def test_consensus_ratio_is_the_most_protective_one_within_the_clean_budget():
    from dbalib.study import defense_eval

    attacks = ["multi_shot_dba", "single_shot_dba"]
    numbers = {0.0: (0.9, 0.95), 0.5: (0.3, 0.945), 1.0: (0.1, 0.90)}  # ratio: (ASR, clean accuracy)
    configs = defense_eval.tradeoff_configs({"consensus": ("consensus_ratio", list(numbers))}, attacks + ["clean"], 30)
    results = {key: _fake_result(cfg, numbers[key[2]][0], numbers[key[2]][1]) for key, cfg in configs.items()}
    baseline = _fake_result(preset("clean"), 0.0, 0.95)
    ratio, table = defense_eval.choose_consensus_ratio(results, baseline, attacks, clean_budget=0.01)
    assert ratio == 0.5 and table.loc[1.0, "clean_cost"] == pytest.approx(0.05)
    assert defense_eval.choose_consensus_ratio(results, baseline, attacks, clean_budget=0.1)[0] == 1.0
    assert defense_eval.choose_consensus_ratio(results, baseline, attacks, clean_budget=-1)[0] == 0.0  # least cost
    # a ratio one of whose tuning seeds diverged is never chosen, however well its other seeds did
    diverged = {("consensus", "consensus_ratio", 1.0, "multi_shot_dba"): [2]}
    ratio, table = defense_eval.choose_consensus_ratio(results, baseline, attacks, clean_budget=0.1, diverged=diverged)
    assert ratio == 0.5 and table.loc[1.0, "destroyed_seeds"] == 1


def test_attack_variants_and_sweeps_make_the_intended_configs():
    from dbalib.study import defense_eval

    bound = defense_eval.attack_config("norm_bounded_dba+bound", 30, aggregator="norm_clip")
    assert bound.adaptive == "bound" and bound.attack_norm_bound == 0 and bound.scale == 100 and bound.name.endswith("+bound")
    assert defense_eval.attack_config("random_sampling_dba", 20).attack_rounds == tuple(range(11, 21))
    with pytest.raises(ConfigError, match="not an adaptive attacker"):
        defense_eval.attack_config("multi_shot_dba+sneaky", 30)
    assert defense_eval.krum_f_values(4) == {"under": 2, "right": 4, "over": 6}
    assert defense_eval.krum_f_values(6) == {"under": 4, "right": 6, "over": 7}  # n - f - 2 >= 1
    counts = defense_eval.attacker_count_configs([1, 6], ["krum"], 30)
    six = counts[("multi_shot_dba", 6, "krum")]
    assert len(six.attackers) == 6 and six.krum_f == 6 and check(six).trigger_parts == 4
    assert counts[("multi_shot_cba", 1, "krum")].attackers == (95,)
    sweep = defense_eval.tradeoff_configs({"weak_dp": ("dp_sigma", [0.001, 0.03])}, ["multi_shot_dba", "clean"], 30,
                                          dp_sigma=0.01)
    assert sweep[("weak_dp", "dp_sigma", 0.03, "clean")].dp_sigma == 0.03  # the swept value wins over common


def test_every_rule_says_when_a_client_counts_as_rejected():
    from dbalib.core.registry import aggregator_names
    from dbalib.study.defense_eval import REJECTED_WHEN
    from dbalib.study.paper import rejection_tex

    assert set(REJECTED_WHEN) == set(aggregator_names())
    assert rejection_tex().count(r"\\") == len(aggregator_names()) + 1  # a row per rule and the header
