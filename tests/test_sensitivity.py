"""The persistence-gap sensitivity study (dbalib.study.sensitivity): its configs and its paired table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dbalib import preset
from dbalib.core.results import Result
from dbalib.study import sensitivity

from .print_checks import assert_print_ready


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


def _variants(gaps: dict[tuple[str, object], list[float]], cba: float = 0.1) -> dict:
    """Results whose per-seed persistence gap is ``gaps[variant]`` (CBA flat at ``cba``)."""
    out = {}
    for (factor, value), values in gaps.items():
        out[(factor, value, "DBA")] = _run("single_shot_dba", 70, {s: cba + g for s, g in enumerate(values)})
        out[(factor, value, "CBA")] = _run("single_shot_cba", 70, {s: cba for s in range(len(values))})
    return out


def test_gap_claims_compare_with_the_paper_and_with_the_vi_a_setting_paired():
    from dbalib.study.stats import AGREES, DIFFERS, INCONCLUSIVE
    results = _variants({("VI-A", "baseline"): [0.15, 0.16, 0.17],
                         ("gamma", 50.0): [0.15, 0.16, 0.17],  # no change at all
                         ("gamma", 200.0): [0.25, 0.27, 0.29],  # wider by 10-12 points, still far below 68
                         ("eta", 0.2): [0.79, 0.80, 0.81]})  # above the paper's 68 points, interval and all
    claims = sensitivity.gap_claims(results)
    assert [c.verdict for c in claims] == [DIFFERS, AGREES, AGREES, AGREES]
    assert claims[1].estimate == pytest.approx(0.80)  # the variant that decides it is the headline
    assert claims[2].claim.startswith("Changing gamma") and claims[2].estimate == pytest.approx(0.11)
    assert claims[2].parts[0]["verdict"] == INCONCLUSIVE and claims[2].method.startswith("paired")
    table = sensitivity.persistence_table(results).set_index(["factor", "value"])
    assert table.loc[("gamma", 200.0), "gap_change"] == pytest.approx(0.11)
    assert table.loc[("gamma", 200.0), "gap_change_excludes_zero"]
    assert pd.isna(table.loc[("VI-A", "baseline"), "gap_change"])
    # no variant reaches the paper and none differs from VI-A: differs, then inconclusive
    flat = _variants({("VI-A", "baseline"): [0.15, 0.16, 0.17], ("gamma", 50.0): [0.10, 0.16, 0.22]})
    assert [c.verdict for c in sensitivity.gap_claims(flat)] == [DIFFERS, DIFFERS, INCONCLUSIVE]
    with pytest.raises(ValueError, match="VI-A"):
        sensitivity.gap_claims(_variants({("gamma", 50.0): [0.1, 0.2]}))


def test_any_of_holds_when_one_case_holds_and_fails_when_all_fail():
    from dbalib.study.stats import AGREES, DIFFERS, INCONCLUSIVE, any_of
    assert any_of([DIFFERS, AGREES]) == AGREES and any_of([DIFFERS, DIFFERS]) == DIFFERS
    assert any_of([DIFFERS, INCONCLUSIVE]) == INCONCLUSIVE and any_of([]) == INCONCLUSIVE


def test_persistence_figure_reads_in_print():
    dba = _run("single_shot_dba", 70, {0: 0.50, 1: 0.60, 2: 0.70})
    cba = _run("single_shot_cba", 70, {0: 0.40, 1: 0.50, 2: 0.60})
    table = sensitivity.persistence_table({("VI-A", "baseline", "DBA"): dba, ("VI-A", "baseline", "CBA"): cba,
                                           ("gamma", 50.0, "DBA"): dba, ("gamma", 50.0, "CBA"): cba})
    fig = sensitivity.persistence_figure(table, note="10 paired seeds")
    assert_print_ready(fig)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == ["VI-A setting", "gamma = 50"]
    assert len(right.lines) >= 2  # the per-seed ticks under each gap
