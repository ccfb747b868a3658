"""Command line: presets, runs and one-line errors before any training."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dbalib.cli import main


def test_presets_lists_every_study_experiment(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ["single_shot_dba", "single_shot_cba", "single_shot_disperse_dba", "multi_shot_dba",
                 "multi_shot_cba", "collaborative_dba", "collaborative_cba"]:
        assert name in out


def test_attacks_lists_the_registry_with_each_trigger(capsys):
    assert main(["attacks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [["dba", "trigger:", "local"], ["cba", "trigger:", "global"],
                                                    ["none", "trigger:", "none"]]


def test_aggregators_lists_the_registry_with_the_keys_each_reads(capsys):
    assert main(["aggregators"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines][:2] == ["fedavg", "norm_threshold"] and len(lines) == 18
    assert any(line.startswith("krum ") and line.endswith("[krum_f]") for line in lines)


@pytest.mark.parametrize("argv, message", [
    (["run", "nope"], "unknown preset 'nope'"),
    (["run", "single_shot_dba", "--set", "scal=2"], "did you mean 'scale'"),
    (["run", "single_shot_dba", "--set", "scale=abc"], "expects float"),
    (["run", "single_shot_dba", "--set", "attackers=41,73,51,999"], "attacker id 999 is out of range"),
    (["run", "single_shot_dba", "--set", "attack_rounds=12,14,16,80"], "attack round 80 is outside"),
    (["run", "single_shot_dba", "--set", "scale=0"], "scale must be > 0"),
    (["run", "single_shot_dba", "--set", "clients_per_round=500"], "clients_per_round=500"),
    (["run", "single_shot_dba", "--set", "novalue"], "expects key=value"),
    (["run", "single_shot_dba", "--set", "attack=xba"], "attack='xba' is not one of dba, cba, none"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing was trained or written


def test_unusable_data_folder_fails_before_training(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("DBALIB_DATA", str(blocker))
    assert main(["run", "clean", "--out", str(tmp_path / "out")]) == 2
    assert "not writable" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_through_the_module_entry_point(tmp_path):
    cmd = [sys.executable, "-m", "dbalib", "run", "single_shot_cba", "--seeds", "0", "--quiet", "--out", str(tmp_path),
           "--set", "data_fraction=0.2", "--set", "test_samples=1000", "--set", "pretrain_rounds=2",
           "--set", "rounds=4", "--set", "attack_rounds=3", "--device", "cpu", "--rounds-shown", "2,3,4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "asr_global" in proc.stdout and "asr_local_3" in proc.stdout
    assert len(list(tmp_path.glob("single_shot_cba-*/metrics.csv"))) == 1
