"""benchmarks/device_runs.py: it captures a notebook's runs and plans its lockstep groups (``--plan``
prints them without running anything)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
