"""What the single-shot persistence gap depends on (issue 11, part 4).

The DBA paper reports that 50 rounds after its single-shot attack, DBA keeps 89% attack success
on MNIST against 21% for CBA; our VI-A setting gives a much smaller gap. This module varies one
factor at a time around the VI-A setting (single-shot concentrated DBA at rounds 12, 14, 16, 18
against single-shot CBA at round 18, gamma 100, eta 0.1, pretraining 10 rounds at eta 1) and
measures, on paired seeds, each attack's *persistence* (global-trigger ASR ``later`` rounds after
its last attack) and the gap DBA minus CBA, with 95% intervals from ``dbalib.study.stats``.

Factors: the round-10 model (pretraining eta and rounds), gamma (``scale``), the server learning
rate after pretraining (``eta``) and the attack timing (every attack round shifted later).

``gap_claims`` turns the table into verdicts, with criteria fixed before notebook 08's runs: does
the VI-A gap reach the DBA paper's (threshold ``paper gap``), does any variant's gap reach it, and
does each factor widen the gap over the VI-A setting (paired by seed, threshold ``margin``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..core.config import Config
from ..core.presets import preset
from ..core.results import Result
from . import stats
from .claims import DBA_PAPER_MNIST, Claim, compare, compare_paired, make_claim, seed_values
from .plotting import use_style
from .stats import DIFFERENCE_BOUNDS, RATE_BOUNDS, THRESHOLDS, Threshold, interval, paired

BASE_DBA_ROUNDS = (12, 14, 16, 18)
BASE_CBA_ROUND = 18
# factor -> (config key or "shift", the VI-A value, the values tried besides it)
DEFAULT_FACTORS: dict[str, tuple[str, float, tuple]] = {
    "pretraining eta": ("pretrain_eta", 1.0, (0.1,)),
    "pretraining rounds": ("pretrain_rounds", 10, (5,)),
    "gamma": ("scale", 100.0, (50.0, 200.0)),
    "eta": ("eta", 0.1, (0.05, 0.2)),
    "attack shift (rounds)": ("shift", 0, (10, 30)),
}
ARMS = ("DBA", "CBA")
BASELINE = ("VI-A", "baseline")
SECTION = "persistence"


def variant_configs(factors: dict[str, tuple[str, float, tuple]] | None = None, later: int = 50,
                    **common) -> dict[tuple[str, object, str], Config]:
    """``(factor, value, arm) -> Config`` for the VI-A baseline (factor ``"VI-A"``) and every other
    value of every factor. Each run lasts until ``later`` rounds after its last attack plus two
    (70 for the baseline, as in notebook 01; with the same engine it shares that notebook's runs)."""
    factors = DEFAULT_FACTORS if factors is None else factors
    variants = [("VI-A", "baseline", {})]
    for factor, (key, _default, values) in factors.items():
        variants += [(factor, v, {key: v}) for v in values]
    out = {}
    for factor, value, change in variants:
        shift = int(change.pop("shift", 0))
        dba_rounds = [r + shift for r in BASE_DBA_ROUNDS]
        cba_round = BASE_CBA_ROUND + shift
        rounds = max(dba_rounds + [cba_round]) + later + 2
        settings = {"scale": 100.0, "eta": 0.1} | common | change | {"rounds": rounds}
        out[(factor, value, "DBA")] = preset("single_shot_dba", attack_rounds=dba_rounds, **settings)
        out[(factor, value, "CBA")] = preset("single_shot_cba", attack_rounds=[cba_round], **settings)
    return out


def persistence(result: Result, later: int = 50) -> dict[int, float]:
    """Per seed: global-trigger ASR ``later`` rounds after the run's last attack."""
    last = max(int(r) for r in result.config.attack_rounds)
    return seed_values(result, "asr_global", min(last + later, result.last_round))


def paired_persistence(results: dict[tuple[str, object, str], Result],
                       later: int = 50) -> dict[tuple[str, object], tuple[list[int], list[float], list[float]]]:
    """Per variant ``(factor, value)``: the seeds both arms have, and DBA's and CBA's persistence on them."""
    return {(factor, value): paired(*(persistence(results[(factor, value, arm)], later) for arm in ARMS))
            for factor, value in dict.fromkeys((f, v) for f, v, _ in results)}


def seed_gaps(results: dict[tuple[str, object, str], Result], later: int = 50) -> dict[tuple[str, object], dict]:
    """Per variant ``(factor, value)``: seed -> persistence gap DBA minus CBA (the seeds both arms have)."""
    return _gaps(paired_persistence(results, later))


def _gaps(arms: dict) -> dict[tuple[str, object], dict]:
    return {variant: {s: x - y for s, x, y in zip(seeds, a, b)} for variant, (seeds, a, b) in arms.items()}


def persistence_table(results: dict[tuple[str, object, str], Result], later: int = 50) -> pd.DataFrame:
    """One row per variant: each arm's mean persistence with its 95% interval, the paired gap
    DBA minus CBA with its interval, the seeds, and (when the VI-A setting was run) the change of
    the gap against it, paired by seed (``gap_change``; fractions, not percent)."""
    rows = []
    arms = paired_persistence(results, later)
    gaps = _gaps(arms)
    base = gaps.get(BASELINE)
    for (factor, value), (seeds, a, b) in arms.items():
        gap = list(gaps[(factor, value)].values())
        row = {"factor": factor, "value": value, "seeds": len(seeds)}
        for arm, values, bounds in (("dba", a, RATE_BOUNDS), ("cba", b, RATE_BOUNDS), ("gap", gap, DIFFERENCE_BOUNDS)):
            iv = interval(values, bounds=bounds)
            row |= {arm: iv.estimate, f"{arm}_lo": iv.lo, f"{arm}_hi": iv.hi}
        row["gap_excludes_zero"] = bool(row["gap_lo"] > 0 or row["gap_hi"] < 0)
        row["gap_per_seed"] = gap  # for the strip beside each mean
        if base is not None and (factor, value) != BASELINE:
            _, ours, theirs = paired(gaps[(factor, value)], base)
            iv = interval([x - y for x, y in zip(ours, theirs)])
            row |= {"gap_change": iv.estimate, "gap_change_lo": iv.lo, "gap_change_hi": iv.hi,
                    "gap_change_excludes_zero": bool(iv.lo > 0 or iv.hi < 0)}
        row["method"] = interval(a).method
        rows.append(row)
    return pd.DataFrame(rows)


def _variant_text(factor: str, value) -> str:
    return f"{factor} = {value:g}" if isinstance(value, (int, float)) else f"{factor} = {value}"


def gap_claims(results: dict[tuple[str, object, str], Result], later: int = 50,
               thresholds: dict[str, Threshold] | None = None) -> list[Claim]:
    """The sensitivity study's verdicts (criteria fixed before its runs; needs the VI-A setting):

    1. the VI-A gap reaches the DBA paper's (interval above ``paper gap``);
    2. some variant's gap reaches it (any of them: agrees when one interval lies above, differs when
       all lie below);
    3. one claim per factor: some tried value widens the gap over the VI-A setting (paired by seed,
       interval above ``margin``)."""
    t = dict(thresholds or THRESHOLDS)
    gaps = seed_gaps(results, later)
    if BASELINE not in gaps:
        raise ValueError("the claims compare with the VI-A setting: run it too (factor 'VI-A')")
    after = f"{later} rounds after the attack"
    claims = [make_claim(SECTION, f"In the VI-A setting, DBA's lead over CBA {after} reaches the DBA paper's",
                         [compare(f"gap DBA minus CBA {after}, VI-A setting", gaps[BASELINE], t["paper gap"],
                                  "above", "pts")])]
    variants = [v for v in gaps if v != BASELINE]
    claims.append(make_claim(
        SECTION, "Some variant of the round-10 model, gamma, eta or the attack timing brings the gap to the DBA paper's",
        [compare(f"gap, {_variant_text(*v)}", gaps[v], t["paper gap"], "above", "pts") for v in variants],
        rule=stats.any_of))
    for factor in dict.fromkeys(f for f, _ in variants):
        comparisons = []
        for value in (v for f, v in variants if f == factor):
            comparisons.append(compare_paired(f"gap, {_variant_text(factor, value)} minus VI-A setting",
                                              gaps[(factor, value)], gaps[BASELINE], (str(value), "VI-A"),
                                              t["margin"], "above"))
        claims.append(make_claim(SECTION, f"Changing {factor} widens the gap over the VI-A setting", comparisons,
                                 rule=stats.any_of))
    return claims


def _label(row) -> str:
    return "VI-A setting" if row["factor"] == "VI-A" else _variant_text(row["factor"], row["value"])


def persistence_figure(table: pd.DataFrame, later: int = 50, note: str = "") -> plt.Figure:
    """Forest plot: per variant, DBA's and CBA's persistence (left) and the paired gap (right), in
    percent with 95% intervals; grey ticks under each gap: its per-seed values; dotted: the DBA
    paper's levels. The legend stands above the left panel, off the data."""
    use_style()
    labels = [_label(r) for _, r in table.iterrows()]
    y = list(range(len(table)))[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.8, 0.32 * len(table) + 1.3), sharey=True,
                                      gridspec_kw={"width_ratios": [1.3, 1]})
    for arm, colour, dy in (("dba", "C0", 0.12), ("cba", "C3", -0.12)):
        mid = 100 * table[arm].to_numpy()
        err = [mid - 100 * table[f"{arm}_lo"].to_numpy(), 100 * table[f"{arm}_hi"].to_numpy() - mid]
        left.errorbar(mid, [v + dy for v in y], xerr=err, fmt="o", ms=3, color=colour, capsize=2,
                      label=arm.upper())
    for arm, colour in (("DBA", "C0"), ("CBA", "C3")):  # the DBA paper's MNIST levels, for reference
        left.axvline(100 * DBA_PAPER_MNIST[f"single-shot: {arm} global ASR 50 rounds after the attack"],
                     color=colour, lw=0.8, ls=":")
    left.set_xlabel(f"global ASR {later} rounds after the last attack (%)")
    left.set_yticks(y, labels)
    left.set_xlim(-2, 102)
    paper_level = plt.Line2D([], [], color="0.3", lw=0.8, ls=":", label="the DBA paper's levels")
    left.legend(handles=[*left.get_legend_handles_labels()[0], paper_level], loc="lower left",
                bbox_to_anchor=(0, 1.0), ncol=3, frameon=False, borderaxespad=0.2)  # above the panel, off the data
    mid = 100 * table["gap"].to_numpy()
    err = [mid - 100 * table["gap_lo"].to_numpy(), 100 * table["gap_hi"].to_numpy() - mid]
    for level, values in zip(y, table["gap_per_seed"] if "gap_per_seed" in table else []):
        right.plot([100 * v for v in values], [level - 0.22] * len(values), "|", color="0.55", ms=4, mew=0.8)
    right.errorbar(mid, y, xerr=err, fmt="s", ms=3, color="k", capsize=2)
    right.axvline(0, color="0.5", lw=0.8, ls="--")
    paper_gap = 100 * DBA_PAPER_MNIST["single-shot: DBA minus CBA, 50 rounds after the attack"]
    right.axvline(paper_gap, color="k", lw=0.8, ls=":")
    right.annotate("DBA paper", (paper_gap, 1), xycoords=("data", "axes fraction"), xytext=(-2, -2),
                   textcoords="offset points", ha="right", va="top", fontsize=7)
    right.set_xlabel("DBA minus CBA (points)")
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
    if note:
        fig.text(0.01, 0.005, note, fontsize=7, color="0.3")
    fig.tight_layout(rect=(0, 0.03 if note else 0, 1, 1))
    return fig
