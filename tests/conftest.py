"""Shared fixtures: real MNIST (prepared once per session) and CI-sized run configs."""

from __future__ import annotations

import pytest
import torch

import dbalib
from dbalib.core.data import load_mnist


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()


def tiny(preset: str = "single_shot_dba", **overrides) -> dbalib.Config:
    """A preset shrunk to seconds: 25% of each client's data, 2,000 test images, few rounds."""
    values = dict(data_fraction=0.25, test_samples=2000, pretrain_rounds=3, rounds=8, progress=False,
                  device="cpu")
    values.update(overrides)
    return dbalib.preset(preset, **values)


@pytest.fixture
def tiny_config():
    return tiny


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
