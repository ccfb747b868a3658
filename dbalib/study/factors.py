"""The DBA paper's trigger-factor study: one sweep per factor, DBA against CBA.

A ``Factor`` names a config key (or a derived setting, such as the interval between single-shot
attacks) and its values. ``factor_configs`` builds, for each factor, value and attack, the config
of a run; ``factor_table`` reduces the runs to the ASR of the global trigger right after the last
attack and ``later`` rounds later (mean, std and 95% t-interval of the mean over seeds);
``factor_figure`` draws one panel per factor (6.8 in wide, 95% intervals as error bars),
``factor_importance`` ranks the factors by how much they move the ASR (range of the means),
``factor_effects`` gives each setting's paired change against the factor's default with its 95%
interval, and ``factor_claims`` judges the DBA paper's observations by paired per-seed intervals.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..core.config import Config
from ..core.errors import ConfigError
from ..core.presets import preset
from ..core.results import Result
from .claims import Claim, compare_paired, make_claim, seed_values
from .plotting import RUN_COLORS, use_style
from .stats import DIFFERENCE_BOUNDS, RATE_BOUNDS, THRESHOLDS, bounded, interval, paired, t_interval


@dataclass(frozen=True)
class Factor:
    """One trigger factor: ``key`` is a config key, or ``interval`` (rounds between the four
    single-shot DBA attacks, starting at ``first_round``)."""

    name: str
    key: str
    values: tuple
    label: str
    dba_only: bool = False


SINGLE_SHOT_FACTORS = (
    Factor("scale", "scale", (10.0, 30.0, 100.0), "scale factor gamma"),
    Factor("location", "trigger_shift", (0, 4, 9), "trigger shift from the corner (pixels)"),
    Factor("gap", "trigger_gap", (0, 2, 4), "gap between local triggers (pixels)"),
    Factor("size", "trigger_width", (2, 4, 6), "local trigger width (pixels, height 1)"),
    Factor("interval", "interval", (0, 1, 2, 4), "rounds between the DBA attackers' attacks", dba_only=True),
    Factor("poison_ratio", "poison_per_batch", (5, 10, 20, 40), "poisoned samples per batch of 64"),
    Factor("alpha", "dirichlet_alpha", (0.1, 0.5, 10.0), "Dirichlet alpha of the data split"),
)
DEFAULT_INTERVAL = 2  # rounds between the single-shot DBA attacks (the study's 12, 14, 16, 18)
MULTI_SHOT_FACTORS = (
    Factor("poison_ratio", "poison_per_batch", (5, 10, 20, 40), "poisoned samples per batch of 64"),
    Factor("alpha", "dirichlet_alpha", (0.1, 0.5, 10.0), "Dirichlet alpha of the data split"),
)


def select(available: tuple[Factor, ...], names: list[str]) -> tuple[Factor, ...]:
    """The factors called ``names`` (ConfigError for an unknown name)."""
    by_name = {f.name: f for f in available}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(f"unknown factor(s) {unknown}; choose from {list(by_name)}")
    return tuple(by_name[n] for n in names)


def _apply(base: Config, factor: Factor, value, first_round: int) -> Config:
    if factor.key == "interval":
        rounds = tuple(first_round + i * int(value) for i in range(len(base.attackers)))
        return base.with_overrides(attack_rounds=rounds)
    return base.with_overrides(**{factor.key: value})


def factor_configs(factors: tuple[Factor, ...], schedule: str, first_round: int = 12, multi_shot_end: int = 20,
                   **common) -> dict[tuple[str, object, str], Config]:
    """{(factor, value, "DBA"|"CBA"): Config} for the single-shot or multi-shot presets.

    Single-shot DBA attacks at ``first_round`` + 0, 2, 4, 6 (the study's 12, 14, 16, 18) unless the
    factor is the interval; CBA attacks once, when the DBA's last attack lands. Multi-shot attacks
    run from round ``pretrain_rounds + 1`` to ``multi_shot_end``.
    """
    configs = {}
    for factor in factors:
        for value in factor.values:
            for label in ("DBA", "CBA"):
                if label == "CBA" and factor.dba_only:
                    continue
                name = f"{schedule}_{label.lower()}"
                if schedule == "multi_shot":
                    start = common.get("pretrain_rounds", 10) + 1
                    base = preset(name, attack_rounds=tuple(range(start, multi_shot_end + 1)), **common)
                else:
                    dba_rounds = tuple(first_round + DEFAULT_INTERVAL * i for i in range(4))
                    rounds = dba_rounds if label == "DBA" else (dba_rounds[-1],)
                    base = preset(name, attack_rounds=rounds, **common)
                configs[(factor.name, value, label)] = _apply(base, factor, value, first_round)
    return configs


def last_attack(cfg: Config) -> int:
    return max(cfg.attack_rounds)


def factor_table(results: dict[tuple[str, object, str], Result], later: int) -> pd.DataFrame:
    """Per (factor, value, attack): global-trigger ASR right after the last attack and ``later``
    rounds after it (mean, population std (``_std``, ddof 0) and the 95% t-interval of the mean
    (``_lo``, ``_hi``; NaN with one seed) over seeds), the final clean accuracy and the seed count."""
    rows = []
    for (factor, value, label), result in results.items():
        last = last_attack(result.config)
        m = result.metrics
        after = m[m["round"] == min(last + 1, result.last_round)]["asr_global"]
        late = m[m["round"] == min(last + later, result.last_round)]["asr_global"]
        clean = m[m["round"] == result.last_round]["clean_acc"]
        after_iv, late_iv = (bounded(t_interval(v), RATE_BOUNDS) for v in (after, late))
        rows.append({"factor": factor, "value": value, "attack": label, "asr_after": after.mean(),
                     "asr_after_std": after.std(ddof=0), "asr_later": late.mean(), "asr_later_std": late.std(ddof=0),
                     "clean_final": clean.mean(), "seeds": len(after),
                     "asr_after_lo": after_iv.lo, "asr_after_hi": after_iv.hi,
                     "asr_later_lo": late_iv.lo, "asr_later_hi": late_iv.hi})
    return pd.DataFrame(rows)


def _half_widths(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Error bars (percent) of ``column``: its 95% interval from ``_lo``/``_hi``, within 0-100% (as the
    bands of ``dbalib.study.plotting.mean_band``); 0 where NaN (one seed)."""
    if f"{column}_lo" not in rows:  # a table from before the intervals
        return np.zeros((2, len(rows)))
    low = (rows[column] - rows[f"{column}_lo"].clip(lower=0)).fillna(0).clip(lower=0)
    high = (rows[f"{column}_hi"].clip(upper=1) - rows[column]).fillna(0).clip(lower=0)
    return 100 * np.vstack([low.to_numpy(dtype=float), high.to_numpy(dtype=float)])


def factor_figure(table: pd.DataFrame, factors: tuple[Factor, ...], later: int, title: str) -> plt.Figure:
    """One panel per factor, 6.8 in wide (three panels a row): ASR of the global trigger (percent)
    after the attack (filled markers) and ``later`` rounds on (open), mean over seeds with the 95%
    t-interval of the mean as error bars (none with one seed); one legend below the panels."""
    use_style()
    n = len(factors)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.8, 0.8 + 2.1 * rows), constrained_layout=True, squeeze=False,
                             sharey=True)
    for ax, factor in zip(axes.flat, factors):
        part = table[table["factor"] == factor.name]
        positions = {v: i for i, v in enumerate(factor.values)}
        for k, label in enumerate(("DBA", "CBA")):
            rows_ = part[part["attack"] == label].sort_values("value", key=lambda s: s.map(positions))
            if rows_.empty:
                continue
            x = [positions[v] + (k - 0.5) * 0.12 for v in rows_["value"]]
            color = RUN_COLORS[k]
            ax.errorbar(x, 100 * rows_["asr_after"], yerr=_half_widths(rows_, "asr_after"), color=color, marker="o",
                        markersize=3.5, capsize=2, label=f"{label}: after the attack")
            ax.errorbar(x, 100 * rows_["asr_later"], yerr=_half_widths(rows_, "asr_later"), color=color, marker="o",
                        markersize=3.5, markerfacecolor="white", linestyle="--", capsize=2,
                        label=f"{label}: {later} rounds later")
        ax.set_xticks(range(len(factor.values)), [f"{v:g}" if isinstance(v, float) else str(v) for v in factor.values])
        ax.set_xlim(-0.4, len(factor.values) - 0.6)
        ax.set(title=factor.name.replace("_", " "), xlabel=textwrap.fill(factor.label, 34), ylim=(-3, 105))
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("global-trigger ASR (%)")
    handles: dict = {}
    for ax in axes.flat[:n]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=4, frameon=False)
    seeds = sorted({int(s) for s in table["seeds"]}) if "seeds" in table and len(table) else []
    if seeds == [1]:
        spread = "one seed: no interval"
    elif seeds:
        spread = (f"mean over {'/'.join(map(str, seeds))} seeds, bars = 95% interval of the mean"
                  + (" (none with one seed)" if seeds[0] == 1 else ""))
    fig.suptitle(textwrap.fill(title, 100) + (f"\n{spread}" if seeds else ""))
    return fig


def factor_importance(table: pd.DataFrame, attack: str = "DBA", column: str = "asr_later") -> pd.Series:
    """Range (max - min) of the ASR over each factor's values: how much the factor matters."""
    part = table[table["attack"] == attack]
    return part.groupby("factor")[column].agg(lambda s: s.max() - s.min()).sort_values(ascending=False)


def _seed_asr(result: Result, later: int | None) -> dict[int, float]:
    """Per seed: global-trigger ASR right after the run's last attack (``later`` None) or ``later``
    rounds after it (capped at the run's last round)."""
    last = last_attack(result.config)
    return seed_values(result, "asr_global", min(last + (1 if later is None else later), result.last_round))


def _values(results: dict[tuple[str, object, str], Result], factor: str, attack: str = "DBA") -> list:
    return [value for f, value, a in results if f == factor and a == attack]


def default_value(factor: Factor, schedule: str):
    """The value ``factor`` takes in the ``schedule`` ("single_shot" or "multi_shot") preset."""
    if factor.key == "interval":
        return DEFAULT_INTERVAL
    return getattr(preset(f"{schedule}_dba"), factor.key)


def _paired_fields(name: str, a: dict[int, float], b: dict[int, float]) -> dict:
    """``a - b`` paired by seed: estimate, 95% interval (``_lo``, ``_hi``) and whether it excludes zero."""
    _, x, y = paired(a, b)
    iv = interval([u - v for u, v in zip(x, y)], bounds=DIFFERENCE_BOUNDS)
    return {name: iv.estimate, f"{name}_lo": iv.lo, f"{name}_hi": iv.hi,
            f"{name}_excludes_zero": bool(iv.defined and (iv.lo > 0 or iv.hi < 0))}


def factor_effects(single: dict[tuple[str, object, str], Result], multi: dict[tuple[str, object, str], Result] | None,
                   later: int) -> list[dict]:
    """One record per swept DBA setting (schedule, factor, value), paired by seed (fractions):

    - ``change_after`` / ``change_later``: DBA's ASR right after its last attack / ``later`` rounds
      on, minus the same at the factor's default value (none at the default itself);
    - ``gap``: DBA minus CBA ``later`` rounds on (none for the interval, which CBA lacks);

    each with its 95% interval (``_lo``, ``_hi``) and ``_excludes_zero``; ``default`` marks the
    factor's default value (the same run under every factor) and ``seeds`` counts the seeds."""
    by_name = {f.name: f for f in (*SINGLE_SHOT_FACTORS, *MULTI_SHOT_FACTORS)}
    rows = []
    for schedule, results in (("single_shot", single), ("multi_shot", multi or {})):
        for (name, value, attack), result in results.items():
            if attack != "DBA":
                continue
            default = default_value(by_name[name], schedule)
            row = {"schedule": schedule, "factor": name, "value": value, "default": value == default,
                   "seeds": len(_seed_asr(result, later))}
            base = results.get((name, default, "DBA"))
            if value != default and base is not None:
                for field, when in (("change_after", None), ("change_later", later)):
                    row |= _paired_fields(field, _seed_asr(result, when), _seed_asr(base, when))
            if (name, value, "CBA") in results:
                row |= _paired_fields("gap", _seed_asr(result, later), _seed_asr(results[(name, value, "CBA")], later))
            rows.append(row)
    return rows


def _value_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _increases(results, factor: str, values: list, later: int | None, what: str) -> list:
    """Paired comparisons: DBA's ASR at each value minus at the one before it, above ``margin``."""
    t = THRESHOLDS["margin"]
    return [compare_paired(f"DBA {what}, {factor} {_value_text(b)} minus {_value_text(a)}",
                           _seed_asr(results[(factor, b, "DBA")], later), _seed_asr(results[(factor, a, "DBA")], later),
                           (_value_text(b), _value_text(a)), t, "above")
            for a, b in zip(values, values[1:])]


def factor_claims(single: dict[tuple[str, object, str], Result], multi: dict[tuple[str, object, str], Result] | None,
                  later: int) -> list[Claim]:
    """The DBA paper's trigger-factor observations, each judged by paired per-seed intervals (the
    runs of a sweep share their seeds: the same pretrained model and client stream per seed).

    1. scale: DBA's ASR right after the attack rises from each gamma to the next;
    2. interval: the middle interval tried (the "moderate" one, fixed before the runs) keeps a
       higher ASR ``later`` rounds on than attacking in one round and than the longest interval;
    3. DBA keeps a higher ASR than CBA ``later`` rounds after the attack in every setting swept
       (single-shot and continuous; a setting reached by several factors, such as the defaults,
       counts once);
    4. poison ratio: DBA's ASR right after the attack rises with the poisoned samples per batch up
       to the default 20."""
    after, on = "ASR right after the attack", f"ASR {later} rounds after the attack"
    out = []
    scale = sorted(_values(single, "scale"))
    if len(scale) > 1:
        out.append(make_claim("factors", "A larger scale factor gives a higher ASR right after the attack (DBA)",
                              _increases(single, "scale", scale, None, after)))
    intervals = sorted(_values(single, "interval"))
    if len(intervals) > 2:
        moderate = intervals[len(intervals) // 2]
        t = THRESHOLDS["margin"]
        mid = _seed_asr(single[("interval", moderate, "DBA")], later)
        out.append(make_claim(
            "factors", "The study/DBA paper: attacking all in the same round or with too long an interval is worse "
            f"than a moderate interval ({_value_text(moderate)} rounds)",
            [compare_paired(f"DBA {on}, interval {_value_text(moderate)} minus {_value_text(other)}", mid,
                            _seed_asr(single[("interval", other, "DBA")], later),
                            (_value_text(moderate), _value_text(other)), t, "above")
             for other in (intervals[0], intervals[-1])]))
    comparisons, seen = [], set()
    for schedule, results in (("single-shot", single), ("continuous", multi or {})):
        for factor, value, attack in results:
            if attack != "DBA" or (factor, value, "CBA") not in results:
                continue
            key = results[(factor, value, "DBA")].config.cache_key()
            if key in seen:  # the default setting of several factors: once
                continue
            seen.add(key)
            comparisons.append(compare_paired(
                f"{schedule} {factor} {_value_text(value)}: {on}, DBA minus CBA",
                _seed_asr(results[(factor, value, "DBA")], later), _seed_asr(results[(factor, value, "CBA")], later),
                ("DBA", "CBA"), THRESHOLDS["margin"], "above"))
    if comparisons:
        out.append(make_claim("factors", "DBA keeps a higher ASR than CBA across the trigger factors", comparisons))
    ratio = [v for v in sorted(_values(single, "poison_ratio")) if v <= 20]
    if len(ratio) > 1:
        out.append(make_claim("factors", "More poisoned samples per batch give a higher ASR (up to the default 20)",
                              _increases(single, "poison_ratio", ratio, None, after)))
    return out
