"""The study's figures: two panels, attack success rates on the left, clean accuracy on the right.

``attack_figure`` draws, for each run, the mean over seeds of the global-trigger ASR (thick) with a
band of +/- one standard deviation, the local triggers of the runs named in ``show_local`` (thin,
dashed), the clean accuracy on the right, and the attack rounds as triangles along the top of both panels. ``save_figure`` writes ``<name>.pdf`` and ``<name>.png`` atomically (to build/figures unless publishing). ``use_style`` applies
the project's ``matplotlibrc`` without changing the backend (notebooks keep inline output).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from .attacks import AttackPlan
from .paths import PROJECT_DIR, figures_dir, write_output
from .results import Result

RUN_COLORS = ["#1f4e9c", "#c0392b", "#2e8b57", "#8e44ad"]
LOCAL_COLORS = ["#e69f00", "#56b4e9", "#009e73", "#cc79a7", "#d55e00", "#999999"]


def use_style() -> None:
    """Load the project's matplotlibrc (everything but its backend)."""
    path = PROJECT_DIR / "matplotlibrc"
    if path.is_file():
        params = matplotlib.rc_params_from_file(str(path), use_default_template=False)
        matplotlib.rcParams.update({k: v for k, v in params.items() if k != "backend"})


def _band(ax, result: Result, metric: str, color: str, label: str, **line) -> None:
    curve = result.curve(metric)
    ax.plot(curve.index, curve["mean"], color=color, label=label, **line)
    if len(result.seeds) > 1:
        ax.fill_between(curve.index, (curve["mean"] - curve["std"]).clip(0, 1),
                        (curve["mean"] + curve["std"]).clip(0, 1), color=color, alpha=0.15, linewidth=0)


def attack_figure(runs: dict[str, Result], show_local: tuple[str, ...] = (), title: str = "",
                  note: str = "") -> plt.Figure:
    """Two-panel figure of ``runs`` (label -> Result); see the module docstring."""
    use_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for i, (label, result) in enumerate(runs.items()):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        _band(left, result, "asr_global", color, f"{label}: global trigger", linewidth=2.2, zorder=3)
        if label in show_local:
            for j in range(result.config.trigger_parts):
                _band(left, result, f"asr_local_{j}", LOCAL_COLORS[j % len(LOCAL_COLORS)],
                      f"{label}: local trigger {j + 1}", linewidth=1.1, linestyle="--")
        _band(right, result, "clean_acc", color, label, linewidth=2.0)
        rounds = AttackPlan.from_config(result.config).attack_rounds()
        for ax in (left, right):  # attack rounds: downward triangles along the top of each panel
            ax.plot(rounds, [0.975 - 0.035 * i] * len(rounds), "v", color=color, markersize=5,
                    transform=ax.get_xaxis_transform(), zorder=4)
    seeds = sorted({len(r.seeds) for r in runs.values()})
    band = f"mean over {'/'.join(map(str, seeds))} seed(s), band = +/- 1 std; triangles: attack rounds"
    left.set(title="Attack success rate", xlabel="round", ylabel="ASR (target label 2)", ylim=(-0.02, 1.08))
    right.set(title="Clean accuracy (main task)", xlabel="round", ylabel="accuracy", ylim=(0, 1.08))
    left.legend(loc="best", ncol=1)
    right.legend(loc="lower right")
    fig.suptitle(f"{title}\n{band}{'; ' + note if note else ''}", fontsize=10)
    return fig


def save_figure(fig: plt.Figure, name: str, folder: str | os.PathLike | None = None) -> list[Path]:
    """Write ``<folder>/<name>.pdf`` and ``.png`` atomically. Default folder: build/figures, or the
    tracked figures/ when publishing (``DBALIB_PUBLISH=1``, see ``dbalib.paths.figures_dir``)."""
    folder = figures_dir(folder)
    paths = []
    for suffix in (".pdf", ".png"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=suffix[1:], metadata={"CreationDate": None} if suffix == ".pdf" else None)
        paths.append(write_output(folder / f"{name}{suffix}", buffer.getvalue()))
    return paths
