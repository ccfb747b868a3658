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

