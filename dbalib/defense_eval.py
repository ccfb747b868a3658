"""The defences experiment: an attack x defence matrix, its table, heatmaps, curves and answers.

``matrix_configs`` builds one config per (attack preset, aggregator) with shared settings;
``matrix_table`` reduces the runs to one row per cell (final and peak global-trigger ASR, final
clean accuracy, share of benign and malicious updates rejected); ``heatmaps`` draws them and
``answers`` turns the table into the answers to the study's questions (section VII): do norm
thresholding and abandoning stop single-shot DBA, do they fail against multi-shot DBA, and which
defence stops multi-shot DBA at what clean-accuracy cost.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd

from .config import rounds_range
from .plotting import RUN_COLORS, use_style
from .presets import preset
from .results import Result
from .study import Claim

ATTACK_LABELS = {
    "clean": "no attack",
    "single_shot_dba": "single-shot DBA",
    "single_shot_cba": "single-shot CBA",
    "multi_shot_dba": "continuous DBA",
    "multi_shot_cba": "continuous CBA",
    "collaborative_dba": "collab. DBA",
    "collaborative_cba": "collab. CBA",
    "norm_bounded_dba": "norm-bounded DBA",
}
MULTI_SHOT = ("multi_shot_dba", "multi_shot_cba", "norm_bounded_dba")
METRIC_LABELS = {"asr_global": "ASR (global trigger)", "clean_acc": "clean accuracy"}
REJECTED_BELOW = 0.5  # a client whose weight relative to FedAvg is below this counts as rejected


def matrix_configs(attacks: list[str], defenses: list[str], multi_shot_end: int, clean_eta: float = 1.0,
                   **common) -> dict[tuple[str, str], "object"]:
    """{(attack, defense): Config}; continuous attacks run from round 11 to ``multi_shot_end``;
    the no-attack baseline uses ``clean_eta`` (1: the multi-shot regime)."""
    configs = {}
    for attack in attacks:
        extra = {"eta": clean_eta} if attack == "clean" else {}
        if attack in MULTI_SHOT:
            extra["attack_rounds"] = rounds_range(common.get("pretrain_rounds", 10) + 1, multi_shot_end)
        for defense in defenses:
            configs[(attack, defense)] = preset(attack, aggregator=defense, **extra, **common)
    return configs


def cell_numbers(result: Result) -> dict:
    """Final and peak global-trigger ASR, final clean accuracy, rejection shares of one run."""
    m = result.metrics
    attacked = m[m["round"] > result.first_round]
    final = m[m["round"] == result.last_round]
    n_benign = (result.config.clients_per_round - attacked["n_attackers"]).sum()
    n_malicious = attacked["n_attackers"].sum()
    return {
        "asr_final": float(final["asr_global"].mean()),
        "asr_peak": float(m.groupby("round")["asr_global"].mean().iloc[1:].max()),
        "clean_final": float(final["clean_acc"].mean()),
        "benign_rejected": float(attacked["benign_rejected"].sum() / max(1, n_benign)),
        "malicious_rejected": float(attacked["malicious_rejected"].sum() / n_malicious) if n_malicious else np.nan,
    }


def matrix_table(results: dict[tuple[str, str], Result]) -> pd.DataFrame:
    """One row per (attack, defense) with ``cell_numbers`` and the clean-accuracy cost.

    ``clean_cost`` is the final clean accuracy of FedAvg minus that of the defence under the same
    attack (positive: the defence costs accuracy); it is 0 for FedAvg itself.
    """
    rows = [{"attack": a, "defense": d, **cell_numbers(r)} for (a, d), r in results.items()]
    table = pd.DataFrame(rows).set_index(["attack", "defense"])
    fedavg = table.xs("fedavg", level="defense")["clean_final"] if "fedavg" in table.index.get_level_values(1) else None
    if fedavg is not None:
        table["clean_cost"] = [fedavg.get(a, np.nan) - v for (a, _), v in table["clean_final"].items()]
    return table


def heatmaps(table: pd.DataFrame, note: str = "") -> plt.Figure:
    """Four heatmaps (defences x attacks): final ASR, peak ASR, final clean accuracy, benign rejected."""
    use_style()
    attacks = list(dict.fromkeys(table.index.get_level_values(0)))
    defenses = list(dict.fromkeys(table.index.get_level_values(1)))
    panels = [("asr_final", "ASR of the global trigger at the end", "Reds"),
              ("asr_peak", "peak ASR of the global trigger", "Reds"),
              ("clean_final", "clean accuracy at the end", "Greens"),
              ("benign_rejected", "benign updates rejected (weight < 0.5)", "Blues")]
    fig, axes = plt.subplots(2, 2, figsize=(15, 11), constrained_layout=True)
    for ax, (column, title, cmap) in zip(axes.flat, panels):
        grid = table[column].unstack(0).reindex(index=defenses, columns=attacks).to_numpy(dtype=float)
        image = ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if value > 0.6 else "black")
        ax.set_xticks(range(len(attacks)), [ATTACK_LABELS.get(a, a) for a in attacks], rotation=35, ha="right")
        ax.set_yticks(range(len(defenses)), defenses)
        ax.set_title(f"{title} (%)")
        ax.grid(False)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle("Attacks x defences" + (f"\n{note}" if note else ""), fontsize=11)
    return fig


def curves(runs: dict[str, Result], title: str, metric: str = "asr_global", ax=None):
    """ASR (or another metric) of several runs on one axis, mean over seeds."""
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    styles = ["-", "--", ":", "-."]
    for i, (label, result) in enumerate(runs.items()):
        curve = result.curve(metric)
        ax.plot(curve.index, curve["mean"], label=label, color=(RUN_COLORS + list(plt.cm.tab10.colors))[i % 14],
                linestyle=styles[(i // 4) % 4])
    ax.set(title=title, xlabel="round", ylabel=METRIC_LABELS.get(metric, metric.replace("_", " ")), ylim=(-0.02, 1.02))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, ncol=2)
    return ax


def answers(table: pd.DataFrame, stop_below: float = 0.2, single: str = "single_shot_dba",
            multi: str = "multi_shot_dba") -> list[Claim]:
    """The study's section-VII questions answered from the matrix table."""
    out = []
    base = table.loc[(single, "fedavg")]
    for rule in ("norm_threshold", "abandon"):
        row = table.loc[(single, rule)]
        out.append(Claim("VII", f"{rule} stops single-shot DBA",
                         f"peak/final ASR {100 * row.asr_peak:.0f}%/{100 * row.asr_final:.0f}% (FedAvg "
                         f"{100 * base.asr_peak:.0f}%/{100 * base.asr_final:.0f}%); malicious rejected "
                         f"{100 * row.malicious_rejected:.0f}%, benign rejected {100 * row.benign_rejected:.0f}%",
                         row.asr_peak < stop_below))
    base_multi = table.loc[(multi, "fedavg")]
    for rule in ("norm_threshold", "abandon"):
        row = table.loc[(multi, rule)]
        out.append(Claim("VII", f"{rule} fails against multi-shot DBA (the study's conjecture)",
                         f"final ASR {100 * row.asr_final:.0f}% (FedAvg {100 * base_multi.asr_final:.0f}%); "
                         f"malicious rejected {100 * row.malicious_rejected:.0f}%",
                         row.asr_final >= stop_below))
    cba = single.replace("dba", "cba")
    for rule in ("rfa", "foolsgold"):
        if (single, rule) in table.index and (cba, rule) in table.index:
            d, c = table.loc[(single, rule)], table.loc[(cba, rule)]
            out.append(Claim("VII", f"DBA paper: under {rule}, single-shot DBA succeeds while CBA fails",
                             f"peak/final ASR under {rule}: DBA {100 * d.asr_peak:.0f}%/{100 * d.asr_final:.0f}%, "
                             f"CBA {100 * c.asr_peak:.0f}%/{100 * c.asr_final:.0f}%",
                             d.asr_peak >= 0.5 > c.asr_peak))
    multi_rows = table.xs(multi, level="attack")
    stoppers = multi_rows[(multi_rows["asr_final"] < stop_below) & (multi_rows.index != "fedavg")]
    if "clean" in table.index.get_level_values(0):
        clean_cost = table.xs("clean", level="attack")["clean_cost"]
        costs = ", ".join(f"{d} (final ASR {100 * r.asr_final:.0f}%, clean-accuracy cost without attack "
                          f"{100 * clean_cost.get(d, np.nan):.1f} pts, benign rejected "
                          f"{100 * r.benign_rejected:.0f}%)" for d, r in stoppers.iterrows())
    else:
        costs = ", ".join(stoppers.index)
    out.append(Claim("VII", f"Some defence stops multi-shot DBA (final ASR below {100 * stop_below:.0f}%)",
                     f"defences that stop it: {costs or 'none'}", len(stoppers) > 0))
    return out


def typical_benign_norm(result: Result) -> float:
    """Median over rounds of the mean benign update norm (an attacker's estimate of the scale)."""
    return float(result.metrics["benign_norm_mean"].dropna().median())


def question_figure(results: dict[tuple[str, str], Result], single: str = "single_shot_dba",
                    multi: str = "multi_shot_dba", note: str = "") -> plt.Figure:
    """The study's questions as curves: norm rules on single- and multi-shot DBA (top), every
    defence on multi-shot DBA, ASR and clean accuracy (bottom)."""
    use_style()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    norm_rules = ["fedavg", "norm_threshold", "abandon", "norm_clip"]
    for ax, attack in zip(axes[0], (single, multi)):
        runs = {d: results[(attack, d)] for d in norm_rules if (attack, d) in results}
        curves(runs, f"{ATTACK_LABELS.get(attack, attack)}: norm-based rules", ax=ax)
    every = {d: r for (a, d), r in results.items() if a == multi}
    curves(every, f"{ATTACK_LABELS.get(multi, multi)}: every defence, global-trigger ASR", ax=axes[1, 0])
    curves(every, f"{ATTACK_LABELS.get(multi, multi)}: every defence, clean accuracy", metric="clean_acc",
           ax=axes[1, 1])
    axes[1, 1].set_ylim(0.5, 1.0)
    fig.suptitle("Which defence stops which DBA?" + (f"\n{note}" if note else ""), fontsize=11)
    return fig


def update_geometry(config, seed: int = 0) -> pd.DataFrame:
    """Play ``config`` and measure, each attacked round, the cosine similarity of uploads between
    benign pairs, attacker-benign pairs and attacker pairs, and their norms (mean per round)."""
    from .jobs import check_seeds
    from .simulation import check, run_seed

    (seed,) = check_seeds([seed])  # a notebook's SEEDS[0] of a text SEEDS is an error, not seed "1"
    rows = []

    def observe(updates, malicious):
        bad = np.asarray(malicious)
        unit = updates.deltas / updates.norms[:, None].clamp(min=1e-12)
        cos = (unit @ unit.T).cpu().numpy()
        off = ~np.eye(len(bad), dtype=bool)
        pairs = {"benign-benign": np.outer(~bad, ~bad), "attacker-benign": np.outer(bad, ~bad),
                 "attacker-attacker": np.outer(bad, bad)}
        norms = updates.norms.cpu().numpy()
        row = {"round": updates.round, "benign norm": norms[~bad].mean(),
               "attacker norm": norms[bad].mean() if bad.any() else np.nan}
        for name, mask in pairs.items():
            values = cos[mask & off]
            row[f"cosine {name}"] = values.mean() if values.size else np.nan
        rows.append(row)

    run_seed(check(config), seed, show_progress=False, observer=observe)
    return pd.DataFrame(rows).set_index("round")
