"""Short real runs on MNIST: the attack works, runs are deterministic, results are cached and resumable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import dbalib
from dbalib.core import simulation
from tests.conftest import tiny

ATTACK = dict(attack_rounds=(4, 5, 6, 7))


@pytest.fixture(scope="module")
def attacked_and_clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    attacked = dbalib.run(tiny("single_shot_dba", **ATTACK), seeds=[0], out=out)
    clean = dbalib.run(tiny("clean"), seeds=[0], out=out)
    return attacked, clean


@pytest.mark.slow
def test_scaled_dba_raises_attack_success_well_above_clean(attacked_and_clean):
    attacked, clean = attacked_and_clean
    assert attacked.at(3, "asr_global") == clean.at(3, "asr_global")  # same pretrained model
    assert clean.at(8, "asr_global") < 0.1
    assert attacked.at(8, "asr_global") > clean.at(8, "asr_global") + 0.5
    # the global trigger, never trained on, works at least as well as the last local trigger
    assert attacked.at(8, "asr_global") >= attacked.at(8, "asr_local_3") - 0.05


@pytest.mark.slow
def test_metrics_rows_and_columns(attacked_and_clean):
    attacked, _ = attacked_and_clean
    m = attacked.metrics
    assert m["round"].tolist() == list(range(3, 9))
    for column in ["seed", "clean_acc", "asr_global", "asr_local_0", "asr_local_3", "n_attackers",
                   "benign_norm_mean", "malicious_norm_mean", "seconds_train", "seconds_eval"]:
        assert column in m.columns
    assert m.set_index("round")["n_attackers"].to_dict() == {3: 0, 4: 1, 5: 1, 6: 1, 7: 1, 8: 0}
    assert m.set_index("round").loc[4, "attackers"] == "41"
    # a gamma-100 update is far larger than a benign one
    row = m.set_index("round").loc[4]
    assert row["malicious_norm_mean"] > 20 * row["benign_norm_mean"]


@pytest.mark.slow
def test_run_files(attacked_and_clean):
    attacked, _ = attacked_and_clean
    info = json.loads((attacked.run_dir / "run.json").read_text())
    assert info["config"]["attack_rounds"] == [4, 5, 6, 7] and info["seeds"] == [0]
    assert {"torch", "numpy", "python", "git_commit", "dbalib"} <= set(info["environment"])
    assert info["per_seed"]["0"]["seconds_total"] > 0
    # the machine that computed the seed: CPU results differ between instruction sets
    seed_info = json.loads((attacked.run_dir / "seeds" / "seed-0.json").read_text())
    assert seed_info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert seed_info["cpu_model"] and info["per_seed"]["0"]["cpu_model"] == seed_info["cpu_model"]
    assert (attacked.run_dir / "metrics.csv").read_text().startswith("seed,round,clean_acc,asr_global")
    assert not list(attacked.run_dir.rglob("*.tmp"))


def test_machine_info_names_the_instruction_set_torch_runs():
    """A capped instruction set (ATEN_CPU_CAPABILITY) is what torch uses and what the record says."""
    code = "from dbalib.core.results import machine_info; import json; print(json.dumps(machine_info()))"
    env = os.environ | {"ATEN_CPU_CAPABILITY": "default"}
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    env.pop("DNNL_MAX_CPU_ISA", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert info["cpu_capability"] == "DEFAULT"
    assert info["cpu_isa_variables"] == "ATEN_CPU_CAPABILITY=default"
    assert info["cpu_model"]


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics(tmp_path, monkeypatch):
    cfg = tiny("single_shot_dba", rounds=5, attack_rounds=(4, 4, 5, 5))
    results = []
    for i in range(2):
        monkeypatch.setenv("DBALIB_CACHE", str(tmp_path / f"cache{i}"))  # pretraining recomputed too
        results.append(dbalib.run(cfg, seeds=[7], out=tmp_path / f"out{i}").metrics)
    timing = [c for c in results[0].columns if c.startswith("seconds")]
    assert results[0].drop(columns=timing).equals(results[1].drop(columns=timing))


@pytest.mark.slow
def test_cached_run_returns_without_training_and_resumes_after_a_kill(tmp_path, monkeypatch):
    cfg = tiny("clean", rounds=4)
    calls = []
    real = simulation.run_seed

    def killed_on_seed_1(config, seed, show):
        if seed == 1:
            raise KeyboardInterrupt
        calls.append(seed)
        return real(config, seed, show)

    monkeypatch.setattr(simulation, "run_seed", killed_on_seed_1)
    with pytest.raises(KeyboardInterrupt):
        dbalib.run(cfg, seeds=[0, 1], out=tmp_path, workers=1)
    store = simulation.RunStore(tmp_path, simulation.check(cfg))
    assert store.finished_seeds() == [0] and not list(tmp_path.rglob("*.tmp"))

    def counting(config, seed, show):
        calls.append(seed)
        return real(config, seed, show)

    monkeypatch.setattr(simulation, "run_seed", counting)
    result = dbalib.run(cfg, seeds=[0, 1], out=tmp_path, workers=1)
    assert calls == [0, 1]  # seed 0 once before the kill, then only seed 1
    assert sorted(result.metrics["seed"].unique()) == [0, 1]
    dbalib.run(cfg, seeds=[0, 1], out=tmp_path, workers=1)
    assert calls == [0, 1]  # fully cached
    assert len(__import__("pandas").read_csv(store.dir / "metrics.csv")) == 2 * 2


def test_different_config_gets_a_different_folder(tmp_path):
    a = simulation.RunStore(tmp_path, tiny("single_shot_dba", **ATTACK)).dir
    b = simulation.RunStore(tmp_path, tiny("single_shot_dba", scale=50.0, **ATTACK)).dir
    assert a != b
