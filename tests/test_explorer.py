"""The explorer's controls stay consistent with the presets, and conflicting notebook parameters
stop a notebook in one line that names them. Nothing is trained."""

from __future__ import annotations

import pytest

from dbalib.core.errors import ConfigError
from dbalib.core.paths import NOTEBOOKS_DIR
from dbalib.core.presets import preset
from dbalib.study import explorer
from dbalib.study.explorer import Explorer, explorer_config, parse_rounds, preset_settings, rounds_text
from dbalib.study.reporting import check_parameters, notebook_defaults


def test_rounds_text_round_trips():
    for rounds in [(12, 14, 16, 18), tuple(range(11, 31)), (12, 13, 14, 15, 18, 19, 20, 21), (18,), (4, 5, 5, 6)]:
        assert parse_rounds(rounds_text(rounds)) == rounds
    assert rounds_text(range(11, 31)) == "11-30" and rounds_text((12, 13, 15)) == "12,13,15"
    with pytest.raises(ConfigError, match=r"attack rounds \(ATTACK_ROUNDS\) must be rounds like"):
        parse_rounds("12,x")


@pytest.mark.parametrize("attack, schedule, name", [
    ("dba", "single_shot", "single_shot_dba"), ("cba", "single_shot", "single_shot_cba"),
    ("dba", "fixed_frequency", "collaborative_dba"), ("cba", "fixed_frequency", "collaborative_cba"),
    ("dba", "multi_shot", "multi_shot_dba"), ("cba", "multi_shot", "multi_shot_cba"),
    ("dba", "random", "random_sampling_dba"),
])
def test_attack_and_schedule_select_a_preset_and_its_settings(attack, schedule, name):
    config = explorer_config(attack, schedule)
    reference = preset(name)
    assert config.name == name  # the run's label and folder follow the preset
    assert (config.attack_rounds, config.scale, config.eta, config.attackers) == (
        reference.attack_rounds, reference.scale, reference.eta, reference.attackers)


def test_presets_move_with_the_pretraining():
    assert preset_settings("dba", "single_shot", 3)["attack_rounds"] == (5, 7, 9, 11)
    assert preset_settings("cba", "single_shot", 3)["attack_rounds"] == (11,)  # the last DBA round
    multi = preset_settings("dba", "multi_shot", 2)
    assert (multi["attack_rounds"][0], multi["attack_rounds"][-1], multi["scale"], multi["eta"]) == (3, 22, 1.0, 1.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(attack="cba", schedule="random"), r"CBA with schedule \(SCHEDULE\) random"),
    (dict(attack="cba", attack_rounds="12,14,16,18"), r"single-shot CBA has 1 attacker.*ATTACK_ROUNDS\) needs 1"),
    (dict(attack_rounds="12,14,16,40"), r"go beyond the last round \(ROUNDS\) 30"),
    (dict(attack_rounds="5,14,16,18"), r"fall in the pretraining.*PRETRAIN_ROUNDS \(10\)"),
    (dict(schedule="multi_shot", rounds=25), r"11-30 go beyond the last round \(ROUNDS\) 25"),
    (dict(attack="xba"), r"attack \(ATTACK\) must be 'dba' or 'cba'"),
])
def test_conflicting_controls_are_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        explorer_config(**kwargs)
    assert "\n" not in str(info.value)


def test_switching_attack_or_schedule_loads_the_preset():
    ui = Explorer(pretrain_rounds=10, device="cpu")
    c = ui.controls
    assert (c["attack_rounds"].value, c["scale"].value, c["eta"].value) == ("12,14,16,18", 100.0, 0.1)
    c["attack"].value = "cba"
    assert (c["attack_rounds"].value, c["scale"].value, c["eta"].value) == ("18", 100.0, 0.1)
    assert ui.config().name == "single_shot_cba" and ui.config().attackers == (95,)
    c["schedule"].value = "multi_shot"
    assert (c["attack_rounds"].value, c["scale"].value, c["eta"].value) == ("11-30", 1.0, 1.0)
    assert ui.config().name == "multi_shot_cba" and "multi_shot_cba" in ui.status.value
    c["schedule"].value = "fixed_frequency"
    c["attack"].value = "dba"
    assert (c["attack_rounds"].value, c["scale"].value, c["eta"].value) == ("12-15,18-21,24-27", 30.0, 0.1)
    c["rounds"].value = 20
    c["schedule"].value = "multi_shot"  # the last round moves past the last attack
    assert c["rounds"].value == 30 and ui.config().rounds == 30


def test_a_bad_combination_is_one_line_in_the_widget_and_nothing_runs(monkeypatch):
    ran = []
    monkeypatch.setattr(explorer, "run_and_plot", lambda *a: ran.append(a))
    ui = Explorer(pretrain_rounds=10, device="cpu")
    ui.controls["schedule"].value = "random"
    ui.controls["attack"].value = "cba"
    assert ui.status.value.count("error:") == 1 and "random sampling is a DBA preset" in ui.status.value
    ui.run()
    assert not ran and "error:" in ui.status.value and "<br" not in ui.status.value
    assert ui.controls["attack_rounds"].value == "11-30"  # the random-sampling DBA's, left as it was


def test_run_reports_the_preset_it_ran(monkeypatch):
    import matplotlib.pyplot as plt

    seen = []

    def fake_run_and_plot(config, seed, out):
        seen.append((config.name, seed, out))
        return None, plt.figure()

    monkeypatch.setattr(explorer, "run_and_plot", fake_run_and_plot)
    ui = Explorer(seed=3, out="somewhere", pretrain_rounds=10, device="cpu")
    ui.controls["attack"].value = "cba"
    ui.run()
    assert seen == [("single_shot_cba", 3, "somewhere")] and "done: single_shot_cba, seed 3" in ui.status.value


def test_explorer_starts_from_the_notebook_parameters():
    defaults = notebook_defaults(NOTEBOOKS_DIR / "00_explore.ipynb")
    assert defaults["ATTACK_ROUNDS"] is None and defaults["SCALE"] is None and defaults["ETA"] is None
    ui = Explorer(attack="cba", schedule="multi_shot", attack_rounds=None, scale=3.0, pretrain_rounds=10)
    assert ui.controls["attack_rounds"].value == "11-30" and ui.controls["scale"].value == 3.0
    assert ui.controls["eta"].value == 1.0


# --- notebook parameters -------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, lengths, message", [
    (dict(ROUNDS=25), None, r"ATTACK_END \(30\) is beyond ROUNDS \(25\)"),
    (dict(ATTACK_START=10), None, r"ATTACK_START \(10\) falls in the pretraining.*PRETRAIN_ROUNDS \(10\)"),
    (dict(ATTACK_START=20, ATTACK_END=15), None, r"ATTACK_START \(20\) is after ATTACK_END \(15\)"),
    (dict(PRETRAIN_ROUNDS=70), None, r"PRETRAIN_ROUNDS \(70\) must be below ROUNDS \(70\)"),
    (dict(SEEDS="10"), None, r"SEEDS must be a list of integers 0 or more, got '10'"),
    (dict(SEEDS=[0, -1]), None, r"SEEDS must be a list"),
    (dict(ROUNDS="70"), None, r"ROUNDS must be an integer"),
    (dict(BASELINE_SEEDS=-1), None, r"BASELINE_SEEDS must be an integer, 0 or more, got -1"),
    (dict(DBA_ROUNDS=[12, 14, 16]), {"DBA_ROUNDS": 4}, r"DBA_ROUNDS needs 4 rounds \(one per attacker\), got 3"),
    (dict(DBA_ROUNDS=[12, 14, 16, 80]), None, r"DBA_ROUNDS \(\[12, 14, 16, 80\]\) is beyond ROUNDS \(70\)"),
])
def test_conflicting_notebook_parameters_are_one_line(changes, lengths, message):
    namespace = notebook_defaults(NOTEBOOKS_DIR / "03_multi_shot_continuous.ipynb") | changes
    with pytest.raises(ConfigError, match=message) as info:
        check_parameters(namespace, lengths)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_checks_its_parameters_first_and_its_defaults_pass(path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    after = code[[i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])][0] + 1]
    assert after.source.startswith("check_parameters(globals()")
    check_parameters(notebook_defaults(path), {"DBA_ROUNDS": 4} if path.stem.startswith("01") else None)


def test_papermill_run_with_conflicting_parameters_fails_in_one_line(tmp_path):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(str(NOTEBOOKS_DIR / "03_multi_shot_continuous.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"ROUNDS": 25, "RUNS_DIR": str(tmp_path / "runs")},
                                   kernel_name="python3", progress_bar=False)
    assert info.value.ename == "ConfigError"
    assert info.value.evalue == ("notebook parameters conflict: ATTACK_END (30) is beyond ROUNDS (25): "
                                 "raise ROUNDS or lower ATTACK_END")
    assert not (tmp_path / "runs").exists()  # stopped before any run
