"""The study's figures: two panels, attack success rates on the left, clean accuracy on the right.

``attack_figure`` draws, for each run, the mean over seeds of the global-trigger ASR (thick) with a
band of the 95% t-interval of the mean (``dbalib.study.stats.CONFIDENCE``), the control (the share of
untriggered non-target test images classified as the target, dotted), the local triggers of the runs named in ``show_local`` (thin,
dashed), the clean accuracy on the right, the attack rounds as triangles along the top of both panels
and, when a ``baseline`` run without attack is given, its global-trigger ASR and clean accuracy in grey
(what the curves would be with no attacker). ``save_figure`` writes ``<name>.pdf`` and ``<name>.png`` atomically (to build/figures unless publishing). ``use_style`` applies
the project's ``matplotlibrc`` without changing the backend (notebooks keep inline output).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from ..core.attacks import AttackPlan
from ..core.paths import PROJECT_DIR, figures_dir, write_output
from ..core.results import Result
from .stats import t_quantile

RUN_COLORS = ["#1f4e9c", "#c0392b", "#2e8b57", "#8e44ad"]
LOCAL_COLORS = ["#e69f00", "#56b4e9", "#009e73", "#cc79a7", "#d55e00", "#999999"]


def use_style() -> None:
    """Load the project's matplotlibrc (everything but its backend)."""
    path = PROJECT_DIR / "matplotlibrc"
    if path.is_file():
        params = matplotlib.rc_params_from_file(str(path), use_default_template=False)
        matplotlib.rcParams.update({k: v for k, v in params.items() if k != "backend"})


def mean_band(ax, result: Result, metric: str, color: str, label: str, **line) -> None:
    """Mean over seeds in percent, with the 95% t-interval of the mean as a band (2 seeds or more)."""
    curve = result.curve(metric)
    mean = 100 * curve["mean"]
    ax.plot(curve.index, mean, color=color, label=label, **line)
    n = len(result.seeds)
    if n > 1:
        sd = result.metrics.groupby("round")[metric].std(ddof=1)  # the sample sd, as in dbalib.study.stats
        half = 100 * t_quantile(n) * sd / math.sqrt(n)
        ax.fill_between(curve.index, (mean - half).clip(0, 100), (mean + half).clip(0, 100), color=color,
                        alpha=0.18, linewidth=0)


BASELINE_COLOR = "0.6"


def attack_figure(runs: dict[str, Result], show_local: tuple[str, ...] = (), title: str = "",
                  note: str = "", baseline: Result | None = None) -> plt.Figure:
    """Two-panel figure of ``runs`` (label -> Result), with the no-attack ``baseline`` run in grey
    if given; see the module docstring."""
    use_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.8, 3.4), constrained_layout=True)
    if baseline is not None:  # drawn first, under the attacked runs
        mean_band(left, baseline, "asr_global", BASELINE_COLOR, "no attack: global trigger", linewidth=1.2)
        mean_band(right, baseline, "clean_acc", BASELINE_COLOR, "no attack", linewidth=1.2)
    for i, (label, result) in enumerate(runs.items()):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        mean_band(left, result, "asr_global", color, f"{label}: global trigger", linewidth=1.6, zorder=3)
        if label in show_local:
            for j in range(result.config.trigger_parts):
                mean_band(left, result, f"asr_local_{j}", LOCAL_COLORS[j % len(LOCAL_COLORS)],
                      f"{label}: local trigger {j}", linewidth=0.9, linestyle="--")
        if "asr_no_trigger" in result.metrics and i == 0:
            control = 100 * result.curve("asr_no_trigger")["mean"]
            left.plot(control.index, control, color="0.35", linestyle=":", linewidth=1.2,
                      label=f"{label}: no trigger (control)")
        mean_band(right, result, "clean_acc", color, label, linewidth=1.4)
        rounds = AttackPlan.from_config(result.config).attack_rounds()
        for ax in (left, right):  # attack rounds: downward triangles along the top of each panel
            ax.plot(rounds, [0.975 - 0.035 * i] * len(rounds), "v", color=color, markersize=3.5,
                    transform=ax.get_xaxis_transform(), zorder=4)
    seeds = sorted({len(r.seeds) for r in runs.values()})
    band = (f"mean over {'/'.join(map(str, seeds))} seeds, band = 95% interval of the mean; "
            "triangles: attack rounds")
    if baseline is not None and len(baseline.seeds) not in seeds:
        band += f"; no attack: {len(baseline.seeds)} seeds"
    left.set(title="Attack success rate", xlabel="round", ylabel="ASR, target label 2 (%)", ylim=(-2, 108))
    low = min(100 * r.curve("clean_acc")["mean"].min() for r in [*runs.values(), *([baseline] if baseline else [])])
    right.set(title="Clean accuracy (main task)", xlabel="round", ylabel="accuracy (%)",
              ylim=(max(0.0, 5 * math.floor((low - 3) / 5)), 100.5))
    handles, labels = left.get_legend_handles_labels()  # below the panels, off the data
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False, handlelength=2.2)
    right.legend(loc="lower right")
    fig.suptitle(f"{title}\n{band}{'; ' + note if note else ''}")
    return fig


def save_figure(fig: plt.Figure, name: str, folder: str | os.PathLike | None = None) -> list[Path]:
    """Write ``<folder>/<name>.pdf`` and ``.png`` atomically. Default folder: build/figures, or the
    tracked figures/ when publishing (``DBALIB_PUBLISH=1``, see ``dbalib.core.paths.figures_dir``)."""
    folder = figures_dir(folder)
    paths = []
    for suffix in (".pdf", ".png"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=suffix[1:], metadata={"CreationDate": None} if suffix == ".pdf" else None)
        paths.append(write_output(folder / f"{name}{suffix}", buffer.getvalue()))
    return paths
