"""The DBA paper's robustness claim (dbalib.study.robustness) on small synthetic results: every
claim branch, the paired difference and the paper's numbers (fast, no MNIST)."""

from __future__ import annotations

import pytest

from dbalib.study import robustness
from dbalib.study.robustness import CBA, DBA
from dbalib.study.stats import AGREES, DIFFERS, INCONCLUSIVE

from .print_checks import assert_print_ready
from .test_claims import noisy, off, result


def asr(level, spread=0.0, from_round=11):
    """asr_global(seed, round): ``level`` (+ spread x seed noise) from ``from_round`` on, 1% before."""
    def f(s, r):
        if r < (from_round(s) if callable(from_round) else from_round):
            return 0.01
        return noisy(level, spread)(s)
    return f


def runs(defense, dba, cba):
    return {(DBA, defense): result(DBA, asr_global=dba), (CBA, defense): result(CBA, asr_global=cba)}


def verdicts(results):
    return [c.verdict for c in robustness.robustness_claims(results, 30)]


def test_foolsgold_as_the_paper_reports_agrees_three_times():
    assert verdicts(runs("foolsgold_dba", asr(0.92), asr(0.02))) == [AGREES] * 3


def test_foolsgold_with_a_weak_dba_differs_from_the_paper():
    beats, near, cba_fails = verdicts(runs("foolsgold", asr(0.30), asr(0.02)))
    assert (beats, near, cba_fails) == (AGREES, DIFFERS, AGREES)


def test_noisy_seeds_leave_the_paired_comparison_inconclusive():
    dba, cba = asr(0.50, spread=0.30), asr(0.45)  # the interval of the difference straddles 0
    assert verdicts(runs("fedavg", dba, cba)) == [INCONCLUSIVE]


def test_rfa_dba_faster_and_higher():
    dba = asr(0.95, from_round=lambda s: 12 + off(s) + 1)  # reaches 90% after 1-3 rounds
    cba = asr(0.95, from_round=lambda s: 22 + off(s))  # after about 11 rounds
    higher, faster = robustness.robustness_claims(runs("rfa", dba, cba), 40)
    assert faster.verdict == AGREES and faster.unit == "rounds"
    assert higher.verdict == INCONCLUSIVE  # both at 95% by round 40: the difference is 0, not above it


def test_rows_are_paired_and_carry_the_papers_numbers():
    rows = robustness.robustness_rows(runs("foolsgold_dba", asr(0.92, 0.03), asr(0.02)) | runs("rfa", asr(0.8), asr(0.5)))
    by = {(r["defense"], r["quantity"]): r for r in rows}
    assert len(rows) == 6 and all(r["round"] == 30 and r["n_seeds"] == 3 for r in rows)
    diff = by[("foolsgold_dba", "DBA minus CBA")]
    assert diff["per_seed"]["value"] == pytest.approx([0.87, 0.90, 0.93])
    assert diff["estimate"] == pytest.approx(0.90) and diff["lo"] < 0.90 < diff["hi"]
    assert by[("foolsgold_dba", "DBA")]["dba_paper"] == pytest.approx(0.9155)
    assert diff["dba_paper"] == pytest.approx(0.9155 - 0.0291)
    assert by[("rfa", "DBA")]["dba_paper"] is None  # the paper gives no number for RFA
    table = robustness.robustness_table(rows)
    assert table.loc[("rfa", "CBA"), "estimate"] == pytest.approx(0.5)


def test_figure_has_a_panel_per_defence():
    results = runs("fedavg", asr(0.9), asr(0.5)) | runs("foolsgold_dba", asr(0.9), asr(0.02)) | runs("rfa", asr(0.8), asr(0.4))
    fig = robustness.robustness_figure(results, 30, note="a note at the foot of the figure")
    assert_print_ready(fig)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [robustness.DEFENSE_LABELS[d] for d in ("fedavg", "foolsgold_dba", "rfa")]
    assert "3 seeds" in fig._suptitle.get_text()


def test_the_paper_table_and_macros_come_from_the_notebooks_rows(tmp_path):
    import json

    from dbalib.study import paper

    results = runs("foolsgold_dba", asr(0.92, 0.03), asr(0.02)) | runs("rfa", asr(0.8), asr(0.5))
    record = {"extra": {"robustness": robustness.robustness_rows(results, 30),
                        "final": robustness.robustness_rows(results, 40),
                        "clean": robustness.robustness_rows(results, 40, "clean_acc")}}
    (tmp_path / f"{paper.ROBUSTNESS_NOTEBOOK}.json").write_text(json.dumps(record))
    macros = paper.robustness_numbers(tmp_path)
    assert macros["m.foolsgold-dba.dba.estimate"] == "92.0" and macros["m.foolsgold-dba.dba.paper"] == "91.55"
    assert macros["m.rfa.gap.end.estimate"] == "30.0" and "m.rfa.dba.paper" not in macros
    assert macros["m.seeds.word"] == "three" and macros["m.rfa.cba.clean.estimate"] == "95.0"
    table = paper.robustness_tex(tmp_path)
    assert "at round 30" in table and table.count(r"\\") == 1 + 6  # header and a row per quantity
    assert r"foolsgold\_dba & DBA & $91.55$ & $92.0$" in table
