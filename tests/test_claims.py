"""Claims as interval statements: every claim function and every verdict branch on small synthetic
results (per-seed, per-round metrics built here; no MNIST, no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from dbalib.core.presets import preset
from dbalib.core.results import Result
from dbalib.study import claims, paper, stats
from dbalib.study.stats import AGREES, DIFFERS, INCONCLUSIVE, THRESHOLDS

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
    assert claims.DROP_THRESHOLD == THRESHOLDS["drop"].value


# --- VI-A ---------------------------------------------------------------------------------------
def concentrated(**metrics):
    return result("single_shot_dba", **metrics)


@pytest.mark.parametrize("clean, expected", [
    (dips(r12=noisy(0.4, 0.01)), AGREES),
    (dips(r12=tight(0.4), r14=tight(0.3)), DIFFERS),
    (dips(r12=tight(0.4), r14=noisy(0.05, 0.05)), INCONCLUSIVE),
])
def test_one_clean_accuracy_drop(clean, expected):
    claim = claims.claims_single_shot_concentrated(concentrated(clean_acc=clean), result("single_shot_cba"))[0]
    assert claim.verdict == expected and claim.agrees == (expected == AGREES)
    assert [p["threshold"]["side"] for p in claim.parts] == ["above", "below", "below", "below"]
    assert claim.threshold["name"] == "drop" and len(claim.per_seed["value"]) == 3


def _activated(value, control=None):
    metrics = {f"asr_local_{i}": (lambda s, r: value(s) if r >= 12 else 0.005) for i in (1, 2, 3)}
    if control is not None:
        metrics["asr_no_trigger"] = lambda s, r: control if r >= 12 else 0.005
    return concentrated(**metrics)


@pytest.mark.parametrize("value, expected", [
    (noisy(0.55, 0.01), AGREES), (noisy(0.06, 0.01), DIFFERS), (noisy(0.25, 0.1), INCONCLUSIVE)])
def test_first_local_trigger_activates_the_others(value, expected):
    claim = claims.claims_single_shot_concentrated(_activated(value), result("single_shot_cba"))[1]
    assert claim.verdict == expected and len(claim.parts) == 3
    assert "pretrained" in claim.per_seed and "asr_no_trigger" in claim.note  # the fallback control, stated


def test_activation_is_measured_against_the_no_trigger_control():
    """A model that predicts the target for half the clean images has not 'activated' a trigger at 55%."""
    claim = claims.claims_single_shot_concentrated(_activated(noisy(0.55, 0.01), control=0.5),
                                                  result("single_shot_cba"))[1]
    assert claim.verdict == DIFFERS and "no trigger" in claim.per_seed and claim.note == ""
    assert claim.per_seed["no trigger"] == [0.5, 0.5, 0.5]


def _global(final):
    def asr(s, r):
        if r < 12:
            return 0.01
        if r < 18:
            return 0.5
        return final(s) if r == 40 else 0.9
    return asr


@pytest.mark.parametrize("final, expected", [
    (noisy(0.6, 0.02), AGREES), (tight(0.9), DIFFERS), (lambda s: 0.9 - (0.05 + 0.05 * off(s)), INCONCLUSIVE)])
def test_global_trigger_peaks_after_the_last_attack_then_decays(final, expected):
    claim = claims.claims_single_shot_concentrated(concentrated(asr_global=_global(final)), result("single_shot_cba"))[2]
    assert claim.verdict == expected
    assert [p["verdict"] for p in claim.parts][0] == AGREES  # the peak is after the last attack


@pytest.mark.parametrize("cba_value, expected", [
    (lambda s: 0.2 + 0.2 * off(s), AGREES), (lambda s: 0.4 + 0.2 * off(s), DIFFERS),
    (lambda s: 0.2 + 0.25 * off(s), INCONCLUSIVE)])
def test_dba_keeps_a_higher_asr_than_cba_later_paired(cba_value, expected):
    dba = concentrated(asr_global=lambda s, r: 0.3 + 0.2 * off(s))
    cba = result("single_shot_cba", asr_global=lambda s, r: cba_value(s))
    claim = claims.claims_single_shot_concentrated(dba, cba)[3]
    assert claim.verdict == expected and claim.method.startswith("paired differences")
    assert set(claim.per_seed) == {"seed", "DBA", "CBA", "difference"}
    if expected == AGREES:  # the arms vary by +/-20 points, their difference does not: pairing decides it
        unpaired = stats.interval(claim.per_seed["DBA"]).lo - stats.interval(claim.per_seed["CBA"]).hi
        assert unpaired < 0 and claim.interval[0] > 0


def test_unpaired_seeds_are_left_out_and_said():
    dba = result("single_shot_dba", seeds=(0, 1, 2, 3), asr_global=lambda s, r: 0.5)
    claim = claims.claims_single_shot_concentrated(dba, result("single_shot_cba"))[3]
    assert claim.per_seed["seed"] == [0, 1, 2] and "[3]" in claim.note + json.dumps(claim.parts)


# --- VI-B ---------------------------------------------------------------------------------------
def disperse(**metrics):
    return result("single_shot_disperse_dba", rounds=50, **metrics)


@pytest.mark.parametrize("clean, expected", [
    (dips(r12=tight(0.2), r21=tight(0.2), r30=noisy(0.2, 0.01), r39=tight(0.2)), AGREES),
    (dips(r12=tight(0.2), r30=tight(0.2), r39=tight(0.2)), DIFFERS),
    (dips(r12=tight(0.2), r21=tight(0.2), r30=noisy(0.05, 0.05), r39=tight(0.2)), INCONCLUSIVE)])
def test_one_drop_per_dispersed_attack(clean, expected):
    claim = claims.claims_single_shot_disperse(disperse(clean_acc=clean), concentrated(), horizon=5)[0]
    assert claim.verdict == expected and len(claim.parts) == 4


@pytest.mark.parametrize("conc, disp, expected", [
    (tight(0.6), tight(0.2), AGREES), (tight(0.2), tight(0.6), DIFFERS), (noisy(0.4, 0.1), tight(0.4), INCONCLUSIVE)])
def test_dispersed_backdoor_decays_faster_paired(conc, disp, expected):
    d = disperse(asr_global=lambda s, r: disp(s) if r == 44 else 0.9)
    c = concentrated(asr_global=lambda s, r: conc(s) if r == 23 else 0.9)
    claim = claims.claims_single_shot_disperse(d, c, horizon=5)[1]
    assert claim.verdict == expected and "concentrated" in claim.per_seed and "round 23" in claim.quantity


@pytest.mark.parametrize("local0, expected", [(tight(0.05), AGREES), (tight(0.6), DIFFERS), (noisy(0.3, 0.1), INCONCLUSIVE)])
def test_only_the_last_local_trigger_stays_close_to_the_global(local0, expected):
    d = disperse(asr_local_0=lambda s, r: local0(s), asr_local_3=lambda s, r: 0.85, asr_global=lambda s, r: 0.9)
    claim = claims.claims_single_shot_disperse(d, concentrated(), horizon=5)[2]
    assert claim.verdict == expected
    assert [p["threshold"]["name"] for p in claim.parts] == ["low", "low", "low", "close"]


# --- VI-C ---------------------------------------------------------------------------------------
def multi(name="multi_shot_dba", rounds=40, **metrics):
    return result(name, rounds=rounds, **metrics)


@pytest.mark.parametrize("after, expected", [(tight(0.98), AGREES), (tight(0.5), DIFFERS), (noisy(0.9, 0.05), INCONCLUSIVE)])
def test_continuous_dba_stays_persistent(after, expected):
    dba = multi(asr_global=lambda s, r: after(s) if r > 30 else 1.0)
    claim = claims.claims_multi_shot(dba, multi("multi_shot_cba"))[0]
    assert claim.verdict == expected and claim.threshold["name"] == "persistent"


def test_persistence_without_rounds_after_the_attack_is_inconclusive():
    claim = claims.claims_multi_shot(multi(rounds=30), multi("multi_shot_cba", rounds=30))[0]
    assert claim.verdict == INCONCLUSIVE and "ends at the last attack" in claim.note


@pytest.mark.parametrize("final, expected", [(tight(0.3), AGREES), (tight(0.8), DIFFERS), (noisy(0.75, 0.05), INCONCLUSIVE)])
def test_continuous_cba_decays(final, expected):
    cba = multi("multi_shot_cba", asr_global=lambda s, r: final(s) if r == 40 else 0.8)
    assert claims.claims_multi_shot(multi(), cba)[1].verdict == expected


@pytest.mark.parametrize("clean, expected", [
    (dips(), AGREES), (dips(r15=tight(0.2)), DIFFERS), (dips(r15=noisy(0.05, 0.05)), INCONCLUSIVE)])
def test_continuous_dba_causes_no_drop(clean, expected):
    claim = claims.claims_multi_shot(multi(clean_acc=clean), multi("multi_shot_cba"))[2]
    assert claim.verdict == expected and claim.threshold["side"] == "below"


def _reaching(at):
    return lambda s, r: 0.95 if r >= at(s) else 0.1


@pytest.mark.parametrize("d_at, c_at, expected", [
    (tight(13), tight(20), AGREES), (tight(20), tight(13), DIFFERS), (tight(15), lambda s: 15 + 3 * off(s), INCONCLUSIVE)])
def test_dba_converges_faster_paired_rounds(d_at, c_at, expected):
    claim = claims.claims_multi_shot(multi(asr_global=_reaching(d_at)), multi("multi_shot_cba", asr_global=_reaching(c_at)))[3]
    assert claim.verdict == expected and claim.parts[0]["unit"] == "rounds"


def test_a_cba_that_never_converges_is_censored_and_said():
    claim = claims.claims_multi_shot(multi(asr_global=_reaching(tight(13))), multi("multi_shot_cba"))[3]
    assert claim.verdict == AGREES and "CBA never reaches it" in claim.parts[0]["note"]
    assert claim.per_seed["CBA"] == [31.0, 31.0, 31.0]  # rounds 11..40 observed, + 1


@pytest.mark.parametrize("glob, expected", [(tight(0.9), AGREES), (tight(0.4), DIFFERS), (noisy(0.62, 0.1), INCONCLUSIVE)])
def test_global_trigger_above_the_best_local(glob, expected):
    dba = multi(asr_global=lambda s, r: glob(s), asr_local_3=lambda s, r: 0.6, asr_local_0=lambda s, r: 0.5)
    claim = claims.claims_multi_shot(dba, multi("multi_shot_cba"))[4]
    assert claim.verdict == expected and "best local" in claim.per_seed


# --- VI-D ---------------------------------------------------------------------------------------
def collab(name="collaborative_dba", **metrics):
    return result(name, **metrics)


@pytest.mark.parametrize("cba_value, expected", [
    (lambda s: 0.3 + 0.2 * off(s), AGREES), (lambda s: 0.7 + 0.2 * off(s), DIFFERS), (lambda s: 0.5 + 0.25 * off(s), INCONCLUSIVE)])
def test_collaborative_dba_above_cba_paired(cba_value, expected):
    dba = collab(asr_global=lambda s, r: 0.5 + 0.2 * off(s))
    claim = claims.claims_collaborative(dba, collab("collaborative_cba", asr_global=lambda s, r: cba_value(s)))[0]
    assert claim.verdict == expected and claim.method.startswith("paired")


@pytest.mark.parametrize("clean, expected", [
    (dips(r12=tight(0.2), r19=tight(0.2), r24=tight(0.2)), AGREES),
    (dips(r12=tight(0.2), r24=tight(0.2)), DIFFERS),
    (dips(r12=tight(0.2), r18=tight(0.2), r25=noisy(0.05, 0.05)), INCONCLUSIVE)])
def test_a_drop_per_collaborative_cycle(clean, expected):
    claim = claims.claims_collaborative(collab(clean_acc=clean), collab("collaborative_cba"))[1]
    assert claim.verdict == expected and len(claim.parts) == 3 and "(3 in all)" in claim.claim


# --- round-10 convergence -------------------------------------------------------------------------
def by_eta(low_collab, high_collab, low_single=dips(r12=tight(0.4)), high_single=dips(r12=tight(0.4))):
    return {0.1: {"collaborative DBA": collab(clean_acc=low_collab), "single-shot DBA": concentrated(clean_acc=low_single)},
            1.0: {"collaborative DBA": collab(clean_acc=high_collab), "single-shot DBA": concentrated(clean_acc=high_single)}}


ALL_CYCLES = dips(r12=tight(0.2), r18=tight(0.2), r24=tight(0.2))
FIRST_CYCLE = dips(r12=tight(0.2))


@pytest.mark.parametrize("low, high, expected", [
    (ALL_CYCLES, FIRST_CYCLE, AGREES), (ALL_CYCLES, ALL_CYCLES, DIFFERS),
    (dips(r12=tight(0.2), r18=tight(0.2), r24=noisy(0.05, 0.05)), FIRST_CYCLE, INCONCLUSIVE)])
def test_convergence_collaborative_drops(low, high, expected):
    claim = claims.claims_convergence(by_eta(low, high))[0]
    assert claim.verdict == expected and [p["threshold"]["side"] for p in claim.parts] == ["above", "below"]


@pytest.mark.parametrize("single, expected", [
    (dips(r12=tight(0.4)), AGREES), (dips(r12=tight(0.4), r16=tight(0.2)), DIFFERS),
    (dips(r12=tight(0.4), r18=noisy(0.05, 0.05)), INCONCLUSIVE)])
def test_convergence_single_shot_one_drop(single, expected):
    claim = claims.claims_convergence(by_eta(ALL_CYCLES, FIRST_CYCLE, low_single=single))[1]
    assert claim.verdict == expected and len(claim.parts) == 8


def test_convergence_needs_two_pretraining_rates():
    assert claims.claims_convergence({1.0: by_eta(ALL_CYCLES, FIRST_CYCLE)[1.0]}) == []


# --- records: one seed, sensitivity, JSON, old consumers --------------------------------------------
def test_one_seed_gives_inconclusive_claims_without_crashing():
    one = dict(seeds=(0,))
    found = (claims.claims_single_shot_concentrated(result("single_shot_dba", **one), result("single_shot_cba", **one))
             + claims.claims_single_shot_disperse(result("single_shot_disperse_dba", rounds=50, **one),
                                                 result("single_shot_dba", **one), horizon=5)
             + claims.claims_multi_shot(result("multi_shot_dba", **one), result("multi_shot_cba", **one))
             + claims.claims_collaborative(result("collaborative_dba", **one), result("collaborative_cba", **one)))
    assert len(found) == 4 + 3 + 5 + 2
    for claim in found:
        assert claim.verdict == INCONCLUSIVE and claim.interval is None and "no interval" in claim.note
    json.dumps(claims.claims_to_json(found), allow_nan=False)


def test_sensitivity_moves_the_threshold_by_half():
    claim = claims.claims_single_shot_concentrated(_activated(tight(0.255)), result("single_shot_cba"))[1]
    assert claim.verdict == AGREES and claim.sensitivity == {"-50%": AGREES, "+50%": DIFFERS}
    assert all(p["sensitivity"] == {"-50%": AGREES, "+50%": DIFFERS} for p in claim.parts)


def test_a_notebook_drop_threshold_overrides_the_table_and_is_recorded():
    clean = dips(r12=tight(0.4), r14=tight(0.08))
    assert claims.claims_single_shot_concentrated(concentrated(clean_acc=clean), result("single_shot_cba"))[0].verdict == DIFFERS
    claim = claims.claims_single_shot_concentrated(concentrated(clean_acc=clean), result("single_shot_cba"), 0.1)[0]
    assert claim.verdict == AGREES and claim.threshold["value"] == 0.1


def test_claim_records_are_json_with_every_field():
    found = claims.claims_single_shot_concentrated(concentrated(clean_acc=dips(r12=noisy(0.4, 0.01))), result("single_shot_cba"))
    records = json.loads(json.dumps(claims.claims_to_json(found), allow_nan=False))
    for record in records:
        assert {"verdict", "agrees", "quantity", "estimate", "interval", "per_seed", "threshold", "n_seeds", "method",
                "sensitivity", "parts", "evidence"} <= set(record)
        assert isinstance(record["agrees"], bool) and record["agrees"] == (record["verdict"] == AGREES)
    assert records[0]["per_seed"]["seed"] == [0, 1, 2] and records[0]["n_seeds"] == 3


def test_old_style_claims_still_build():
    assert claims.Claim("VII", "x", "e", True).verdict == AGREES
    old = claims.Claim("VII", "x", "e", False)
    assert old.verdict == DIFFERS and not old.agrees and old.interval is None and "no interval" in old.method
    assert claims.Claim("VII", "x", "e", verdict=INCONCLUSIVE).agrees is False
    with pytest.raises(ValueError):
        claims.Claim("VII", "x", "e", verdict="maybe")
    assert claims.verdict_counts([{"agrees": True}, {"agrees": False}, {"verdict": INCONCLUSIVE, "agrees": False}]) == {
        AGREES: 1, DIFFERS: 1, INCONCLUSIVE: 1}


# --- reporting and paper --------------------------------------------------------------------------
def test_key_numbers_count_every_verdict(tmp_path):
    from dbalib.study.reporting import write_key_numbers

    dba = concentrated(clean_acc=dips(r12=noisy(0.4, 0.01)))
    cba = result("single_shot_cba")
    found = claims.claims_single_shot_concentrated(dba, cba)
    path = write_key_numbers("01_single_shot_concentrated", {"SEEDS": list(SEEDS)}, {"DBA": dba, "CBA": cba}, found, tmp_path)
    record = json.loads(path.read_text())
    counts = claims.verdict_counts(found)
    assert (record["claims_agreeing"], record["claims_differing"], record["claims_inconclusive"]) == (
        counts[AGREES], counts[DIFFERS], counts[INCONCLUSIVE])
    assert record["claims_total"] == 4 and {t["name"] for t in record["thresholds"]} == set(THRESHOLDS)
    numbers, by_section = paper.results_numbers(tmp_path)
    assert numbers["a.claims.inconclusive"] == str(counts[INCONCLUSIVE])
    assert numbers["a.claims.differ"] == str(counts[DIFFERS])
    text = paper.claims_tex(by_section["A"])
    assert r"\item[\agree]" in text and "[" in text and "paired" in text
    assert r"\inconclusive" in paper.sensitivity_tex(by_section) or r"\disagree" in paper.sensitivity_tex(by_section)


def test_paper_reads_old_records_as_agrees_or_differs(tmp_path):
    record = {"claims": [{"section": "VI-A", "claim": "one drop", "evidence": "e", "agrees": True},
                         {"section": "VI-A", "claim": "two", "evidence": "e", "agrees": False}],
              "claims_agreeing": 1, "claims_total": 2}
    (tmp_path / "01_single_shot_concentrated.json").write_text(json.dumps(record))
    numbers, by_section = paper.results_numbers(tmp_path)
    assert (numbers["a.claims.agree"], numbers["a.claims.differ"], numbers["a.claims.inconclusive"]) == ("1", "1", "0")
    text = paper.claims_tex(by_section["A"])
    assert r"\item[\agree] one drop" in text and r"\item[\disagree] two" in text and "no interval" in text
    assert r"\item[\agree] \textbf{\claim{A1}} one drop" in paper.claims_tex(by_section["A"], "A")
    summary, sensitivity = paper.summary_tex(by_section), paper.sensitivity_tex(by_section)
    assert r"VI-A & 2 & 1 & 1 & 0 & \claim{A2}" in summary and "one drop" not in summary  # each claim printed once
    assert "A1" in sensitivity and "one drop" not in sensitivity


def test_threshold_table_in_latex():
    text = paper.thresholds_tex()
    for t in THRESHOLDS.values():
        assert rf"\texttt{{{t.name}}}" in text
    assert r"5\,pts" in text and r"90\,\%" in text  # differences of fractions in points, levels in %


# --- run summaries and their printed form ---------------------------------------------------------
def test_summary_gives_the_final_asr_with_its_interval_and_the_round_it_falls_below_half():
    # global ASR: 0.9 until round 20, then 0.3 + 0.1 * off(seed) (three seeds: 0.2, 0.3, 0.4)
    run = result("single_shot_dba", asr_global=lambda s, r: 0.9 if r <= 20 else 0.3 + 0.1 * off(s))
    numbers = claims.summarize(run)["triggers"]["global"]
    half = stats.t_quantile(3) * 0.1 / math.sqrt(3)
    assert numbers["final"] == pytest.approx(0.3)
    assert (numbers["final_lo"], numbers["final_hi"]) == (pytest.approx(0.3 - half), pytest.approx(0.3 + half))
    summary = claims.summarize(run)
    macros = paper.run_numbers("A", "dba", summary)
    assert macros["a.dba.global.final-lo"] == f"{100 * (0.3 - half):.1f}"
    below = summary["last_attack"] + numbers["rounds_to_below_50"]
    assert macros["a.dba.global.below-50-round"] == str(below) and below == 21


def test_rounds_read_as_prose_and_numbers_never_print_minus_zero():
    from dbalib.study.reporting import rounds_phrase
    assert rounds_phrase([12, 14, 16, 18]) == "12, 14, 16 and 18"
    assert rounds_phrase([12, 13, 14, 15, 18, 19, 20, 21], dash="--") == "12--15 and 18--21"
    assert rounds_phrase([27, 15, 21]) == "15, 21 and 27" and rounds_phrase([30]) == "30"
    assert claims._num(-0.0004, "pts") == "0.0" and paper._tex_number(-0.0004, "pts") == "$0.0$"
    assert paper._fmt("final", -0.0001) == "0.0" and claims._num(-0.05, "pts") == "-5.0"


def test_intervals_of_rates_are_cut_at_what_a_rate_can_be():
    iv = stats.interval([0.80, 0.99, 1.0], bounds=stats.RATE_BOUNDS)
    raw = stats.interval([0.80, 0.99, 1.0])
    assert raw.hi > 1.0 and iv.hi == 1.0 and iv.lo == raw.lo and "cut at" in iv.note
    assert stats.interval([0.2, 0.3, 0.4], bounds=stats.RATE_BOUNDS) == stats.interval([0.2, 0.3, 0.4])
    near_one = claims.compare("ASR", {0: 0.80, 1: 0.99, 2: 1.0}, THRESHOLDS["persistent"], "above", "%")
    assert near_one.interval.hi == 1.0 and near_one.verdict == INCONCLUSIVE  # the cut never moves the low end
    gap = claims.compare_paired("gap", {0: 1.0, 1: 1.0, 2: 0.2}, {0: 0.0, 1: 0.0, 2: 0.0}, ("a", "b"),
                                THRESHOLDS["margin"], "above")
    assert gap.interval.hi == 1.0  # a difference of two rates is at most 100 points
