"""The defence matrix's answers to the study's section-VII questions (defense_eval.answers):
per-seed intervals against the ``stopped`` threshold, on small synthetic results (fast, no MNIST)."""

from __future__ import annotations

import pandas as pd
import pytest

from dbalib.study import defense_eval
from dbalib.study.stats import AGREES, DIFFERS, INCONCLUSIVE, THRESHOLDS

from .test_claims import noisy, result

SINGLE, MULTI = "single_shot_dba", "multi_shot_dba"


def flat(level, spread=0.0):
    return lambda s, r: noisy(level, spread)(s) if r >= 12 else 0.01


def by_claim(claims):
    return {c.claim: c.verdict for c in claims}


def test_each_branch_of_the_answers():
    results = {(SINGLE, "norm_threshold"): result(SINGLE, asr_global=flat(0.02)),   # stopped
               (SINGLE, "abandon"): result(SINGLE, asr_global=flat(0.90)),          # not stopped
               (MULTI, "fedavg"): result(MULTI, asr_global=flat(0.95)),
               (MULTI, "norm_threshold"): result(MULTI, asr_global=flat(0.90)),     # fails: agrees
               (MULTI, "abandon"): result(MULTI, asr_global=flat(0.20, 0.15)),      # straddles 20%
               (MULTI, "rfa"): result(MULTI, asr_global=flat(0.03))}                # stops it
    verdicts = by_claim(defense_eval.answers(results))
    assert verdicts == {"norm_threshold stops single-shot DBA": AGREES,
                        "abandon stops single-shot DBA": DIFFERS,
                        "norm_threshold fails against multi-shot DBA (the study's conjecture)": AGREES,
                        "abandon fails against multi-shot DBA (the study's conjecture)": INCONCLUSIVE}


def test_the_single_shot_answer_reads_the_peak_not_the_end():
    spike = lambda s, r: 0.95 if r == 13 else 0.01  # noqa: E731 - a backdoor implanted, then forgotten
    claim, = defense_eval.answers({(SINGLE, "norm_threshold"): result(SINGLE, asr_global=spike)})
    assert claim.verdict == DIFFERS and claim.estimate == pytest.approx(0.95)


def test_stop_below_overrides_the_threshold_and_says_so():
    results = {(MULTI, "norm_threshold"): result(MULTI, asr_global=flat(0.25))}
    default, = defense_eval.answers(results)
    strict, = defense_eval.answers(results, stop_below=0.3)
    assert default.verdict == AGREES and strict.verdict == DIFFERS  # "fails": the peak above the threshold
    assert strict.threshold["value"] == 0.3
    assert THRESHOLDS["stopped"].value == 0.2



# --- cells whose model is destroyed: diverged seeds (run_cells) and collapsed ones ----------------
def run(seeds=(0, 1, 2), **metrics):
    """A synthetic continuous-DBA Result with the columns ``cell_numbers`` reads."""
    counts = {"n_attackers": lambda s, r: 4, "benign_rejected": lambda s, r: 0, "malicious_rejected": lambda s, r: 0}
    return result(MULTI, seeds=seeds, **(counts | metrics))


def test_a_collapsed_or_diverged_seed_makes_the_cell_destroyed_not_stopped():
    at_chance = lambda s, r: 0.10 if s == 1 and r > 14 else 0.95  # noqa: E731 - seed 1 collapses to chance
    cell = defense_eval.cell_numbers(run(asr_global=flat(0.02), clean_acc=at_chance))
    assert (cell["collapsed_seeds"], cell["diverged_seeds"], cell["destroyed_seeds"]) == (1, 0, 1)
    assert cell["asr_attack_peak_hi"] < 0.2  # the interval alone would say "stopped"
    verdict = defense_eval.stop_verdict(cell["asr_attack_peak_lo"], cell["asr_attack_peak_hi"], 0.2,
                                        cell["destroyed_seeds"])
    assert verdict == defense_eval.DESTROYED
    healthy = defense_eval.cell_numbers(run(asr_global=flat(0.02)), diverged=1)
    assert (healthy["collapsed_seeds"], healthy["destroyed_seeds"]) == (0, 1)
    assert THRESHOLDS["destroyed"].value == defense_eval.destroyed_below() == 0.5


def test_the_tables_keep_diverged_cells_with_their_count():
    results = {(MULTI, "fedavg"): run(seeds=(0, 2), asr_global=flat(0.9)),
               (MULTI, "median"): run(asr_global=flat(0.02))}
    diverged = {(MULTI, "fedavg"): [1], (MULTI, "krum"): [0, 1, 2]}
    table = defense_eval.matrix_table(results, diverged)
    assert list(table.index) == [(MULTI, "fedavg"), (MULTI, "median"), (MULTI, "krum")]
    assert table.loc[(MULTI, "fedavg"), ["seeds", "diverged_seeds", "destroyed_seeds"]].tolist() == [2, 1, 1]
    assert table.loc[(MULTI, "median"), "destroyed_seeds"] == 0
    lost = table.loc[(MULTI, "krum")]
    assert lost["seeds"] == 0 and lost["diverged_seeds"] == 3 and pd.isna(lost["asr_attack_peak"])
    fig = defense_eval.heatmaps(table)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count(defense_eval.DESTROYED_MARK) == 1 and "95" + defense_eval.DESTROYED_MARK in texts
    assert "model destroyed" in fig._suptitle.get_text()
    counts = defense_eval.attacker_count_table({(MULTI, 4, "median"): results[(MULTI, "median")]},
                                               {(MULTI, 4, "krum"): [0]})
    assert counts.loc[(MULTI, 4, "krum"), ["seeds", "diverged_seeds"]].tolist() == [0, 1]
    assert counts.loc[(MULTI, 4, "median"), ["seeds", "diverged_seeds"]].tolist() == [3, 0]


class _FakeStore:
    """A stand-in for ``dbalib.core.sweep.run_many``: configs named "bad" diverge on seed 1, "broken" crash."""

    def __init__(self):
        self.calls = []

    def __call__(self, configs, seeds=(0,), out=None, **_):
        from dbalib.core.errors import DivergedError, SweepError

        configs, seeds = list(configs), list(seeds)
        self.calls.append(([c.name for c in configs], seeds))
        failures = [(c, 1, DivergedError("diverged")) for c in configs if c.name == "bad" and 1 in seeds]
        failures += [(c, 0, RuntimeError("worker died")) for c in configs if c.name == "broken"]
        if failures:
            raise SweepError("failed", failures)
        return [run(seeds=seeds) for _ in configs]


def test_run_cells_keeps_the_finished_seeds_of_a_diverged_cell(monkeypatch):
    from dbalib.core import sweep
    from dbalib.core.errors import SweepError

    fake = _FakeStore()
    monkeypatch.setattr(sweep, "run_many", fake)
    cfg = defense_eval.attack_config(MULTI, 30)
    configs = {"a": cfg.with_overrides(name="good"), "b": cfg.with_overrides(name="bad", eta=0.5)}
    results, diverged = defense_eval.run_cells(configs, [0, 1, 2])
    assert diverged == {"b": [1]} and list(results) == ["a", "b"]
    assert results["a"].seeds == [0, 1, 2] and results["b"].seeds == [0, 2]
    assert fake.calls[1:] == [(["good"], [0, 1, 2]), (["bad"], [0, 2])]  # loads of cached seeds, none re-run
    configs["c"] = cfg.with_overrides(name="broken", eta=0.25)
    with pytest.raises(SweepError):  # any failure other than a divergence is raised
        defense_eval.run_cells(configs, [0, 1, 2])


def test_a_rule_that_destroys_the_model_does_not_stop_single_shot_dba():
    at_chance = lambda s, r: 0.10 if r > 13 else 0.95  # noqa: E731 - every seed collapses after the attack
    claim, = defense_eval.answers({(SINGLE, "norm_threshold"): result(SINGLE, asr_global=flat(0.02), clean_acc=at_chance)})
    assert claim.verdict == DIFFERS and "clean accuracy" in claim.quantity
    kept, = defense_eval.answers({(SINGLE, "norm_threshold"): result(SINGLE, asr_global=flat(0.02))})
    assert kept.verdict == AGREES
