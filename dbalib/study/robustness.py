"""The DBA paper's robustness claim in its own setting (notebook 09).

The DBA paper (Xie et al., 2020, MNIST) attacks continuously (A-M: every attacker poisons in every
round from 11 on, no scaling, eta 1) and reports, at round 30, DBA 91.55% against CBA 2.91% under
FoolsGold, and under RFA a DBA that reaches a higher rate and converges faster (no number).

- ``claim_configs``: continuous DBA and CBA under each defence, rounds 11-``multi_shot_end``
  attacked (the section VI-C schedule), one config per (attack, defence);
- ``robustness_claims``: each statement judged by per-seed intervals (``dbalib.study.claims``);
  DBA and CBA run on the same seeds, so their difference is paired;
- ``robustness_rows``: number for number against the paper: DBA's and CBA's global ASR at the
  claim's round and their paired difference, each with its 95% interval and the paper's number;
- ``robustness_figure``: the global ASR of DBA and CBA under each defence, with 95% bands.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..core.config import Config
from ..core.results import Result
from .claims import Claim, compare, compare_paired, interval_record, make_claim, seed_rounds_to_reach, seed_values
from .defense_eval import matrix_configs
from .plotting import RUN_COLORS, mean_band, use_style
from .stats import DIFFERENCE_BOUNDS, RATE_BOUNDS, THRESHOLDS

DBA, CBA = "multi_shot_dba", "multi_shot_cba"
PAPER_FOOLSGOLD_ROUND30 = {"DBA": 0.9155, "CBA": 0.0291}  # the DBA paper, MNIST, A-M, FoolsGold, round 30
DEFENSE_LABELS = {"fedavg": "FedAvg (no defence)", "foolsgold_dba": "FoolsGold, the DBA code's",
                  "foolsgold": "FoolsGold, ours (updates)", "rfa": "RFA (geometric median)"}


def claim_configs(defenses: list[str], multi_shot_end: int, **common) -> dict[tuple[str, str], Config]:
    """{(attack, defense): Config} of continuous DBA and CBA under each of ``defenses``."""
    return matrix_configs([DBA, CBA], defenses, multi_shot_end, **common)


def paper_value(defense: str, quantity: str) -> float | None:
    """The DBA paper's number for ``quantity`` ('DBA', 'CBA' or 'DBA minus CBA') under ``defense``
    (FoolsGold only: the paper gives no number for RFA)."""
    if not defense.startswith("foolsgold"):
        return None
    p = PAPER_FOOLSGOLD_ROUND30
    return {"DBA": p["DBA"], "CBA": p["CBA"], "DBA minus CBA": p["DBA"] - p["CBA"]}.get(quantity)


def robustness_rows(results: dict[tuple[str, str], Result], round_: int = 30, metric: str = "asr_global") -> list[dict]:
    """Per defence: DBA's and CBA's ``metric`` (global ASR) at ``round_`` and DBA minus CBA on the
    paired seeds, each with ``interval_record`` fields and the paper's number (``dba_paper``, None if
    it gives none: always for another metric)."""
    rows = []
    for defense in dict.fromkeys(d for (a, d) in results if a == DBA and (CBA, d) in results):
        d = seed_values(results[(DBA, defense)], metric, round_)
        c = seed_values(results[(CBA, defense)], metric, round_)
        both = sorted(set(d) & set(c))
        for quantity, values in (("DBA", d), ("CBA", c), ("DBA minus CBA", {s: d[s] - c[s] for s in both})):
            paper = paper_value(defense, quantity) if metric == "asr_global" else None
            rows.append({"defense": defense, "quantity": quantity, "round": round_, "metric": metric,
                         "dba_paper": paper}
                        | interval_record(values, DIFFERENCE_BOUNDS if quantity == "DBA minus CBA" else RATE_BOUNDS))
    return rows


def robustness_table(rows: list[dict]) -> pd.DataFrame:
    """``robustness_rows`` as a table (estimate, interval and the paper's number as fractions)."""
    columns = ["defense", "quantity", "dba_paper", "estimate", "lo", "hi", "n_seeds"]
    return pd.DataFrame([{k: r[k] for k in columns} for r in rows]).set_index(["defense", "quantity"])


def robustness_claims(results: dict[tuple[str, str], Result], round_: int = 30, section: str = "M") -> list[Claim]:
    """The DBA paper's robustness claims, each defence of ``results`` judged by per-seed intervals.

    FoolsGold (``foolsgold``, ``foolsgold_dba``): at ``round_``, DBA's global ASR is above CBA's
    (paired, margin 0), DBA is near the paper's 91.55% (above ``persistent``) and CBA is low
    (below ``low``; the paper: 2.91%). RFA: DBA's ASR at ``round_`` is above CBA's and DBA reaches
    ``converged`` in fewer rounds (paired). Other defences (FedAvg) get the paired comparison only.
    """
    t = THRESHOLDS
    out = []
    paper = f"paper: DBA {100 * PAPER_FOOLSGOLD_ROUND30['DBA']:.2f}%, CBA {100 * PAPER_FOOLSGOLD_ROUND30['CBA']:.2f}%"
    for d in dict.fromkeys(d for (a, d) in results if a == DBA and (CBA, d) in results):
        rd, rc = results[(DBA, d)], results[(CBA, d)]
        d_asr, c_asr = seed_values(rd, "asr_global", round_), seed_values(rc, "asr_global", round_)
        higher = compare_paired(f"global ASR at round {round_} under {d}, DBA minus CBA", d_asr, c_asr,
                                ("DBA", "CBA"), t["margin"], "above")
        if d.startswith("foolsgold"):
            out.append(make_claim(section, f"DBA paper (A-M): under {d}, DBA beats CBA at round {round_}", [higher],
                                  paper))
            out.append(make_claim(section, f"DBA paper (A-M): under {d}, DBA's ASR at round {round_} is near the "
                                           f"paper's 91.55%", [compare(f"DBA global ASR at round {round_} under {d}",
                                                                       d_asr, t["persistent"], "above")], paper))
            out.append(make_claim(section, f"DBA paper (A-M): under {d}, CBA fails (paper: 2.91% at round {round_})",
                                  [compare(f"CBA global ASR at round {round_} under {d}", c_asr, t["low"], "below")],
                                  paper))
        elif d == "rfa":
            first = min(rd.config.attack_rounds)
            level = t["converged"].value
            d_reach, d_cens = seed_rounds_to_reach(rd, "asr_global", level, first)
            c_reach, c_cens = seed_rounds_to_reach(rc, "asr_global", level, first)
            censored = "; ".join(f"{name} never reaches it in seeds {seeds} (counted as the rounds observed + 1)"
                                 for name, seeds in (("DBA", d_cens), ("CBA", c_cens)) if seeds)
            out.append(make_claim(section, "DBA paper (A-M): under RFA, DBA reaches a higher ASR than CBA", [higher]))
            out.append(make_claim(section, "DBA paper (A-M): under RFA, DBA converges faster than CBA", [
                compare_paired(f"rounds from round {first} until the global ASR reaches {100 * level:.0f}% under rfa, "
                               f"CBA minus DBA", c_reach, d_reach, ("CBA", "DBA"), t["margin"], "above", "rounds",
                               censored)]))
        else:
            out.append(make_claim(section, f"Under {d}, continuous DBA beats CBA at round {round_}", [higher]))
    return out


def robustness_figure(results: dict[tuple[str, str], Result], round_: int = 30, note: str = "") -> plt.Figure:
    """One panel per defence: DBA's and CBA's global ASR (mean, 95% band), the untriggered control,
    the claim's round and, under FoolsGold, the paper's two numbers (stars)."""
    use_style()
    defenses = list(dict.fromkeys(d for (a, d) in results if a == DBA and (CBA, d) in results))
    cols = min(len(defenses), 2)
    rows = -(-len(defenses) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.8, 2.5 * rows), sharex=True, sharey=True, squeeze=False,
                             constrained_layout=True)
    for ax, defense in zip(axes.flat, defenses):
        for i, (attack, label) in enumerate(((DBA, "continuous DBA"), (CBA, "continuous CBA"))):
            mean_band(ax, results[(attack, defense)], "asr_global", RUN_COLORS[i], label, linewidth=1.5)
        control = results[(DBA, defense)]
        if "asr_no_trigger" in control.metrics:
            line = 100 * control.curve("asr_no_trigger")["mean"]
            ax.plot(line.index, line, color="0.35", linestyle=":", linewidth=1.1, label="no trigger (control)")
        ax.axvline(round_, color="0.6", linewidth=0.8, linestyle="--")
        for i, who in enumerate(("DBA", "CBA")):
            value = paper_value(defense, who)
            if value is not None:
                ax.plot([round_], [100 * value], "*", color=RUN_COLORS[i], markersize=8, markeredgecolor="k",
                        markeredgewidth=0.5, label=f"DBA paper: {who}", zorder=5)
        ax.set(title=DEFENSE_LABELS.get(defense, defense), ylim=(-2, 105))
    for ax in axes.flat[len(defenses):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("round")
    for ax in axes[:, 0]:
        ax.set_ylabel("global-trigger ASR (%)")
    handles = {}
    for ax in axes.flat[:len(defenses)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=3, frameon=False)
    seeds = sorted({len(r.seeds) for r in results.values()})
    fig.suptitle(f"Continuous DBA and CBA under defences (the DBA paper's A-M setting){'; ' + note if note else ''}\n"
                 f"mean over {'/'.join(map(str, seeds))} seeds, band = 95% interval of the mean; dashed: round {round_}")
    return fig
