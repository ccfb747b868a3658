"""Key numbers of a run and the checks of the study's claims, computed from the metrics.

``summarize(result)`` reduces a run (all its seeds) to the numbers the notebooks record and the
paper quotes: per trigger the peak and final ASR, the rounds the ASR needs to fall below 50% after
the last attack; the clean-accuracy drop at each attack round; the pretrained model's accuracy.
Values are means over seeds of per-seed numbers (with their standard deviation where useful).

The ``claims_*`` functions turn the study's statements for one section into ``Claim`` records
(the statement, the numbers behind it, and whether this run agrees) so each notebook's conclusion
cell prints the comparison from the numbers it just computed. Thresholds are arguments, stated
in the printed evidence; nothing is forced: a claim that does not reproduce is reported as such.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .attacks import AttackPlan
from .results import Result

DROP_THRESHOLD = 0.05  # a clean-accuracy fall of more than 5 points in one round counts as a drop


@dataclass
class Claim:
    """One statement of the study (or the DBA paper) checked against this run."""

    section: str
    claim: str
    evidence: str
    agrees: bool

    def __post_init__(self) -> None:
        self.agrees = bool(self.agrees)  # numpy booleans -> JSON true/false

    def line(self) -> str:
        verdict = "AGREES" if self.agrees else "DOES NOT AGREE"
        return f"[{verdict}] {self.claim}\n    {self.evidence}"


def attack_rounds(result: Result) -> list[int]:
    return AttackPlan.from_config(result.config).attack_rounds()


def mean_curve(result: Result, metric: str) -> pd.Series:
    """Mean over seeds of ``metric`` per round."""
    return result.metrics.groupby("round")[metric].mean()


def _per_seed(result: Result, metric: str) -> pd.DataFrame:
    """rounds x seeds table of ``metric``."""
    return result.metrics.pivot(index="round", columns="seed", values=metric)


def clean_drops(result: Result, rounds: list[int] | None = None) -> dict[int, float]:
    """Mean over seeds of ``clean_acc(r - 1) - clean_acc(r)`` at each of ``rounds`` (default: the attack rounds)."""
    table = _per_seed(result, "clean_acc")
    drops = (table.shift(1) - table).mean(axis=1)
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


def summarize(result: Result, drop_threshold: float = DROP_THRESHOLD) -> dict:
    """The key numbers of one run (see the module docstring); JSON-ready."""
    attacks = attack_rounds(result)
    last_attack = max(attacks) if attacks else result.first_round
    final = result.last_round
    triggers = {}
    for column in result.asr_columns:
        curve = mean_curve(result, column)
        per_seed_final = _per_seed(result, column).loc[final]
        triggers[column.removeprefix("asr_")] = {
            "start": float(curve.iloc[0]),
            "peak": float(curve.max()),
            "peak_round": int(curve.idxmax()),
            "at_last_attack": float(curve.loc[last_attack]),
            "final": float(per_seed_final.mean()),
            "final_std": float(per_seed_final.std(ddof=0)),
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


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}%"


def _drops_text(drops: dict[int, float]) -> str:
    return ", ".join(f"r{r}: {100 * d:+.1f} pts" for r, d in drops.items())


# --- VI-A: single-shot concentrated DBA (Fig. 4) ------------------------------------------------
def claims_single_shot_concentrated(dba: Result, cba: Result, drop_threshold: float = DROP_THRESHOLD) -> list[Claim]:
    section = "VI-A"
    attacks = attack_rounds(dba)
    first, last = attacks[0], attacks[-1]
    drops = clean_drops(dba, attacks)
    significant = [r for r, d in drops.items() if d > drop_threshold]
    claims = [Claim(section, "The clean accuracy drops once (at the first attack), not once per attacker",
                    f"clean-accuracy fall at each attack round ({_drops_text(drops)}); rounds with a fall "
                    f"> {100 * drop_threshold:.0f} pts: {significant or 'none'}",
                    significant == [first])]
    others = [f"local_{i}" for i in range(1, dba.config.trigger_parts)]
    at_first = {k: dba.at(first, f"asr_{k}") for k in others}
    baseline = {k: dba.at(dba.first_round, f"asr_{k}") for k in others}
    claims.append(Claim(section, "Implanting the first local trigger already activates the other local triggers",
                        "ASR at round %d of triggers it never trained on: %s (clean model: %s)" % (
                            first, ", ".join(f"{k} {_pct(v)}" for k, v in at_first.items()),
                            ", ".join(_pct(v) for v in baseline.values())),
                        all(v > 0.2 and v > 5 * baseline[k] for k, v in at_first.items())))
    curve = mean_curve(dba, "asr_global")
    peak_round = int(curve.idxmax())
    claims.append(Claim(section, "The global trigger peaks once all local triggers are in, then slowly decays",
                        f"peak {_pct(curve.max())} at round {peak_round} (last attack {last}); "
                        f"final {_pct(curve.iloc[-1])} at round {int(curve.index[-1])}",
                        peak_round >= last and curve.iloc[-1] < curve.max()))
    claims.append(_dba_beats_cba_later(section, dba, cba, 50))
    return claims


def _dba_beats_cba_later(section: str, dba: Result, cba: Result, later: int) -> Claim:
    """DBA paper: ``later`` rounds after its attack, DBA keeps a higher global-trigger ASR than CBA."""
    d_round = min(max(attack_rounds(dba)) + later, dba.last_round)
    c_round = min(max(attack_rounds(cba)) + later, cba.last_round)
    d, c = _per_seed(dba, "asr_global").loc[d_round], _per_seed(cba, "asr_global").loc[c_round]
    return Claim(section, f"DBA paper: {later} rounds after the attack, DBA keeps a higher ASR than CBA",
                 f"global-trigger ASR: DBA {_pct(d.mean())} +/- {_pct(d.std(ddof=0))} at round {d_round}, "
                 f"CBA {_pct(c.mean())} +/- {_pct(c.std(ddof=0))} at round {c_round}",
                 bool(d.mean() > c.mean()))


# --- VI-B: single-shot disperse DBA (Fig. 5) -----------------------------------------------------
def claims_single_shot_disperse(disperse: Result, concentrated: Result,
                                drop_threshold: float = DROP_THRESHOLD, horizon: int = 30) -> list[Claim]:
    section = "VI-B"
    attacks = attack_rounds(disperse)
    drops = clean_drops(disperse, attacks)
    significant = [r for r, d in drops.items() if d > drop_threshold]
    claims = [Claim(section, "Dispersed attacks cause one clean-accuracy drop per attack",
                    f"falls at the attack rounds ({_drops_text(drops)}); > {100 * drop_threshold:.0f} pts at "
                    f"{significant or 'none'} of {len(attacks)}", len(significant) == len(attacks))]
    d_last, c_last = max(attacks), max(attack_rounds(concentrated))
    d_after = min(d_last + horizon, disperse.last_round)
    c_after = c_last + (d_after - d_last)
    d_val, c_val = disperse.at(d_after, "asr_global"), concentrated.at(c_after, "asr_global")
    d_fall = rounds_to_fall_below(disperse, "asr_global", 0.5, d_last)
    c_fall = rounds_to_fall_below(concentrated, "asr_global", 0.5, c_last)
    claims.append(Claim(section, "After the last attack the dispersed backdoor decays faster than the concentrated one",
                        f"global-trigger ASR {d_after - d_last} rounds after the last attack: disperse {_pct(d_val)}, "
                        f"concentrated {_pct(c_val)}; rounds to fall below 50%: disperse {d_fall}, "
                        f"concentrated {c_fall} (None = not within the run)", d_val < c_val))
    locals_ = {f"local_{i}": disperse.at(d_last, f"asr_local_{i}") for i in range(disperse.config.trigger_parts)}
    last_local = f"local_{disperse.config.trigger_parts - 1}"
    glob = disperse.at(d_last, "asr_global")
    earlier_low = all(v < 0.3 for k, v in locals_.items() if k != last_local)
    claims.append(Claim(section, "After the last attack only the last local trigger stays close to the global one",
                        f"ASR at round {d_last}: global {_pct(glob)}, " + ", ".join(f"{k} {_pct(v)}" for k, v in locals_.items()),
                        earlier_low and abs(locals_[last_local] - glob) < 0.15))
    return claims


# --- VI-C: multi-shot continuous DBA vs CBA (Fig. 6) ---------------------------------------------
def claims_multi_shot(dba: Result, cba: Result, drop_threshold: float = DROP_THRESHOLD) -> list[Claim]:
    section = "VI-C"
    last = max(attack_rounds(dba))
    first = min(attack_rounds(dba))
    d_curve, c_curve = mean_curve(dba, "asr_global"), mean_curve(cba, "asr_global")
    d_after = d_curve[d_curve.index > last]
    claims = [Claim(section, "Continuous DBA keeps a near-100% ASR after the attacks stop",
                    f"DBA global-trigger ASR after round {last}: min {_pct(d_after.min())}, "
                    f"final {_pct(d_curve.iloc[-1])}", bool(d_after.min() >= 0.9))]
    claims.append(Claim(section, "Continuous CBA's ASR decays after the attacks stop",
                        f"CBA global-trigger ASR at round {last}: {_pct(c_curve.loc[last])}, "
                        f"final: {_pct(c_curve.iloc[-1])}",
                        bool(c_curve.iloc[-1] < c_curve.loc[last] - 0.05)))
    drops = {**clean_drops(dba, list(range(first, last + 1)))}
    worst = max(drops.values())
    claims.append(Claim(section, "Unscaled continuous DBA is stealthy: no sudden clean-accuracy drop",
                        f"largest one-round clean-accuracy fall during rounds {first}-{last}: {100 * worst:.1f} pts "
                        f"(threshold {100 * drop_threshold:.0f})", worst <= drop_threshold))
    d_fast = rounds_to_reach(dba, "asr_global", 0.9, first)
    c_fast = rounds_to_reach(cba, "asr_global", 0.9, first)
    claims.append(Claim(section, "DBA paper: multi-shot DBA converges faster than CBA",
                        f"attack rounds until the global-trigger ASR reaches 90%: DBA {d_fast}, CBA {c_fast} "
                        "(None = never)", d_fast is not None and (c_fast is None or d_fast < c_fast)))
    window = dba.metrics[(dba.metrics["round"] >= first) & (dba.metrics["round"] <= last)]
    means = window[[c for c in dba.asr_columns]].mean()
    best_local = means.drop("asr_global").max()
    claims.append(Claim(section, "DBA paper: the global trigger scores higher than any local trigger",
                        f"mean ASR over rounds {first}-{last}: global {_pct(means['asr_global'])}, best local "
                        f"{_pct(best_local)}", bool(means["asr_global"] >= best_local)))
    return claims


# --- VI-D: collaborative fixed-frequency DBA vs CBA (Fig. 7) --------------------------------------
def claims_collaborative(dba: Result, cba: Result, drop_threshold: float = DROP_THRESHOLD) -> list[Claim]:
    section = "VI-D"
    last = max(max(attack_rounds(dba)), max(attack_rounds(cba)))
    d = dba.metrics[dba.metrics["round"] > last].groupby("seed")["asr_global"].mean()
    c = cba.metrics[cba.metrics["round"] > last].groupby("seed")["asr_global"].mean()
    claims = [Claim(section, "Collaborative DBA keeps a higher ASR than collaborative CBA",
                    f"mean global-trigger ASR over rounds {last + 1}-{dba.last_round}: DBA {_pct(d.mean())} "
                    f"+/- {_pct(d.std(ddof=0))}, CBA {_pct(c.mean())} +/- {_pct(c.std(ddof=0))}",
                    bool(d.mean() > c.mean()))]
    cycles = _cycles(attack_rounds(dba))
    drops = clean_drops(dba, [r for cycle in cycles for r in cycle])
    per_cycle = [max(drops[r] for r in cycle) for cycle in cycles]
    claims.append(Claim(section, "Each collaborative attack (3 in all) causes a significant clean-accuracy drop",
                        "largest fall within each cycle " + ", ".join(
                            f"{c[0]}-{c[-1]}: {100 * v:.1f} pts" for c, v in zip(cycles, per_cycle))
                        + f" (threshold {100 * drop_threshold:.0f})",
                        all(v > drop_threshold for v in per_cycle)))
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
    return [asdict(c) for c in claims]


# --- what the unreproduced clean-accuracy claims depend on: the round-10 model -----------------------
def claims_convergence(runs: dict[float, dict[str, Result]], drop_threshold: float = DROP_THRESHOLD) -> list[Claim]:
    """``runs[pretrain_eta][label]`` for labels "collaborative DBA", "single-shot DBA": do the
    study's clean-accuracy statements depend on how converged the round-10 model is?"""

    def drops_per_attack(result: Result) -> list[float]:
        rounds = attack_rounds(result)
        groups = _cycles(rounds) if result.config.schedule == "fixed_frequency" else [[r] for r in rounds]
        drops = clean_drops(result, rounds)
        return [max(drops[r] for r in group) for group in groups]

    def evidence(label: str) -> tuple[str, dict[float, int], int]:
        texts, counts = [], {}
        for eta in sorted(runs, reverse=True):
            result = runs[eta][label]
            per_attack = drops_per_attack(result)
            counts[eta] = sum(d > drop_threshold for d in per_attack)
            texts.append(f"pretraining eta {eta:g} (round-{result.first_round} accuracy "
                         f"{_pct(result.at(result.first_round, 'clean_acc'))}): falls "
                         + ", ".join(f"{100 * d:.1f}" for d in per_attack) + " pts")
        return "; ".join(texts) + f" (a drop: > {100 * drop_threshold:.0f} pts)", counts, len(per_attack)

    out = []
    if len(runs) < 2:
        return out
    low, high = min(runs), max(runs)
    text, counts, attacks = evidence("collaborative DBA")
    out.append(Claim("convergence", "Collaborative DBA: one clean-accuracy drop per collaborative attack appears "
                     "with a less converged round-10 model (and not with ours)", text,
                     counts[low] == attacks and counts[high] != attacks))
    text, counts, _ = evidence("single-shot DBA")
    out.append(Claim("convergence", "Single-shot concentrated DBA: one drop, not four, whichever round-10 model",
                     text, all(c == 1 for c in counts.values())))
    return out
