"""A sweep's table is named by the sweep (keys and a hash of every run's config and the seeds), so a
later sweep over the same keys never overwrites it. The sweep itself is replaced by a stub."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

import dbalib.core.sweep as SWEEP  # the module (dbalib.sweep is the function)
from dbalib.cli import main
from dbalib.core.presets import preset


def _fake_sweep(base, grid, seeds, out, **_):
    configs = [base.with_overrides(**{key: value}) for key, values in grid.items() for value in values]
    table = pd.DataFrame([{"round": base.rounds, "seed": s, **{k: v for k, vs in grid.items() for v in vs[:1]},
                           "asr_global": 0.5} for s in seeds])
    results = [SimpleNamespace(config=c, run_dir=Path(out) / f"{c.name}-{c.cache_key()}") for c in configs]
    return SimpleNamespace(table=table, results=results,
                           at=lambda round_, metric: pd.DataFrame({"mean": [0.5], "std": [0.0]}))


def test_a_sweep_over_the_same_keys_keeps_the_other_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(SWEEP, "sweep", _fake_sweep)
    common = ["--quiet", "--out", str(tmp_path), "--set", "rounds=20"]
    assert main(["sweep", "single_shot_dba", "--grid", "scale=10,30", "--seeds", "0"] + common) == 0
    assert main(["sweep", "single_shot_dba", "--grid", "scale=10,100", "--seeds", "0"] + common) == 0
    assert main(["sweep", "single_shot_dba", "--grid", "scale=10,30", "--seeds", "0,1"] + common) == 0
    assert main(["sweep", "single_shot_dba", "--grid", "scale=10,30", "--seeds", "0"] + common[:-1] + ["rounds=21"]) == 0
    tables = sorted((tmp_path / "sweeps").glob("single_shot_dba-scale-*.csv"))
    assert len(tables) == 4  # other values, other seeds, another base config: four tables
    assert main(["sweep", "single_shot_dba", "--grid", "scale=10.0,30", "--seeds", "0"] + common) == 0
    assert len(list((tmp_path / "sweeps").glob("*.csv"))) == 4  # the same sweep again: its own table
    out = capsys.readouterr().out
    assert all(str(t) in out for t in tables)


def test_sweep_id_ignores_order_and_progress():
    from dbalib.cli import sweep_id

    a, b = preset("clean", eta=0.5), preset("clean", eta=1.0)
    results = [SimpleNamespace(config=c) for c in (a, b)]
    quiet = [SimpleNamespace(config=c.with_overrides(progress=False)) for c in (b, a)]
    assert sweep_id(results, [1, 0]) == sweep_id(quiet, [0, 1]) != sweep_id(results, [0])
