"""benchmarks/device_runs.py: it captures a notebook's runs and plans its lockstep groups (``--plan``
prints them without running anything)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def plan(tmp_path: Path, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device_runs.py"), "--out", str(tmp_path / "runs"),
                           "--plan", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    return done.stdout.splitlines()


def test_plan_groups_seeds_of_one_config_or_lanes_of_one_signature(tmp_path):
    lines = plan(tmp_path, "--chunk", "4", "--notebooks", "08_persistence_sensitivity")
    assert "08_persistence_sensitivity: 18 configs, 180 seed-runs" in lines
    assert "18 configs in 54 lockstep groups of at most 4 seeds of one config" in lines  # 4 + 4 + 2 seeds each
    groups = [line.strip() for line in lines if line.startswith("  ")]
    assert len(groups) == 54 and all(g.endswith(("4 seeds", "2 seeds")) for g in groups)
    assert all(g.endswith("4 seeds") for g in groups[:36])  # seeds first: every config's first four
    # notebook 08's variants differ in what the clients train, so lanes cannot merge them
    lines = plan(tmp_path, "--lanes", "40", "--notebooks", "08_persistence_sensitivity")
    assert "18 configs in 18 lockstep groups of at most 40 lanes (configs that differ only in their aggregation together)" in lines
    assert not list((tmp_path / "runs").glob("*/seeds/*.csv"))  # nothing ran


@pytest.mark.slow
def test_plan_captures_runs_that_the_study_layer_asks_for(tmp_path):
    """Notebook 05 asks through ``defense_eval.run_cells`` (``dbalib.core.sweep.run_many``): its first
    request, the consensus tuning (5 ratios x 3 attacks, held-out seeds), is captured, not run."""
    lines = plan(tmp_path, "--chunk", "1", "--notebooks", "05_defenses")
    assert "05_defenses: 15 configs, 45 seed-runs" in lines
    assert not list((tmp_path / "runs").glob("*/seeds/*.csv"))  # nothing ran
