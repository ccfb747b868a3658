"""Interactive exploration in a notebook: ipywidgets controls, a run button, the two panels redrawn.

``explorer_config(...)`` builds the config a set of control values stands for: the attack (DBA or
CBA) and the schedule pick a preset (``PRESETS``), whose attack rounds, scale (gamma) and eta
apply unless given; the other controls override it. ``Explorer`` wraps it in widgets: switching
the attack or the schedule loads that preset's rounds, scale and eta, and a combination that does
not work (CBA with random sampling, rounds beyond the last round, ...) shows one line under the
controls instead of a traceback. Runs go through the result cache, so returning to a setting
already tried is instant. Nothing here waits for input: without a frontend (papermill) the
widgets are simply rendered, and the notebook's static cell has already drawn the default run.

The presets' rounds assume 10 clean pretraining rounds; with another ``pretrain_rounds`` they move
with it (single-shot DBA after 3 pretraining rounds attacks at 5, 7, 9, 11), so small settings
keep the presets' shape.
"""

from __future__ import annotations

import html
import time

import matplotlib.pyplot as plt

from ..core.config import Config
from ..core.errors import ConfigError, DbalibError
from ..core.presets import preset
from ..core.results import Result
from ..core.sweep import run
from .plotting import attack_figure

# (attack, schedule) -> preset; CBA has no random-sampling preset (Sun et al.'s attack is DBA's)
PRESETS = {("dba", "single_shot"): "single_shot_dba", ("cba", "single_shot"): "single_shot_cba",
           ("dba", "fixed_frequency"): "collaborative_dba", ("cba", "fixed_frequency"): "collaborative_cba",
           ("dba", "multi_shot"): "multi_shot_dba", ("cba", "multi_shot"): "multi_shot_cba",
           ("dba", "random"): "random_sampling_dba"}
ATTACKS = tuple(dict.fromkeys(attack for attack, _ in PRESETS))  # the attacks that have presets: dba, cba
SCHEDULES = ("single_shot", "fixed_frequency", "multi_shot", "random")
PRESET_PRETRAIN_ROUNDS = 10  # the presets' attack rounds start after 10 pretraining rounds
# a control's label and notebook parameter, as error messages name them
NAMES = {"attack": "attack (ATTACK)", "schedule": "schedule (SCHEDULE)", "attack_rounds": "attack rounds (ATTACK_ROUNDS)",
         "rounds": "last round (ROUNDS)", "pretrain_rounds": "PRETRAIN_ROUNDS"}


def preset_name(attack: str, schedule: str) -> str:
    """The preset of ``attack`` ("dba" | "cba") under ``schedule``; a one-line ``ConfigError`` if none."""
    if attack not in ATTACKS:
        raise ConfigError(f"{NAMES['attack']} must be 'dba' or 'cba', got {attack!r}")
    if schedule not in SCHEDULES:
        raise ConfigError(f"{NAMES['schedule']} must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if (attack, schedule) not in PRESETS:
        raise ConfigError(f"{NAMES['attack']} CBA with {NAMES['schedule']} random: random sampling is a DBA "
                          "preset (random_sampling_dba); choose DBA or another schedule")
    return PRESETS[attack, schedule]


def preset_settings(attack: str, schedule: str, pretrain_rounds: int = PRESET_PRETRAIN_ROUNDS) -> dict:
    """The preset's ``attack_rounds`` (moved with ``pretrain_rounds``), ``scale`` and ``eta``."""
    cfg = preset(preset_name(attack, schedule))
    shift = pretrain_rounds - PRESET_PRETRAIN_ROUNDS
    return {"attack_rounds": tuple(r + shift for r in cfg.attack_rounds), "scale": cfg.scale, "eta": cfg.eta,
            "attackers": len(cfg.attackers)}


def rounds_text(rounds) -> str:
    """(11, 12, ..., 30) -> "11-30"; (12, 14, 16, 18) -> "12,14,16,18"; runs of 3 or more as ranges."""
    rounds, parts, i = list(rounds), [], 0
    while i < len(rounds):
        j = i
        while j + 1 < len(rounds) and rounds[j + 1] == rounds[j] + 1:
            j += 1
        parts += [f"{rounds[i]}-{rounds[j]}"] if j - i >= 2 else [str(r) for r in rounds[i:j + 1]]
        i = j + 1
    return ",".join(parts)


def parse_rounds(text) -> tuple[int, ...]:
    """ "12,14,16,18", "11-30" or "12-15,18-21" (or a list of ints) -> rounds."""
    if isinstance(text, (list, tuple)):
        values = list(text)
    else:
        values = []
        try:
            for token in filter(None, (t.strip() for t in str(text).split(","))):
                lo, _, hi = token.partition("-")
                values += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
        except ValueError:
            values = []
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{NAMES['attack_rounds']} must be rounds like 12,14,16,18 or 11-30, got {text!r}")
    return tuple(values)


def explorer_config(attack: str = "dba", schedule: str = "single_shot", attack_rounds=None, scale: float | None = None,
                    eta: float | None = None, poison_per_batch: int = 20, trigger_gap: int = 2, trigger_width: int = 4,
                    trigger_height: int = 1, rounds: int = 30, **common) -> Config:
    """The config behind the explorer's controls: the preset of ``attack`` and ``schedule`` with
    the other values over it (``attack_rounds``, ``scale``, ``eta``: None or "" means the
    preset's; ``common``: any other config keys). Conflicts raise one ``ConfigError`` line naming
    the controls and notebook parameters involved."""
    name = preset_name(attack, schedule)
    pretrain = int(common.get("pretrain_rounds", PRESET_PRETRAIN_ROUNDS))
    settings = preset_settings(attack, schedule, pretrain)
    chosen = settings["attack_rounds"] if attack_rounds in (None, "") else parse_rounds(attack_rounds)
    if min(chosen) <= pretrain:
        raise ConfigError(f"{NAMES['attack_rounds']} {rounds_text(chosen)} fall in the pretraining: attacks "
                          f"start after {NAMES['pretrain_rounds']} ({pretrain})")
    if max(chosen) > rounds:
        raise ConfigError(f"{NAMES['attack_rounds']} {rounds_text(chosen)} go beyond the {NAMES['rounds']} "
                          f"{rounds}: raise the last round or attack earlier")
    if schedule == "single_shot" and len(chosen) != settings["attackers"]:
        raise ConfigError(f"single-shot {attack.upper()} has {settings['attackers']} attacker(s), one round each: "
                          f"{NAMES['attack_rounds']} needs {settings['attackers']} round(s), got "
                          f"{rounds_text(chosen)}")
    return preset(name, attack_rounds=chosen, scale=settings["scale"] if scale is None else scale,
                  eta=settings["eta"] if eta is None else eta, poison_per_batch=poison_per_batch,
                  trigger_gap=trigger_gap, trigger_width=trigger_width, trigger_height=trigger_height,
                  rounds=rounds, **common)


def run_and_plot(config: Config, seed: int = 0, out=None) -> tuple[Result, plt.Figure]:
    """Run ``config`` for one seed (cached) and draw its two panels, labelled by its preset."""
    result = run(config, seeds=[seed], out=out)
    label = config.name
    title = (f"{label}: {config.attack.upper()}, {config.schedule}, rounds {rounds_text(config.attack_rounds)}, "
             f"scale {config.scale:g}, eta {config.eta:g}, {config.poison_per_batch}/{config.batch_size} "
             f"poisoned per batch, seed {seed}")
    return result, attack_figure({label: result}, show_local=(label,), title=title)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class Explorer:
    """Widgets for the main attack settings, a status line and a button that runs and redraws."""

    def __init__(self, seed: int = 0, out=None, **defaults) -> None:
        import ipywidgets as w

        self.out_dir, self.common = out, {k: defaults.pop(k) for k in list(defaults) if k not in _CONTROLS}
        d = {**_DEFAULTS, **defaults}
        self.pretrain_rounds = pretrain = int(self.common.get("pretrain_rounds", PRESET_PRETRAIN_ROUNDS))
        try:
            settings = preset_settings(d["attack"], d["schedule"], pretrain)
        except ConfigError:  # shown by the status line below; start from single-shot DBA's values
            settings = preset_settings("dba", "single_shot", pretrain)
        for key in ("attack_rounds", "scale", "eta"):
            if d[key] in (None, ""):
                d[key] = rounds_text(settings[key]) if key == "attack_rounds" else settings[key]
        style = {"description_width": "150px"}
        self.controls = {
            "attack": w.ToggleButtons(options=[("DBA", "dba"), ("CBA", "cba")], value=d["attack"], description="attack"),
            "schedule": w.Dropdown(options=list(SCHEDULES), value=d["schedule"], description="schedule", style=style),
            "attack_rounds": w.Text(value=str(d["attack_rounds"]), description="attack rounds", style=style,
                                    placeholder="12,14,16,18 or 11-30"),
            "scale": w.FloatLogSlider(value=d["scale"], base=10, min=0, max=3, step=0.05, description="scale (gamma)", style=style),
            "eta": w.FloatLogSlider(value=d["eta"], base=10, min=-2, max=0, step=0.05, description="eta (server lr)", style=style),
            "poison_per_batch": w.IntSlider(value=d["poison_per_batch"], min=0, max=64, description="poisoned / batch", style=style),
            "trigger_gap": w.IntSlider(value=d["trigger_gap"], min=0, max=8, description="trigger gap", style=style),
            "trigger_width": w.IntSlider(value=d["trigger_width"], min=1, max=6, description="trigger width", style=style),
            "trigger_height": w.IntSlider(value=d["trigger_height"], min=1, max=4, description="trigger height", style=style),
            "rounds": w.IntSlider(value=d["rounds"], min=pretrain + 1, max=max(100, d["rounds"]), description="last round",
                                  style=style),
        }
        self.seed = w.BoundedIntText(value=seed, min=0, max=10_000, description="seed", style=style)
        self.button = w.Button(description="Run", button_style="primary", icon="play")
        self.status = w.HTML(value="")
        self.output = w.Output()
        self.button.on_click(self.run)
        for key in ("attack", "schedule"):
            self.controls[key].observe(self.load_preset, names="value")
        try:
            self.say(f"preset {preset_name(d['attack'], d['schedule'])}; switching the attack or the schedule "
                     "loads its attack rounds, scale and eta")
        except ConfigError as exc:
            self.error(exc)

    def config(self) -> Config:
        return explorer_config(**{k: c.value for k, c in self.controls.items()}, **self.common)

    def say(self, text: str, color: str = "#333") -> None:
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def error(self, exc: BaseException) -> None:
        self.say(f"error: {one_line(exc)}", "#b00020")

    def load_preset(self, _change=None) -> None:
        """Set the attack rounds, scale and eta of the preset the attack and schedule now select."""
        attack, schedule = self.controls["attack"].value, self.controls["schedule"].value
        try:
            settings = preset_settings(attack, schedule, self.pretrain_rounds)
        except ConfigError as exc:
            self.error(exc)
            return
        last = max(settings["attack_rounds"])
        rounds = self.controls["rounds"]
        rounds.max = max(rounds.max, last)
        rounds.value = max(rounds.value, last)  # the last round after the last attack
        self.controls["attack_rounds"].value = rounds_text(settings["attack_rounds"])
        self.controls["scale"].value = settings["scale"]
        self.controls["eta"].value = settings["eta"]
        self.say(f"preset {PRESETS[attack, schedule]}: attack rounds {rounds_text(settings['attack_rounds'])}, "
                 f"scale {settings['scale']:g}, eta {settings['eta']:g}")

    def run(self, _button=None) -> None:
        from IPython.display import display

        try:
            config = self.config()
        except DbalibError as exc:
            self.error(exc)
            self.output.clear_output()
            return
        self.say(f"running {config.name}, seed {self.seed.value} ...")
        start = time.perf_counter()
        with self.output:
            self.output.clear_output(wait=True)
            try:
                _, fig = run_and_plot(config, self.seed.value, self.out_dir)
            except DbalibError as exc:
                self.output.clear_output()
                self.error(exc)
                return
            display(fig)
            plt.close(fig)
        self.say(f"done: {config.name}, seed {self.seed.value} ({time.perf_counter() - start:.1f} s)")

    def widget(self):
        import ipywidgets as w

        return w.VBox([w.HBox([w.VBox(list(self.controls.values())[:5]), w.VBox(list(self.controls.values())[5:])]),
                       w.HBox([self.seed, self.button]), self.status, self.output])


_DEFAULTS = dict(attack="dba", schedule="single_shot", attack_rounds=None, scale=None, eta=None,
                 poison_per_batch=20, trigger_gap=2, trigger_width=4, trigger_height=1, rounds=30)
_CONTROLS = set(_DEFAULTS)
