"""Key numbers of a run and the checks of the study's claims, computed from the metrics.

``summarize(result)`` reduces a run (all its seeds) to the numbers the notebooks record and the
paper quotes: per trigger the peak and final ASR, the rounds the ASR needs to fall below 50% after
the last attack; the clean-accuracy drop at each attack round; the pretrained model's accuracy.
Values are means over seeds of per-seed numbers (with their standard deviation where useful).

The ``claims_*`` functions turn the study's statements for one section into ``Claim`` records.
Each statement is one or more *comparisons*: a per-seed quantity (for DBA against its CBA
counterpart, or two schedules on the same seeds, the per-seed paired difference) whose 95%
interval (``dbalib.study.stats``) is compared with a threshold of ``dbalib.study.stats.THRESHOLDS``. A
comparison agrees when its interval lies wholly on the claimed side, differs when it lies wholly
on the other side and is inconclusive otherwise; a claim agrees when all its comparisons agree and
differs when one differs. Each record carries the per-seed values, the interval and its method,
the threshold, and the verdicts with the threshold moved by -50% and +50%. Nothing is forced: a
claim that does not reproduce is reported as such, and one that the seeds cannot decide as
inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping

import numpy as np
import pandas as pd

from ..core.attacks import AttackPlan
from ..core.results import Result
from . import stats
from .stats import AGREES, DIFFERS, INCONCLUSIVE, THRESHOLDS, VERDICTS, Interval, Threshold

DROP_THRESHOLD = THRESHOLDS["drop"].value  # a clean-accuracy fall of more than 5 points in one round is a drop
NO_TRIGGER_METRIC = "asr_no_trigger"  # control: clean non-target test images predicted as the target
LEGACY_METHOD = "point comparison of means (no interval)"


@dataclass
class Claim:
    """One statement of the study (or the DBA paper) checked against this run.

    ``Claim(section, claim, evidence, agrees)`` still works (a comparison of means without an
    interval: verdict "agrees" or "differs"); the study's claims fill ``verdict`` and the interval
    fields from their comparisons (``parts``). ``agrees`` is always ``verdict == "agrees"``.
    """

    section: str
    claim: str
    evidence: str
    agrees: bool | None = None
    verdict: str | None = None
    quantity: str = ""
    estimate: float | None = None
    interval: list | None = None  # [lo, hi] of the headline comparison; None without one
    per_seed: dict | None = None  # {"seed": [...], <arm>: [...], ...} of the headline comparison
    threshold: dict | None = None  # {"name", "value", "unit", "side"} of the headline comparison
    n_seeds: int | None = None
    method: str = LEGACY_METHOD
    sensitivity: dict | None = None  # {"-50%": verdict, "+50%": verdict}
    note: str = ""
    parts: list = field(default_factory=list)  # every comparison (dicts like the headline fields)
    unit: str = ""  # how the headline prints: "%" or "pts" (fractions, x100) or "rounds"

    def __post_init__(self) -> None:
        if self.verdict is None:
            if self.agrees is None:
                raise ValueError("a Claim needs a verdict or agrees")
            self.verdict = AGREES if bool(self.agrees) else DIFFERS
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")
        self.agrees = self.verdict == AGREES  # plain bool (JSON true/false)

    def line(self) -> str:
        head = f"[{self.verdict.upper()}] {self.claim}"
        return f"{head}\n    {self.evidence}" + (f"\n    note: {self.note}" if self.note else "")


# --- per-seed quantities ------------------------------------------------------------------------
def attack_rounds(result: Result) -> list[int]:
    return AttackPlan.from_config(result.config).attack_rounds()


def mean_curve(result: Result, metric: str) -> pd.Series:
    """Mean over seeds of ``metric`` per round."""
    return result.metrics.groupby("round")[metric].mean()


def _per_seed(result: Result, metric: str) -> pd.DataFrame:
    """rounds x seeds table of ``metric``."""
    return result.metrics.pivot(index="round", columns="seed", values=metric)


def _seed_values(series: pd.Series) -> dict[int, float]:
    return {int(seed): float(value) for seed, value in series.items()}


def seed_values(result: Result, metric: str, round_: int) -> dict[int, float]:
    """Per seed: ``metric`` at ``round_``."""
    table = _per_seed(result, metric)
    if round_ not in table.index:
        raise KeyError(f"round {round_} is not in this run ({result.first_round}..{result.last_round})")
    return _seed_values(table.loc[round_])


def seed_drops(result: Result) -> pd.DataFrame:
    """rounds x seeds table of the one-round clean-accuracy fall ``clean_acc(r - 1) - clean_acc(r)``."""
    table = _per_seed(result, "clean_acc")
    return table.shift(1) - table


def clean_drops(result: Result, rounds: list[int] | None = None) -> dict[int, float]:
    """Mean over seeds of ``clean_acc(r - 1) - clean_acc(r)`` at each of ``rounds`` (default: the attack rounds)."""
    drops = seed_drops(result).mean(axis=1)
    return {int(r): float(drops.loc[r]) for r in (rounds or attack_rounds(result)) if r in drops.index}


def rounds_to_fall_below(result: Result, metric: str, threshold: float, after: int) -> float | None:
    """Rounds after ``after`` until the mean curve of ``metric`` is first below ``threshold`` (None: never)."""
    curve = mean_curve(result, metric)
    below = curve[(curve.index > after) & (curve < threshold)]
    return None if below.empty else int(below.index[0] - after)


def rounds_to_reach(result: Result, metric: str, threshold: float, start: int) -> int | None:
    """Rounds from ``start`` until the mean curve of ``metric`` first reaches ``threshold`` (None: never)."""
    curve = mean_curve(result, metric)
    reached = curve[(curve.index >= start) & (curve >= threshold)]
    return None if reached.empty else int(reached.index[0] - start + 1)


def seed_rounds_to_reach(result: Result, metric: str, level: float, start: int) -> tuple[dict[int, float], list[int]]:
    """Per seed: rounds from ``start`` until ``metric`` first reaches ``level``, and the seeds that never
    do within the run (counted as the rounds observed + 1: a lower bound for those seeds)."""
    table = _per_seed(result, metric)
    window = table[table.index >= start]
    out, censored = {}, []
    for seed in window.columns:
        reached = window.index[window[seed] >= level]
        if len(reached):
            out[int(seed)] = float(reached[0] - start + 1)
        else:
            out[int(seed)] = float(len(window) + 1)
            censored.append(int(seed))
    return out, censored


def summarize(result: Result, drop_threshold: float = DROP_THRESHOLD) -> dict:
    """The key numbers of one run (see the module docstring); JSON-ready."""
    attacks = attack_rounds(result)
    last_attack = max(attacks) if attacks else result.first_round
    final = result.last_round
    triggers = {}
    for column in result.asr_columns:
        curve = mean_curve(result, column)
        per_seed_final = _per_seed(result, column).loc[final]
        final_interval = stats.interval(per_seed_final.to_numpy(), bounds=stats.RATE_BOUNDS)
        triggers[column.removeprefix("asr_")] = {
            "start": float(curve.iloc[0]),
            "peak": float(curve.max()),
            "peak_round": int(curve.idxmax()),
            "at_last_attack": float(curve.loc[last_attack]),
            "final": float(per_seed_final.mean()),
            "final_std": float(per_seed_final.std(ddof=0)),
            "final_lo": final_interval.lo,  # 95% interval of the mean over seeds (as the claims')
            "final_hi": final_interval.hi,
            "rounds_to_below_50": rounds_to_fall_below(result, column, 0.5, last_attack),
        }
    clean = mean_curve(result, "clean_acc")
    drops = clean_drops(result, attacks)
    return {
        "preset": result.config.name,
        "seeds": result.seeds,
        "attack_rounds": attacks,
        "last_attack": last_attack,
        "final_round": final,
        "pretrained_clean_acc": float(clean.loc[result.first_round]),
        "clean_acc_final": float(clean.loc[final]),
        "clean_acc_min": float(clean.min()),
        "clean_acc_min_round": int(clean.idxmin()),
        "clean_drops": {str(r): d for r, d in drops.items()},
        "significant_drops": int(sum(d > drop_threshold for d in drops.values())),
        "drop_threshold": drop_threshold,
        "triggers": triggers,
    }


# --- comparisons: a per-seed quantity, its interval and a threshold -----------------------------
@dataclass
class Comparison:
    """One interval statement: ``quantity`` (mean over seeds) is ``side`` ("above"/"below") ``threshold``."""

    quantity: str
    per_seed: dict  # {"seed": [...], "value": [...]} or {"seed", <arm a>, <arm b>, "difference"}
    interval: Interval
    threshold: Threshold
    side: str
    unit: str  # how values print: "%" (a level), "pts" (a difference of fractions) or "rounds"
    note: str = ""

    @property
    def verdict(self) -> str:
        return stats.verdict(self.interval, self.threshold.value, self.side)

    @property
    def sensitivity(self) -> dict[str, str]:
        return stats.sensitivity(self.interval, self.threshold.value, self.side)

    @property
    def method(self) -> str:
        paired = "difference" in self.per_seed
        return ("paired differences, " if paired else "") + self.interval.method

    def text(self) -> str:
        iv = self.interval
        rel = ">" if self.side == "above" else "<"
        bounds = (f"[{_num(iv.lo, self.unit)}, {_num(iv.hi, self.unit)}]" if iv.defined else "[no interval]")
        out = (f"{self.quantity}: {_num(iv.estimate, self.unit)} {bounds} {self.unit} (claimed {rel} "
               f"{self.threshold.name} {_num(self.threshold.value, self.unit)}) -> {self.verdict}")
        return out + (f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict:
        iv = self.interval
        return {
            "quantity": self.quantity,
            "estimate": _json_float(iv.estimate),
            "interval": [_json_float(iv.lo), _json_float(iv.hi)] if iv.defined else None,
            "sd": _json_float(iv.sd),
            "per_seed": self.per_seed,
            "threshold": {"name": self.threshold.name, "value": self.threshold.value, "unit": self.threshold.unit,
                          "side": self.side},
            "n_seeds": iv.n,
            "method": self.method,
            "verdict": self.verdict,
            "sensitivity": self.sensitivity,
            "unit": self.unit,
            "note": "; ".join(n for n in (iv.note, self.note) if n),
        }


def _json_float(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _num(x: float | None, unit: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = 100 * x if unit in ("%", "pts") else x
    return f"{round(x, 1) + 0.0:.1f}"  # + 0.0: a value that rounds to zero prints 0.0, not -0.0


UNIT_BOUNDS = {"%": stats.RATE_BOUNDS, "pts": stats.DIFFERENCE_BOUNDS}  # what a quantity in this unit can be


def compare(quantity: str, values: Mapping[int, float], threshold: Threshold, side: str,
            unit: str = "%", note: str = "", bounds: tuple[float, float] | None = None) -> Comparison:
    """Interval of the per-seed ``values`` (seed -> value) against ``threshold``, cut at ``bounds``
    (default: what a quantity in ``unit`` can be)."""
    seeds = sorted(values)
    vals = [float(values[s]) for s in seeds]
    iv = stats.interval(vals, bounds=bounds or UNIT_BOUNDS.get(unit))
    return Comparison(quantity, {"seed": seeds, "value": vals}, iv, threshold, side, unit, note)


def compare_paired(quantity: str, a: Mapping[int, float], b: Mapping[int, float], labels: tuple[str, str],
                   threshold: Threshold, side: str, unit: str = "pts", note: str = "") -> Comparison:
    """Interval of the per-seed differences ``a - b`` (on the seeds both have) against ``threshold``."""
    seeds, va, vb = stats.paired(a, b)
    diff = [x - y for x, y in zip(va, vb)]
    unpaired = sorted(set(a) ^ set(b))
    notes = [note] if note else []
    if unpaired:
        notes.append(f"seeds without a pair left out: {unpaired}")
    per_seed = {"seed": seeds, labels[0]: va, labels[1]: vb, "difference": diff}
    return Comparison(quantity, per_seed, stats.interval(diff, bounds=UNIT_BOUNDS.get(unit)), threshold, side, unit,
                      "; ".join(notes))


def make_claim(section: str, text: str, comparisons: list[Comparison], note: str = "",
               rule=stats.combine) -> Claim:
    """A claim from its comparisons: by default all of them must hold (all agree: agrees; one
    differs: differs; else inconclusive); ``rule=stats.any_of`` for a claim that one of them holds.

    The headline fields (quantity, estimate, interval, ...) are those of the first comparison with
    the claim's verdict: the one that decides it."""
    verdict = rule(c.verdict for c in comparisons)
    sens = {step: rule(c.sensitivity[step] for c in comparisons) for step in stats.SENSITIVITY_STEPS}
    parts = [c.to_dict() for c in comparisons]
    notes = [note] if note else []
    if any(c.interval.n < 2 for c in comparisons):
        notes.append("fewer than 2 seeds: no interval, so no verdict but inconclusive")
    if not comparisons:
        notes.append("nothing to compare")
        return Claim(section, text, "no comparison could be made", verdict=INCONCLUSIVE, method="none",
                     sensitivity=sens, note="; ".join(notes))
    head = next(p for p in parts if p["verdict"] == verdict) if any(p["verdict"] == verdict for p in parts) else parts[0]
    return Claim(section, text, "; ".join(c.text() for c in comparisons), verdict=verdict,
                 quantity=head["quantity"], estimate=head["estimate"], interval=head["interval"],
                 per_seed=head["per_seed"], threshold=head["threshold"],
                 n_seeds=min(p["n_seeds"] for p in parts), method=head["method"], sensitivity=sens,
                 note="; ".join(notes), parts=parts, unit=head["unit"])


def _thresholds(thresholds: Mapping[str, Threshold] | None, drop_threshold: float | None) -> dict[str, Threshold]:
    """The table (or a given one), with the drop threshold replaced when a notebook passes another value."""
    table = dict(thresholds or THRESHOLDS)
    if drop_threshold is not None and not math.isclose(drop_threshold, table["drop"].value):
        table["drop"] = replace(table["drop"], reason=f"overridden by the caller (table: {table['drop'].value:g})",
                                value=float(drop_threshold))
    return table


def _drop_comparisons(result: Result, rounds: list[int], t: Threshold, expect: dict[int, str], label: str = "") -> list[Comparison]:
    """Per attack round, the per-seed clean-accuracy fall against the drop threshold (``expect[r]``: side)."""
    drops = seed_drops(result)
    prefix = f"{label}: " if label else ""
    return [compare(f"{prefix}clean-accuracy fall at round {r}", _seed_values(drops.loc[r]), t, expect[r], "pts")
            for r in rounds if r in drops.index]


# --- VI-A: single-shot concentrated DBA (Fig. 4) ------------------------------------------------
def claims_single_shot_concentrated(dba: Result, cba: Result, drop_threshold: float | None = None,
                                    later: int = 50, thresholds: Mapping[str, Threshold] | None = None) -> list[Claim]:
    section = "VI-A"
    t = _thresholds(thresholds, drop_threshold)
    attacks = attack_rounds(dba)
    first, last = attacks[0], attacks[-1]
    claims = [make_claim(section, "The clean accuracy drops once (at the first attack), not once per attacker",
                         _drop_comparisons(dba, attacks, t["drop"],
                                           {r: "above" if r == first else "below" for r in attacks}))]
    claims.append(claim_local_triggers_activated(section, dba, first, t))
    claims.append(claim_peak_then_decay(section, dba, last, t))
    claims.append(_dba_beats_cba_later(section, dba, cba, later, t))
    return claims


def claim_local_triggers_activated(section: str, dba: Result, first: int, t: Mapping[str, Threshold]) -> Claim:
    """Local triggers 1.. at the first attack round against a control: the share of clean, untriggered
    non-target images predicted as the target at the same round (``asr_no_trigger``) when the run
    records it, else the trigger's own ASR on the pretrained model."""
    comparisons, note = [], ""
    has_control = NO_TRIGGER_METRIC in dba.metrics.columns and dba.metrics[NO_TRIGGER_METRIC].notna().any()
    if not has_control:
        note = (f"control: the pretrained model's ASR of each trigger (round {dba.first_round}); this run has no "
                f"'{NO_TRIGGER_METRIC}' column")
    for i in range(1, dba.config.trigger_parts):
        trig = seed_values(dba, f"asr_local_{i}", first)
        if has_control:
            control, label = seed_values(dba, NO_TRIGGER_METRIC, first), "no trigger"
        else:
            control, label = seed_values(dba, f"asr_local_{i}", dba.first_round), "pretrained"
        comparisons.append(compare_paired(f"ASR of local trigger {i} at round {first} minus control ({label})", trig, control,
                                          (f"local_{i}", label), t["activation"], "above"))
    return make_claim(section, "Implanting the first local trigger already activates the other local triggers",
                      comparisons, note)


def claim_peak_then_decay(section: str, dba: Result, last: int, t: Mapping[str, Threshold]) -> Claim:
    """Per seed: the global trigger's peak from the last attack on exceeds its peak before, then falls by
    more than the decay threshold until the final round."""
    table = _per_seed(dba, "asr_global")
    after, before = table[table.index >= last], table[table.index < last]
    peak_after = after.max()
    comparisons = []
    if not before.empty:
        comparisons.append(compare(f"global ASR: peak from round {last} on minus peak before", _seed_values(peak_after - before.max()),
                                   t["margin"], "above", "pts"))
    comparisons.append(compare(f"global ASR: peak from round {last} on minus final (round {dba.last_round})",
                               _seed_values(peak_after - table.loc[dba.last_round]), t["decay"], "above", "pts"))
    return make_claim(section, "The global trigger peaks once all local triggers are in, then slowly decays", comparisons)


def _dba_beats_cba_later(section: str, dba: Result, cba: Result, later: int, t: Mapping[str, Threshold]) -> Claim:
    """DBA paper: ``later`` rounds after its attack, DBA keeps a higher global-trigger ASR than CBA (paired seeds)."""
    d_round = min(max(attack_rounds(dba)) + later, dba.last_round)
    c_round = min(max(attack_rounds(cba)) + later, cba.last_round)
    comparison = compare_paired(f"global ASR, DBA (round {d_round}) minus CBA (round {c_round})",
                                seed_values(dba, "asr_global", d_round), seed_values(cba, "asr_global", c_round),
                                ("DBA", "CBA"), t["margin"], "above")
    return make_claim(section, f"DBA paper: {later} rounds after the attack, DBA keeps a higher ASR than CBA", [comparison])


# --- VI-B: single-shot disperse DBA (Fig. 5) -----------------------------------------------------
def claims_single_shot_disperse(disperse: Result, concentrated: Result, drop_threshold: float | None = None,
                                horizon: int = 30, thresholds: Mapping[str, Threshold] | None = None) -> list[Claim]:
    section = "VI-B"
    t = _thresholds(thresholds, drop_threshold)
    attacks = attack_rounds(disperse)
    claims = [make_claim(section, "Dispersed attacks cause one clean-accuracy drop per attack",
                         _drop_comparisons(disperse, attacks, t["drop"], {r: "above" for r in attacks}))]
    d_last, c_last = max(attacks), max(attack_rounds(concentrated))
    d_after = min(d_last + horizon, disperse.last_round)
    k = d_after - d_last
    c_after = min(c_last + k, concentrated.last_round)
    note = "" if c_after - c_last == k else f"the concentrated run ends {c_after - c_last} rounds after its last attack"
    claims.append(make_claim(
        section, "After the last attack the dispersed backdoor decays faster than the concentrated one",
        [compare_paired(f"global ASR {k} rounds after the last attack, concentrated (round {c_after}) minus disperse "
                        f"(round {d_after})", seed_values(concentrated, "asr_global", c_after),
                        seed_values(disperse, "asr_global", d_after), ("concentrated", "disperse"), t["margin"], "above",
                        note=note)]))
    parts = disperse.config.trigger_parts
    comparisons = [compare(f"ASR of local trigger {i} at round {d_last}", seed_values(disperse, f"asr_local_{i}", d_last),
                           t["low"], "below") for i in range(parts - 1)]
    last_local = seed_values(disperse, f"asr_local_{parts - 1}", d_last)
    glob = seed_values(disperse, "asr_global", d_last)
    gap = {s: abs(last_local[s] - glob[s]) for s in sorted(set(last_local) & set(glob))}
    comparisons.append(compare(f"|ASR of local trigger {parts - 1} minus global| at round {d_last}", gap, t["close"], "below", "pts",
                               bounds=stats.RATE_BOUNDS))  # a distance: 0 to 100 points
    claims.append(make_claim(section, "After the last attack only the last local trigger stays close to the global one",
                             comparisons))
    return claims


# --- VI-C: multi-shot continuous DBA vs CBA (Fig. 6) ---------------------------------------------
def claims_multi_shot(dba: Result, cba: Result, drop_threshold: float | None = None,
                      thresholds: Mapping[str, Threshold] | None = None) -> list[Claim]:
    section = "VI-C"
    t = _thresholds(thresholds, drop_threshold)
    first, last = min(attack_rounds(dba)), max(attack_rounds(dba))
    d_table = _per_seed(dba, "asr_global")
    d_after = d_table[d_table.index > last]
    persistent = ([compare(f"DBA: lowest global ASR after round {last}", _seed_values(d_after.min()), t["persistent"], "above")]
                  if not d_after.empty else [])
    claims = [make_claim(section, "Continuous DBA keeps a near-100% ASR after the attacks stop", persistent,
                         "" if persistent else f"the run ends at the last attack (round {last})")]
    c_table = _per_seed(cba, "asr_global")
    c_last = max(attack_rounds(cba))
    claims.append(make_claim(section, "Continuous CBA's ASR decays after the attacks stop", [
        compare(f"CBA: global ASR at round {c_last} minus final (round {cba.last_round})",
                _seed_values(c_table.loc[c_last] - c_table.loc[cba.last_round]), t["decay"], "above", "pts")]))
    drops = seed_drops(dba)
    window = drops[(drops.index >= first) & (drops.index <= last)]
    claims.append(make_claim(section, "Unscaled continuous DBA is stealthy: no sudden clean-accuracy drop", [
        compare(f"DBA: largest one-round clean-accuracy fall in rounds {first}-{last}", _seed_values(window.max()),
                t["drop"], "below", "pts")]))
    level = t["converged"].value
    d_reach, d_cens = seed_rounds_to_reach(dba, "asr_global", level, first)
    c_reach, c_cens = seed_rounds_to_reach(cba, "asr_global", level, first)
    censored = "; ".join(f"{name} never reaches it in seeds {seeds} (counted as the rounds observed + 1)"
                         for name, seeds in (("DBA", d_cens), ("CBA", c_cens)) if seeds)
    claims.append(make_claim(section, "DBA paper: multi-shot DBA converges faster than CBA", [
        compare_paired(f"rounds from round {first} until the global ASR reaches {100 * level:.0f}%, CBA minus DBA",
                       c_reach, d_reach, ("CBA", "DBA"), t["margin"], "above", "rounds", censored)]))
    rows = dba.metrics[(dba.metrics["round"] >= first) & (dba.metrics["round"] <= last)]
    means = rows.groupby("seed")[dba.asr_columns].mean()
    best_local = means.drop(columns="asr_global").max(axis=1)
    claims.append(make_claim(section, "DBA paper: the global trigger scores higher than any local trigger", [
        compare_paired(f"mean ASR over rounds {first}-{last}, global minus best local",
                       _seed_values(means["asr_global"]), _seed_values(best_local), ("global", "best local"),
                       t["margin"], "above")]))
    return claims


# --- VI-D: collaborative fixed-frequency DBA vs CBA (Fig. 7) --------------------------------------
def claims_collaborative(dba: Result, cba: Result, drop_threshold: float | None = None,
                         thresholds: Mapping[str, Threshold] | None = None) -> list[Claim]:
    section = "VI-D"
    t = _thresholds(thresholds, drop_threshold)
    last = max(max(attack_rounds(dba)), max(attack_rounds(cba)))
    d = dba.metrics[dba.metrics["round"] > last].groupby("seed")["asr_global"].mean()
    c = cba.metrics[cba.metrics["round"] > last].groupby("seed")["asr_global"].mean()
    claims = [make_claim(section, "Collaborative DBA keeps a higher ASR than collaborative CBA", [
        compare_paired(f"mean global ASR over rounds {last + 1}-{dba.last_round}, DBA minus CBA", _seed_values(d),
                       _seed_values(c), ("DBA", "CBA"), t["margin"], "above")])]
    cycles = _cycles(attack_rounds(dba))
    drops = seed_drops(dba)
    comparisons = [compare(f"largest clean-accuracy fall in rounds {cy[0]}-{cy[-1]}",
                           _seed_values(drops.loc[[r for r in cy if r in drops.index]].max()), t["drop"], "above", "pts")
                   for cy in cycles]
    claims.append(make_claim(section, f"Each collaborative attack ({len(cycles)} in all) causes a significant "
                             "clean-accuracy drop", comparisons))
    return claims


def _cycles(rounds: list[int]) -> list[list[int]]:
    """Runs of consecutive rounds: [12, 13, 14, 15, 18, ...] -> [[12..15], [18..21], ...]."""
    cycles: list[list[int]] = []
    for r in sorted(rounds):
        if cycles and r == cycles[-1][-1] + 1:
            cycles[-1].append(r)
        else:
            cycles.append([r])
    return cycles


def claims_to_json(claims: list[Claim]) -> list[dict]:
    return [_json_ready(asdict(c)) for c in claims]


def _json_ready(value):
    """NaN -> None and numpy scalars -> Python numbers, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def verdict_counts(claims: list[Claim] | list[dict]) -> dict[str, int]:
    """How many claims agree, differ and are inconclusive (records or JSON dicts, old ones included)."""
    counts = {v: 0 for v in VERDICTS}
    for claim in claims:
        counts[claim_verdict(claim)] += 1
    return counts


def claim_verdict(claim: Claim | dict) -> str:
    """The verdict of a record; an old JSON record (``agrees`` only) agrees or differs."""
    if isinstance(claim, Claim):
        return claim.verdict
    verdict = claim.get("verdict")
    return verdict if verdict in VERDICTS else (AGREES if claim.get("agrees") else DIFFERS)


# --- what the unreproduced clean-accuracy claims depend on: the round-10 model -----------------------
def claims_convergence(runs: dict[float, dict[str, Result]], drop_threshold: float | None = None,
                       thresholds: Mapping[str, Threshold] | None = None) -> list[Claim]:
    """``runs[pretrain_eta][label]`` for labels "collaborative DBA", "single-shot DBA": do the
    study's clean-accuracy statements depend on how converged the round-10 model is?"""
    t = _thresholds(thresholds, drop_threshold)
    out: list[Claim] = []
    if len(runs) < 2:
        return out
    low, high = min(runs), max(runs)

    def weakest_cycle(eta: float, side: str) -> Comparison:
        result = runs[eta]["collaborative DBA"]
        drops = seed_drops(result)
        per_cycle = pd.concat([drops.loc[[r for r in cy if r in drops.index]].max() for cy in _cycles(attack_rounds(result))],
                              axis=1)
        accuracy = _pct(result.at(result.first_round, "clean_acc"))
        return compare(f"pretraining eta {eta:g} (round-{result.first_round} accuracy {accuracy}): smallest of the "
                       "per-cycle largest clean-accuracy falls", _seed_values(per_cycle.min(axis=1)), t["drop"], side, "pts")

    out.append(make_claim("convergence", "Collaborative DBA: one clean-accuracy drop per collaborative attack appears "
                          "with a less converged round-10 model (and not with ours)",
                          [weakest_cycle(low, "above"), weakest_cycle(high, "below")]))
    comparisons = []
    for eta in sorted(runs, reverse=True):
        result = runs[eta]["single-shot DBA"]
        attacks = attack_rounds(result)
        comparisons += _drop_comparisons(result, attacks, t["drop"], {r: "above" if r == attacks[0] else "below" for r in attacks},
                                         f"pretraining eta {eta:g}")
    out.append(make_claim("convergence", "Single-shot concentrated DBA: one drop, not four, whichever round-10 model",
                          comparisons))
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}%"


def threshold_table(thresholds: Mapping[str, Threshold] | None = None) -> list[dict]:
    """The threshold table as JSON-ready rows (recorded with every notebook's claims)."""
    return [t.to_dict() for t in (thresholds or THRESHOLDS).values()]


# --- the DBA paper, number for number (issue 11) ---------------------------------------------------
# The DBA paper's MNIST numbers (its text; ../shared/reference/dba-reference-facts.md), as fractions
DBA_PAPER_MNIST = {
    "single-shot: DBA global ASR 50 rounds after the attack": 0.89,
    "single-shot: CBA global ASR 50 rounds after the attack": 0.21,
    "single-shot: DBA minus CBA, 50 rounds after the attack": 0.89 - 0.21,
}


def interval_record(values: Mapping[int, float], bounds: tuple[float, float] | None = None) -> dict:
    """Estimate, 95% interval (``stats.interval``, cut at ``bounds``), seed count, method and per-seed
    values, JSON-ready."""
    seeds = sorted(values)
    iv = stats.interval([values[s] for s in seeds], bounds=bounds)
    return {"estimate": _json_float(iv.estimate), "lo": _json_float(iv.lo), "hi": _json_float(iv.hi), "n_seeds": iv.n,
            "method": iv.method, "per_seed": {"seed": seeds, "value": [float(values[s]) for s in seeds]}}


def dba_paper_single_shot(dba: Result, cba: Result, later: int = 50) -> list[dict]:
    """Our numbers for the DBA paper's single-shot MNIST claim: each arm's global ASR ``later``
    rounds after its last attack and the paired difference, each with its 95% interval, beside
    the paper's number (``DBA_PAPER_MNIST``)."""
    d_round = min(max(attack_rounds(dba)) + later, dba.last_round)
    c_round = min(max(attack_rounds(cba)) + later, cba.last_round)
    d, c = seed_values(dba, "asr_global", d_round), seed_values(cba, "asr_global", c_round)
    seeds, va, vb = stats.paired(d, c)
    rows = [(f"single-shot: DBA global ASR {later} rounds after the attack", d, d_round),
            (f"single-shot: CBA global ASR {later} rounds after the attack", c, c_round),
            (f"single-shot: DBA minus CBA, {later} rounds after the attack",
             {s: x - y for s, x, y in zip(seeds, va, vb)}, d_round)]
    return [{"quantity": q, "round": r, "dba_paper": DBA_PAPER_MNIST.get(q)}
            | interval_record(v, stats.DIFFERENCE_BOUNDS if "minus" in q else stats.RATE_BOUNDS) for q, v, r in rows]
