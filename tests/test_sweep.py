"""Sweeps: grid expansion and validation, resume, parallel backends, worker failures."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

import dbalib
from dbalib import ConfigError
from dbalib.core import simulation
from dbalib.core.sweep import SweepError, _run_local, expand_grid, parse_grid, run_many, sweep
from tests.conftest import tiny

TIMING = ["seconds_train", "seconds_aggregate", "seconds_eval"]


def test_grid_expansion_is_the_cartesian_product():
    base = tiny("single_shot_dba", attack_rounds=(4, 5, 6, 7))
    combos = expand_grid(base, parse_grid(["scale=10,100", "trigger_gap=1,2,3"]))
    assert len(combos) == 6
    assert {(p["scale"], p["trigger_gap"]) for p, _ in combos} == {(s, g) for s in (10.0, 100.0) for g in (1, 2, 3)}
    assert all(cfg.scale == p["scale"] and cfg.trigger_gap == p["trigger_gap"] for p, cfg in combos)


def test_list_valued_grid_keys_use_semicolons():
    grid = parse_grid(["attack_rounds=4,5,6,7;4-7"])
    combos = expand_grid(tiny("single_shot_dba", attack_rounds=(4, 5, 6, 7)), grid)
    assert [cfg.attack_rounds for _, cfg in combos] == [(4, 5, 6, 7)] * 2


@pytest.mark.parametrize("grid, message", [
    ({}, "grid is empty"),
    ({"scal": ["1"]}, "did you mean 'scale'"),
    ({"scale": []}, "has no values"),
    ({"scale": ["big"]}, "expects float"),
    ({"trigger_shift": ["0", "26"]}, None),  # valid config values, but the trigger does not fit: caught at check
    ({"attack_rounds": ["4,5", "4,5,6,7"]}, "grid point .* is invalid: single_shot needs one attack round per attacker"),
])
def test_grid_errors_are_clear(grid, message, tmp_path):
    base = tiny("single_shot_dba", attack_rounds=(4, 5, 6, 7))
    with pytest.raises(ConfigError, match=message or "does not fit"):
        sweep(base, grid, seeds=[0], out=tmp_path, progress=False)
    assert not list(tmp_path.rglob("*.csv"))  # nothing was trained


@pytest.mark.slow
def test_interrupted_sweep_resumes_with_only_the_missing_runs(tmp_path, monkeypatch):
    base = tiny("clean", rounds=4)
    grid = {"eta": ["0.1", "0.5", "1.0"]}
    sweep(base, {"eta": ["0.1"]}, seeds=[0], out=tmp_path, workers=1, progress=False)  # "before the stop"
    computed = []
    real = simulation.run_seed

    def counting(config, seed, show):
        computed.append((config.eta, seed))
        return real(config, seed, show)

    monkeypatch.setattr(simulation, "run_seed", counting)
    result = sweep(base, grid, seeds=[0], out=tmp_path, workers=1, progress=False)
    assert sorted(computed) == [(0.5, 0), (1.0, 0)]
    table = result.table
    assert sorted(table["eta"].unique()) == [0.1, 0.5, 1.0] and set(table["round"]) == {3, 4}


@pytest.mark.slow
def test_two_local_workers_match_running_one_after_another(tmp_path):
    configs = [tiny("single_shot_dba", rounds=6, attack_rounds=(4, 5, 5, 6)), tiny("single_shot_cba", rounds=6,
                                                                                  attack_rounds=(5,))]
    parallel = run_many(configs, seeds=[0, 1], out=tmp_path / "parallel", workers=2, progress=False)
    serial = run_many(configs, seeds=[0, 1], out=tmp_path / "serial", workers=1, progress=False)
    for p, s in zip(parallel, serial):
        assert p.metrics.drop(columns=TIMING).equals(s.metrics.drop(columns=TIMING))
        assert {i["threads"] for i in p.info.values()} == {1}


def crash_once(config: dict, seed: int, out: str) -> int:
    """Job that kills its worker the first time it runs (marker file), then runs normally."""
    marker = Path(out) / f"crashed-{seed}"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("x")
        os._exit(3)
    from dbalib.core.sweep import _local_job

    return _local_job(config, seed, out)


def always_crash(config: dict, seed: int, out: str) -> int:
    os._exit(4)


@pytest.mark.slow
def test_a_dead_worker_is_retried_and_then_reported(tmp_path):
    cfg = simulation.check(tiny("clean", rounds=4))
    _run_local([(cfg, 0)], tmp_path, workers=1, threads=1, retries=2, progress=False, job=crash_once)
    assert simulation.RunStore(tmp_path, cfg).has_seed(0)
    with pytest.raises(SweepError, match="1 run\\(s\\) failed after 1 retries: clean seed 1: worker died"):
        _run_local([(cfg, 1)], tmp_path, workers=1, threads=1, retries=1, progress=False, job=always_crash)


@pytest.mark.slow
def test_ray_backend_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    configs = [tiny("clean", rounds=4), tiny("clean", rounds=4, eta=0.5)]
    try:
        results = run_many(configs, seeds=[0], out=tmp_path, backend="ray", threads=1, progress=False)
    finally:
        ray.shutdown()
    serial = run_many(configs, seeds=[0], out=tmp_path / "serial", workers=1, progress=False)
    for r, s in zip(results, serial):
        assert r.metrics.drop(columns=TIMING).equals(s.metrics.drop(columns=TIMING))
        assert (r.run_dir / "run.json").is_file()


def test_unknown_backend(tmp_path):
    with pytest.raises(ConfigError, match="unknown backend"):
        run_many([tiny("clean")], seeds=[0], out=tmp_path, backend="spark")


@pytest.mark.slow
def test_sweep_cli_prints_a_table(tmp_path, capsys):
    from dbalib.cli import main

    code = main(["sweep", "clean", "--grid", "eta=0.1,1.0", "--seeds", "0", "--quiet", "--out", str(tmp_path),
                 "--workers", "1", "--set", "data_fraction=0.25", "--set", "test_samples=1000",
                 "--set", "pretrain_rounds=3", "--set", "rounds=4", "--set", "device=cpu"])
    assert code == 0
    out = capsys.readouterr().out
    assert "asr_global at round 4" in out and "eta" in out
    assert len(list((tmp_path / "sweeps").glob("clean-eta-*.csv"))) == 1
    assert dbalib.__version__


@pytest.mark.slow
def test_lockstep_groups_on_parallel_processes_give_the_same_rows(tmp_path, monkeypatch):
    """DBALIB_LOCKSTEP_WORKERS=2 (the GPU setting) runs two configs' lockstep groups side by side;
    their rows equal those of one process doing both in turn."""
    small = dict(rounds=4, pretrain_rounds=2, data_fraction=0.05, test_samples=300, engine="batched", progress=False)
    configs = [dbalib.preset("single_shot_dba", attack_rounds=[3, 4, 3, 4], **small),
               dbalib.preset("multi_shot_cba", attack_rounds=[3, 4], **small)]
    monkeypatch.setenv("DBALIB_LOCKSTEP_WORKERS", "2")
    parallel = dbalib.run_many(configs, seeds=[0, 1], out=tmp_path / "parallel")
    monkeypatch.setenv("DBALIB_LOCKSTEP_WORKERS", "1")
    serial = dbalib.run_many(configs, seeds=[0, 1], out=tmp_path / "serial")
    for a, b in zip(parallel, serial):
        timing = [c for c in a.metrics if c.startswith("seconds")]
        pd.testing.assert_frame_equal(a.metrics.drop(columns=timing), b.metrics.drop(columns=timing))


def test_lockstep_workers_must_be_a_positive_whole_number(monkeypatch):
    from dbalib.core.sweep import lockstep_workers

    monkeypatch.setenv("DBALIB_LOCKSTEP_WORKERS", "many")
    with pytest.raises(ConfigError, match="whole number"):
        lockstep_workers()
    monkeypatch.setenv("DBALIB_LOCKSTEP_WORKERS", "0")
    with pytest.raises(ConfigError, match="1 or more"):
        lockstep_workers()


def test_lockstep_lanes_default_to_one_config_per_group_and_must_be_whole(monkeypatch):
    from dbalib.core.sweep import lockstep_lanes

    monkeypatch.delenv("DBALIB_LOCKSTEP_LANES", raising=False)
    assert lockstep_lanes() == 0
    monkeypatch.setenv("DBALIB_LOCKSTEP_LANES", "54")
    assert lockstep_lanes() == 54
    monkeypatch.setenv("DBALIB_LOCKSTEP_LANES", "-1")
    with pytest.raises(ConfigError, match="0 or more"):
        lockstep_lanes()
