"""The defence and trigger-factor figures and tables (dbalib.study.defense_eval, dbalib.study.factors)
(and the study figure's no-attack baseline) on small synthetic results (fast, no MNIST): every figure is 6.8 in wide (the paper's text width),
no text is smaller than 7 pt or spills out of the figure, values are percents, and the tables'
95% intervals of the mean bracket the mean (NaN with one seed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from dbalib.core.config import Config
from dbalib.core.presets import preset
from dbalib.core.results import Result
from dbalib.study import defense_eval as de
from dbalib.study import factors
from dbalib.study.stats import t_quantile
from .print_checks import assert_print_ready

SEEDS = (0, 1, 2)
ROUNDS = 40
ATTACKS = ["clean", "single_shot_dba", "single_shot_cba", "multi_shot_dba", "multi_shot_cba", "collaborative_dba",
           "collaborative_cba", "random_sampling_dba", "norm_bounded_dba", "norm_bounded_dba+bound",
           "multi_shot_dba+norm_spread", "multi_shot_dba+cosine"]
DEFENSES = ["fedavg", "norm_threshold", "abandon", "norm_clip", "weak_dp", "weak_dp_dba", "rfa", "foolsgold",
            "foolsgold_dba", "krum", "multikrum", "median", "trimmed_mean", "flame", "flame_updates", "consensus",
            "fltrust", "validation_filter"]
NOTE = "3 seed(s), rounds 11-70, continuous attacks in rounds 11-30, 10000 test images; M = 3 x median norm"


# --- synthetic results ---------------------------------------------------------------------------
def make_result(cfg: Config, seeds=SEEDS, asr=lambda s, r: 0.01, clean=lambda s, r: 0.95) -> Result:
    """A Result of ``cfg`` whose global ASR and clean accuracy are ``f(seed, round)``, 1 attacker a
    round from round 11 on, one benign and no malicious update rejected in each attacked round."""
    rows = [{"seed": s, "round": r, "asr_global": float(asr(s, r)), "clean_acc": float(clean(s, r)),
             "n_attackers": int(r > cfg.pretrain_rounds), "benign_rejected": int(r > cfg.pretrain_rounds),
             "malicious_rejected": 0, "asr_no_trigger": 0.01}
            for s in seeds for r in range(cfg.pretrain_rounds, cfg.rounds + 1)]
    return Result(cfg, list(seeds), pd.DataFrame(rows), Path("."), {})


def synthetic(attack: str, defense: str, i: int = 0, seeds=SEEDS) -> Result:
    """``attack`` under ``defense``: an ASR that rises from round 11 to a level set by ``i``, +-3
    points per seed; a clean accuracy near 95%."""
    cfg = preset(attack.partition("+")[0], rounds=ROUNDS, pretrain_rounds=10, aggregator=defense)
    level = (0.97 - 0.05 * i) % 1.0
    return make_result(cfg, seeds, lambda s, r: 0.01 if r <= 10 else min(1.0, level * min(1, (r - 10) / 8) + 0.03 * (s % 3 - 1)),
                       lambda s, r: 0.95 - 0.01 * (i % 4) + 0.004 * (s % 3 - 1) - (0.1 if i == 9 and r % 3 == 0 else 0))


def matrix(attacks=ATTACKS, defenses=DEFENSES) -> pd.DataFrame:
    """A matrix table of every cell, built as ``matrix_table`` builds it, with some 100% cells."""
    rng = np.random.default_rng(0)
    rows = []
    for a in attacks:
        for d in defenses:
            asr = float(rng.choice([0.0, 0.02, 0.5, 0.97, 1.0]))
            rows.append({"attack": a, "defense": d, "asr_final": asr, "asr_peak": min(1.0, asr + 0.05),
                         "clean_final": float(rng.uniform(0.9, 0.99)), "benign_rejected": float(rng.uniform(0, 1)),
                         "malicious_rejected": float(rng.uniform(0, 1)), "seeds": 3})
    return pd.DataFrame(rows).set_index(["attack", "defense"])


def tradeoff() -> dict:
    sweeps = {"norm_threshold": ("norm_bound_factor", [1.25, 1.5, 2.0, 3.0, 4.0, 5.0]),
              "abandon": ("norm_bound_factor", [1.25, 1.5, 2.0, 3.0, 4.0, 5.0]),
              "norm_clip": ("norm_bound_factor", [1.25, 1.5, 2.0, 3.0, 4.0, 5.0]),
              "weak_dp": ("dp_sigma", [0.001, 0.003, 0.01, 0.03]), "weak_dp_dba": ("dp_sigma", [0.001, 0.003, 0.01, 0.03]),
              "krum": ("krum_f", [2, 4, 6]), "multikrum": ("krum_f", [2, 4, 6]),
              "fltrust": ("root_samples", [25, 100, 400]), "validation_filter": ("root_samples", [25, 100, 400])}
    out = {}
    for rule, (key, values) in sweeps.items():
        for j, value in enumerate(values):
            for attack in ("multi_shot_dba", "clean"):
                cfg = preset(attack, rounds=30, pretrain_rounds=10, aggregator=rule)
                level = 0.01 if attack == "clean" else j / len(values)
                out[(rule, key, value, attack)] = make_result(
                    cfg, SEEDS, lambda s, r, level=level: level + 0.02 * (s % 3 - 1) if r > 10 else 0.01,
                    lambda s, r, j=j: 0.96 - 0.02 * j + 0.01 * (s % 3 - 1))
    return out


def counts() -> dict:
    defenses = ["fedavg", "norm_clip", "rfa", "foolsgold_dba", "krum", "median", "flame", "consensus", "fltrust"]
    out = {}
    for attack in ("multi_shot_dba", "multi_shot_cba"):
        cfg = preset(attack, rounds=30, pretrain_rounds=10)
        for n in (1, 2, 4, 6):
            for i, d in enumerate(defenses):
                level = min(1.0, n * (i + 1) / 30)
                out[(attack, n, d)] = make_result(cfg, SEEDS, lambda s, r, level=level: max(0.0, level + 0.03 * (s % 3 - 1)))
    return out


def factor_results(chosen, seeds=SEEDS) -> dict:
    schedule = "multi_shot" if chosen == factors.MULTI_SHOT_FACTORS else "single_shot"
    configs = factors.factor_configs(chosen, schedule, 12, rounds=34, pretrain_rounds=10)
    def asr(s, r, k):  # a level after round 12 that halves after round 25, +-4 points per seed
        return (0.9 - 0.1 * (k % 5)) * (r > 12) * (0.5 if r > 25 else 1.0) + 0.04 * (s % 3 - 1) + 0.05

    return {key: make_result(cfg, seeds, lambda s, r, k=i: asr(s, r, k)) for i, (key, cfg) in enumerate(configs.items())}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- tables --------------------------------------------------------------------------------------
def test_cell_numbers_bracket_the_mean_with_a_t_interval():
    r = synthetic("multi_shot_dba", "fedavg", 2)
    cell = de.cell_numbers(r)
    final = r.metrics[r.metrics["round"] == ROUNDS]
    assert cell["seeds"] == 3
    for column, metric in (("asr_final", "asr_global"), ("clean_final", "clean_acc")):
        x = final[metric].to_numpy()
        half = t_quantile(3) * x.std(ddof=1) / math.sqrt(3)
        assert cell[column] == pytest.approx(x.mean())
        assert cell[f"{column}_lo"] == pytest.approx(x.mean() - half) and cell[f"{column}_hi"] == pytest.approx(x.mean() + half)
        assert cell[f"{column}_lo"] < cell[column] < cell[f"{column}_hi"]


def test_matrix_table_keeps_its_columns_and_adds_intervals():
    results = {(a, d): synthetic(a, d, i) for i, d in enumerate(["fedavg", "krum", "rfa"])
               for a in ("clean", "single_shot_dba", "multi_shot_dba")}
    results[("multi_shot_dba", "median")] = synthetic("multi_shot_dba", "median", 4, seeds=(0,))
    table = de.matrix_table(results)
    for column in ("asr_final", "asr_peak", "clean_final", "benign_rejected", "malicious_rejected", "clean_cost",
                   "asr_final_lo", "asr_final_hi", "clean_final_lo", "clean_final_hi", "seeds"):
        assert column in table
    three = table.drop(("multi_shot_dba", "median"))
    assert (three["seeds"] == 3).all()
    assert (three["asr_final_lo"] <= three["asr_final"]).all() and (three["asr_final"] <= three["asr_final_hi"]).all()
    assert (three["clean_final_lo"] < three["clean_final"]).all() and (three["clean_final"] < three["clean_final_hi"]).all()
    one = table.loc[("multi_shot_dba", "median")]
    assert one["seeds"] == 1 and one[["asr_final_lo", "asr_final_hi", "clean_final_lo", "clean_final_hi"]].isna().all()
    assert table.loc[("clean", "fedavg"), "clean_cost"] == 0
    assert table.loc[("single_shot_dba", "krum"), "clean_cost"] == pytest.approx(0.01)
    # the other tables that reduce runs with cell_numbers carry the intervals too
    assert {"asr_final_lo", "asr_final_sd", "seeds"} <= set(de.tradeoff_table(tradeoff()).columns)
    assert {"asr_final_lo", "asr_final_hi"} <= set(de.attacker_count_table(counts()).columns)


def test_factor_table_adds_t_intervals_cut_at_100_percent_and_keeps_the_std():
    table = factors.factor_table(factor_results(factors.MULTI_SHOT_FACTORS), 10)
    for column in ("asr_after", "asr_later"):
        assert (table[f"{column}_lo"] < table[column]).all() and (table[column] < table[f"{column}_hi"]).all()
        half = t_quantile(3) * table[f"{column}_std"] * math.sqrt(3 / 2) / math.sqrt(3)
        assert (table[column] - table[f"{column}_lo"]).to_numpy() == pytest.approx(half.to_numpy())
        assert table[f"{column}_hi"].to_numpy() == pytest.approx((table[column] + half).clip(upper=1.0).to_numpy())
        assert (table[f"{column}_hi"] <= 1.0).all()
    half = t_quantile(3) * table["asr_after_std"] * math.sqrt(3 / 2) / math.sqrt(3)
    assert (table["asr_after"] + half > 1.0).any()  # some right-after intervals reach past 100%: cut
    assert table["asr_after_std"].to_numpy() == pytest.approx(0.04 * math.sqrt(2 / 3))  # the std keeps ddof 0
    one = factors.factor_table(factor_results(factors.MULTI_SHOT_FACTORS, seeds=(0,)), 10)
    assert (one["seeds"] == 1).all()
    assert one[["asr_after_lo", "asr_after_hi", "asr_later_lo", "asr_later_hi"]].isna().all().all()


# --- figures -------------------------------------------------------------------------------------
def test_heatmaps_of_the_full_matrix_are_print_ready_with_percent_labels():
    table = matrix()
    fig = de.heatmaps(table, note=NOTE)
    assert_print_ready(fig)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 4 and all(ax.get_title().endswith("(%)") for ax in panels)
    cells = [t for t in panels[0].texts]
    assert len(cells) == len(ATTACKS) * len(DEFENSES)
    expected = sorted(f"{100 * v:.0f}" for v in table["asr_final"])
    assert sorted(t.get_text() for t in cells) == expected and "100" in expected
    assert all(t.get_fontsize() >= 7 for t in cells)
    assert panels[0].get_images()[0].get_clim() == (0, 100)
    assert "3 seeds" in fig._suptitle.get_text()


def test_heatmaps_of_a_small_matrix():
    table = de.matrix_table({(a, d): synthetic(a, d, i) for i, d in enumerate(["fedavg", "krum"])
                             for a in ("clean", "multi_shot_dba")})
    fig = de.heatmaps(table)
    assert_print_ready(fig)
    assert fig.get_size_inches()[1] < 5


def test_question_figure_and_curves():
    results = {(a, d): synthetic(a, d, i) for i, d in enumerate(DEFENSES) for a in ("single_shot_dba", "multi_shot_dba")}
    fig = de.question_figure(results, note=NOTE)
    assert_print_ready(fig)
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)  # one legend, below the panels
    assert len(fig.legends[0].get_texts()) == len(DEFENSES)
    left = fig.axes[2]
    assert "(%)" in left.get_ylabel() and max(line.get_ydata().max() for line in left.get_lines()) > 50
    assert left.collections  # 95% bands
    colors = {ax: {l.get_label(): l.get_color() for l in ax.get_lines()} for ax in fig.axes}
    assert colors[fig.axes[0]]["abandon"] == colors[fig.axes[2]]["abandon"]  # one colour per defence
    drawn = [{line.get_label() for line in fig.axes[k].get_lines()} for k in (2, 4)]  # the two groups' ASR panels
    assert drawn[0] == {"fedavg", *de.SIZE_RULES} & set(DEFENSES)
    assert drawn[1] == set(DEFENSES) - set(de.SIZE_RULES)  # every other rule, FedAvg as the reference in both
    assert fig.axes[3].get_ylim() == fig.axes[5].get_ylim() and fig.axes[3].get_ylim()[0] > 0  # zoomed accuracy
    ax = de.curves({d: results[("multi_shot_dba", d)] for d in DEFENSES[:3]}, "continuous DBA")
    assert_print_ready(ax.figure)
    assert ax.figure.legends and ax.get_ylim()[1] > 100


def test_tradeoff_figure_has_interval_bars():
    table = de.tradeoff_table(tradeoff())
    fig = de.tradeoff_figure(table, "multi_shot_dba", note=NOTE, value_labels={"krum_f": {2: "under", 4: "right", 6: "over"}})
    assert_print_ready(fig)
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    ax = fig.axes[0]
    (ys,) = {tuple(np.round(c.get_paths()[0].vertices[:, 1], 6)) for c in ax.collections[:1]}  # the first bar
    row = table.loc[("norm_threshold", "norm_bound_factor", 1.25, "multi_shot_dba")]
    assert sorted(ys) == pytest.approx([max(0, 100 * row.asr_final_lo), 100 * row.asr_final_hi])  # within 0-100%
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["final ASR, continuous DBA", "final clean accuracy, no attack",
                      "benign updates rejected, continuous DBA"]  # the issue's three quantities
    for panel in [a for a in fig.axes if a.get_title()]:  # the clean accuracy on its own, zoomed axis
        twin = next(t for t in fig.axes if t is not panel and t.bbox.bounds == panel.bbox.bounds)
        clean = [line for line in twin.get_lines() if line.get_color() == "tab:green"]
        assert clean and not [line for line in panel.get_lines() if line.get_color() == "tab:green"]
        low, high = twin.get_ylim()
        drawn = min(np.nanmin(line.get_ydata()) for line in clean)
        assert 0 < low <= min(drawn, 90) and high == pytest.approx(100.5)
    root = next(ax for ax in fig.axes if ax.get_title() == "fltrust")  # the root-set sizes, on a log axis
    assert root.get_xscale() == "log" and "root_samples" in root.get_xlabel()
    fig.canvas.draw()
    assert [t.get_text() for t in root.get_xticklabels()] == ["25", "100", "400"]


def test_attacker_count_figure():
    fig = de.attacker_count_figure(de.attacker_count_table(counts()), note=NOTE)
    assert_print_ready(fig)
    assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == 9
    assert all("(%)" in ax.get_ylabel() for ax in fig.axes[:1])


@pytest.mark.parametrize("chosen", [factors.SINGLE_SHOT_FACTORS, factors.MULTI_SHOT_FACTORS])
def test_factor_figure(chosen):
    table = factors.factor_table(factor_results(chosen), 10)
    fig = factors.factor_figure(table, chosen, 10, "Single-shot DBA vs CBA by trigger factor (3 seeds, 1000 test images)")
    assert_print_ready(fig)
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    assert "95% interval" in fig._suptitle.get_text() and "3 seeds" in fig._suptitle.get_text()
    ax = fig.axes[0]
    assert ax.get_ylim()[1] > 100 and "(%)" in ax.get_ylabel()
    bar = ax.collections[0].get_paths()[0].vertices[:, 1]  # the first error bar: the interval, in percent
    first = table[(table["factor"] == chosen[0].name) & (table["attack"] == "DBA")].iloc[0]
    assert sorted(bar) == pytest.approx([100 * first.asr_after_lo, min(100, 100 * first.asr_after_hi)])  # within 0-100%
    assert first.asr_after_hi == 1.0  # the interval itself is cut at 100% (dbalib.study.stats.RATE_BOUNDS)


def test_factor_figure_with_one_seed_has_no_bars():
    table = factors.factor_table(factor_results(factors.MULTI_SHOT_FACTORS, seeds=(0,)), 10)
    fig = factors.factor_figure(table, factors.MULTI_SHOT_FACTORS, 10, "one seed")
    assert_print_ready(fig)
    assert "no interval" in fig._suptitle.get_text()


def test_one_seed_figures_say_so_and_draw_no_band():
    results = {(a, d): synthetic(a, d, i, seeds=(0,)) for i, d in enumerate(["fedavg", "norm_threshold", "krum"])
               for a in ("single_shot_dba", "multi_shot_dba")}
    fig = de.question_figure(results)
    assert_print_ready(fig)
    assert "One seed: no interval" in fig._suptitle.get_text()
    assert not any(ax.collections for ax in fig.axes)
    table = de.matrix_table(results)
    assert (table["seeds"] == 1).all() and table["asr_final_lo"].isna().all()
    assert "1 seed per cell" in de.heatmaps(table)._suptitle.get_text()


def test_study_figure_draws_the_no_attack_baseline_in_grey():
    from dbalib.study.plotting import BASELINE_COLOR, attack_figure

    dba = synthetic("single_shot_dba", "fedavg", 0)
    cba = synthetic("single_shot_cba", "fedavg", 1)
    clean = make_result(preset("clean", rounds=ROUNDS, pretrain_rounds=10), seeds=(0, 1), clean=lambda s, r: 0.97)
    fig = attack_figure({"DBA": dba, "CBA": cba}, title="t", baseline=clean)
    assert_print_ready(fig)
    left, right = fig.axes
    grey = {ax: [l for l in ax.get_lines() if l.get_color() == BASELINE_COLOR] for ax in (left, right)}
    assert [l.get_label() for l in grey[left]] == ["no attack: global trigger"]
    assert [l.get_label() for l in grey[right]] == ["no attack"]
    assert np.allclose(grey[right][0].get_ydata(), 97.0)  # percent, the baseline's own clean accuracy
    assert "no attack: 2 seeds" in fig._suptitle.get_text()  # its seed count differs from the runs' 3
    same = attack_figure({"DBA": dba}, baseline=make_result(clean.config, seeds=SEEDS))
    assert "no attack:" not in same._suptitle.get_text()
    assert not [l for ax in attack_figure({"DBA": dba}).axes for l in ax.get_lines() if l.get_color() == BASELINE_COLOR]


# --- the factor claims: paired per-seed intervals ------------------------------------------------
def _factor_runs(level, seeds=SEEDS) -> dict:
    """Single-shot sweep whose DBA (CBA) ASR at every round after the attack is ``level(factor, value,
    attack)`` plus a per-seed offset shared by DBA and CBA (paired seeds: it cancels in differences)."""
    configs = factors.factor_configs(factors.SINGLE_SHOT_FACTORS, "single_shot", 12, rounds=34, pretrain_rounds=10)
    return {key: make_result(cfg, seeds, lambda s, r, k=key: 0.01 if r <= 12 else level(*k) + 0.05 * (s % 3 - 1))
            for key, cfg in configs.items()}


def test_factor_claims_are_paired_interval_verdicts():
    from dbalib.study.stats import AGREES, DIFFERS, INCONCLUSIVE

    def level(factor, value, attack):
        if factor == "scale":
            return {10.0: 0.1, 30.0: 0.3, 100.0: 0.8}[value] - (0.05 if attack == "CBA" else 0)
        if factor == "interval":
            return {0: 0.5, 1: 0.6, 2: 0.7, 4: 0.4}[value]
        if factor == "poison_ratio":
            return {5: 0.3, 10: 0.3, 20: 0.6, 40: 0.9}[value] - (0.05 if attack == "CBA" else 0)
        return 0.5 - (0.05 if attack == "CBA" else 0)

    claims = {c.claim.split(" (")[0]: c for c in factors.factor_claims(_factor_runs(level), None, 10)}
    scale, interval, dba_cba, ratio = claims.values()
    assert scale.verdict == AGREES and scale.method.startswith("paired") and len(scale.parts) == 2
    assert interval.verdict == AGREES and "(2 rounds)" in interval.claim  # the middle value, fixed beforehand
    assert ratio.verdict == INCONCLUSIVE  # 5 -> 10 does not move it: no interval above zero
    assert dba_cba.verdict == AGREES  # DBA 5 points above CBA, every seed, in every setting
    defaults = [p for p in dba_cba.parts if p["quantity"].startswith("single-shot")]
    assert len(defaults) == len({p["quantity"] for p in dba_cba.parts})  # each setting once
    configs = factors.factor_configs(factors.SINGLE_SHOT_FACTORS, "single_shot", 12, rounds=34, pretrain_rounds=10)
    distinct = {cfg.cache_key() for (f, v, a), cfg in configs.items() if a == "DBA" and (f, v, "CBA") in configs}
    assert len(dba_cba.parts) == len(distinct) < len([k for k in configs if k[2] == "DBA" and k[0] != "interval"])
    flipped = factors.factor_claims(_factor_runs(lambda f, v, a: 0.4 if a == "DBA" else 0.5), None, 10)
    assert [c.verdict for c in flipped if "CBA" in c.claim] == [DIFFERS]


def test_factor_effects_pair_each_setting_with_its_default_and_with_cba():
    def level(factor, value, attack):
        if factor == "size":
            return {2: 0.3, 4: 0.5, 6: 0.52}[value] - (0.05 if attack == "CBA" else 0)
        return 0.5 - (0.05 if attack == "CBA" else 0)

    rows = {(r["factor"], r["value"]): r for r in factors.factor_effects(_factor_runs(level), None, 10)}
    assert {r["schedule"] for r in rows.values()} == {"single_shot"}
    narrow, default, wide = rows[("size", 2)], rows[("size", 4)], rows[("size", 6)]
    assert default["default"] and "change_later" not in default  # nothing to compare the default with
    assert math.isclose(narrow["change_later"], -0.2) and narrow["change_later_excludes_zero"]
    assert narrow["change_later_hi"] < 0 and narrow["seeds"] == len(SEEDS)
    # the per-seed offsets are shared, so the paired interval is a point: 0.02 still excludes zero
    assert math.isclose(wide["change_after"], 0.02) and wide["change_after_excludes_zero"]
    assert all(math.isclose(r["gap"], 0.05) for r in rows.values() if "gap" in r)
    assert "gap" not in rows[("interval", 4)] and "change_later" in rows[("interval", 4)]  # CBA has no interval
    assert factors.default_value(factors.SINGLE_SHOT_FACTORS[4], "single_shot") == factors.DEFAULT_INTERVAL
    assert factors.default_value(factors.MULTI_SHOT_FACTORS[0], "multi_shot") == 20


def test_factor_effects_with_one_seed_have_no_interval_and_exclude_nothing():
    rows = factors.factor_effects(_factor_runs(lambda f, v, a: 0.3 if v in (2, 10.0) else 0.5, seeds=(0,)), None, 10)
    changed = [r for r in rows if "change_later" in r]
    assert changed and not any(r["change_later_excludes_zero"] or r["gap_excludes_zero"] for r in changed if "gap" in r)
    assert all(math.isnan(r["change_later_lo"]) for r in changed)


def test_the_matrix_cells_carry_the_attacks_peak_with_its_interval():
    cfg = preset("multi_shot_dba", rounds=ROUNDS, pretrain_rounds=10)
    spike = make_result(cfg, SEEDS, lambda s, r: 0.9 + 0.01 * s if r == 15 else 0.05, lambda s, r: 0.95)
    cell = de.cell_numbers(spike)  # implanted at round 15, then forgotten: the peak decides, not the end
    assert cell["asr_attack_peak"] == pytest.approx(0.9 + 0.01 * np.mean(SEEDS)) and cell["asr_final"] == pytest.approx(0.05)
    assert cell["asr_attack_peak_lo"] < cell["asr_attack_peak"] < cell["asr_attack_peak_hi"] < 1.0
    assert de.stop_verdict(cell["asr_attack_peak_lo"], cell["asr_attack_peak_hi"], 0.2) == de.NOT_STOPPED
