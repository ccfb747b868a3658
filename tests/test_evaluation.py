"""Evaluation: the windowed fast path equals the plain forward pass; metric definitions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dbalib.core.evaluation import Evaluator, _AxisWindow
from dbalib.core.model import MnistNet, get_flat
from dbalib.core.triggers import TriggerSpec, stamp


@pytest.fixture(scope="module")
def backdoored_model(mnist):
    """A model trained briefly with a partly learned backdoor, so every ASR is strictly between 0 and 1."""
    torch.manual_seed(0)
    model = MnistNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = mnist.train_x[:4000].clone(), mnist.train_y[:4000].clone()
    x[::4] = stamp(x[::4], TriggerSpec().mask(1))
    y[::4] = 2
    for start in range(0, 4000, 64):
        optimizer.zero_grad()
        F.cross_entropy(model(x[start:start + 64]), y[start:start + 64]).backward()
        optimizer.step()
    return model


@pytest.mark.parametrize("spec", [TriggerSpec(), TriggerSpec(gap=3, shift=5),
                                  TriggerSpec(parts=2, height=2, width=3, shift=12), TriggerSpec(shift=18)])
@pytest.mark.slow
def test_fast_evaluation_equals_plain_forward(mnist, backdoored_model, spec):
    x, y = mnist.test_x[:3000], mnist.test_y[:3000]
    fast = Evaluator(x, y, spec, 2, batch_size=700, fast=True).evaluate(backdoored_model)
    plain = Evaluator(x, y, spec, 2, batch_size=700, fast=False).evaluate(backdoored_model)
    assert fast == plain


@pytest.mark.slow
@pytest.mark.parametrize("spec", [TriggerSpec(), TriggerSpec(gap=3, shift=5), TriggerSpec(shift=18)])
def test_stacked_evaluation_of_several_models_equals_one_by_one(mnist, backdoored_model, spec):
    """evaluate_many (the batched engine's pass over several global models) gives each model's metrics."""
    x, y = mnist.test_x[:3000], mnist.test_y[:3000]
    other = MnistNet()  # a second, untrained model: different predictions
    flats = torch.stack([get_flat(backdoored_model), get_flat(other), get_flat(backdoored_model)])
    evaluator = Evaluator(x, y, spec, 2, batch_size=700, fast=True)
    one_by_one = [evaluator.evaluate(backdoored_model), evaluator.evaluate(other), evaluator.evaluate(backdoored_model)]
    # the stacked kernels round differently: allow an argmax tie to flip for at most 3 of 3,000 images
    for many, one in zip(evaluator.evaluate_many(flats), one_by_one):
        assert many.keys() == one.keys() and all(many[k] == pytest.approx(one[k], abs=1e-3) for k in one)
    plain = Evaluator(x, y, spec, 2, batch_size=700, fast=False)
    assert plain.evaluate_many(flats) == one_by_one


def test_metric_definitions(mnist, backdoored_model):
    x, y = mnist.test_x[:2000], mnist.test_y[:2000]
    metrics = Evaluator(x, y, TriggerSpec(), 2).evaluate(backdoored_model)
    with torch.no_grad():
        clean = (backdoored_model(x).argmax(1) == y).float().mean().item()
        keep = y != 2
        asr = (backdoored_model(stamp(x[keep], TriggerSpec().mask())).argmax(1) == 2).float().mean().item()
        control = (backdoored_model(x[keep]).argmax(1) == 2).float().mean().item()
    assert metrics["clean_acc"] == pytest.approx(clean)
    assert metrics["asr_global"] == pytest.approx(asr)
    assert metrics["asr_no_trigger"] == pytest.approx(control)  # untriggered non-target images called 2
    assert set(metrics) == {"clean_acc", "asr_global", "asr_local_0", "asr_local_1", "asr_local_2", "asr_local_3",
                            "asr_no_trigger"}
    assert 0 < metrics["asr_local_1"] < 1


def test_window_covers_the_changed_cells():
    rows = _AxisWindow.for_span(0, 4)  # trigger rows 0..3
    assert rows.input == (0, 8) and rows.pool1_changed == (0, 2)
    assert rows.pool1_window == (0, 6) and rows.pool2_changed == (0, 1)
    cols = _AxisWindow.for_span(0, 10)
    assert cols.pool1_changed == (0, 5) and cols.pool2_changed == (0, 3)
    whole = _AxisWindow.for_span(0, 28)
    assert whole.input == (0, 28) and whole.pool2_changed == (0, 4)
