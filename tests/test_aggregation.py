"""FedAvg through the aggregation interface."""

from __future__ import annotations

import pytest
import torch

from dbalib import Config, ConfigError
from dbalib.core.aggregation import FedAvg, RoundUpdates
from dbalib.core.defenses import FACTORIES, make_aggregator
from dbalib.core.registry import AGGREGATORS, aggregator_names


def updates(deltas):
    deltas = torch.as_tensor(deltas, dtype=torch.float32)
    return RoundUpdates(11, list(range(len(deltas))), deltas, torch.full((len(deltas),), 600.0))


def test_fedavg_of_identical_local_models_is_that_model_with_eta_1():
    g = torch.randn(50)
    local = torch.randn(50)
    out = FedAvg(1.0).aggregate(g, updates([(local - g).tolist()] * 10))
    assert torch.allclose(out.new_global, local, atol=1e-6)
    assert torch.equal(out.weights, torch.ones(10))


def test_fedavg_of_zero_updates_is_the_identity():
    g = torch.randn(50)
    assert torch.equal(FedAvg(0.1).aggregate(g, updates(torch.zeros(10, 50))).new_global, g)


def test_fedavg_formula_with_eta():
    g = torch.zeros(3)
    out = FedAvg(0.1).aggregate(g, updates([[1.0, 0, 0], [0, 2.0, 0]]))
    assert torch.allclose(out.new_global, torch.tensor([0.05, 0.1, 0.0]))


def test_model_replacement_identity():
    """gamma * eta / m = 1: one scaled attacker among zero updates lands the global model on X."""
    g, x = torch.zeros(4), torch.tensor([1.0, -2.0, 3.0, 0.5])
    deltas = torch.zeros(10, 4)
    deltas[0] = 100.0 * (x - g)
    assert torch.allclose(FedAvg(0.1).aggregate(g, updates(deltas)).new_global, x)


def test_make_aggregator_by_name():
    agg = make_aggregator(Config(), {})
    assert isinstance(agg, FedAvg) and agg.eta == 0.1


def test_every_registered_rule_has_a_factory_and_every_factory_is_registered():
    """A rule is named twice: in the registry (what config validation and the cache key read) and in
    ``FACTORIES`` (how to build it); the two tables name the same rules, in the same order."""
    assert list(FACTORIES) == list(AGGREGATORS) == aggregator_names()
    assert Config(aggregator="krum").aggregator == "krum"
    with pytest.raises(ConfigError, match="aggregator='nope' is not one of fedavg, norm_threshold"):
        Config(aggregator="nope")
