"""The persistence-gap sensitivity study (dbalib.study.sensitivity): its configs and its paired table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dbalib import preset
from dbalib.core.results import Result
from dbalib.study import sensitivity


def test_variants_move_one_factor_and_keep_the_baseline_of_notebook_01():
    configs = sensitivity.variant_configs(later=50, engine="batched")
    base_dba = configs[("VI-A", "baseline", "DBA")]
    assert base_dba.cache_key() == preset("single_shot_dba", rounds=70, engine="batched").cache_key()
    assert configs[("VI-A", "baseline", "CBA")].cache_key() == preset("single_shot_cba", rounds=70,
                                                                       engine="batched").cache_key()
    shifted = configs[("attack shift (rounds)", 30, "DBA")]
    assert list(shifted.attack_rounds) == [42, 44, 46, 48] and shifted.rounds == 100
    assert list(configs[("attack shift (rounds)", 30, "CBA")].attack_rounds) == [48]
    gamma = configs[("gamma", 200.0, "CBA")]
    assert gamma.scale == 200.0 and gamma.eta == base_dba.eta and gamma.pretrain_eta == base_dba.pretrain_eta
    assert configs[("pretraining eta", 0.1, "DBA")].pretrain_eta == 0.1
    assert len(configs) == 2 * (1 + 1 + 1 + 2 + 2 + 2)


def _run(name: str, rounds: int, asr: dict[int, float]) -> Result:
    cfg = preset(name, rounds=rounds)
    rows = [{"seed": s, "round": r, "asr_global": v, "clean_acc": 0.9} for s, v in asr.items()
            for r in range(10, rounds + 1)]
    return Result(cfg, sorted(asr), pd.DataFrame(rows), Path("."), {})


def test_the_gap_is_paired_per_seed_and_its_interval_decides():
    dba = _run("single_shot_dba", 70, {0: 0.50, 1: 0.60, 2: 0.70})
    cba = _run("single_shot_cba", 70, {0: 0.40, 1: 0.50, 2: 0.60})  # every seed exactly 10 points lower
    table = sensitivity.persistence_table({("VI-A", "baseline", "DBA"): dba, ("VI-A", "baseline", "CBA"): cba})
    row = table.iloc[0]
    assert row["seeds"] == 3 and row["dba"] == pytest.approx(0.6) and row["cba"] == pytest.approx(0.5)
    assert row["gap"] == pytest.approx(0.1) and row["gap_lo"] == pytest.approx(0.1) and row["gap_excludes_zero"]
    noisy = _run("single_shot_cba", 70, {0: 0.70, 1: 0.40, 2: 0.55})
    row = sensitivity.persistence_table({("x", 1, "DBA"): dba, ("x", 1, "CBA"): noisy}).iloc[0]
    assert row["gap_lo"] < 0 < row["gap_hi"] and not row["gap_excludes_zero"]


def test_persistence_is_read_later_rounds_after_the_last_attack():
    dba = _run("single_shot_dba", 70, {0: 0.3})
    assert sensitivity.persistence(dba, 50) == {0: pytest.approx(0.3)}  # round 18 + 50 = 68
    assert sensitivity.persistence(dba, 60) == {0: pytest.approx(0.3)}  # capped at the last round
