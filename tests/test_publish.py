"""Where notebook outputs go (build/ unless publishing), their file mode, and the paper's guard
against results made with other than the notebooks' default parameters. Nothing is trained."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from dbalib.core import paths
from dbalib.core.errors import ConfigError
from dbalib.core.paths import BUILD_DIR, FIGURES_DIR, NOTEBOOKS_DIR, PROJECT_DIR, RESULTS_DIR
from dbalib.study import reporting


@pytest.mark.parametrize("value, published", [(None, False), ("", False), ("0", False), ("no", False),
                                              ("1", True), ("true", True), ("YES", True)])
def test_outputs_go_to_build_unless_publishing(value, published, monkeypatch):
    if value is None:
        monkeypatch.delenv("DBALIB_PUBLISH", raising=False)
    else:
        monkeypatch.setenv("DBALIB_PUBLISH", value)
    assert paths.publishing() is published
    assert paths.figures_dir() == (FIGURES_DIR if published else BUILD_DIR / "figures")
    assert paths.results_dir() == (RESULTS_DIR if published else BUILD_DIR / "results")
    assert paths.figures_dir("/tmp/x") == paths.results_dir("/tmp/x") == paths.Path("/tmp/x")  # a folder wins


def _make(*args: str) -> dict[str, str]:
    """The publishing decision and output folders of ``make figures ARGS`` (dry run, nothing runs)."""
    env = {k: v for k, v in os.environ.items()  # not the variables of a make that runs this test
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SEEDS", "DEVICE", "PARAMS", "PUBLISH")}
    proc = subprocess.run(["make", "-s", "-f", "Makefile", "-f", "-", "show", *args], cwd=PROJECT_DIR, text=True,
                          input="show:\n\t@echo 'PUBLISHING=$(PUBLISHING)'\n\t@echo 'OUTPUTS=$(OUTPUTS)'\n",
                          capture_output=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


@pytest.mark.parametrize("args, published", [
    ((), True),                                  # the notebooks' defaults: the tracked folders
    (("NOTEBOOKS=01_single_shot_concentrated",), True),
    (("SEEDS=0",), False), (("DEVICE=cuda",), False), (("PARAMS=ROUNDS: 40",), False),
    (("SEEDS=0", "PUBLISH=1"), True), (("PUBLISH=0",), False), (("PARAMS=ROUNDS: 40", "PUBLISH=no"), False),
])
def test_make_figures_publishes_only_defaults_or_on_request(args, published):
    shown = _make(*args)
    assert bool(shown["PUBLISHING"]) is published
    assert shown["OUTPUTS"].startswith("figures/" if published else "build/figures/")


def test_save_figure_writes_atomically_with_the_usual_mode(tmp_path):
    import matplotlib.pyplot as plt

    from dbalib.study.plotting import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    old = os.umask(0o022)
    try:
        written = save_figure(fig, "probe", tmp_path / "out")
    finally:
        os.umask(old)
    plt.close(fig)
    assert [p.name for p in written] == ["probe.pdf", "probe.png"]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
        assert path.read_bytes()[:4] in (b"%PDF", b"\x89PNG")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["probe.pdf", "probe.png"]  # no temporary left


def test_tracked_outputs_get_mode_0644(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    old = os.umask(0o077)
    try:
        path = paths.write_output(tmp_path / "x.json", b"{}\n")
        other = paths.write_output(tmp_path / "sub" / "y.json", b"{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(other.stat().st_mode) == 0o600  # elsewhere the umask rules


# --- the paper's guard --------------------------------------------------------------------------------
def _record(folder, name: str, **changes) -> None:
    parameters = reporting.notebook_defaults(NOTEBOOKS_DIR / f"{name}.ipynb") | changes
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "parameters": parameters}))


def test_the_tracked_results_were_made_with_the_notebook_defaults():
    assert reporting.nondefault_results() == []


def test_notebook_defaults_read_the_parameters_cell():
    defaults = reporting.notebook_defaults(NOTEBOOKS_DIR / "03_multi_shot_continuous.ipynb")
    assert defaults["ATTACK_END"] == 30 and defaults["SEEDS"] == list(range(10)) and defaults["RUNS_DIR"] is None


def test_paper_guard_names_the_file_and_the_parameters(tmp_path):
    _record(tmp_path, "01_single_shot_concentrated")
    _record(tmp_path, "03_multi_shot_continuous", SEEDS=[0], ROUNDS=40, DEVICE="cuda", RESULTS_DIR="/x")
    problems = reporting.nondefault_results(tmp_path)
    assert len(problems) == 1
    assert "03_multi_shot_continuous.json" in problems[0] and f"SEEDS=[0] (default {list(range(10))})" in problems[0]
    assert "ROUNDS=40 (default 70)" in problems[0] and "DEVICE" not in problems[0]  # where, not what
    with pytest.raises(ConfigError, match=r"03_multi_shot_continuous\.json has SEEDS.*ALLOW_NONDEFAULT=1") as info:
        reporting.check_results(tmp_path)
    assert "\n" not in str(info.value)
    assert reporting.check_results(tmp_path, allow_nondefault=True) == problems


def test_paper_guard_refuses_files_of_no_notebook_and_missing_parameters(tmp_path):
    (tmp_path / "mine.json").write_text(json.dumps({"parameters": {}}))
    _record(tmp_path, "07_round10_convergence")
    record = json.loads((tmp_path / "07_round10_convergence.json").read_text())
    del record["parameters"]["PRETRAIN_ETAS"]
    (tmp_path / "07_round10_convergence.json").write_text(json.dumps(record))
    problems = reporting.nondefault_results(tmp_path)
    assert any("mine.json" in p and "no notebook has NAME 'mine'" in p for p in problems)
    assert any("PRETRAIN_ETAS missing" in p for p in problems)


def test_check_results_command_is_one_line_and_exit_2(tmp_path):
    _record(tmp_path, "02_single_shot_disperse", HORIZON=5)
    cmd = [sys.executable, "-m", "dbalib", "check-results", "--results", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=PROJECT_DIR)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "HORIZON=5 (default 30)" in proc.stderr
    allowed = subprocess.run(cmd + ["--allow-nondefault"], capture_output=True, text=True, timeout=120, cwd=PROJECT_DIR)
    assert allowed.returncode == 0 and "HORIZON=5" in allowed.stderr


def test_superseded_results_are_skipped_on_purpose_and_named(tmp_path):
    _record(tmp_path, "03_multi_shot_continuous", SEEDS=[0])
    assert reporting.nondefault_results(tmp_path)
    (tmp_path / "SUPERSEDED").write_text("# comment\n03_multi_shot_continuous: made by the old protocol\n")
    assert reporting.superseded_results(tmp_path) == {"03_multi_shot_continuous": "made by the old protocol"}
    assert reporting.nondefault_results(tmp_path) == []
    (tmp_path / "SUPERSEDED").write_text("03_multi_shot_continuous\n")
    with pytest.raises(ConfigError, match="name: reason"):
        reporting.superseded_results(tmp_path)


def test_only_the_listed_tracked_results_are_superseded():
    assert set(reporting.superseded_results()) <= {"05_defenses", "06_trigger_factors"}
