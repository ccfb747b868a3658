"""Numbers for the paper: LaTeX macros and tables generated from the recorded results.

``python -m dbalib paper-numbers`` reads ``results/*.json`` (written by the notebooks),
``benchmarks/results.json`` and the code's own settings (config defaults, presets, the model, the
data split), and writes ``paper/generated/``:

- ``numbers.tex``: one ``\\dbaset{key}{value}`` per number; the paper prints them with
  ``\\val{key}``, which stops the LaTeX run with an error naming the key when it was not generated
  (so a missing number can never print as ``??``);
- each verdict also as a plain word, ``<key>.outcome``: a claim's (``a.claim.1.outcome``: agrees,
  differs or inconclusive) and a defence cell's (``vii.<attack>.<rule>.outcome``: stopped, not
  stopped, inconclusive or model destroyed). A paragraph that interprets a verdict states the one it
  rests on, ``\\restson{a.claim.1}{differs}`` (it prints nothing); ``check_text`` compares every such
  statement with the runs before anything is written, and the LaTeX macro does the same, so the text
  cannot go on saying what the results no longer say;
- ``claims-<section>.tex``: each checked claim with its verdict (agrees / differs / inconclusive),
  its estimate and 95% interval, and its evidence;
- ``defense-matrix.tex``, ``aggregators.tex``, ``presets.tex``, ``claims-summary.tex``: tables;
- ``thresholds.tex``: the threshold table every verdict is judged by (``dbalib.study.stats.THRESHOLDS``);
- ``sensitivity.tex``: each claim's verdict with its threshold moved by -50% and +50%;
- ``robustness.tex``, ``persistence.tex``, ``factor-effects.tex``: notebook 09's, 08's and 06's
  interval tables.

Records written before verdicts had intervals (``agrees`` only) read as "agrees" or "differs"
without an interval, so the paper builds from them until the notebooks are run again.

Fractions are printed as percentages with one decimal (``93.0``); counts and rounds as integers.
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

import torch

from ..core.atomic import atomic_write_text
from ..core.config import Config
from ..core.data import dirichlet_partition, load_mnist
from ..core.errors import DbalibError
from ..core.model import MnistNet
from ..core.paths import PAPER_DIR, PROJECT_DIR, RESULTS_DIR
from ..core.presets import describe_presets, preset
from ..core.registry import AGGREGATORS, aggregator_names
from ..core.triggers import TriggerSpec
from .claims import DBA_PAPER_MNIST, claim_verdict, verdict_counts
from .defense_eval import ATTACK_LABELS, DESTROYED, NOT_STOPPED, REJECTED_BELOW, REJECTED_WHEN, STOPPED, stop_verdict
from .factors import DEFAULT_INTERVAL
from .reporting import list_text, rounds_phrase, superseded_results
from .stats import AGREES, BOOTSTRAP_FROM, CONFIDENCE, DIFFERS, INCONCLUSIVE, SENSITIVITY_STEPS, THRESHOLDS

SECTIONS = {"01_single_shot_concentrated": "A", "02_single_shot_disperse": "B", "03_multi_shot_continuous": "C",
            "04_fixed_frequency_collaborative": "D", "05_defenses": "VII", "06_trigger_factors": "F",
            "07_round10_convergence": "R", "08_persistence_sensitivity": "P", "09_robustness_claim": "M"}
FRACTION_FIELDS = {"start", "peak", "at_last_attack", "final", "final_std", "final_lo", "final_hi",
                   "pretrained_clean_acc", "clean_acc_final", "clean_acc_min", "asr_final", "asr_peak", "asr_attack_peak", "clean_final",
                   "benign_rejected", "malicious_rejected", "clean_cost", "asr_after", "asr_after_std", "asr_later",
                   "asr_later_std"}
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


def _key(*parts) -> str:
    """Macro key: lower-case words joined by dots (letters, digits, dots and dashes only)."""
    return ".".join(re.sub(r"[^A-Za-z0-9-]+", "-", str(p)).strip("-").lower() for p in parts if str(p) != "")


def _fmt(field: str, value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if field in FRACTION_FIELDS or field.startswith("drop"):
        return f"{round(100 * float(value), 1) + 0.0:.1f}"  # never -0.0
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g}"
    if isinstance(value, (int, float)):
        return f"{int(value)}"
    return tex_escape(value)


def run_numbers(section: str, label: str, summary: dict) -> dict[str, str]:
    """Macros of one run summary (see ``dbalib.study.claims.summarize``)."""
    out = {_key(section, label, "seeds"): str(len(summary["seeds"]))} if "seeds" in summary else {}
    for field in ("pretrained_clean_acc", "clean_acc_final", "clean_acc_min", "clean_acc_min_round",
                  "significant_drops", "last_attack", "final_round"):
        out[_key(section, label, field)] = _fmt(field, summary.get(field))
    for trigger, numbers in summary["triggers"].items():
        for field, value in numbers.items():
            out[_key(section, label, trigger, field)] = _fmt(field, value)
        if numbers.get("rounds_to_below_50") is not None and "last_attack" in summary:  # the round it happens
            out[_key(section, label, trigger, "below-50-round")] = str(summary["last_attack"] + numbers["rounds_to_below_50"])
    for round_, drop in summary.get("clean_drops", {}).items():
        out[_key(section, label, "drop", round_)] = _fmt("drop", drop)
    return out


PERCENT_PARAMETERS = ("STOP_BELOW", "DROP_THRESHOLD", "CLEAN_BUDGET")  # fractions the text prints in percent
LIST_PARAMETERS = ("NORM_FACTORS", "DP_SIGMAS", "ATTACKER_COUNTS", "CONSENSUS_RATIOS", "TUNING_SEEDS", "ROOT_SIZES")


def results_numbers(results_dir: Path = RESULTS_DIR) -> tuple[dict[str, str], dict[str, list]]:
    """(macros, claims per section) from every notebook's JSON."""
    numbers: dict[str, str] = {}
    claims: dict[str, list] = {}
    superseded = superseded_results(results_dir)
    for path in sorted(Path(results_dir).glob("*.json")):
        record = json.loads(path.read_text())
        section = SECTIONS.get(path.stem, path.stem)
        for label, summary in record.get("runs", {}).items():
            numbers |= run_numbers(section, label, summary)
        seeds = record.get("parameters", {}).get("SEEDS")
        if seeds is not None:
            numbers[_key(section, "seeds")] = str(len(seeds))
            numbers[_key(section, "seeds", "word")] = in_words(len(seeds))
        for name in ("ROUNDS", "MULTI_SHOT_END", "TEST_SAMPLES", "LATER", "NORM_BOUND_FACTOR", "DP_SIGMA",
                     "CONSENSUS_RATIO", "STOP_BELOW", "DROP_THRESHOLD", "HORIZON", "LOW", "CLAIM_ROUND", "CLEAN_BUDGET",
                     "KRUM_F", "KRUM_OFFSET", "ROOT_SAMPLES", "ATTACKER_MARGIN", "FLAME_LAMBDA", "VALIDATION_TOLERANCE"):
            if name in record.get("parameters", {}):
                field = "stop" if name == "STOP_BELOW" else name.lower()
                value = record["parameters"][name]
                numbers[_key(section, "param", name.replace("_", "-"))] = (
                    _fmt("final" if name in PERCENT_PARAMETERS else field, value))
        for name in LIST_PARAMETERS:  # swept values as the text lists them: '1.25, 1.5, 2 and 3'
            if record.get("parameters", {}).get(name):
                numbers[_key(section, "param", name.replace("_", "-"))] = list_text(
                    [_value_text(v) for v in record["parameters"][name]])
        if "TEST_SAMPLES" in record.get("parameters", {}):  # what the text calls the evaluation set
            numbers[_key(section, "test-images")] = _thousands(record["parameters"]["TEST_SAMPLES"] or _test_set_size())
        if path.stem in superseded:
            numbers[_key(section, "superseded")] = superseded[path.stem].replace("_", r"\_").replace("%", r"\%")
        claims[section] = record.get("claims", [])
        counts = verdict_counts(claims[section])
        numbers[_key(section, "claims", "agree")] = str(counts[AGREES])
        numbers[_key(section, "claims", "differ")] = str(counts[DIFFERS])
        numbers[_key(section, "claims", "inconclusive")] = str(counts[INCONCLUSIVE])
        numbers[_key(section, "claims", "total")] = str(record.get("claims_total", len(claims[section])))
        for i, claim in enumerate(claims[section], 1):  # the text names a verdict only through these
            numbers[_key(section, "claim", str(i), "verdict")] = VERDICT_MACROS[claim_verdict(claim)]
            numbers[_key(section, "claim", str(i), "outcome")] = claim_verdict(claim)  # what \restson compares
        extra = record.get("extra", {})
        if extra.get("matrix"):
            numbers[_key(section, "defense-count")] = str(len({r["defense"] for r in extra["matrix"]}) - 1)
            numbers[_key(section, "attack-count")] = str(len({r["attack"] for r in extra["matrix"]} - {"clean"}))
        for row in extra.get("matrix", []):
            for field in ("asr_final", "asr_peak", "asr_attack_peak", "clean_final", "benign_rejected", "malicious_rejected",
                          "clean_cost"):
                numbers[_key(section, row["attack"], row["defense"], field)] = _fmt(field, row.get(field))
        if extra.get("attack_norm_bound") is not None:
            numbers[_key(section, "attack-norm-bound")] = f"{extra['attack_norm_bound']:.2f}"
        for row in extra.get("geometry", []):
            for field, value in row.items():
                if field != "round":
                    numbers[_key(section, "geometry", row["round"], field)] = f"{value:.2f}"
        for kind in ("single_shot", "multi_shot"):
            swept: dict[str, set] = {}
            for row in extra.get(kind, []):
                swept.setdefault(row["factor"], set()).add(row["value"])
                for field in ("asr_after", "asr_later", "clean_final"):
                    key = _key(section, kind, row["factor"], row["attack"], _value_text(row["value"]), field)
                    numbers[key] = _fmt(field, row[field])
                    for suffix, column in (("estimate", field), ("lo", f"{field}_lo"), ("hi", f"{field}_hi")):
                        if column in row:  # mean and 95% interval: \pctest{key}
                            numbers[f"{key}.{suffix}"] = _fmt(field, row[column])
            for factor, values in swept.items():
                values = sorted(values)
                numbers[_key(section, kind, factor, "values")] = list_text([_value_text(v) for v in values])
                numbers[_key(section, kind, factor, "min")] = _value_text(values[0])
                numbers[_key(section, kind, factor, "max")] = _value_text(values[-1])
        importance = extra.get("importance", {})
        for factor, value in importance.items():
            numbers[_key(section, "importance", factor)] = _fmt("final", value)
        if importance:  # the factors from the largest range to the smallest, as the text lists them
            ranked = sorted(importance.items(), key=lambda item: -item[1])
            numbers[_key(section, "importance", "ranking")] = list_text(
                [f"{tex_escape(f.replace('_', ' '))} ({_fmt('final', v)})" for f, v in ranked])
    everything = [claim for items in claims.values() for claim in items]
    counts = verdict_counts(everything)
    numbers[_key("claims", "all", "agree")] = str(counts[AGREES])
    numbers[_key("claims", "all", "differ")] = str(counts[DIFFERS])
    numbers[_key("claims", "all", "inconclusive")] = str(counts[INCONCLUSIVE])
    numbers[_key("claims", "all", "total")] = str(len(everything))
    return {k: v for k, v in numbers.items() if v is not None}, claims


def _value_text(value) -> str:
    """A swept value as a key part: 100.0 -> '100', 0.1 -> '0.1' (the key turns it into 0-1)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _thousands(n: int) -> str:
    """'10{,}000': an integer with LaTeX thousands separators."""
    return f"{int(n):,}".replace(",", "{,}")


@functools.lru_cache(maxsize=1)
def _test_set_size() -> int:
    return int(len(load_mnist().test_y))


def setup_numbers() -> dict[str, str]:
    """Settings of the study read from the code: config defaults, presets, model and data split."""
    cfg = Config()
    numbers = {_key("cfg", k.replace("_", "-")): _fmt(k, v) for k, v in cfg.to_dict().items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    numbers[_key("cfg", "poison-lr-mid")] = f"{cfg.poison_lr * cfg.poison_lr_gamma:g}"
    numbers[_key("cfg", "poison-lr-end")] = f"{cfg.poison_lr * cfg.poison_lr_gamma ** 2:g}"
    numbers[_key("cfg", "weight-decay")] = f"{cfg.weight_decay:g}"
    model = MnistNet()
    numbers[_key("model", "kernel")] = str(model.conv1.kernel_size[0])
    numbers[_key("model", "parameters")] = f"{sum(p.numel() for p in model.parameters()):,}".replace(",", "{,}")
    layers = list(model.modules())
    numbers[_key("model", "conv-layers", "word")] = in_words(sum(isinstance(m, torch.nn.Conv2d) for m in layers))
    numbers[_key("model", "fc-layers", "word")] = in_words(sum(isinstance(m, torch.nn.Linear) for m in layers))
    numbers[_key("cfg", "clients-per-round-less-one", "word")] = in_words(cfg.clients_per_round - 1)  # Krum's rejections
    numbers[_key("study", "experiments", "word")] = in_words(len(STUDY_NOTEBOOKS))
    numbers[_key("VII", "rejected-below")] = f"{REJECTED_BELOW:g}"
    trigger = TriggerSpec()
    numbers[_key("trigger", "pixels")] = str(int(trigger.mask().sum()))
    rows, cols = trigger.grid  # how the figures and claims number the local triggers: as the code does
    ordinals = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
    numbers[_key("trigger", "numbering")] = ", ".join(
        f"{list_text([str(i) for i in range(r * cols, min((r + 1) * cols, trigger.parts))])} "
        f"{'form the' if r == 0 else 'the'} {ordinals[r]} row" for r in range(rows))
    for name in ("single_shot_dba", "single_shot_cba", "multi_shot_dba", "collaborative_dba", "collaborative_cba",
                 "norm_bounded_dba"):
        p = preset(name)
        numbers[_key("preset", name.replace("_", "-"), "scale")] = _fmt("scale", p.scale)
        numbers[_key("preset", name.replace("_", "-"), "eta")] = f"{p.eta:g}"
        numbers[_key("preset", name.replace("_", "-"), "first")] = str(min(p.attack_rounds))
        numbers[_key("preset", name.replace("_", "-"), "last")] = str(max(p.attack_rounds))
    numbers[_key("F", "default-interval")] = str(DEFAULT_INTERVAL)  # rounds between single-shot DBA's attacks
    numbers[_key("preset", "norm-bounded-dba", "radius")] = f"{preset('norm_bounded_dba').attack_norm_bound:g}"
    for name in ("single_shot_dba", "single_shot_cba", "single_shot_disperse_dba", "single_shot_disperse_cba",
                 "multi_shot_dba", "collaborative_dba", "collaborative_cba"):
        numbers[_key("preset", name.replace("_", "-"), "rounds")] = rounds_phrase(preset(name).attack_rounds, dash="--")
        numbers[_key("preset", name.replace("_", "-"), "attackers")] = list_text(preset(name).attackers)
    for i, fraction in enumerate(cfg.poison_lr_milestones):
        numbers[_key("cfg", "milestone", i)] = f"{100 * fraction:g}"
    numbers[_key("stats", "confidence")] = f"{100 * CONFIDENCE:g}"
    numbers[_key("stats", "bootstrap-from")] = str(BOOTSTRAP_FROM)
    numbers[_key("stats", "sensitivity-step")] = f"{100 * abs(SENSITIVITY_STEPS['+50%'] - 1):g}"
    for t in THRESHOLDS.values():  # \val{stats.threshold.<name>}: in percent (points) for fractions
        numbers[_key("stats", "threshold", t.name)] = f"{100 * t.value:g}" if t.unit.startswith("fraction") else f"{t.value:g}"
    numbers[_key("const", "below")] = "50"  # study.summarize: rounds until the ASR is below 50 %
    numbers[_key("cfg", "trigger-parts-height")] = str(cfg.trigger_height)
    labels = load_mnist().train_y.numpy()
    shards = dirichlet_partition(labels, cfg.n_clients, cfg.dirichlet_alpha, cfg.partition_seed)
    for attacker in (*preset("single_shot_dba").attackers, *preset("single_shot_cba").attackers):
        numbers[_key("data", "client", attacker)] = str(len(shards[attacker]))
    numbers[_key("data", "used")] = _thousands(sum(map(len, shards)))
    numbers[_key("data", "asr-images")] = _thousands((load_mnist().test_y != cfg.target_label).sum())
    numbers[_key("data", "test-images")] = _thousands(_test_set_size())
    return numbers


def bench_numbers(path: Path = PROJECT_DIR / "benchmarks" / "results.json") -> dict[str, str]:
    if not path.is_file():
        return {}
    bench = json.loads(path.read_text())
    out = {}
    for field in ("seconds_per_round", "seconds_per_round_train", "seconds_per_round_eval",
                  "train_samples_per_second", "eval_samples_per_second", "threads"):
        value = bench.get(field)
        out[_key("bench", field.replace("_", "-"))] = (f"{value:,.0f}".replace(",", "{,}") if value and value >= 1000
                                                        else f"{value:.2f}" if isinstance(value, float) else str(value))
    if bench.get("seconds_total"):
        out[_key("bench", "seconds-total")] = f"{bench['seconds_total']:.0f}"  # a run's time: to the second
    out[_key("bench", "threads-word")] = "thread" if bench.get("threads") == 1 else "threads"
    out[_key("bench", "cpu")] = tex_escape(bench.get("cpu", "?"))
    return out


CLAIM_SECTIONS = ("A", "B", "C", "D", "R", "P", "M", "VII", "F")  # the order of the paper's sections
VERDICT_MACROS = {AGREES: r"\agree", DIFFERS: r"\disagree", INCONCLUSIVE: r"\inconclusive"}
SECTION_NAMES = {"A": "VI-A", "B": "VI-B", "C": "VI-C", "D": "VI-D", "R": "round 10", "VII": "VII", "M": "DBA paper A-M",
                 "F": "factors", "P": "persistence"}


# the letter a section's claims are printed with where it is not the section's key: the study's
# section-VII defence statements are E1, E2, ... (the letter after VI-A to VI-D), since "VII1" reads as "VIII"
CLAIM_LETTERS = {"VII": "E"}


def claim_id(section: str, index: int) -> str:
    """The short name a claim is printed with once, in its section, and referred to by everywhere
    else ('A2': the second claim of section VI-A; 'E1': the first defence statement of section VII)."""
    return rf"\claim{{{CLAIM_LETTERS.get(section, section)}{index}}}"


def _tex_number(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    value = 100 * value if unit in ("%", "pts") else value
    return f"${round(value, 1) + 0.0:.1f}$"  # never -0.0


def _unit_text(unit: str) -> str:
    return {"%": r"\%", "pts": "pts", "rounds": "rounds"}.get(unit, tex_escape(unit))


def estimate_tex(claim: dict) -> str:
    """The headline estimate and its interval: '$40.0$ [$38.2$, $41.8$] pts'; 'no interval' for old records."""
    if claim.get("estimate") is None:
        return "no interval"
    unit = claim.get("unit", "")
    interval = claim.get("interval")
    bounds = (f" [{_tex_number(interval[0], unit)}, {_tex_number(interval[1], unit)}]" if interval
              else " [no interval]")
    return f"{_tex_number(claim['estimate'], unit)}{bounds}\\,{_unit_text(unit)}"


def _threshold_text(claim: dict) -> str:
    threshold = claim.get("threshold") or {}
    if not threshold:
        return ""
    relation = ">" if threshold.get("side") == "above" else "<"
    unit = claim.get("unit", "")
    return (f"${relation}$ \\texttt{{{tex_escape(threshold['name'])}}} "
            f"{_tex_number(threshold['value'], unit)}\\,{_unit_text(unit)}")


def _readable(note: str, unit: str = "%") -> str:
    """A claim note in words: an interval cut at the range a fraction can take reads in the
    quantity's printed unit ('interval cut at 0 to 100 %'; points for differences and distances),
    Python lists of seeds become ranges ('seeds 0-9'), None n/a."""
    def cut(match):
        lo, hi = (100 * float(v) for v in match.groups())
        shown = "pts" if unit == "pts" or lo < 0 else "%"
        return f"interval cut at {lo:g} to {hi:g} {shown}, the range the quantity can take"

    def seeds(match):
        values = [int(v) for v in match.group(1).split(",") if v.strip()]
        if values and values == list(range(values[0], values[-1] + 1)) and len(values) > 2:
            return f"{values[0]}--{values[-1]}"
        return ", ".join(map(str, values))

    note = re.sub(r"cut at the possible range \[(-?[\d.]+), (-?[\d.]+)\]", cut, note)
    note = re.sub(r"\[([\d, ]*)\]", seeds, note)
    return note.replace("None", "n/a")


def _part_tex(part: dict) -> str:
    """One comparison: 'quantity: estimate [interval] unit (claimed > threshold) verdict'."""
    verdict = VERDICT_MACROS.get(part.get("verdict"), "")
    note = f"; {tex_escape(_readable(part['note'], part.get('unit', '%')))}" if part.get("note") else ""
    return (f"{tex_escape(part.get('quantity', ''))}: {estimate_tex(part)} ({_threshold_text(part)}{note}) "
            f"{verdict}")


def claims_tex(claims: list[dict], section: str = "") -> str:
    """Each claim: its verdict, then its quantity with estimate [95% interval] against its threshold
    (method, seeds); a claim of several comparisons lists each of them instead (method and seeds once)."""
    lines = [r"\begin{itemize}[leftmargin=6.6em, labelwidth=6.2em]"]  # room for "inconclusive"
    for i, claim in enumerate(claims, 1):
        verdict = VERDICT_MACROS[claim_verdict(claim)]
        name = rf"\textbf{{{claim_id(section, i)}}} " if section else ""
        head = f"{name}{tex_escape(claim['claim'])}."
        if claim.get("estimate") is not None or claim.get("interval") is not None:
            detail = (f"{tex_escape(claim.get('quantity', ''))}: {estimate_tex(claim)} "
                      f"({_threshold_text(claim)}; {tex_escape(claim.get('method', ''))}, "
                      f"{claim.get('n_seeds')} seeds)")
        else:
            detail = "no interval (recorded before verdicts had intervals)" if "verdict" not in claim else \
                tex_escape(claim.get("method", "no interval"))
        parts = claim.get("parts") or []
        if len(parts) > 1 and claim.get("estimate") is not None:  # every comparison is listed below
            detail = f"{len(parts)} comparisons ({tex_escape(claim.get('method', ''))}, {claim.get('n_seeds')} seeds)"
        unit = claim.get("unit", "%")
        notes = [_readable(n, unit) for n in [claim.get("note")] + [p.get("note") for p in parts[:1]] if n]
        note = "; ".join(dict.fromkeys(notes))
        note = f". {tex_escape(note[:1].upper() + note[1:])}" if note else ""
        if len(parts) > 1:
            items = "".join(rf"\item {_part_tex(p)}" for p in parts)
            evidence = rf"{{\small\begin{{itemize}}[leftmargin=1.2em, labelwidth=0.8em, nosep]{items}\end{{itemize}}}}"
        elif parts:
            evidence = ""
        else:
            evidence = rf"\\ {{\small {tex_escape(_readable(claim.get('evidence', '')))}}}"
        lines.append(rf"\item[{verdict}] {head} {detail}{note}. {evidence}")
    lines.append(r"\end{itemize}")
    return "\n".join(lines) + "\n"


def summary_tex(claims: dict[str, list]) -> str:
    """Per section: how many claims agree, differ or stay inconclusive, and which do not agree (by
    their names; each claim is printed once, in its section)."""
    lines = [r"\begin{tabular}{lccccp{0.3\linewidth}}", r"\toprule",
             r"section & claims & \agree & \disagree & \inconclusive & not agreeing \\", r"\midrule"]
    for section in CLAIM_SECTIONS:
        items = claims.get(section, [])
        if not items:
            continue
        verdicts = [claim_verdict(c) for c in items]
        others = ", ".join(claim_id(section, i) for i, v in enumerate(verdicts, 1) if v != AGREES) or "--"
        lines.append(f"{SECTION_NAMES[section]} & {len(items)} & {verdicts.count(AGREES)} & {verdicts.count(DIFFERS)} & "
                     f"{verdicts.count(INCONCLUSIVE)} & {others} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def thresholds_tex(thresholds=None) -> str:
    """The threshold table (name, value, meaning, why this value)."""
    lines = [r"\begin{tabular}{llp{0.33\linewidth}p{0.4\linewidth}}", r"\toprule",
             r"threshold & value & meaning & why this value \\", r"\midrule"]
    for t in (thresholds or THRESHOLDS).values():
        value = {"fraction": f"{100 * t.value:g}\\,\\%", "fraction difference": f"{100 * t.value:g}\\,pts"}.get(
            t.unit, f"{t.value:g}")
        lines.append(rf"\texttt{{{tex_escape(t.name)}}} & {value} & {{\footnotesize {tex_escape(t.meaning)}}} & "
                     rf"{{\footnotesize {tex_escape(t.reason)}}} \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def sensitivity_tex(claims: dict[str, list]) -> str:
    """Every claim's verdict with its thresholds at -50%, as fixed, and at +50%."""
    lines = [r"\begin{tabular}{llp{0.35\linewidth}ccc}", r"\toprule",
             r"section & claim & threshold & $-50\%$ & as fixed & $+50\%$ \\", r"\midrule"]
    for section in CLAIM_SECTIONS:
        for i, claim in enumerate(claims.get(section, []), 1):
            verdict = claim_verdict(claim)
            names = sorted({p["threshold"]["name"] for p in claim.get("parts", []) if p.get("threshold")})
            sens = claim.get("sensitivity") or {}
            cells = [VERDICT_MACROS[sens[step]] if sens.get(step) in VERDICT_MACROS else "--" for step in ("-50%", "+50%")]
            threshold = ", ".join(rf"\texttt{{{tex_escape(n)}}}" for n in names) or "--"
            lines.append(f"{SECTION_NAMES.get(section, section)} & {claim_id(section, i)} & {threshold} & "
                         f"{cells[0]} & {VERDICT_MACROS[verdict]} & {cells[1]} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


DEFENSES_NOTEBOOK = "05_defenses"
MATRIX_COLUMNS = 4  # attack columns per block of the defence-matrix table (a page's width at \scriptsize)


def _defense_record(results_dir: Path = RESULTS_DIR) -> dict:
    path = Path(results_dir) / f"{DEFENSES_NOTEBOOK}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _stop_below(record: dict) -> float:
    return float(record.get("parameters", {}).get("STOP_BELOW", THRESHOLDS["stopped"].value))


def _matrix_rows(record: dict) -> tuple[list[str], list[str], dict]:
    """(attacks in the order of ``ATTACK_LABELS``, defences in the record's order, {(attack, defence): row})."""
    rows = record.get("extra", {}).get("matrix", [])
    order = list(ATTACK_LABELS)
    attacks = sorted(dict.fromkeys(r["attack"] for r in rows), key=lambda a: order.index(a) if a in order else len(order))
    return attacks, list(dict.fromkeys(r["defense"] for r in rows)), {(r["attack"], r["defense"]): r for r in rows}


def _interval_macros(key: tuple, row: dict, field: str) -> dict[str, str | None]:
    """``<key>.<estimate|lo|hi>`` of a fraction and its interval (``\\pctest{<key>}``)."""
    return {_key(*key, suffix): _fmt("final", row.get(column))
            for suffix, column in (("estimate", field), ("lo", f"{field}_lo"), ("hi", f"{field}_hi"))}


def _names_text(names: list[str]) -> str:
    return list_text([rf"\texttt{{{tex_escape(n)}}}" for n in names]) if names else "none"


def defense_numbers(results_dir: Path = RESULTS_DIR) -> dict[str, str]:
    """Notebook 05's evidence as macros: every matrix cell's attack peak ASR, final ASR and clean
    accuracy with their 95% intervals
    (``vii.<attack>.<defence>.<asr-attack-peak|asr-final|clean-final>.<estimate|lo|hi>``); per attack,
    which defences stop it by ``defense_eval.stop_verdict`` (``vii.<attack>.<stopped|not-stopped|
    inconclusive|model-destroyed>.<list|word>``; a destroyed model counts as not stopping the attack,
    and the cells with one are also listed as ``vii.destroyed.<list|word>``; the defences that stop every
    attack of the matrix: ``vii.every-attack.stopped.<list|word>``); the consensus tuning (``vii.tuning.<ratio>.<clean-cost|asr-mean>``,
    ``vii.tuning.seeds.word``); the trade-off curves
    (``vii.tradeoff.<rule>.<value>.<attack>.<asr-final|clean-final>.<estimate|lo|hi>`` and
    ``...<benign-rejected|malicious-rejected>``; the settings with a destroyed seed:
    ``vii.tradeoff.destroyed.list``), the attacker counts
    (``vii.count.<attack>.<n>.<defence>.asr-final.<estimate|lo|hi>``; the defences that stop the
    attack with n attackers by the interval of its peak: ``vii.count.<attack>.<n>.stopped.list``, and all
    counts in one phrase: ``vii.count.<attack>.stopped.text``; at the largest count:
    ``vii.count.<attack>.max.stopped.list`` and ``vii.count.max-attackers.word``) and the root set
    (``vii.root.samples``, ``vii.root.digits``)."""
    record = _defense_record(results_dir)
    if not record:
        return {}
    out: dict[str, str | None] = {}
    stop_below = _stop_below(record)
    attacks, defenses, cell = _matrix_rows(record)
    for (attack, defense), row in cell.items():
        for field in ("asr_attack_peak", "asr_final", "clean_final"):
            out |= _interval_macros(("VII", attack, defense, field), row, field)
        if attack != "clean":  # what \restson compares: stopped, not stopped, inconclusive, model destroyed
            out[_key("VII", attack, defense, "outcome")] = _cell_verdict(row, "asr_attack_peak", stop_below)
    for attack in attacks:
        if attack == "clean":
            continue
        verdicts: dict[str, list[str]] = {STOPPED: [], NOT_STOPPED: [], INCONCLUSIVE: [], DESTROYED: []}
        for defense in defenses:
            if (attack, defense) in cell:
                verdicts[_cell_verdict(cell[(attack, defense)], "asr_attack_peak", stop_below)].append(defense)
        for verdict, names in verdicts.items():
            out[_key("VII", attack, verdict, "list")] = _names_text(names)
            out[_key("VII", attack, verdict, "word")] = in_words(len(names))
    destroyed: dict[str, list[str]] = {}  # attack -> defences under which a seed's model was destroyed
    for (a, d), row in cell.items():
        if _cell_verdict(row, "asr_attack_peak", stop_below) == DESTROYED:
            destroyed.setdefault(a, []).append(d)
    out[_key("VII", "destroyed", "list")] = "; ".join(
        f"{_names_text(names)} against {tex_escape(ATTACK_LABELS.get(a, a))}" for a, names in destroyed.items()) or "none"
    out[_key("VII", "destroyed", "word")] = in_words(sum(len(names) for names in destroyed.values()))
    attacked = [a for a in attacks if a != "clean"]
    every = [d for d in defenses if attacked and all(
        (a, d) in cell and _cell_verdict(cell[(a, d)], "asr_attack_peak", stop_below) == STOPPED for a in attacked)]
    out[_key("VII", "every-attack", "stopped", "list")] = _names_text(every)
    out[_key("VII", "every-attack", "stopped", "word")] = in_words(len(every))
    extra = record.get("extra", {})
    for row in extra.get("consensus_tuning") or []:
        for field in ("clean_cost", "asr_mean"):
            out[_key("VII", "tuning", _value_text(row["ratio"]), field)] = _fmt("final", row.get(field))
    tuning_seeds = record.get("parameters", {}).get("TUNING_SEEDS")
    if tuning_seeds:
        out[_key("VII", "tuning", "seeds", "word")] = in_words(len(tuning_seeds))
    for row in extra.get("tradeoff", []):
        key = ("VII", "tradeoff", row["rule"], _value_text(row["value"]), row["attack"])
        for field in ("asr_final", "clean_final"):
            out |= _interval_macros((*key, field), row, field)
        for field in ("benign_rejected", "malicious_rejected"):
            out[_key(*key, field)] = _fmt(field, row.get(field))
    seeds = len(record.get("parameters", {}).get("SEEDS") or [])
    out[_key("VII", "tradeoff", "destroyed", "list")] = _tradeoff_destroyed_text(extra.get("tradeoff", []), seeds,
                                                                        record.get("parameters", {}))
    stopped_at: dict[tuple, list[str]] = {}
    for row in extra.get("attacker_counts", []):
        out |= _interval_macros(("VII", "count", row["attack"], row["attackers"], row["defense"], "asr_final"),
                                row, "asr_final")
        names = stopped_at.setdefault((row["attack"], row["attackers"]), [])
        verdict = _cell_verdict(row, "asr_attack_peak", stop_below)
        out[_key("VII", "count", row["attack"], row["attackers"], row["defense"], "outcome")] = verdict
        if verdict == STOPPED:
            names.append(row["defense"])
    for (attack, attackers), names in stopped_at.items():
        out[_key("VII", "count", attack, attackers, "stopped", "list")] = _names_text(names)
    if stopped_at:
        out[_key("VII", "count", "max-attackers", "word")] = in_words(max(n for _, n in stopped_at))
    for attack in dict.fromkeys(a for a, _ in stopped_at):
        counts = sorted(n for a, n in stopped_at if a == attack)
        out[_key("VII", "count", attack, "max", "stopped", "list")] = _names_text(stopped_at[(attack, counts[-1])])
        out[_key("VII", "count", attack, "stopped", "text")] = "; ".join(
            f"with {in_words(n)} attacker{'s' if n != 1 else ''} a round by {_names_text(stopped_at[(attack, n)])}"
            for n in counts)
    root = extra.get("root_set")
    if root:
        out[_key("VII", "root", "samples")] = str(root["samples"])
        out[_key("VII", "root", "digits")] = list_text([d for d, n in enumerate(root["class_counts"]) if n])
    return {k: v for k, v in out.items() if v is not None}


def _tradeoff_destroyed_text(rows: list[dict], seeds: int, parameters: dict) -> str:
    """The trade-off settings with a destroyed seed, e.g. "\\texttt{weak\\_dp\\_dba} at $\\sigma = 0.03$
    without attack (two of three seeds destroyed, one of them diverged)", or "none"."""
    settings = {**{r: r"$M = {}\times$" for r in parameters.get("NORM_RULES", [])},
                **{r: r"$\sigma = {}$" for r in parameters.get("DP_RULES", [])},
                **{r: "$f = {}$" for r in parameters.get("KRUM_RULES", [])},
                **{r: "a root set of ${}$ images" for r in parameters.get("ROOT_RULES", [])}}
    parts = []
    for row in rows:
        destroyed = row.get("destroyed_seeds", 0)
        if not destroyed:
            continue
        attack = "without attack" if row["attack"] == "clean" else f"under {tex_escape(ATTACK_LABELS.get(row['attack'], row['attack']))}"
        diverged = row.get("diverged_seeds", 0)
        detail = f"{in_words(destroyed)} of {in_words(seeds)} seeds destroyed" if seeds else f"{in_words(destroyed)} seeds destroyed"
        if diverged:
            detail += f", {in_words(diverged)} of them diverged"
        setting = settings.get(row["rule"], "${}$").format(_value_text(row["value"]))
        parts.append(rf"\texttt{{{tex_escape(row['rule'])}}} at {setting} {attack} ({detail})")
    return list_text(parts) if parts else "none"


def _cell_verdict(row: dict, field: str, stop_below: float) -> str:
    """``defense_eval.stop_verdict`` of a matrix row's ``field`` interval and destroyed seeds."""
    return stop_verdict(row.get(f"{field}_lo"), row.get(f"{field}_hi"), stop_below, row.get("destroyed_seeds", 0))


def matrix_tex(record: dict) -> str:
    """The defence matrix as tables of ``MATRIX_COLUMNS`` attacks each: per defence, the attack's
    peak global-trigger ASR (``asr_attack_peak``), mean [95% interval] in percent, in bold where the interval lies below the
    stop threshold (stopped) and in italics where it straddles it (inconclusive); a dagger marks a
    cell whose model was destroyed in some seed (diverged or below the ``destroyed`` threshold;
    "diverged" when no seed finished), which never counts as stopped; the last block ends with the
    clean accuracy without attack."""
    attacks, defenses, cell = _matrix_rows(record)
    stop_below = _stop_below(record)
    columns = [(a, "asr_attack_peak") for a in attacks if a != "clean"] + ([("clean", "clean_final")] if "clean" in attacks else [])
    blocks = []
    for start in range(0, len(columns), MATRIX_COLUMNS):
        part = columns[start:start + MATRIX_COLUMNS]
        head = " & ".join(tex_escape(ATTACK_LABELS.get(a, a)) + (" (clean accuracy)" if f == "clean_final" else "")
                          for a, f in part)
        lines = [r"\begin{tabular}{l" + "c" * len(part) + "}", r"\toprule", f"defence & {head} \\\\", r"\midrule"]
        for d in defenses:
            cells = []
            for a, field in part:
                row = cell.get((a, d))
                if row is None:
                    cells.append("--")
                    continue
                text = _bracket(row.get(field), row.get(f"{field}_lo"), row.get(f"{field}_hi"))
                verdict = _cell_verdict(row, field, stop_below) if field != "clean_final" else None
                if verdict == DESTROYED:
                    text = ("diverged" if text == "--" else text) + r"$^\dagger$"
                elif verdict == STOPPED:  # text-mode bold and italics: the maths fonts have neither
                    text = r"\textbf{" + text.replace("$-", r"\textminus ").replace("$", "") + "}"
                elif verdict == INCONCLUSIVE:
                    text = r"\textit{" + text.replace("$-", r"\textminus ").replace("$", "") + "}"
                cells.append(text)
            lines.append(rf"\texttt{{{tex_escape(d)}}} & " + " & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        blocks.append("\n".join(lines))
    return "\n\n\\medskip\n".join(blocks) + "\n"


def consensus_tuning_tex(record: dict) -> str:
    """The consensus ratio's choice on the held-out seeds: per candidate ratio, the clean-accuracy
    cost without attack and the mean final ASR over the tuning attacks (percent), the chosen one marked."""
    chosen = record.get("parameters", {}).get("CONSENSUS_RATIO")
    lines = [r"\begin{tabular}{cccc}", r"\toprule",
             r"consensus\_ratio & clean-accuracy cost (points) & mean final ASR (\%) & chosen \\", r"\midrule"]
    for row in record.get("extra", {}).get("consensus_tuning") or []:
        mark = "yes" if chosen is not None and math.isclose(row["ratio"], chosen) else ""
        lines.append(f"${_value_text(row['ratio'])}$ & {_tex_number(row['clean_cost'], 'pts')} & "
                     f"{_tex_number(row['asr_mean'], '%')} & {mark} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# who proposed what: an author phrase in an aggregator's description gets its citation
CITATIONS = {"Sun et al.": "sun2019really", "Pillutla et al.": "pillutla2022rfa", "Fung et al.": "fung2020foolsgold",
             "Blanchard et al.": "blanchard2017krum", "Yin et al.": "yin2018median", "Nguyen et al.": "nguyen2022flame",
             "Cao et al.": "cao2021fltrust", "HDBSCAN": "campello2013hdbscan"}


def cite_authors(text: str) -> str:
    """``text`` (already TeX-escaped) with ``~\\cite{key}`` after every phrase of ``CITATIONS``."""
    for phrase, key in CITATIONS.items():
        text = text.replace(phrase, rf"{phrase}~\cite{{{key}}}")
    return text


def aggregators_tex() -> str:
    """The aggregation rules as a table (name, what it does, config keys)."""
    lines = [r"\begin{tabular}{lp{0.54\linewidth}>{\raggedright\arraybackslash}p{0.2\linewidth}}", r"\toprule",
             r"rule & what it does & settings \\", r"\midrule"]
    for name in aggregator_names():
        spec = AGGREGATORS[name]
        keys = ", ".join(spec.params)
        lines.append(rf"\texttt{{{tex_escape(name)}}} & {cite_authors(tex_escape(spec.description))} & "
                     rf"{{\footnotesize {tex_escape(keys)}}} \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def rejection_tex() -> str:
    """When a client counts as rejected under each rule (``defense_eval.REJECTED_WHEN``)."""
    lines = [r"\begin{tabular}{lp{0.76\linewidth}}", r"\toprule",
             rf"rule & a client counts as rejected when (weight relative to FedAvg below {REJECTED_BELOW:g}) \\",
             r"\midrule"]
    for name in aggregator_names():
        lines.append(rf"\texttt{{{tex_escape(name)}}} & {tex_escape(REJECTED_WHEN[name])} \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def presets_tex() -> str:
    lines = [r"\begin{tabular}{lp{0.62\linewidth}}", r"\toprule", r"preset & experiment \\", r"\midrule"]
    for name, text in describe_presets():
        lines.append(rf"\texttt{{{tex_escape(name)}}} & {tex_escape(text)} \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def dba_paper_numbers(results_dir: Path = RESULTS_DIR) -> dict[str, str]:
    """The DBA paper's single-shot MNIST numbers (``study.DBA_PAPER_MNIST``) and ours (notebook 01's
    ``dba_paper`` rows: estimate, lo, hi) as percent macros ``a.paper.*`` and ``a.ours.*``."""
    out = {}
    path = Path(results_dir) / f"{STUDY_NOTEBOOKS['A']}.json"
    rows = json.loads(path.read_text()).get("extra", {}).get("dba_paper", []) if path.is_file() else []
    for arm, paper_value, row in zip(("dba", "cba", "gap"), DBA_PAPER_MNIST.values(), rows or [None] * 3):
        out[_key("A", "paper", arm)] = _fmt("final", paper_value)
        if row:
            for field in ("estimate", "lo", "hi"):
                out[_key("A", "ours", arm, field)] = _fmt("final", row[field])
    return out


ROBUSTNESS_NOTEBOOK = "09_robustness_claim"
QUANTITY_KEYS = {"DBA": "dba", "CBA": "cba", "DBA minus CBA": "gap"}


def _robustness_rows(results_dir: Path, field: str = "robustness") -> list[dict]:
    path = Path(results_dir) / f"{ROBUSTNESS_NOTEBOOK}.json"
    return json.loads(path.read_text()).get("extra", {}).get(field, []) if path.is_file() else []


def robustness_numbers(results_dir: Path = RESULTS_DIR) -> dict[str, str]:
    """Notebook 09's number-for-number rows as percent macros ``m.<defence>.<dba|cba|gap>.<estimate|lo|hi>``
    (and ``.paper`` where the DBA paper gives a number), and its rows at the end of the runs: global
    ASR (``m.<defence>.<dba|cba|gap>.end.<field>``) and clean accuracy (``...clean.<field>``)."""
    out = {}
    for row in _robustness_rows(results_dir):
        key = ("M", row["defense"], QUANTITY_KEYS[row["quantity"]])
        for field in ("estimate", "lo", "hi"):
            out[_key(*key, field)] = _fmt("final", row[field])
        if row.get("dba_paper") is not None:
            out[_key(*key, "paper")] = f"{100 * row['dba_paper']:.2f}"
        out[_key("M", "seeds", "word")] = in_words(int(row["n_seeds"]))
    out[_key("M", "rules", "word")] = in_words(len({row["defense"] for row in _robustness_rows(results_dir)}))
    for extra, tag in (("final", "end"), ("clean", "clean")):  # at the end: ``m.<defence>.<arm>.<end|clean>.<field>``
        for row in _robustness_rows(results_dir, extra):
            for field in ("estimate", "lo", "hi"):
                out[_key("M", row["defense"], QUANTITY_KEYS[row["quantity"]], tag, field)] = _fmt("final", row[field])
    return {k: v for k, v in out.items() if v is not None}


def robustness_tex(results_dir: Path = RESULTS_DIR) -> str:
    """The DBA paper's A-M robustness numbers beside ours (estimate [95% interval], seeds), per defence."""
    rows = _robustness_rows(results_dir)
    at = f" at round {rows[0]['round']}" if rows else ""
    lines = [r"\begin{tabular}{llcc}", r"\toprule",
             rf"defence & global-trigger ASR{at} (\%) & DBA paper & ours: mean [95\% interval] (seeds) \\", r"\midrule"]
    for row in rows:
        paper = "--" if row.get("dba_paper") is None else f"${100 * row['dba_paper']:.2f}$"
        label = tex_escape(row["defense"]) if row["quantity"] == "DBA" else ""
        lines.append(f"{label} & {tex_escape(row['quantity'])} & {paper} & {_interval_cell(row)} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


PERSISTENCE_NOTEBOOK = "08_persistence_sensitivity"
PERSISTENCE_ARMS = {"dba": "DBA", "cba": "CBA", "gap": "DBA $-$ CBA (points)"}


def _persistence_rows(results_dir: Path = RESULTS_DIR) -> list[dict]:
    path = Path(results_dir) / f"{PERSISTENCE_NOTEBOOK}.json"
    return json.loads(path.read_text()).get("extra", {}).get("persistence", []) if path.is_file() else []


def persistence_numbers(results_dir: Path = RESULTS_DIR) -> dict[str, str]:
    """Notebook 08's variants as percent macros ``p.<factor>.<value>.<dba|cba|gap>.<estimate|lo|hi>``
    (the VI-A setting is ``p.vi-a.baseline.*``), whether each gap's interval excludes zero
    (``...gap.excludes-zero``: yes/no), the smallest and largest single seed's gap
    (``...gap.seed-min``, ``...gap.seed-max``; ``p.all-variants.gap.seed-max`` over every row), and
    how many variants and factors were tried besides the VI-A setting (``p.variants.word``,
    ``p.factors.word``)."""
    rows = _persistence_rows(results_dir)
    tried = [row for row in rows if row["factor"] != "VI-A"]
    out = {_key("P", "variants", "word"): in_words(len(tried)),
           _key("P", "factors", "word"): in_words(len({row["factor"] for row in tried}))} if rows else {}
    seeds = [gap for row in rows for gap in row.get("gap_per_seed") or []]
    if seeds:
        out[_key("P", "all-variants", "gap", "seed-max")] = _fmt("final", max(seeds))
    for row in rows:
        key = ("P", row["factor"], _value_text(row["value"]))
        for arm in PERSISTENCE_ARMS:
            for field, column in (("estimate", arm), ("lo", f"{arm}_lo"), ("hi", f"{arm}_hi")):
                out[_key(*key, arm, field)] = _fmt("final", row.get(column))
        out[_key(*key, "gap", "excludes-zero")] = "yes" if row.get("gap_excludes_zero") else "no"
        if row.get("gap_per_seed"):  # the spread of single runs, beside the mean
            out[_key(*key, "gap", "seed-min")] = _fmt("final", min(row["gap_per_seed"]))
            out[_key(*key, "gap", "seed-max")] = _fmt("final", max(row["gap_per_seed"]))
        if _fmt("final", row.get("gap_change")) is not None:  # against the VI-A setting, paired by seed
            for field, column in (("estimate", "gap_change"), ("lo", "gap_change_lo"), ("hi", "gap_change_hi")):
                out[_key(*key, "change", field)] = _fmt("final", row.get(column))
            out[_key(*key, "change", "excludes-zero")] = "yes" if row.get("gap_change_excludes_zero") else "no"
    return {k: v for k, v in out.items() if v is not None}


def persistence_tex(results_dir: Path = RESULTS_DIR) -> str:
    """Notebook 08's table: per variant, DBA's and CBA's persistence and the paired gap, each as
    mean [95% interval] in percent, and the seeds."""
    rows = _persistence_rows(results_dir)
    lines = [r"\begin{tabular}{lccccc}", r"\toprule",
             "variant & " + " & ".join(PERSISTENCE_ARMS.values()) + r" & gap $-$ VI-A gap & seeds \\", r"\midrule"]
    for row in rows:
        label = ("VI-A setting" if row["factor"] == "VI-A"
                 else f"{tex_escape(row['factor'])} $= {_value_text(row['value'])}$")
        cells = [_bracket(row.get(arm), row.get(f"{arm}_lo"), row.get(f"{arm}_hi"))
                 for arm in (*PERSISTENCE_ARMS, "gap_change")]
        lines.append(" & ".join([label, *cells, str(row["seeds"])]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


FACTORS_NOTEBOOK = "06_trigger_factors"
FACTOR_SCHEDULES = {"single_shot": "single-shot DBA", "multi_shot": "continuous DBA"}  # the table's row groups
FACTOR_EFFECTS = {"change_after": "change-after", "change_later": "change-later", "gap": "gap"}


def _factor_effect_rows(results_dir: Path = RESULTS_DIR) -> list[dict]:
    path = Path(results_dir) / f"{FACTORS_NOTEBOOK}.json"
    return json.loads(path.read_text()).get("extra", {}).get("effects", []) if path.is_file() else []


def _excludes_zero(row: dict, field: str) -> str | None:
    """"up" or "down" when ``field``'s interval lies above or below zero, "unresolved" when it
    straddles it, None when the row has no such field."""
    if _fmt("final", row.get(field)) is None:
        return None
    if not row.get(f"{field}_excludes_zero"):
        return "unresolved"
    return "up" if row[f"{field}_lo"] > 0 else "down"


def factor_numbers(results_dir: Path = RESULTS_DIR) -> dict[str, str]:
    """Notebook 06's paired effects (``dbalib.study.factors.factor_effects``) as macros in points,
    ``f.<schedule>.<factor>.<value>.<change-after|change-later|gap>.<estimate|lo|hi>``, and counts in
    words per schedule: the distinct settings (the default once) where DBA is ahead of CBA, behind it
    or neither by its interval (``f.<schedule>.gap.<settings|dba-ahead|cba-ahead|unresolved>.word``),
    and the settings besides the default whose DBA ASR right after / ``later`` rounds after the attack
    lies above, below or not clearly apart from the default's
    (``f.<schedule>.<change-after|change-later>.<settings|up|down|unresolved>.word``)."""
    out: dict[str, str | None] = {}
    counts: dict[tuple, int] = {}
    seen: set = set()
    rows = _factor_effect_rows(results_dir)
    for row in rows:
        key = ("F", row["schedule"], row["factor"], _value_text(row["value"]))
        for field, name in FACTOR_EFFECTS.items():
            for suffix, column in (("estimate", field), ("lo", f"{field}_lo"), ("hi", f"{field}_hi")):
                out[_key(*key, name, suffix)] = _fmt("final", row.get(column))
            direction = _excludes_zero(row, field)
            setting = (row["schedule"], "default" if row["default"] else (row["factor"], row["value"]), field)
            if direction is None or setting in seen:
                continue
            seen.add(setting)
            if field == "gap":
                direction = {"up": "dba-ahead", "down": "cba-ahead"}.get(direction, direction)
            for counted in ("settings", direction):
                counts[(row["schedule"], name, counted)] = counts.get((row["schedule"], name, counted), 0) + 1
    for schedule in {row["schedule"] for row in rows}:
        for name in FACTOR_EFFECTS.values():
            wanted = ("dba-ahead", "cba-ahead") if name == "gap" else ("up", "down")
            for counted in ("settings", "unresolved", *wanted):
                out[_key("F", schedule, name, counted, "word")] = in_words(counts.get((schedule, name, counted), 0))
    return {k: v for k, v in out.items() if v is not None}


def factor_effects_tex(results_dir: Path = RESULTS_DIR) -> str:
    """Notebook 06's paired changes against each factor's default: per schedule and setting, DBA's
    ASR right after the attack and some rounds on minus the same at the default, mean [95% interval]
    in points, in bold where the interval excludes zero."""
    rows = [r for r in _factor_effect_rows(results_dir) if not r["default"]]
    lines = [r"\begin{tabular}{llccc}", r"\toprule",
             r"factor & value & change right after the attack & change later & seeds \\"]
    for schedule in dict.fromkeys(r["schedule"] for r in rows):
        lines += [r"\midrule", rf"\multicolumn{{5}}{{l}}{{\emph{{{FACTOR_SCHEDULES.get(schedule, schedule)}}}}} \\"]
        for row in (r for r in rows if r["schedule"] == schedule):
            cells = []
            for field in ("change_after", "change_later"):
                cell = _bracket(row.get(field), row.get(f"{field}_lo"), row.get(f"{field}_hi"))
                if row.get(f"{field}_excludes_zero"):  # bold, in text mode: the maths fonts have no bold digits
                    cell = r"\textbf{" + cell.replace("$-", r"\textminus ").replace("$", "") + "}"
                cells.append(cell)
            lines.append(" & ".join([tex_escape(row["factor"].replace("_", " ")), f"${_value_text(row['value'])}$",
                                     *cells, str(row["seeds"])]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
_TENS = {30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy", 80: "eighty", 90: "ninety"}


def in_words(n: int) -> str:
    """A whole number as the text writes it ('four', 'fifty'); digits above what is spelled."""
    if 0 <= n < len(_WORDS):
        return _WORDS[n]
    return _TENS.get(n, str(n))


def word_numbers(results_dir: Path = RESULTS_DIR) -> dict[str, str]:
    """The numbers the text writes in words, each from the configs or results it counts
    (``<key>.word``): attackers per DBA attack, the disperse spacing, collaborative cycles, the
    few-seeds comparison and the persistence horizon; and the largest later collaborative drop."""
    from ..core.presets import preset

    dba = preset("single_shot_dba")
    disperse = sorted(preset("single_shot_disperse_dba").attack_rounds)
    out = {_key("cfg", "trigger-parts", "word"): in_words(dba.trigger_parts),
           _key("cfg", "trigger-parts-less-one", "word"): in_words(dba.trigger_parts - 1),
           _key("B", "spacing", "word"): in_words(disperse[1] - disperse[0])}
    records = {section: json.loads(p.read_text()) for section, name in STUDY_NOTEBOOKS.items()
               if (p := Path(results_dir) / f"{name}.json").is_file()}
    if "D" in records:
        run = records["D"]["runs"]["DBA"]
        cycles = 1 + sum(1 for a, b in zip(run["attack_rounds"], run["attack_rounds"][1:]) if b - a > 1)
        out[_key("D", "cycles", "word")] = in_words(cycles)
        first_cycle_end = next((a for a, b in zip(run["attack_rounds"], run["attack_rounds"][1:]) if b - a > 1), None)
        later = [d for r, d in run["clean_drops"].items() if first_cycle_end is not None and int(r) > first_cycle_end]
        if later:
            out[_key("D", "dba", "later-max-drop")] = _fmt("final", max(later))
    if "A" in records:
        few = records["A"].get("parameters", {}).get("FEW_SEEDS")
        if few:
            out[_key("history", "few-seeds", "word")] = in_words(int(few))
        rows = records["A"].get("extra", {}).get("dba_paper", [])
        if rows:
            out[_key("A", "later", "word")] = in_words(rows[0]["round"] - max(records["A"]["runs"]["DBA"]["attack_rounds"]))
    return out


SEED_HISTORY = RESULTS_DIR / "history" / "verdicts_3_seeds.json"
STUDY_NOTEBOOKS = {"A": "01_single_shot_concentrated", "B": "02_single_shot_disperse", "C": "03_multi_shot_continuous",
                   "D": "04_fixed_frequency_collaborative"}


def seed_history(results_dir: Path = RESULTS_DIR, history: Path = SEED_HISTORY) -> list[dict]:
    """How each VI A-D verdict changed: the earlier mean-based verdict on 3 seeds (``history``), the
    interval verdict on the first seeds of today's runs (``claims_few_seeds``), and on all of them."""
    old = json.loads(history.read_text())["claims"] if history.is_file() else {}
    rows = []
    for section, name in STUDY_NOTEBOOKS.items():
        path = Path(results_dir) / f"{name}.json"
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        earlier = {c["claim"]: c["verdict"] for c in old.get(name, [])}
        few = {c["claim"]: claim_verdict(c) for c in record.get("extra", {}).get("claims_few_seeds", [])}
        seeds = len(record.get("parameters", {}).get("SEEDS", []))
        for i, claim in enumerate(record.get("claims", []), 1):
            rows.append({"section": section, "claim": claim["claim"], "id": claim_id(section, i), "means": earlier.get(claim["claim"]),
                         "few": few.get(claim["claim"]), "all": claim_verdict(claim), "seeds": seeds})
    return rows


def seed_history_numbers(rows: list[dict]) -> dict[str, str]:
    """Counts of each verdict per column of the seed history (``history.<column>.<verdict>``)."""
    out = {_key("history", "claims"): str(len(rows))}
    for column in ("means", "few", "all"):
        for verdict in (AGREES, DIFFERS, INCONCLUSIVE):
            out[_key("history", column, verdict)] = str(sum(r[column] == verdict for r in rows))
    return out


def seed_history_tex(rows: list[dict]) -> str:
    """The seed-history table (``seed_history``)."""
    lines = [r"\begin{tabular}{llccc}", r"\toprule",
             r"section & claim & 3 seeds, means & 3 seeds, intervals & all seeds, intervals \\", r"\midrule"]
    for r in rows:
        cells = [VERDICT_MACROS.get(r[c], "--") for c in ("means", "few", "all")]
        lines.append(f"{SECTION_NAMES[r['section']]} & {r['id']} & {cells[0]} & {cells[1]} & "
                     f"{cells[2]}~({r['seeds']}) \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _bracket(estimate, lo, hi) -> str:
    """'$26.6$ [$17.4$, $36.7$]': an estimate and its 95% interval, fractions printed in percent
    ('--' when there is no estimate)."""
    if _fmt("final", estimate) is None:
        return "--"
    return f"{_tex_number(estimate, '%')} [{_tex_number(lo, '%')}, {_tex_number(hi, '%')}]"


def _interval_cell(row: dict) -> str:
    """'$26.6$ [$17.4$, $36.7$] (20)': a row's estimate, 95% interval (percent) and seed count."""
    return f"{_bracket(row['estimate'], row['lo'], row['hi'])} ({row['n_seeds']})"


def dba_paper_tex(results_dir: Path = RESULTS_DIR) -> str:
    """The DBA paper's MNIST numbers beside ours (estimate [95% interval], seeds)."""
    lines = [r"\begin{tabular}{p{0.42\linewidth}cc}", r"\toprule",
             r"quantity (MNIST; ASR in \%, DBA minus CBA in points) & DBA paper & ours: mean [95\% interval] (seeds) \\",
             r"\midrule"]
    path = Path(results_dir) / f"{STUDY_NOTEBOOKS['A']}.json"
    rows = json.loads(path.read_text()).get("extra", {}).get("dba_paper", []) if path.is_file() else []
    for row in rows:
        paper = _tex_number(row.get("dba_paper"), "%")
        lines.append(f"{tex_escape(row['quantity'])} (round {row['round']}) & {paper} & {_interval_cell(row)} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _minus(value: str) -> str:
    """A negative number as the paper prints it: a minus sign, not a hyphen ('-7.6' -> '\\ensuremath{-}7.6')."""
    return re.sub(r"^-(?=\d)", r"\\ensuremath{-}", value)


RESTS_ON = re.compile(r"\\restson\{([^{}]+)\}\{([^{}]+)\}")  # \restson{a.claim.1}{differs}


class PaperTextError(DbalibError, ValueError):
    """The paper's text rests on a verdict that the recorded results no longer give."""


def text_files(paper_dir: Path = PAPER_DIR) -> list[Path]:
    """The paper's own text: ``main.tex`` and every section (not the generated tables)."""
    return [paper_dir / "main.tex", *sorted((paper_dir / "sections").glob("*.tex"))]


def rests_on(paths: list[Path] | None = None) -> list[tuple[str, int, str, str]]:
    """Every ``\\restson{key}{outcome}`` of the text as (file, line, key, outcome)."""
    found = []
    for path in paths if paths is not None else text_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            line = re.sub(r"(?<!\\)%.*", "", line)
            found += [(path.name, number, key, outcome) for key, outcome in RESTS_ON.findall(line)]
    return found


def check_text(numbers: dict[str, str], paths: list[Path] | None = None) -> int:
    """Compare every verdict the text rests on with the generated ``<key>.outcome``; raise
    ``PaperTextError`` naming each paragraph that no longer matches. Return how many were checked."""
    statements = rests_on(paths)
    wrong = []
    for name, line, key, outcome in statements:
        have = numbers.get(f"{key}.outcome")
        if have is None:
            wrong.append(f"  {name}:{line}: \\restson{{{key}}} names no verdict the results give")
        elif have != outcome:
            wrong.append(f"  {name}:{line}: the text rests on {key} being '{outcome}'; the results say '{have}'")
    if wrong:
        raise PaperTextError("the paper's text no longer matches results/*.json:\n" + "\n".join(wrong) +
                             "\nRewrite each paragraph named (and its \\restson) to say what the runs now say.")
    return len(statements)


def write_all(out_dir: Path = PAPER_DIR / "generated", results_dir: Path = RESULTS_DIR,
              text: list[Path] | None = None) -> dict[str, str]:
    """Check that the text still matches the results (``check_text`` over ``text``, the paper's own
    files by default; ``[]`` skips it for results that are not the paper's), then write every
    generated file; return the macros."""
    numbers, claims = results_numbers(results_dir)
    history = seed_history(results_dir)
    numbers |= setup_numbers() | bench_numbers() | dba_paper_numbers(results_dir) | robustness_numbers(results_dir) | persistence_numbers(results_dir) | factor_numbers(results_dir) | defense_numbers(results_dir) | word_numbers(results_dir) | seed_history_numbers(history)
    check_text(numbers, text)
    lines = ["% generated by `python -m dbalib paper-numbers` from results/*.json: do not edit"]
    lines += [rf"\dbaset{{{key}}}{{{_minus(value)}}}" for key, value in sorted(numbers.items())]
    atomic_write_text(out_dir / "numbers.tex", "\n".join(lines) + "\n")
    for section, items in claims.items():
        atomic_write_text(out_dir / f"claims-{section}.tex", claims_tex(items, section))
    defenses = Path(results_dir) / "05_defenses.json"
    if defenses.is_file():
        atomic_write_text(out_dir / "defense-matrix.tex", matrix_tex(json.loads(defenses.read_text())))
        atomic_write_text(out_dir / "consensus-tuning.tex", consensus_tuning_tex(json.loads(defenses.read_text())))
    atomic_write_text(out_dir / "presets.tex", presets_tex())
    atomic_write_text(out_dir / "aggregators.tex", aggregators_tex())
    atomic_write_text(out_dir / "rejection.tex", rejection_tex())
    atomic_write_text(out_dir / "claims-summary.tex", summary_tex(claims))
    atomic_write_text(out_dir / "thresholds.tex", thresholds_tex())
    atomic_write_text(out_dir / "sensitivity.tex", sensitivity_tex(claims))
    atomic_write_text(out_dir / "seed-history.tex", seed_history_tex(history))
    atomic_write_text(out_dir / "dba-paper.tex", dba_paper_tex(results_dir))
    atomic_write_text(out_dir / "robustness.tex", robustness_tex(results_dir))
    atomic_write_text(out_dir / "persistence.tex", persistence_tex(results_dir))
    atomic_write_text(out_dir / "factor-effects.tex", factor_effects_tex(results_dir))
    return numbers
