"""Interactive exploration in a notebook: ipywidgets controls, a run button, the two panels redrawn.

``explorer_config(...)`` builds the config a set of control values stands for (DBA or CBA preset,
then the overrides), ``Explorer`` wraps it in widgets. Runs go through the result cache, so
returning to a setting already tried is instant. Nothing here waits for input: without a
frontend (papermill) the widgets are simply rendered, and the notebook's static cell has already
drawn the default run.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .config import Config
from .errors import DbalibError
from .plotting import attack_figure
from .presets import preset
from .results import Result
from .simulation import run


def explorer_config(attack: str = "dba", schedule: str = "single_shot", attack_rounds: str = "12,14,16,18",
                    scale: float = 100.0, eta: float = 0.1, poison_per_batch: int = 20, trigger_gap: int = 2,
                    trigger_width: int = 4, trigger_height: int = 1, rounds: int = 30, **common) -> Config:
    """The config behind the explorer's controls (``common``: any other config keys)."""
    base = "single_shot_dba" if attack == "dba" else "single_shot_cba"
    return preset(base, schedule=schedule, attack_rounds=attack_rounds, scale=scale, eta=eta,
                  poison_per_batch=poison_per_batch, trigger_gap=trigger_gap, trigger_width=trigger_width,
                  trigger_height=trigger_height, rounds=rounds, **common)


def run_and_plot(config: Config, seed: int = 0, out=None) -> tuple[Result, plt.Figure]:
    """Run ``config`` for one seed (cached) and draw its two panels."""
    result = run(config, seeds=[seed], out=out)
    label = config.attack.upper()
    title = (f"{label}, {config.schedule}, rounds {list(config.attack_rounds)}, scale {config.scale:g}, "
             f"eta {config.eta:g}, {config.poison_per_batch}/{config.batch_size} poisoned per batch")
    return result, attack_figure({label: result}, show_local=(label,), title=title)


class Explorer:
    """Widgets for the main attack settings and a button that runs and redraws."""

    def __init__(self, seed: int = 0, out=None, **defaults) -> None:
        import ipywidgets as w

        self.out_dir, self.common = out, {k: defaults.pop(k) for k in list(defaults) if k not in _CONTROLS}
        d = {**_DEFAULTS, **defaults}
        style = {"description_width": "150px"}
        self.controls = {
            "attack": w.ToggleButtons(options=[("DBA", "dba"), ("CBA", "cba")], value=d["attack"], description="attack"),
            "schedule": w.Dropdown(options=["single_shot", "fixed_frequency", "multi_shot", "random"],
                                   value=d["schedule"], description="schedule", style=style),
            "attack_rounds": w.Text(value=d["attack_rounds"], description="attack rounds", style=style,
                                    placeholder="12,14,16,18 or 11-30"),
            "scale": w.FloatLogSlider(value=d["scale"], base=10, min=0, max=3, step=0.05, description="scale (gamma)", style=style),
            "eta": w.FloatLogSlider(value=d["eta"], base=10, min=-2, max=0, step=0.05, description="eta (server lr)", style=style),
            "poison_per_batch": w.IntSlider(value=d["poison_per_batch"], min=0, max=64, description="poisoned / batch", style=style),
            "trigger_gap": w.IntSlider(value=d["trigger_gap"], min=0, max=8, description="trigger gap", style=style),
            "trigger_width": w.IntSlider(value=d["trigger_width"], min=1, max=6, description="trigger width", style=style),
            "trigger_height": w.IntSlider(value=d["trigger_height"], min=1, max=4, description="trigger height", style=style),
            "rounds": w.IntSlider(value=d["rounds"], min=12, max=100, description="last round", style=style),
        }
        self.seed = w.BoundedIntText(value=seed, min=0, max=10_000, description="seed", style=style)
        self.button = w.Button(description="Run", button_style="primary", icon="play")
        self.output = w.Output()
        self.button.on_click(self.run)

    def config(self) -> Config:
        return explorer_config(**{k: c.value for k, c in self.controls.items()}, **self.common)

    def run(self, _button=None) -> None:
        from IPython.display import display

        with self.output:
            self.output.clear_output(wait=True)
            try:
                _, fig = run_and_plot(self.config(), self.seed.value, self.out_dir)
            except DbalibError as exc:
                print(f"error: {exc}")
                return
            display(fig)
            plt.close(fig)

    def widget(self):
        import ipywidgets as w

        return w.VBox([w.HBox([w.VBox(list(self.controls.values())[:5]), w.VBox(list(self.controls.values())[5:])]),
                       w.HBox([self.seed, self.button]), self.output])


_DEFAULTS = dict(attack="dba", schedule="single_shot", attack_rounds="12,14,16,18", scale=100.0, eta=0.1,
                 poison_per_batch=20, trigger_gap=2, trigger_width=4, trigger_height=1, rounds=30)
_CONTROLS = set(_DEFAULTS)
