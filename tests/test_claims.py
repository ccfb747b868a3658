"""Claims as interval statements: every claim function and every verdict branch on small synthetic
results (per-seed, per-round metrics built here; no MNIST, no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from dbalib import paper, stats, study
from dbalib.presets import preset
from dbalib.results import Result
from dbalib.stats import AGREES, DIFFERS, INCONCLUSIVE, THRESHOLDS

SEEDS = (0, 1, 2)


def off(seed: int) -> int:
    """Per-seed noise unit: -1, 0, +1 (sd 1 over three seeds; t-interval half-width 2.48 units)."""
    return seed % 3 - 1


def result(name: str, seeds=SEEDS, rounds: int = 40, **metrics) -> Result:
    """A Result of preset ``name`` whose metrics are ``f(seed, round)``; unnamed metrics are flat."""
    cfg = preset(name, rounds=rounds, pretrain_rounds=10)
    columns = {"clean_acc": lambda s, r: 0.95, "asr_global": lambda s, r: 0.01,
               **{f"asr_local_{i}": (lambda s, r: 0.01) for i in range(cfg.trigger_parts)}}
    columns.update(metrics)
    rows = [{"seed": s, "round": r, **{k: float(f(s, r)) for k, f in columns.items()}}
            for s in seeds for r in range(cfg.pretrain_rounds, rounds + 1)]
    return Result(cfg, list(seeds), pd.DataFrame(rows), Path("."), {})


def dips(**at) -> callable:
    """clean_acc(seed, round): 0.95 minus ``at[f"r{round}"](seed)`` (a one-round dip, recovered next round)."""
    def clean(s, r):
        f = at.get(f"r{r}")
        return 0.95 - (f(s) if callable(f) else (f or 0.0))
    return clean


def tight(v):
    return lambda s: v


def noisy(v, spread):
    return lambda s: v + spread * off(s)


# --- stats: intervals and verdict rules ---------------------------------------------------------
def test_t_interval_of_three_seeds():
    iv = stats.t_interval([1.0, 2.0, 3.0])
    assert iv.estimate == 2.0 and iv.n == 3 and iv.sd == 1.0
    assert iv.hi - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5) and iv.method.startswith("t-interval")


def test_bootstrap_from_twenty_seeds_and_t_below():
    assert stats.interval(list(range(19))).method.startswith("t-interval")
    iv = stats.interval(list(range(20)))
    assert iv.method.startswith("percentile bootstrap") and iv.lo < 9.5 < iv.hi
    assert stats.interval(list(range(20))) == iv  # reproducible resampling


def test_one_seed_has_no_interval_and_no_verdict():
    iv = stats.interval([0.7])
    assert not iv.defined and iv.method == "none" and "one seed" in iv.note
    assert stats.verdict(iv, 0.1, "above") == INCONCLUSIVE
    assert stats.interval([math.nan, 0.3, 0.5]).n == 2  # missing values are left out


@pytest.mark.parametrize("lo, hi, side, expected", [
    (0.2, 0.3, "above", AGREES), (0.0, 0.05, "above", DIFFERS), (0.05, 0.2, "above", INCONCLUSIVE),
    (0.0, 0.05, "below", AGREES), (0.2, 0.3, "below", DIFFERS), (0.05, 0.2, "below", INCONCLUSIVE),
    (0.1, 0.3, "above", INCONCLUSIVE),  # touching the threshold decides nothing
])
def test_verdict_branches(lo, hi, side, expected):
    iv = stats.Interval((lo + hi) / 2, lo, hi, 3, 0.1, "t")
    assert stats.verdict(iv, 0.1, side) == expected


def test_verdict_rejects_an_unknown_side():
    with pytest.raises(ValueError):
        stats.verdict(stats.Interval(0, 0, 0, 3, 0, "t"), 0.1, "over")


def test_combine_and_sensitivity():
    assert stats.combine([AGREES, AGREES]) == AGREES
    assert stats.combine([AGREES, INCONCLUSIVE]) == INCONCLUSIVE
    assert stats.combine([INCONCLUSIVE, DIFFERS, AGREES]) == DIFFERS
    assert stats.combine([]) == INCONCLUSIVE
    iv = stats.Interval(0.25, 0.24, 0.26, 3, 0.0, "t")
    assert stats.sensitivity(iv, 0.2, "above") == {"-50%": AGREES, "+50%": DIFFERS}


def test_the_threshold_table_is_complete():
    assert THRESHOLDS and all(name == t.name for name, t in THRESHOLDS.items())
    for t in THRESHOLDS.values():
        assert t.meaning and t.reason and t.unit and t.role in ("comparison", "level")
    assert study.DROP_THRESHOLD == THRESHOLDS["drop"].value
