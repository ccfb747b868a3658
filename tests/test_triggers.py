"""Trigger geometry and stamping."""

from __future__ import annotations

import pytest
import torch

from dbalib.core.errors import ConfigError
from dbalib.core.triggers import TriggerSpec, stamp


def test_default_local_triggers_match_reference():
    spec = TriggerSpec()
    expected = {
        0: [(0, c) for c in range(0, 4)],
        1: [(0, c) for c in range(6, 10)],
        2: [(3, c) for c in range(0, 4)],
        3: [(3, c) for c in range(6, 10)],
    }
    for index, pixels in expected.items():
        assert spec.pixels(index) == pixels
    assert sorted(spec.pixels()) == sorted(p for ps in expected.values() for p in ps)


def test_global_trigger_is_union_of_local_triggers():
    spec = TriggerSpec(parts=4, height=2, width=3, gap=1, shift=2)
    union = torch.zeros(28, 28, dtype=torch.bool)
    for i in range(4):
        union |= spec.mask(i)
    assert torch.equal(union, spec.mask())
    assert int(spec.mask().sum()) == 4 * 2 * 3


def test_stamp_sets_exactly_the_trigger_pixels(mnist):
    images = mnist.test_x[:16]
    spec = TriggerSpec()
    for index in (None, 0, 3):
        mask = spec.mask(index)
        stamped = stamp(images, mask)
        assert torch.all(stamped[..., mask] == 1.0)
        assert torch.equal(stamped[..., ~mask], images[..., ~mask])
    assert torch.equal(images, mnist.test_x[:16])  # the original is untouched


def test_gap_shift_and_size_move_the_parts():
    spec = TriggerSpec(gap=5, shift=3, width=2)
    assert spec.part_box(0) == (3, 3, 4, 5)
    assert spec.part_box(1) == (3, 10, 4, 12)
    assert spec.part_box(2) == (9, 3, 10, 5)


def test_trigger_that_does_not_fit_is_rejected():
    with pytest.raises(ConfigError, match="does not fit"):
        TriggerSpec(shift=25)
    with pytest.raises(ConfigError):
        TriggerSpec(parts=0)
