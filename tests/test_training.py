"""Local training: poisoned batches, the poison learning-rate schedule, scaling, determinism."""

from __future__ import annotations

import pytest
import torch

from dbalib.core.clients import LocalTrainer, Poison, lr_for_epoch, poison_batch
from dbalib.core.config import Config
from dbalib.core.model import MnistNet, get_flat, new_model, set_flat
from dbalib.core.triggers import TriggerSpec


def test_poisoned_batch_composition(mnist):
    images, labels = mnist.train_x[:64].clone(), mnist.train_y[:64].clone()
    original_x, original_y = images.clone(), labels.clone()
    mask = TriggerSpec().mask(1)
    x, y = poison_batch(images, labels, Poison(mask, 1.0, target=2, per_batch=20))
    assert torch.all(y[:20] == 2)
    assert torch.equal(y[20:], original_y[20:])
    assert torch.all(x[:20][..., mask] == 1.0)
    assert torch.equal(x[:20][..., ~mask], original_x[:20][..., ~mask])
    assert torch.equal(x[20:], original_x[20:])


def test_short_batch_is_poisoned_up_to_its_size(mnist):
    x, y = poison_batch(mnist.train_x[:7].clone(), mnist.train_y[:7].clone(),
                        Poison(TriggerSpec().mask(), 1.0, 2, 20))
    assert torch.all(y == 2)


def test_poison_learning_rate_schedule_matches_reference():
    lrs = [lr_for_epoch(0.05, e, 10, (0.2, 0.8), 0.1) for e in range(1, 11)]
    expected = [0.05] * 2 + [0.005] * 6 + [0.0005] * 2
    assert all(abs(a - b) < 1e-12 for a, b in zip(lrs, expected))


def test_flat_vector_round_trip():
    model = new_model(0)
    flat = get_flat(model)
    assert flat.numel() == 431_080
    other = MnistNet()
    set_flat(other, flat)
    assert torch.equal(get_flat(other), flat)


def test_local_training_is_deterministic_and_moves_the_model(mnist):
    cfg = Config(device="cpu")
    shards = [torch.arange(0, 300), torch.arange(300, 600)]
    trainer = LocalTrainer(mnist.train_x, mnist.train_y, shards, cfg, torch.device("cpu"))
    start = get_flat(new_model(0))
    a = trainer.train(start, client=0, seed=0, round_=11)
    b = trainer.train(start, client=0, seed=0, round_=11)
    c = trainer.train(start, client=0, seed=1, round_=11)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert float(a.norm()) > 0


@pytest.mark.slow
def test_poisoned_training_learns_the_trigger(mnist):
    cfg = Config(device="cpu", poison_epochs=3)
    shards = [torch.arange(0, 1200)]
    trainer = LocalTrainer(mnist.train_x, mnist.train_y, shards, cfg, torch.device("cpu"))
    start = get_flat(new_model(0))
    start = start + trainer.train(start, 0, 0, 1)  # one benign epoch first: a model that reads digits
    mask = TriggerSpec().mask()
    delta = trainer.train(start, 0, 0, 11, Poison(mask, 1.0, 2, 20))
    model = MnistNet()
    set_flat(model, start + delta)
    test = mnist.test_x[mnist.test_y != 2][:500]
    with torch.no_grad():
        asr = (model(test.masked_fill(mask, 1.0)).argmax(1) == 2).float().mean().item()
        clean = (model(test).argmax(1) == 2).float().mean().item()
    assert asr > 0.9 and asr - clean > 0.6
