"""The defences experiment: an attack x defence matrix, its table, heatmaps, curves and answers,
and the evidence around it (notebook 05). The DBA paper's robustness claim is
``dbalib.study.robustness`` (notebook 09).

``matrix_configs`` builds one config per (attack, aggregator) with shared settings; an attack is
a preset name, optionally with an adaptive attacker: ``"multi_shot_dba+cosine"`` (see
``attack_config`` and ``dbalib.core.attacks.adapt_uploads``). ``matrix_table`` reduces the runs to one
row per cell (final and peak global-trigger ASR, final clean accuracy, share of benign and
malicious updates rejected); ``heatmaps`` draws them and ``answers`` turns the table into the
answers to the study's questions (section VII): do norm thresholding and abandoning stop
single-shot DBA, do they fail against multi-shot DBA, and which defence stops multi-shot DBA at
what clean-accuracy cost.

Around the matrix:

- ``tradeoff_configs`` / ``tradeoff_table`` / ``tradeoff_figure``: a defence setting swept
  (``norm_bound_factor``, ``dp_sigma``, ``krum_f`` under-, right- and over-estimated), ASR under
  attack against clean accuracy without attack;
- ``choose_consensus_ratio``: ``consensus_ratio`` chosen on held-out seeds and attacks (never on
  the seeds that are reported);
- ``attacker_count_configs``: 1, 2, 4, 6 attackers per round (continuous DBA and CBA);
- ``root_set_summary``: what the server's root set holds (``dbalib.core.server``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd

from ..core.config import ADAPTIVE, Config, rounds_range
from ..core.data import load_mnist
from ..core.errors import ConfigError
from ..core.jobs import check_seeds
from ..core.presets import preset
from ..core.results import Result
from ..core.server import root_indices
from ..core.simulation import check, run_seed
from .claims import Claim
from .plotting import RUN_COLORS, use_style

ATTACK_LABELS = {
    "clean": "no attack",
    "single_shot_dba": "single-shot DBA",
    "single_shot_cba": "single-shot CBA",
    "multi_shot_dba": "continuous DBA",
    "multi_shot_cba": "continuous CBA",
    "collaborative_dba": "collab. DBA",
    "collaborative_cba": "collab. CBA",
    "norm_bounded_dba": "norm-bounded DBA",
    "random_sampling_dba": "random-sampling DBA",
    "norm_bounded_dba+bound": "DBA at the round's bound",
    "multi_shot_dba+norm_spread": "DBA, benign norm",
    "multi_shot_dba+cosine": "DBA, benign cosine",
}
MULTI_SHOT = ("multi_shot_dba", "multi_shot_cba", "norm_bounded_dba", "random_sampling_dba")
# attackers of the attacker-count experiment: the reference's four DBA attackers, then the two
# participants closest to them in size (22: 583 images, 77: 589); CBA: the reference's 95 first
DBA_IDS = (41, 73, 51, 74, 22, 77)
CBA_IDS = (95, 41, 73, 51, 74, 22)
METRIC_LABELS = {"asr_global": "ASR (global trigger)", "clean_acc": "clean accuracy"}
REJECTED_BELOW = 0.5  # a client whose weight relative to FedAvg is below this counts as rejected
# What "rejected" (weight relative to FedAvg below REJECTED_BELOW) means under each rule: the
# benign-rejected and malicious-rejected shares of the matrix and the trade-off curves count these.
REJECTED_WHEN = {
    "fedavg": "never (every weight is 1)",
    "norm_threshold": "its norm exceeds M (weight 0; the average keeps its denominator)",
    "abandon": "its norm exceeds M (dropped; the others' weights rise)",
    "norm_clip": "it is clipped to less than half its length (norm above 2M); milder clipping only down-weights it",
    "weak_dp": "as norm_clip (the noise does not change the weights)",
    "weak_dp_dba": "never (no clipping, FedAvg weights)",
    "rfa": "its Weiszfeld weight (sample share over distance to the geometric median, normalised) is below "
           "half an average share: it lies about twice as far from the median as a typical update",
    "foolsgold": "its FoolsGold weight, rescaled to an average of 1, is below one half",
    "foolsgold_dba": "its FoolsGold weight wv is below one half (coefficient wv/n against FedAvg's 1/n)",
    "krum": "it is not the one update chosen (nine of ten are rejected in every round)",
    "multikrum": "it is not among the multikrum_m updates chosen",
    "median": "its value is the coordinate's median in less than half the share of coordinates an average "
              "client gets",
    "trimmed_mean": "its value is trimmed in so many coordinates that its share falls below half an average one",
    "flame": "it is outside the largest cluster (weight 0), or clipped so hard that its weight, the clip factor "
             "times n over the clients kept, falls below one half",
    "flame_updates": "as flame",
    "consensus": "its cosine with the coordinate-wise median is below consensus_ratio times the median trust "
                 "(weight 0), or its trust share times its clip factor is below half an average share",
    "fltrust": "its trust share (ReLU of its cosine with the server's root-set update) is below half an "
               "average one",
    "validation_filter": "leaving it out raises the root-set accuracy by more than the tolerance (dropped)",
}


def attack_config(attack: str, multi_shot_end: int, clean_eta: float = 1.0, **overrides) -> Config:
    """The config of one attack of the experiment.

    ``attack`` is a preset name, or ``"<preset>+<adaptive>"`` for an adaptive attacker
    (``dbalib.core.attacks.adapt_uploads``; ``+bound`` drops the preset's fixed ``attack_norm_bound``:
    the attacker uses the round's actual bound instead). Continuous attacks (``MULTI_SHOT``) run
    from round ``pretrain_rounds + 1`` to ``multi_shot_end``; the no-attack baseline uses
    ``clean_eta`` (1: the multi-shot regime). ``overrides`` (aggregator, common settings) apply last.
    """
    base, _, adaptive = attack.partition("+")
    extra: dict = {"eta": clean_eta} if base == "clean" else {}
    if base in MULTI_SHOT:
        extra["attack_rounds"] = rounds_range(overrides.get("pretrain_rounds", 10) + 1, multi_shot_end)
    if adaptive:
        if adaptive not in ADAPTIVE or adaptive == "none":
            raise ConfigError(f"attack '{attack}': '{adaptive}' is not an adaptive attacker ({', '.join(ADAPTIVE[1:])})")
        extra |= {"adaptive": adaptive, "name": attack}
        if adaptive == "bound":
            extra["attack_norm_bound"] = 0.0
    return preset(base, **(extra | overrides))


def matrix_configs(attacks: list[str], defenses: list[str], multi_shot_end: int, clean_eta: float = 1.0,
                   **common) -> dict[tuple[str, str], Config]:
    """{(attack, defense): Config} (see ``attack_config``)."""
    return {(attack, defense): attack_config(attack, multi_shot_end, clean_eta, aggregator=defense, **common)
            for attack in attacks for defense in defenses}


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


# --- trade-off curves ----------------------------------------------------------------------------
def krum_f_values(true_f: int, clients_per_round: int = 10, offset: int = 2) -> dict[str, int]:
    """Krum's assumed attacker count: under-estimated (``true_f - offset``), right, over-estimated
    (``true_f + offset``), each kept within 0..clients_per_round - 3 (Krum needs n - f - 2 >= 1)."""
    top = clients_per_round - 3
    return {"under": max(0, true_f - offset), "right": min(true_f, top), "over": min(top, true_f + offset)}


def tradeoff_configs(sweeps: dict[str, tuple[str, list]], attacks: list[str], multi_shot_end: int,
                     **common) -> dict[tuple[str, str, float, str], Config]:
    """{(rule, key, value, attack): Config}: for each ``rule: (key, values)`` of ``sweeps`` and each
    value, the rule with ``key = value`` under every attack of ``attacks`` (include "clean" for the
    accuracy cost)."""
    out = {}
    for rule, (key, values) in sweeps.items():
        for value in values:
            for attack in attacks:
                out[(rule, key, value, attack)] = attack_config(attack, multi_shot_end, **(common | {
                    "aggregator": rule, key: value}))
    return out


def tradeoff_table(results: dict[tuple[str, str, float, str], Result]) -> pd.DataFrame:
    """One row per (rule, key, value, attack) with ``cell_numbers``, the per-seed SD of the final
    ASR and clean accuracy."""
    rows = []
    for (rule, key, value, attack), result in results.items():
        final = result.metrics[result.metrics["round"] == result.last_round]
        rows.append({"rule": rule, "key": key, "value": value, "attack": attack, **cell_numbers(result),
                     "asr_final_sd": float(final["asr_global"].std(ddof=1)) if len(final) > 1 else np.nan,
                     "clean_final_sd": float(final["clean_acc"].std(ddof=1)) if len(final) > 1 else np.nan})
    return pd.DataFrame(rows).set_index(["rule", "key", "value", "attack"]).sort_index()


def tradeoff_figure(table: pd.DataFrame, attack: str, note: str = "", value_labels: dict | None = None) -> plt.Figure:
    """Per swept rule: final global ASR under ``attack`` and final clean accuracy without attack
    (``clean``, when swept) against the setting, mean +- SD over seeds."""
    use_style()
    groups = list(dict.fromkeys((r, k) for r, k, _, _ in table.index))
    cols = min(3, max(1, len(groups)))
    rows = int(np.ceil(len(groups) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), constrained_layout=True, squeeze=False)
    for ax, (rule, key) in zip(axes.flat, groups):
        part = table.xs((rule, key), level=("rule", "key"))
        for who, column, color, label in ((attack, "asr_final", "tab:red", f"ASR, {ATTACK_LABELS.get(attack, attack)}"),
                                          ("clean", "clean_final", "tab:green", "clean accuracy, no attack")):
            if who not in part.index.get_level_values("attack"):
                continue
            rows_ = part.xs(who, level="attack").sort_index()
            ax.errorbar(range(len(rows_)) if key == "krum_f" else rows_.index, rows_[column],
                        yerr=rows_[f"{column}_sd"].fillna(0), color=color, marker="o", capsize=3, label=label)
            if key == "krum_f":
                labels = (value_labels or {}).get(key, {})
                ax.set_xticks(range(len(rows_)), [f"{labels.get(v, '')} f={v:g}".strip() for v in rows_.index])
        ax.set(title=f"{rule}: {key}", xlabel=key, ylim=(-0.02, 1.02))
        if key in ("dp_sigma",):
            ax.set_xscale("log")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    fig.suptitle("Defence settings: attack success against clean accuracy" + (f"\n{note}" if note else ""), fontsize=11)
    return fig


# --- consensus_ratio on held-out seeds and attacks ----------------------------------------------
def choose_consensus_ratio(results: dict[tuple[str, str, float, str], Result], baseline: Result,
                           attacks: list[str], clean_budget: float = 0.01) -> tuple[float, pd.DataFrame]:
    """``consensus_ratio`` chosen from tuning runs ({("consensus", "consensus_ratio", ratio, attack):
    Result} on held-out seeds, attacks and "clean") and the no-attack FedAvg ``baseline`` on the
    same seeds.

    Rule (fixed before any run): among the ratios whose clean-accuracy cost without attack (FedAvg's
    final clean accuracy minus consensus's) is at most ``clean_budget``, the one with the lowest
    mean final global ASR over ``attacks``; ties go to the smaller ratio (rejects less). If no
    ratio meets the budget, the one with the smallest cost. Returns the ratio and the table.
    """
    table = tradeoff_table(results).xs(("consensus", "consensus_ratio"), level=("rule", "key"))
    base = float(baseline.metrics.loc[baseline.metrics["round"] == baseline.last_round, "clean_acc"].mean())
    ratios = sorted(set(table.index.get_level_values("value")))
    rows = []
    for ratio in ratios:
        part = table.xs(ratio, level="value")
        rows.append({"ratio": ratio, "clean_cost": base - float(part.loc["clean", "clean_final"]),
                     "asr_mean": float(np.mean([part.loc[a, "asr_final"] for a in attacks]))})
    choice = pd.DataFrame(rows).set_index("ratio")
    ok = choice[choice["clean_cost"] <= clean_budget]
    if ok.empty:
        return float(choice["clean_cost"].idxmin()), choice
    best = ok["asr_mean"].min()
    return float(ok.index[ok["asr_mean"] <= best + 1e-12].min()), choice


# --- attackers per round -------------------------------------------------------------------------
def attacker_count_configs(counts: list[int], defenses: list[str], multi_shot_end: int,
                           attacks: tuple[str, ...] = ("multi_shot_dba", "multi_shot_cba"),
                           **common) -> dict[tuple[str, int, str], Config]:
    """{(attack, n, defense): Config}: continuous DBA/CBA with the first ``n`` of ``DBA_IDS`` /
    ``CBA_IDS`` as attackers (all poison every attacked round, so n per round). DBA attackers
    beyond ``trigger_parts`` reuse local triggers round-robin (``dbalib.core.attacks``); Krum and
    Multi-Krum are told the true count (``krum_f = n``)."""
    out = {}
    for attack in attacks:
        ids = CBA_IDS if attack.endswith("cba") else DBA_IDS
        for n in counts:
            if not 1 <= n <= len(ids):
                raise ConfigError(f"attacker count {n} must be between 1 and {len(ids)}")
            for defense in defenses:
                extra = {"krum_f": n} if defense in ("krum", "multikrum") else {}
                out[(attack, n, defense)] = attack_config(attack, multi_shot_end, **(common | extra | {
                    "aggregator": defense, "attackers": ids[:n], "name": f"{attack}-x{n}"}))
    return out


def attacker_count_table(results: dict[tuple[str, int, str], Result]) -> pd.DataFrame:
    rows = [{"attack": a, "attackers": n, "defense": d, **cell_numbers(r)} for (a, n, d), r in results.items()]
    return pd.DataFrame(rows).set_index(["attack", "attackers", "defense"]).sort_index()


def attacker_count_figure(table: pd.DataFrame, note: str = "") -> plt.Figure:
    """Final global ASR against the number of attackers per round, one line per defence."""
    use_style()
    attacks = list(dict.fromkeys(table.index.get_level_values("attack")))
    fig, axes = plt.subplots(1, len(attacks), figsize=(5.5 * len(attacks), 4), constrained_layout=True, squeeze=False)
    for ax, attack in zip(axes[0], attacks):
        part = table.xs(attack, level="attack")
        for i, defense in enumerate(dict.fromkeys(part.index.get_level_values("defense"))):
            rows = part.xs(defense, level="defense").sort_index()
            ax.plot(rows.index, rows["asr_final"], marker="o", label=defense,
                    color=(RUN_COLORS + list(plt.cm.tab10.colors))[i % 14])
        ax.set(title=ATTACK_LABELS.get(attack, attack), xlabel="attackers per round", ylabel="final global ASR",
               ylim=(-0.02, 1.02))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle("How many attackers a defence withstands" + (f"\n{note}" if note else ""), fontsize=11)
    return fig


# --- the server's root set -----------------------------------------------------------------------
def root_set_summary(config: Config) -> dict:
    """Size and class counts of the root set of ``config`` (``dbalib.core.server``): on MNIST with the
    reference split it holds only the surplus digits 1, 2, 3, 7, 9."""
    labels = load_mnist(config.data_dir or None).train_y.numpy()
    indices = root_indices(config, labels)
    return {"samples": int(len(indices)), "class_counts": np.bincount(labels[indices], minlength=10).tolist()}
