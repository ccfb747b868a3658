"""The defences experiment: an attack x defence matrix, its table, heatmaps, curves and answers,
and the evidence around it (notebook 05). The DBA paper's robustness claim is
``dbalib.study.robustness`` (notebook 09).

``matrix_configs`` builds one config per (attack, aggregator) with shared settings; an attack is
a preset name, optionally with an adaptive attacker: ``"multi_shot_dba+cosine"`` (see
``attack_config`` and ``dbalib.core.attacks.adapt_uploads``). ``run_cells`` runs them and keeps the
cells in which a seed diverged (a rule that lets the model blow up is evidence, not a crash).
``matrix_table`` reduces the runs to one row per cell (final and peak global-trigger ASR with 95%
intervals over seeds, final clean accuracy, share of benign and malicious updates rejected, seeds
whose model was destroyed); ``heatmaps`` draws them and ``answers``
judges the study's questions (section VII) by per-seed intervals against the ``stopped``
threshold: do norm thresholding and abandoning stop single-shot DBA, do they fail against
multi-shot DBA, and which defence stops multi-shot DBA at what clean-accuracy cost.

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

import math
from dataclasses import replace
import textwrap

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator, NullLocator, ScalarFormatter
import numpy as np
import pandas as pd

from ..core.config import ADAPTIVE, Config, rounds_range
from ..core.data import load_mnist
from ..core.errors import ConfigError, DivergedError, SweepError
from ..core.jobs import check_seeds
from ..core.presets import preset
from ..core.results import Result
from ..core.server import root_indices
from ..core.simulation import check, run_seed
from .claims import Claim, compare, make_claim, seed_values
from .plotting import use_style
from .stats import INCONCLUSIVE, RATE_BOUNDS, THRESHOLDS, Threshold, bounded, t_interval, t_quantile

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


def run_cells(configs: dict, seeds, out=None, **options) -> tuple[dict, dict]:
    """Run every config of ``configs`` ({key: Config}) for every seed (``dbalib.run_many``, cached;
    ``options`` such as ``workers`` go to it) and return ({key: Result}, {key: [diverged seeds]}).

    A seed whose global model stops being finite stores nothing, and ``run_many`` raises a
    ``SweepError`` once every other job has finished. When every failure is such a divergence, the
    cells keep their finished seeds (a key none of whose seeds finished is left out of the results)
    and the diverged seeds are returned, for ``matrix_table`` and ``stop_verdict`` to count the
    cell as one whose model was destroyed. Any other failure is raised. Nothing of a diverged seed is
    cached, so each call tries it again (on one machine the same config and seed diverge again; on
    a CPU with other vector kernels a seed on the edge of diverging may not: see the README's
    "Determinism and threads")."""
    from ..core import sweep  # sweep.run_many looked up at call time: benchmarks/device_runs.py stands in for it

    keys = list(configs)
    try:
        return dict(zip(keys, sweep.run_many([configs[k] for k in keys], seeds=seeds, out=out, **options))), {}
    except SweepError as exc:
        if not exc.failures or not all(isinstance(error, DivergedError) for _, _, error in exc.failures):
            raise
        failed: dict[str, set[int]] = {}
        for cfg, seed, _ in exc.failures:
            failed.setdefault(check(cfg).cache_key(), set()).add(seed)
    seeds = check_seeds(seeds)
    diverged = {}
    for key in keys:
        bad = failed.get(check(configs[key]).cache_key(), set())
        if bad:
            diverged[key] = sorted(bad)
    options["progress"] = False  # loads of finished seeds from here on
    healthy = [k for k in keys if k not in diverged]
    results = dict(zip(healthy, sweep.run_many([configs[k] for k in healthy], seeds=seeds, out=out, **options)))
    for key, bad in diverged.items():
        finished = [s for s in seeds if s not in bad]
        if finished:
            results[key] = sweep.run_many([configs[key]], seeds=finished, out=out, **options)[0]
    return {k: results[k] for k in keys if k in results}, diverged


def destroyed_below() -> float:
    """Final clean accuracy below which a seed's model counts as destroyed (``THRESHOLDS``)."""
    return THRESHOLDS["destroyed"].value


def cell_numbers(result: Result, diverged: int = 0) -> dict:
    """Final and peak global-trigger ASR, final clean accuracy, rejection shares of one run (means
    over its seeds), and the 95% t-interval of the mean over seeds of the final ASR and clean
    accuracy (``asr_final_lo``/``_hi``, ``clean_final_lo``/``_hi``: each seed's final-round value;
    NaN with one seed) and the number of seeds. ``asr_peak`` is the peak of the mean curve;
    ``asr_attack_peak`` (with ``_lo``/``_hi``) the mean over seeds of each seed's highest ASR from the
    first attacked round on, the quantity ``stop_verdict`` judges. ``diverged_seeds``: seeds of the
    cell that diverged (``diverged``, from ``run_cells``: they are not in ``result``);
    ``collapsed_seeds``: seeds whose final clean accuracy is below the ``destroyed`` threshold;
    ``destroyed_seeds``: both together."""
    m = result.metrics
    attacked = m[m["round"] > result.first_round]
    final = m[m["round"] == result.last_round]
    n_benign = (result.config.clients_per_round - attacked["n_attackers"]).sum()
    n_malicious = attacked["n_attackers"].sum()
    per_seed = final.groupby("seed")[["asr_global", "clean_acc"]].mean()  # one final value per seed
    asr, clean = (bounded(t_interval(per_seed[m]), RATE_BOUNDS) for m in ("asr_global", "clean_acc"))
    peaks = pd.Series(_attacked_peaks(result))
    peak = bounded(t_interval(peaks), RATE_BOUNDS)
    collapsed = int((per_seed["clean_acc"] < destroyed_below()).sum())
    return {
        "asr_final": float(final["asr_global"].mean()),
        "asr_peak": float(m.groupby("round")["asr_global"].mean().iloc[1:].max()),
        "clean_final": float(final["clean_acc"].mean()),
        "benign_rejected": float(attacked["benign_rejected"].sum() / max(1, n_benign)),
        "malicious_rejected": float(attacked["malicious_rejected"].sum() / n_malicious) if n_malicious else np.nan,
        "asr_final_lo": asr.lo, "asr_final_hi": asr.hi,
        "asr_attack_peak": float(peaks.mean()), "asr_attack_peak_lo": peak.lo, "asr_attack_peak_hi": peak.hi,
        "clean_final_lo": clean.lo, "clean_final_hi": clean.hi,
        "seeds": int(len(per_seed)),
        "diverged_seeds": int(diverged), "collapsed_seeds": collapsed, "destroyed_seeds": int(diverged) + collapsed,
    }


NUMBER_FIELDS = ("asr_final", "asr_peak", "clean_final", "benign_rejected", "malicious_rejected", "asr_final_lo",
                 "asr_final_hi", "asr_attack_peak", "asr_attack_peak_lo", "asr_attack_peak_hi", "clean_final_lo",
                 "clean_final_hi")


def lost_cell_numbers(diverged: int) -> dict:
    """``cell_numbers`` of a cell none of whose seeds finished (all ``diverged``): no numbers."""
    return {**dict.fromkeys(NUMBER_FIELDS, np.nan), "seeds": 0, "diverged_seeds": int(diverged),
            "collapsed_seeds": 0, "destroyed_seeds": int(diverged)}


def _cells(results: dict, diverged: dict | None):
    """(key, Result or None, ``cell_numbers``) of every key of ``results`` and ``diverged``, in order."""
    diverged = diverged or {}
    for key in list(results) + [k for k in diverged if k not in results]:
        n = len(diverged.get(key, ()))
        result = results.get(key)
        yield key, result, cell_numbers(result, n) if result is not None else lost_cell_numbers(n)


# and INCONCLUSIVE: the verdicts of ``stop_verdict``; "model destroyed" counts as not stopping the attack
STOPPED, NOT_STOPPED, DESTROYED = "stopped", "not stopped", "model destroyed"


def stop_verdict(asr_lo: float | None, asr_hi: float | None, stop_below: float, destroyed: float | None = 0) -> str:
    """Whether a defence stops an attack, judged by the 95% interval (``asr_lo``, ``asr_hi``) of the
    attack's peak ASR (``asr_attack_peak`` of ``cell_numbers``): "model destroyed" when any seed's
    model was destroyed (``destroyed``: ``destroyed_seeds`` of ``cell_numbers``; a model at chance
    level can show a low ASR, so this never counts as stopping the attack), else "stopped" when the
    whole interval lies below ``stop_below``, "not stopped" when it lies at or above it,
    "inconclusive" when it straddles it or is missing (one seed)."""
    if pd.notna(destroyed) and destroyed > 0:  # None or NaN: a row made before the count was recorded
        return DESTROYED
    if asr_lo is None or asr_hi is None or np.isnan(asr_lo) or np.isnan(asr_hi):
        return INCONCLUSIVE
    if asr_hi < stop_below:
        return STOPPED
    return NOT_STOPPED if asr_lo >= stop_below else INCONCLUSIVE


def matrix_table(results: dict[tuple[str, str], Result], diverged: dict | None = None) -> pd.DataFrame:
    """One row per (attack, defense) with ``cell_numbers`` and the clean-accuracy cost.

    Every number is a mean over the cell's finished seeds (``seeds``); ``asr_final_lo``/``_hi`` and
    ``clean_final_lo``/``_hi`` bound its 95% t-interval (NaN with one seed). ``diverged``
    ({(attack, defense): [seeds]}, from ``run_cells``) adds the seeds that diverged
    (``diverged_seeds``; a cell with no finished seed has a row without numbers). ``clean_cost`` is
    the final clean accuracy of FedAvg minus that of the defence under the same attack (positive:
    the defence costs accuracy); it is 0 for FedAvg itself.
    """
    rows = [{"attack": a, "defense": d, **numbers} for (a, d), _, numbers in _cells(results, diverged)]
    table = pd.DataFrame(rows).set_index(["attack", "defense"])
    fedavg = table.xs("fedavg", level="defense")["clean_final"] if "fedavg" in table.index.get_level_values(1) else None
    if fedavg is not None:
        table["clean_cost"] = [fedavg.get(a, np.nan) - v for (a, _), v in table["clean_final"].items()]
    return table


# --- figures: 6.8 in wide (the paper's text width), the fonts of the project's matplotlibrc -------
WIDTH = 6.8  # inches: the figures are printed at this width, so the style's font sizes are the printed ones
CELL_FONTSIZE = 7  # points: the smallest text of any figure here
DESTROYED_MARK = "\u00d7"  # after the clean accuracy of a heatmap cell whose model was destroyed
NOTE_WIDTH = 100  # characters per suptitle line (8.5 pt fits about 105 in 6.8 in)
# one colour and line style per defence, the same in every panel: ten colours, solid then dashed
DEFENSE_COLORS = ["0.1", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22",
                  "#17becf"]


def _suptitle(fig: plt.Figure, title: str, *lines: str) -> None:
    """``title`` and ``lines`` (the figure's note), each wrapped to the figure's width."""
    text = [title] + [line for line in lines if line]
    fig.suptitle("\n".join(textwrap.fill(t, NOTE_WIDTH) for t in text))


def _seed_text(counts) -> str:
    counts = sorted({int(c) for c in counts if not pd.isna(c)})
    return "/".join(map(str, counts)) + (" seed" if counts == [1] else " seeds") if counts else "?"


def _spread_text(counts, what: str) -> str:
    """"mean over 3 seeds, <what> = 95% interval of the mean" (``what``: "band" or "bars"), or, with
    one seed everywhere, "one seed: no interval"."""
    counts = [int(c) for c in counts if not pd.isna(c)]
    if counts and max(counts) == 1:
        return "one seed: no interval"
    return f"mean over {_seed_text(counts)}, {what} = 95% interval of the mean" + (
        " (none with one seed)" if counts and min(counts) == 1 else "")


def _styles(names) -> dict[str, dict]:
    """{name: {color, linestyle}} in order of ``names``: ten colours solid, then dashed, ..."""
    names = list(dict.fromkeys(names))
    return {n: {"color": DEFENSE_COLORS[i % len(DEFENSE_COLORS)], "linestyle": ("-", "--", ":", "-.")[(i // len(
        DEFENSE_COLORS)) % 4]} for i, n in enumerate(names)}


def _mean_band(ax, result: Result, metric: str, label: str, alpha: float = 0.18, **line) -> None:
    """Mean over seeds in percent and, with 2 seeds or more, the 95% t-interval of the mean as a band
    (as ``dbalib.study.plotting.mean_band``, with a lighter band where many curves share an axis)."""
    curve = result.curve(metric)
    mean = 100 * curve["mean"]
    (handle,) = ax.plot(curve.index, mean, label=label, **line)
    n = len(result.seeds)
    if n > 1:
        sd = result.metrics.groupby("round")[metric].std(ddof=1)
        half = 100 * t_quantile(n) * sd / math.sqrt(n)
        ax.fill_between(curve.index, (mean - half).clip(0, 100), (mean + half).clip(0, 100),
                        color=handle.get_color(), alpha=alpha, linewidth=0)


def _interval_err(rows: pd.DataFrame, column: str) -> np.ndarray | None:
    """Error bars (percent) of ``column`` from its ``_lo``/``_hi`` columns, within 0-100% (as the bands
    of ``dbalib.study.plotting.mean_band``); 0 where NaN (one seed)."""
    if f"{column}_lo" not in rows or f"{column}_hi" not in rows:
        return None
    low = (rows[column] - rows[f"{column}_lo"].clip(lower=0)).fillna(0).clip(lower=0)
    high = (rows[f"{column}_hi"].clip(upper=1) - rows[column]).fillna(0).clip(lower=0)
    return 100 * np.vstack([low.to_numpy(dtype=float), high.to_numpy(dtype=float)])


def _legend_below(fig: plt.Figure, axes, ncol: int | None = None, order: list[str] | None = None) -> None:
    """One legend of every labelled artist of ``axes`` (first label wins), below the panels; the
    labels of ``order`` first, in that order."""
    handles: dict = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if order:
        handles = {label: handles[label] for label in sorted(
            handles, key=lambda label: order.index(label) if label in order else len(order))}
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", frameon=False,
                   ncol=ncol or min(len(handles), 4))


def heatmaps(table: pd.DataFrame, note: str = "") -> plt.Figure:
    """Four heatmaps (defences x attacks), in percent: final ASR, final clean accuracy, benign and
    attacker updates rejected (the attack's peak ASR, which decides whether a defence stops it, is
    the paper's table with its intervals). 2 x 2 panels 6.8 in wide (shared axes: attack names under the bottom
    row, defence names left of the left column); every label is at least 7 pt at that size. Every
    cell carries its number, so the panels have no colour bars (they would leave the 12 attack
    columns too narrow for "100" at 7 pt). A cell with a destroyed model (``destroyed_seeds`` of
    ``cell_numbers``) carries a cross after its clean accuracy (alone when no seed finished)."""
    use_style()
    attacks = list(dict.fromkeys(table.index.get_level_values(0)))
    defenses = list(dict.fromkeys(table.index.get_level_values(1)))
    panels = [("asr_final", "final global-trigger ASR (%)", "Reds"),
              ("clean_final", "final clean accuracy (%)", "Greens"),
              ("benign_rejected", "benign updates rejected (%)", "Blues"),
              ("malicious_rejected", "attacker updates rejected (%)", "Purples")]
    labels = [ATTACK_LABELS.get(a, a) for a in attacks]
    # rows of 0.17 in (7 pt labels with room), the attack names' height under the bottom row
    label_height = 0.35 + 0.075 * max(len(t) for t in labels) * 0.72
    height = min(8.5, 0.75 + 2 * (0.3 + 0.17 * len(defenses)) + label_height)
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH, height), sharex=True, sharey=True, constrained_layout=True)
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
    destroyed = np.zeros((len(defenses), len(attacks)), dtype=bool)
    if "destroyed_seeds" in table:
        destroyed = table["destroyed_seeds"].unstack(0).reindex(index=defenses, columns=attacks).fillna(0).to_numpy() > 0
    for ax, (column, title, cmap) in zip(axes.flat, panels):
        if column not in table:
            ax.set_visible(False)
            continue
        grid = 100 * table[column].unstack(0).reindex(index=defenses, columns=attacks).to_numpy(dtype=float)
        # shading from 0 to 100%; clean accuracy from its lowest value (in tens), so that its differences show
        low = 0.0
        if column == "clean_final" and not np.isnan(grid).all():
            low = max(0.0, 10 * np.floor(np.nanmin(grid) / 10 - 0.5))
        ax.imshow(grid, cmap=cmap, vmin=low, vmax=100, aspect="auto", interpolation="nearest")
        for (i, j), value in np.ndenumerate(grid):
            cross = DESTROYED_MARK if column == "clean_final" and destroyed[i, j] else ""
            if not np.isnan(value) or cross:
                ax.text(j, i, ("" if np.isnan(value) else f"{value:.0f}") + cross, ha="center", va="center",
                        fontsize=CELL_FONTSIZE,
                        color="white" if not np.isnan(value) and (value - low) / (100 - low) > 0.6 else "black")
        ax.set_title(title)
        ax.grid(False)
        ax.tick_params(length=2, pad=1.5)
    for ax in axes[1]:
        ax.set_xticks(range(len(attacks)), labels, rotation=40, ha="right", rotation_mode="anchor")
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(defenses)), defenses)
    seeds = _seed_text(table["seeds"]) if "seeds" in table else None
    mark = (f"{DESTROYED_MARK}: model destroyed in a seed (diverged, or final clean accuracy below "
            f"{100 * destroyed_below():g}%)") if destroyed.any() else ""
    _suptitle(fig, "Attacks x defences" + (f": mean over {seeds} per cell" if seeds else "")
              + f"; rejected: weight below {REJECTED_BELOW:g} x FedAvg's", mark, note)
    return fig


def curves(runs: dict[str, Result], title: str, metric: str = "asr_global", ax=None, styles: dict | None = None,
           legend: bool = True):
    """ASR (or another metric) of several runs on one axis, in percent: mean over seeds with a band
    of the 95% t-interval of the mean (2 seeds or more). Without ``ax``, a figure 6.8 in wide with
    the legend below the panel; with ``ax``, the legend (``legend``) goes right of it, off the data.
    ``styles``: {label: line keywords (color, linestyle)}, for the same colours across panels."""
    use_style()
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(WIDTH, 3.2), constrained_layout=True)
    styles = styles or _styles(runs)
    alpha = 0.18 if len(runs) <= 5 else 0.07  # many curves on one axis: lighter bands
    for label, result in runs.items():
        _mean_band(ax, result, metric, label, alpha=alpha, linewidth=1.1, **styles.get(label, {}))
    ylabel = METRIC_LABELS.get(metric, metric.replace("_", " "))
    ax.set(title=title, xlabel="round", ylabel=f"{ylabel} (%)", ylim=(-2, 102))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if legend and runs:
        if own:
            _legend_below(ax.figure, [ax], ncol=min(len(runs), 5))
            ax.figure.suptitle(_spread_text([len(r.seeds) for r in runs.values()], "band"))
        else:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False)
    return ax


def _attacked_peaks(result: Result) -> dict[int, float]:
    """Per seed: the highest global-trigger ASR after the first attacked round began."""
    m = result.metrics
    first = min(result.config.attack_rounds) if result.config.attack_rounds else result.first_round
    peaks = m[m["round"] >= first].groupby("seed")["asr_global"].max()
    return {int(s): float(v) for s, v in peaks.items()}


def _stop_threshold(stop_below: float | None) -> Threshold:
    t = THRESHOLDS["stopped"]
    if stop_below is not None and not np.isclose(stop_below, t.value):
        t = replace(t, value=float(stop_below), reason=f"set by the notebook (table: {t.value:g})")
    return t


def answers(results: dict[tuple[str, str], Result], stop_below: float | None = None, single: str = "single_shot_dba",
            multi: str = "multi_shot_dba") -> list[Claim]:
    """The study's section-VII statements, each judged by the interval of the attack's per-seed peak
    global-trigger ASR (from its first attacked round on) against the ``stopped`` threshold
    (``dbalib.study.stats.THRESHOLDS``; ``stop_below`` overrides it):

    - norm thresholding and abandoning stop single-shot DBA (the peak stays below, and the model is
      kept: the final clean accuracy lies above the ``destroyed`` threshold);
    - they fail against multi-shot DBA (the peak rises above; the study's conjecture).

    Which rules stop which attack (its open question among them: what stops multi-shot DBA) is the
    matrix itself, judged cell by cell on the same interval (``stop_verdict`` of ``matrix_table``).
    """
    t = _stop_threshold(stop_below)
    out = []
    for rule in ("norm_threshold", "abandon"):
        if (single, rule) in results:
            result = results[(single, rule)]
            out.append(make_claim("VII", f"{rule} stops single-shot DBA", [
                compare(f"peak global ASR of single-shot DBA under {rule}", _attacked_peaks(result), t, "below"),
                compare(f"final clean accuracy under {rule} (the model is kept)",
                        seed_values(result, "clean_acc", result.last_round), THRESHOLDS["destroyed"], "above")]))
    for rule in ("norm_threshold", "abandon"):
        if (multi, rule) in results:
            out.append(make_claim("VII", f"{rule} fails against multi-shot DBA (the study's conjecture)", [
                compare(f"peak global ASR of multi-shot DBA under {rule}", _attacked_peaks(results[(multi, rule)]),
                        t, "above")]))
    return out


def typical_benign_norm(result: Result) -> float:
    """Median over rounds of the mean benign update norm (an attacker's estimate of the scale)."""
    return float(result.metrics["benign_norm_mean"].dropna().median())


# the two groups in which the question figure draws every rule against continuous DBA (FedAvg in both)
SIZE_RULES = ("norm_threshold", "abandon", "norm_clip", "weak_dp", "weak_dp_dba", "foolsgold", "foolsgold_dba")
RULE_GROUPS = {"norm, noise, FoolsGold": SIZE_RULES, "robust and root-set rules": None}


def question_figure(results: dict[tuple[str, str], Result], single: str = "single_shot_dba",
                    multi: str = "multi_shot_dba", note: str = "") -> plt.Figure:
    """The study's questions as curves (percent, 95% bands): norm rules on single- and multi-shot
    DBA (top row); then every defence on multi-shot DBA, ASR (left) and clean accuracy (right), in
    the two ``RULE_GROUPS`` (one row each, FedAvg in both as the reference; the second group holds
    every rule the first does not), so that no panel carries more than about ten curves. One colour
    per defence in every panel, one legend below the panels."""
    use_style()
    defenses = list(dict.fromkeys(d for (a, d) in results if a in (single, multi)))
    styles = _styles(defenses)
    legend_rows = -(-len(defenses) // 5)  # legend rows (5 columns)
    every = {d: r for (a, d), r in results.items() if a == multi}
    groups = [(title, {d: every[d] for d in every if d == "fedavg" or (d in SIZE_RULES) == (rules is not None)})
              for title, rules in RULE_GROUPS.items()]
    groups = [(title, runs) for title, runs in groups if set(runs) - {"fedavg"}] or [("every defence", every)]
    rows = 1 + len(groups)
    fig, axes = plt.subplots(rows, 2, figsize=(WIDTH, 2.45 * rows + 0.1 + 0.14 * legend_rows), sharex=True,
                             constrained_layout=True, squeeze=False)
    norm_rules = ["fedavg", "norm_threshold", "abandon", "norm_clip"]
    for ax, attack in zip(axes[0], (single, multi)):
        runs = {d: results[(attack, d)] for d in norm_rules if (attack, d) in results}
        curves(runs, f"{ATTACK_LABELS.get(attack, attack)}: norm-based rules", ax=ax, styles=styles, legend=False)
    name = ATTACK_LABELS.get(multi, multi)
    low = min((100 * r.curve("clean_acc")["mean"].min() for r in every.values()), default=100.0)
    for (title, runs), (left, right) in zip(groups, axes[1:]):
        curves(runs, f"{name}: {title}", ax=left, styles=styles, legend=False)
        curves(runs, f"{name}: {title}", metric="clean_acc", ax=right, styles=styles, legend=False)
        right.set_ylim(max(0.0, 5 * math.floor((low - 3) / 5)), 100.5)  # zoomed, the same in both rows
    for ax in axes[:-1].flat:
        ax.set_xlabel("")
    _legend_below(fig, [*axes[1:, 0], *axes[0]], ncol=5)
    seeds = [len(r.seeds) for (a, _), r in results.items() if a in (single, multi)]
    _suptitle(fig, f"Which defence stops which DBA? {_spread_text(seeds, 'band').capitalize()}", note)
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


def tradeoff_table(results: dict[tuple[str, str, float, str], Result], diverged: dict | None = None) -> pd.DataFrame:
    """One row per (rule, key, value, attack) with ``cell_numbers``, the per-seed SD of the final
    ASR and clean accuracy (``diverged``: as in ``matrix_table``)."""
    rows = []
    for (rule, key, value, attack), result, numbers in _cells(results, diverged):
        final = result.metrics[result.metrics["round"] == result.last_round] if result is not None else []
        rows.append({"rule": rule, "key": key, "value": value, "attack": attack, **numbers,
                     "asr_final_sd": float(final["asr_global"].std(ddof=1)) if len(final) > 1 else np.nan,
                     "clean_final_sd": float(final["clean_acc"].std(ddof=1)) if len(final) > 1 else np.nan})
    return pd.DataFrame(rows).set_index(["rule", "key", "value", "attack"]).sort_index()


SETTING_LABELS = {"norm_bound_factor": "norm_bound_factor\n(M / median update norm)",
                  "dp_sigma": "dp_sigma\n(noise std per coordinate)", "krum_f": "krum_f\n(attackers assumed)",
                  "root_samples": "root_samples\n(server's clean images)"}
SETTING_ORDER = ("norm_bound_factor", "dp_sigma", "krum_f", "root_samples")
LOG_SETTINGS = ("dp_sigma", "root_samples")  # settings whose values grow geometrically: a log axis


def tradeoff_figure(table: pd.DataFrame, attack: str, note: str = "", value_labels: dict | None = None) -> plt.Figure:
    """Per swept rule: final global ASR under ``attack``, final clean accuracy without attack
    (``clean``, when swept) and the share of benign updates rejected under ``attack`` (pooled over
    seeds and rounds, no bar) against the setting, in percent: mean over seeds with the 95%
    t-interval of the mean (``asr_final_lo``/``_hi``, ``clean_final_lo``/``_hi`` of ``cell_numbers``).
    One row of panels per swept setting (when none has more than three rules), 6.8 in wide; from four
    rows on the rows are lower, so that the figure fits a page with its caption. ASR and rejection
    share the left axis (0-100%); the clean accuracy has its own axis on the right, zoomed per row to
    the values it takes (from at most 90%), so that differences of a point show."""
    use_style()
    groups = list(dict.fromkeys((r, k) for r, k, _, _ in table.index))
    keys = sorted(dict.fromkeys(k for _, k in groups), key=lambda k: (
        SETTING_ORDER.index(k) if k in SETTING_ORDER else len(SETTING_ORDER), k))
    by_key = [[g for g in groups if g[1] == k] for k in keys]
    if max(map(len, by_key)) <= 3:  # a row per setting
        cols = max(map(len, by_key))
        slots = [(i, j) for i, row in enumerate(by_key) for j in range(len(row))]
        groups = [g for row in by_key for g in row]
        rows = len(by_key)
    else:
        cols = min(3, max(1, len(groups)))
        rows = int(np.ceil(len(groups) / cols))
        slots = [divmod(i, cols) for i in range(len(groups))]
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 0.9 + (2.0 if rows <= 3 else 1.7) * rows),
                             constrained_layout=True, squeeze=False, sharey=True)
    used = [axes[i, j] for i, j in slots]
    twins = {ax: ax.twinx() for ax in used}  # the clean accuracy's zoomed axis
    lines: tuple = ()
    lowest: dict[int, float] = {}  # row -> lowest clean accuracy drawn (bar ends included)
    for (i, _), ax, (rule, key) in zip(slots, used, groups):
        part = table.xs((rule, key), level=("rule", "key"))
        lines = ((attack, "asr_final", "tab:red", "-", f"final ASR, {ATTACK_LABELS.get(attack, attack)}"),
                 ("clean", "clean_final", "tab:green", "-", "final clean accuracy, no attack"),
                 (attack, "benign_rejected", "tab:blue", "--",
                  f"benign updates rejected, {ATTACK_LABELS.get(attack, attack)}"))
        for who, column, color, style, label in lines:
            if who not in part.index.get_level_values("attack") or column not in part:
                continue
            rows_ = part.xs(who, level="attack").sort_index()
            err = _interval_err(rows_, column)
            if err is None and f"{column}_sd" in rows_:  # a table without intervals: SD bars
                err = 100 * rows_[f"{column}_sd"].fillna(0).to_numpy(dtype=float)
            x = range(len(rows_)) if key == "krum_f" else rows_.index
            target = twins[ax] if column == "clean_final" else ax
            target.errorbar(x, 100 * rows_[column], yerr=err, color=color, linestyle=style, marker="o",
                            markersize=3.5, capsize=2.5, label=label)
            if column == "clean_final":
                low = 100 * rows_[column].to_numpy(dtype=float) - (0 if err is None else np.asarray(err)[0])
                if np.isfinite(low).any():
                    lowest[i] = min(lowest.get(i, 100.0), float(np.nanmin(low)))
            if key == "krum_f":
                labels = (value_labels or {}).get(key, {})
                ax.set_xticks(range(len(rows_)), [f"f={v:g}" + (f"\n{labels[v]}" if v in labels else "")
                                                  for v in rows_.index])
                ax.set_xlim(-0.4, len(rows_) - 0.6)
        ax.set(title=rule, xlabel=SETTING_LABELS.get(key, key), ylim=(-3, 103))
        if key in LOG_SETTINGS:
            ax.set_xscale("log")
        if key == "root_samples":  # the sizes themselves, not powers of ten
            ax.set_xticks(sorted(set(part.index.get_level_values("value"))))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_locator(NullLocator())
    for ax in axes.flat:
        if not any(ax is u for u in used):
            ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("ASR, rejected (%)")
    last_in_row = {i: max(j for i2, j in slots if i2 == i) for i, _ in slots}
    for (i, j), ax in zip(slots, used):
        twin = twins[ax]
        if i not in lowest:
            twin.set_axis_off()
            continue
        twin.set_ylim(min(90.0, 5 * np.floor((lowest[i] - 1) / 5)), 100.5)  # a bar never ends on the axis
        twin.grid(False)
        twin.tick_params(axis="y", colors="tab:green", labelright=j == last_in_row[i])
        if j == last_in_row[i]:
            twin.set_ylabel("clean accuracy (%)", color="tab:green")
    _legend_below(fig, [a for ax in used for a in (ax, twins[ax])], ncol=3, order=[label for *_, label in lines])
    spread = (_spread_text(table["seeds"], "bars") if "seeds" in table and "asr_final_lo" in table
              else "mean over seeds, bars = SD over seeds")
    _suptitle(fig, "Defence settings: attack success against clean accuracy and benign rejection", spread, note)
    return fig


# --- consensus_ratio on held-out seeds and attacks ----------------------------------------------
def choose_consensus_ratio(results: dict[tuple[str, str, float, str], Result], baseline: Result,
                           attacks: list[str], clean_budget: float = 0.01,
                           diverged: dict | None = None) -> tuple[float, pd.DataFrame]:
    """``consensus_ratio`` chosen from tuning runs ({("consensus", "consensus_ratio", ratio, attack):
    Result} on held-out seeds, attacks and "clean") and the no-attack FedAvg ``baseline`` on the
    same seeds.

    Rule (fixed before any run): among the ratios whose clean-accuracy cost without attack (FedAvg's
    final clean accuracy minus consensus's) is at most ``clean_budget``, the one with the lowest
    mean final global ASR over ``attacks``; ties go to the smaller ratio (rejects less). If no
    ratio meets the budget, the one with the smallest cost. A ratio with a diverged run
    (``diverged``, from ``run_cells``) or a destroyed model is never chosen. Returns the ratio and the table.
    """
    table = tradeoff_table(results, diverged).xs(("consensus", "consensus_ratio"), level=("rule", "key"))
    base = float(baseline.metrics.loc[baseline.metrics["round"] == baseline.last_round, "clean_acc"].mean())
    ratios = sorted(set(table.index.get_level_values("value")))
    rows = []
    for ratio in ratios:
        part = table.xs(ratio, level="value")
        rows.append({"ratio": ratio, "clean_cost": base - float(part.loc["clean", "clean_final"]),
                     "asr_mean": float(np.mean([part.loc[a, "asr_final"] for a in attacks])),
                     "destroyed_seeds": int(part.loc[["clean", *attacks], "destroyed_seeds"].sum())})
    choice = pd.DataFrame(rows).set_index("ratio")
    ok = choice[(choice["clean_cost"] <= clean_budget) & (choice["destroyed_seeds"] == 0)]
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


def attacker_count_table(results: dict[tuple[str, int, str], Result], diverged: dict | None = None) -> pd.DataFrame:
    """One row per (attack, attackers per round, defense) with ``cell_numbers`` (``diverged``: as in
    ``matrix_table``)."""
    rows = [{"attack": a, "attackers": n, "defense": d, **numbers} for (a, n, d), _, numbers in _cells(results, diverged)]
    return pd.DataFrame(rows).set_index(["attack", "attackers", "defense"]).sort_index()


def attacker_count_figure(table: pd.DataFrame, note: str = "") -> plt.Figure:
    """Final global ASR (percent) against the number of attackers per round, one line per defence
    (the same colour in every panel), with the 95% t-interval of the mean over seeds."""
    use_style()
    order = list(ATTACK_LABELS)  # DBA before CBA, FedAvg (black) first, the rest as in the table
    attacks = sorted(dict.fromkeys(table.index.get_level_values("attack")),
                     key=lambda a: order.index(a) if a in order else len(order))
    defenses = sorted(dict.fromkeys(table.index.get_level_values("defense")), key=lambda d: d != "fedavg")
    styles = _styles(defenses)
    legend_rows = -(-len(defenses) // 5)
    fig, axes = plt.subplots(1, len(attacks), figsize=(WIDTH, 2.9 + 0.14 * legend_rows), constrained_layout=True,
                             squeeze=False, sharey=True)
    dodge = 0.05 * (max(table.index.get_level_values("attackers")) - min(table.index.get_level_values("attackers"))
                    or 1) / max(1, len(defenses) - 1)  # spread the defences' bars apart
    for ax, attack in zip(axes[0], attacks):
        part = table.xs(attack, level="attack")
        for i, defense in enumerate(defenses):
            if defense not in part.index.get_level_values("defense"):
                continue
            rows = part.xs(defense, level="defense").sort_index()
            x = rows.index.to_numpy(dtype=float) + (i - (len(defenses) - 1) / 2) * dodge
            ax.errorbar(x, 100 * rows["asr_final"], yerr=_interval_err(rows, "asr_final"), marker="o", markersize=3,
                        capsize=1.5, elinewidth=0.8, linewidth=1.0, label=defense, **styles[defense])
        ax.set(title=ATTACK_LABELS.get(attack, attack), xlabel="attackers per round", ylim=(-3, 103))
        ax.set_xticks(sorted(set(part.index.get_level_values("attackers"))))
    axes[0, 0].set_ylabel("final global-trigger ASR (%)")
    _legend_below(fig, axes[0], ncol=5)
    spread = _spread_text(table["seeds"], "bars") if "seeds" in table else ""
    _suptitle(fig, "How many attackers a defence withstands" + (f": {spread}" if spread else ""), note)
    return fig


# --- the server's root set -----------------------------------------------------------------------
def root_set_summary(config: Config) -> dict:
    """Size and class counts of the root set of ``config`` (``dbalib.core.server``): on MNIST with the
    reference split it holds only the surplus digits 1, 2, 3, 7, 9."""
    labels = load_mnist(config.data_dir or None).train_y.numpy()
    indices = root_indices(config, labels)
    return {"samples": int(len(indices)), "class_counts": np.bincount(labels[indices], minlength=10).tolist()}
