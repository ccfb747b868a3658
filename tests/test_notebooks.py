"""Notebooks: committed without outputs, one parameters cell, and a papermill smoke run of each."""

from __future__ import annotations

import json
import math
import re

import nbformat
import pytest

from dbalib.core.paths import NOTEBOOKS_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SMALL = dict(SEEDS=[0], ROUNDS=8, PRETRAIN_ROUNDS=3, DATA_FRACTION=0.2, TEST_SAMPLES=600, DEVICE="cpu")
SMOKE = {
    "01_single_shot_concentrated": dict(DBA_ROUNDS=[4, 5, 6, 7], CBA_ROUND=7),
    "02_single_shot_disperse": dict(DISPERSE_ROUNDS=[4, 5, 7, 8], CONCENTRATED_ROUNDS=[4, 5, 6, 7], HORIZON=2),
    "03_multi_shot_continuous": dict(ATTACK_START=4, ATTACK_END=6),
    "04_fixed_frequency_collaborative": dict(DBA_ROUNDS=[4, 5, 6, 7], CBA_ROUNDS=[7]),
}


def test_there_is_a_notebook_per_study_section():
    names = {p.stem for p in NOTEBOOKS}
    assert set(SMOKE) | {"00_explore"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_one_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip the outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for line in tagged[0].source.splitlines():
        name, _, rest = line.partition("=")
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name.strip()), line
        assert "#" in rest and "=" not in rest.split("#", 1)[1], f"comment (without '=') needed: {line}"
    assert not any(re.search(r"^\s*(def|class) ", c.source, re.M) for c in code), "no library code in notebooks"


@pytest.fixture(scope="module")
def smoke_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("notebooks")
    return {k: root / k for k in ("runs", "figures", "results", "executed")}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMOKE))
def test_notebook_smoke_run_records_numbers_and_figures(name, smoke_dirs):
    import papermill

    params = SMALL | SMOKE[name] | {"RUNS_DIR": str(smoke_dirs["runs"]), "FIGURES_DIR": str(smoke_dirs["figures"]),
                                    "RESULTS_DIR": str(smoke_dirs["results"])}
    smoke_dirs["executed"].mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"), str(smoke_dirs["executed"] / f"{name}.ipynb"),
                               parameters=params, kernel_name="python3", progress_bar=False)
    for suffix in (".pdf", ".png"):
        figure = smoke_dirs["figures"] / f"{name}{suffix}"
        assert figure.is_file() and figure.stat().st_size > 10_000
    record = json.loads((smoke_dirs["results"] / f"{name}.json").read_text())
    assert record["parameters"]["SEEDS"] == [0] and record["parameters"]["ROUNDS"] == 8
    assert len(record["runs"]) == 3 and record["claims_total"] == len(record["claims"]) >= 2
    assert all(isinstance(c["agrees"], bool) and c["evidence"] for c in record["claims"])
    baseline = record["runs"].pop("no attack")  # the grey no-attack run, at BASELINE_SEEDS (all of SEEDS here)
    assert baseline["config"]["attack"] == "none" and baseline["final_round"] == 8
    rises = []
    for run in record["runs"].values():
        glob = run["triggers"]["global"]
        assert 0 <= glob["final"] <= 1 and run["final_round"] == 8
        rises.append(glob["peak"] - glob["start"])
    assert max(rises) > 0.3  # even at smoke size, the DBA (at least) implants the backdoor
    assert baseline["triggers"]["global"]["peak"] < max(r["triggers"]["global"]["peak"] for r in record["runs"].values())
    executed = nbformat.read(smoke_dirs["executed"] / f"{name}.ipynb", as_version=4)
    assert "claims agree with this run" in json.dumps(executed.cells[-1].outputs)


@pytest.mark.slow
def test_explorer_renders_a_static_run_headless(smoke_dirs):
    import papermill

    params = {"ROUNDS": 6, "PRETRAIN_ROUNDS": 3, "ATTACK_ROUNDS": "4,5,5,6", "DATA_FRACTION": 0.2,
              "TEST_SAMPLES": 600, "DEVICE": "cpu", "RUNS_DIR": str(smoke_dirs["runs"])}
    smoke_dirs["executed"].mkdir(parents=True, exist_ok=True)
    out = smoke_dirs["executed"] / "00_explore.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS_DIR / "00_explore.ipynb"), str(out), parameters=params,
                               kernel_name="python3", progress_bar=False)
    outputs = json.dumps([c.outputs for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"])
    assert "image/png" in outputs  # the static two-panel figure
    assert "application/vnd.jupyter.widget-view+json" in outputs  # the controls, rendered, never awaited


def _execute(name: str, params: dict, dirs: dict) -> dict:
    import papermill

    dirs["executed"].mkdir(parents=True, exist_ok=True)
    params = params | {"RUNS_DIR": str(dirs["runs"]), "FIGURES_DIR": str(dirs["figures"]),
                       "RESULTS_DIR": str(dirs["results"])}
    papermill.execute_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"), str(dirs["executed"] / f"{name}.ipynb"),
                               parameters=params, kernel_name="python3", progress_bar=False)
    return json.loads((dirs["results"] / f"{name}.json").read_text())


@pytest.mark.slow
def test_defenses_notebook_smoke_run(smoke_dirs):
    record = _execute("05_defenses", dict(
        SEEDS=[0], ROUNDS=19, MULTI_SHOT_END=13, PRETRAIN_ROUNDS=10, DATA_FRACTION=0.1,
        TEST_SAMPLES=400, DEVICE="cpu",
        ATTACKS=["clean", "single_shot_dba", "multi_shot_dba", "norm_bounded_dba", "norm_bounded_dba+bound"],
        DEFENSES=["fedavg", "norm_threshold", "abandon", "consensus"], CONSENSUS_RATIOS=[0.5],
        NORM_RULES=["norm_clip"], NORM_FACTORS=[1.5, 3.0], DP_RULES=[],
        KRUM_RULES=[], ROOT_RULES=["fltrust"], ROOT_SIZES=[50], ATTACKER_COUNTS=[1], COUNT_DEFENSES=["fltrust"]),
        smoke_dirs)
    matrix = {(row["attack"], row["defense"]): row for row in record["extra"]["matrix"]}
    assert len(matrix) == 20
    assert {row["diverged_seeds"] for row in matrix.values()} == {0}  # no cell blew up, and each row says so
    assert matrix[("single_shot_dba", "fedavg")]["asr_peak"] > 0.5  # the undefended attack works
    assert matrix[("single_shot_dba", "norm_threshold")]["malicious_rejected"] == 1.0  # gamma 100 is caught
    assert 0 < record["extra"]["attack_norm_bound"] < 10
    assert matrix[("norm_bounded_dba", "norm_threshold")]["malicious_rejected"] < 0.5  # stays under M
    assert matrix[("norm_bounded_dba+bound", "norm_threshold")]["malicious_rejected"] == 0.0  # knows the actual M
    assert record["parameters"]["CONSENSUS_RATIO"] == 0.5 and record["extra"]["consensus_tuning"] is None
    assert record["claims_total"] == 2 + 2 and record["extra"]["geometry"]  # the study's four statements
    assert "robustness" not in record["extra"]  # the DBA paper's robustness claim is notebook 09
    assert len(record["extra"]["tradeoff"]) == 4 + 2 and len(record["extra"]["attacker_counts"]) == 2
    assert {row["value"] for row in record["extra"]["tradeoff"] if row["rule"] == "fltrust"} == {50}  # root-set size
    assert sum(record["extra"]["root_set"]["class_counts"]) == record["parameters"]["ROOT_SAMPLES"]
    for suffix in ("_matrix.png", "_curves.png", "_matrix.pdf", "_tradeoffs.png", "_attackers.png"):
        assert (smoke_dirs["figures"] / f"05_defenses{suffix}").stat().st_size > 10_000


@pytest.mark.slow
def test_trigger_factors_notebook_smoke_run(smoke_dirs):
    record = _execute("06_trigger_factors", dict(
        SEEDS=[0], FIRST_ROUND=4, LATER=2, ROUNDS=18, MULTI_SHOT_END=6, PRETRAIN_ROUNDS=3, DATA_FRACTION=0.2,
        TEST_SAMPLES=400, DEVICE="cpu", SINGLE_FACTORS=["scale", "interval"], MULTI_FACTORS=["poison_ratio"]),
        smoke_dirs)
    single = record["extra"]["single_shot"]
    assert {(r["factor"], r["attack"]) for r in single} == {("scale", "DBA"), ("scale", "CBA"), ("interval", "DBA")}
    assert len([r for r in single if r["factor"] == "interval"]) == 4
    assert len(record["extra"]["multi_shot"]) == 8
    assert all(0 <= r["asr_after"] <= 1 for r in single)
    scale = {r["value"]: r["asr_after"] for r in single if r["factor"] == "scale" and r["attack"] == "DBA"}
    assert scale[100.0] > scale[10.0]  # a hundredfold scaled DBA implants more than a tenfold one
    effects = {(r["schedule"], r["factor"], r["value"]): r for r in record["extra"]["effects"]}
    assert len(effects) == 3 + 4 + 4  # every DBA setting: scale, interval (single-shot), poison ratio (multi-shot)
    low = effects[("single_shot", "scale", 10.0)]
    assert math.isclose(low["change_after"], scale[10.0] - scale[100.0], abs_tol=1e-9)  # paired, one seed
    assert effects[("single_shot", "scale", 100.0)]["default"] and "gap" in low
    assert (smoke_dirs["figures"] / "06_trigger_factors.png").is_file()
    assert (smoke_dirs["figures"] / "06_trigger_factors_multi_shot.png").is_file()


@pytest.mark.slow
def test_round10_convergence_notebook_smoke_run(smoke_dirs):
    record = _execute("07_round10_convergence", dict(SEEDS=[0], ROUNDS=28, PRETRAIN_ROUNDS=10, DATA_FRACTION=0.1,
                                                     TEST_SAMPLES=400, DEVICE="cpu"), smoke_dirs)
    assert len(record["runs"]) == 6 and record["claims_total"] == 2
    accuracies = {label: run["pretrained_clean_acc"] for label, run in record["runs"].items()}
    assert accuracies["collaborative DBA, pretraining eta 1"] > accuracies["collaborative DBA, pretraining eta 0.1"]
    assert (smoke_dirs["figures"] / "07_round10_convergence.png").is_file()


@pytest.mark.slow
def test_persistence_sensitivity_notebook_smoke_run(smoke_dirs):
    record = _execute("08_persistence_sensitivity",
                      dict(SEEDS=[0, 1], LATER=2, PRETRAIN_ETAS=[], PRETRAIN_ROUNDS_TRIED=[], SCALES=[50.0], ETAS=[],
                           SHIFTS=[2], DATA_FRACTION=0.1, TEST_SAMPLES=300, DEVICE="cpu"), smoke_dirs)
    rows = record["extra"]["persistence"]
    assert [(r["factor"], r["value"]) for r in rows] == [("VI-A", "baseline"), ("gamma", 50.0),
                                                         ("attack shift (rounds)", 2)]
    assert all(r["seeds"] == 2 and r["gap_lo"] <= r["gap"] <= r["gap_hi"] for r in rows)
    assert record["claims_total"] == 4  # VI-A vs the paper, any variant vs the paper, one per factor varied
    assert [c["section"] for c in record["claims"]] == ["persistence"] * 4
    assert (smoke_dirs["figures"] / "08_persistence_sensitivity.png").is_file()


@pytest.mark.slow
def test_robustness_claim_notebook_smoke_run(smoke_dirs):
    record = _execute("09_robustness_claim", dict(
        SEEDS=[0, 1], ROUNDS=14, MULTI_SHOT_END=13, CLAIM_ROUND=13, PRETRAIN_ROUNDS=10, DATA_FRACTION=0.1,
        TEST_SAMPLES=300, DEVICE="cpu", BASELINE_ENGINE="sequential", DEFENSES=["foolsgold_dba", "rfa"]), smoke_dirs)
    rows = {(r["defense"], r["quantity"]): r for r in record["extra"]["robustness"]}
    assert set(rows) == {(d, q) for d in ("fedavg", "foolsgold_dba", "rfa") for q in ("DBA", "CBA", "DBA minus CBA")}
    for (defense, quantity), row in rows.items():
        assert row["n_seeds"] == 2 and row["lo"] <= row["estimate"] <= row["hi"]
        assert row["dba_paper"] is None or defense == "foolsgold_dba"
    diff = rows[("rfa", "DBA minus CBA")]["per_seed"]["value"]
    dba, cba = rows[("rfa", "DBA")]["per_seed"]["value"], rows[("rfa", "CBA")]["per_seed"]["value"]
    assert diff == pytest.approx([d - c for d, c in zip(dba, cba)])  # paired on the same seeds
    assert rows[("fedavg", "DBA")]["estimate"] > 0.3  # the undefended continuous attack works
    assert rows[("foolsgold_dba", "DBA")]["dba_paper"] == pytest.approx(0.9155)
    assert record["claims_total"] == 1 + 3 + 2  # FedAvg 1, FoolsGold 3, RFA 2
    assert {r["round"] for r in record["extra"]["final"]} == {14} and len(record["extra"]["final"]) == 9
    assert {r["metric"] for r in record["extra"]["clean"]} == {"clean_acc"} and all(r["dba_paper"] is None for r in record["extra"]["clean"])
    assert (smoke_dirs["figures"] / "09_robustness_claim.png").stat().st_size > 10_000
