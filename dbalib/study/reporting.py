"""What a notebook records: its parameters, each run's key numbers and the claim checks, as JSON.

``check_parameters`` refuses conflicting notebook parameters before any run, in one line that
names them. ``write_key_numbers`` writes ``<name>.json`` atomically to build/results, or to the
tracked ``results/`` when publishing (the paper's numbers are generated from those files): with every claim's verdict ("agrees", "differs" or
"inconclusive"), per-seed values, interval and threshold sensitivity, how many claims got each
verdict, and the threshold table they were judged by. ``summary_table`` shows the key numbers as a
table. ``nondefault_results`` / ``check_results`` (``make paper``) find tracked results made with
parameters other than their notebook's defaults.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pandas as pd

from ..core.errors import ConfigError
from ..core.paths import NOTEBOOKS_DIR, PROJECT_DIR, RESULTS_DIR, results_dir, write_output
from ..core.results import Result, environment_info
from .claims import Claim, claims_to_json, summarize, threshold_table, verdict_counts
from .stats import AGREES, DIFFERS, INCONCLUSIVE


def notebook_parameters(namespace: dict) -> dict:
    """The UPPER_CASE constants of a notebook namespace (its parameters cell), JSON-ready."""
    def plain(value) -> bool:
        if isinstance(value, (list, tuple)):
            return all(map(plain, value))
        return isinstance(value, (int, float, str, bool, type(None)))

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in namespace.items()
            if k.isupper() and not k.startswith("_") and plain(v)}


def write_key_numbers(name: str, parameters: dict, runs: dict[str, Result], claims: list[Claim],
                      folder: str | os.PathLike | None = None, extra: dict | None = None) -> Path:
    """Write ``<folder>/<name>.json`` with everything the paper and the smoke tests read (default
    folder: build/results, or the tracked results/ when publishing; ``dbalib.core.paths.results_dir``)."""
    path = results_dir(folder) / f"{name}.json"
    counts = verdict_counts(claims)
    payload = {
        "name": name,
        "parameters": parameters,
        "runs": {label: summarize(result) | {"cache_key": result.config.cache_key(), "config": result.config.to_dict()}
                 for label, result in runs.items()},
        "claims": claims_to_json(claims),
        "claims_agreeing": counts[AGREES],
        "claims_differing": counts[DIFFERS],
        "claims_inconclusive": counts[INCONCLUSIVE],
        "claims_total": len(claims),
        "thresholds": threshold_table(),
        "environment": {k: v for k, v in environment_info().items() if k != "platform"},
    }
    if extra:
        payload["extra"] = extra
    write_output(path, (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode())
    return path


def list_text(items, last: str = " and ") -> str:
    """[41, 73, 51] -> '41, 73 and 51'."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + last + items[-1]


def rounds_phrase(rounds, dash: str = "\u2013", last: str = " and ") -> str:
    """Attack rounds for a reader: (12, 13, 14, 15, 18) -> '12–15 and 18', (12, 14, 16, 18) -> '12, 14, 16
    and 18'; runs of three or more rounds become ranges joined by ``dash`` (``"--"`` in LaTeX)."""
    runs: list[list[int]] = []
    for r in sorted(set(int(r) for r in rounds)):
        if runs and r == runs[-1][-1] + 1:
            runs[-1].append(r)
        else:
            runs.append([r])
    items = []
    for run in runs:
        items.extend([f"{run[0]}{dash}{run[-1]}"] if len(run) > 2 else map(str, run))
    return list_text(items, last)


def summary_table(runs: dict[str, Result]) -> pd.DataFrame:
    """Per run and trigger: peak ASR (and its round), ASR at the last attack, final ASR with its 95% interval, rounds to < 50%."""
    rows = []
    for label, result in runs.items():
        summary = summarize(result)
        for trigger, numbers in summary["triggers"].items():
            rows.append({"run": label, "trigger": trigger, **{k: numbers[k] for k in (
                "peak", "peak_round", "at_last_attack", "final", "final_lo", "final_hi", "rounds_to_below_50")}})
    return pd.DataFrame(rows).set_index(["run", "trigger"])


def print_claims(claims: list[Claim]) -> None:
    counts = verdict_counts(claims)
    print(f"{counts[AGREES]} of {len(claims)} claims agree with this run ({counts[DIFFERS]} differ, "
          f"{counts[INCONCLUSIVE]} inconclusive: 95% intervals over seeds against the thresholds of "
          "dbalib.study.stats.THRESHOLDS)\n")
    for claim in claims:
        print(claim.line())


# --- notebook parameters: conflicts before any run, defaults for the paper --------------------------
ROUND_VALUES = ("CBA_ROUND", "FIRST_ROUND", "ATTACK_START", "ATTACK_END", "MULTI_SHOT_END")  # one attacked round
ROUND_LISTS = ("DBA_ROUNDS", "CBA_ROUNDS", "DISPERSE_ROUNDS", "CONCENTRATED_ROUNDS")  # lists of attacked rounds
NOT_COMPARED = ("DEVICE", "RUNS_DIR", "FIGURES_DIR", "RESULTS_DIR", "NAME")  # where and on what, not what


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_parameters(namespace: dict, lengths: dict[str, int] | None = None) -> None:
    """Raise one ``ConfigError`` line naming the notebook parameters (UPPER_CASE names of
    ``namespace``) that conflict: seeds that are not integers, PRETRAIN_ROUNDS not below ROUNDS,
    attack rounds in the pretraining or after ROUNDS, ATTACK_START after ATTACK_END, a negative
    BASELINE_SEEDS, and lists of
    rounds whose length is fixed (``lengths``, e.g. ``{"DBA_ROUNDS": 4}``: one per attacker)."""
    p = {k: v for k, v in namespace.items() if k.isupper() and not k.startswith("_")}
    problems = []
    if "SEEDS" in p:
        seeds = [p["SEEDS"]] if _is_int(p["SEEDS"]) else p["SEEDS"]
        if not isinstance(seeds, (list, tuple)) or not seeds or not all(_is_int(s) and s >= 0 for s in seeds):
            problems.append(f"SEEDS must be a list of integers 0 or more, got {p['SEEDS']!r}")
    for name in ("ROUNDS", "PRETRAIN_ROUNDS", *ROUND_VALUES):
        if name in p and not _is_int(p[name]):
            problems.append(f"{name} must be an integer, got {p[name]!r}")
    for name in ROUND_LISTS:
        if name in p and (not isinstance(p[name], (list, tuple)) or not p[name] or not all(map(_is_int, p[name]))):
            problems.append(f"{name} must be a list of integers, got {p[name]!r}")
    if problems:
        raise ConfigError("notebook parameters: " + "; ".join(problems))
    rounds, pretrain = p.get("ROUNDS"), p.get("PRETRAIN_ROUNDS")
    if pretrain is not None and pretrain < 0:
        problems.append(f"PRETRAIN_ROUNDS must be 0 or more, got {pretrain}")
    if rounds is not None and pretrain is not None and pretrain >= rounds:
        problems.append(f"PRETRAIN_ROUNDS ({pretrain}) must be below ROUNDS ({rounds})")
    for name in (*ROUND_VALUES, *ROUND_LISTS):
        if name not in p:
            continue
        values = p[name] if name in ROUND_LISTS else [p[name]]
        shown = list(p[name]) if name in ROUND_LISTS else p[name]
        if pretrain is not None and min(values) <= pretrain:
            problems.append(f"{name} ({shown}) falls in the pretraining: attacks start after "
                            f"PRETRAIN_ROUNDS ({pretrain})")
        if rounds is not None and max(values) > rounds:
            problems.append(f"{name} ({shown}) is beyond ROUNDS ({rounds}): raise ROUNDS or lower {name}")
    if "BASELINE_SEEDS" in p and not (_is_int(p["BASELINE_SEEDS"]) and p["BASELINE_SEEDS"] >= 0):
        problems.append(f"BASELINE_SEEDS must be an integer, 0 or more, got {p['BASELINE_SEEDS']!r}")
    if "ATTACK_START" in p and "ATTACK_END" in p and p["ATTACK_START"] > p["ATTACK_END"]:
        problems.append(f"ATTACK_START ({p['ATTACK_START']}) is after ATTACK_END ({p['ATTACK_END']})")
    for name, length in (lengths or {}).items():
        if name in p and len(p[name]) != length:
            problems.append(f"{name} needs {length} rounds (one per attacker), got {len(p[name])}: {list(p[name])}")
    if problems:
        raise ConfigError("notebook parameters conflict: " + "; ".join(problems))


def notebook_defaults(path: str | os.PathLike) -> dict:
    """The values of a notebook's ``parameters`` cell (literal assignments only)."""
    cells = json.loads(Path(path).read_text())["cells"]
    values = {}
    for cell in cells:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        values[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
    return values


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


def nondefault_results(results: str | os.PathLike = RESULTS_DIR,
                       notebooks: str | os.PathLike = NOTEBOOKS_DIR) -> list[str]:
    """One line per ``<results>/*.json`` that was not made with its notebook's defaults (the
    notebook whose NAME is the file's stem): the parameters that differ, recorded and default.
    DEVICE and the output folders are not compared."""
    defaults = {}
    for notebook in sorted(Path(notebooks).glob("*.ipynb")):
        values = notebook_defaults(notebook)
        defaults[values.get("NAME", notebook.stem)] = values
    problems = []
    superseded = superseded_results(results)
    for path in sorted(Path(results).glob("*.json")):
        if path.stem in superseded:
            continue
        try:
            recorded = json.loads(path.read_text()).get("parameters")
        except (OSError, ValueError, AttributeError):
            recorded = None
        expected = defaults.get(path.stem)
        if expected is None:
            problems.append(f"{_shown(path)} was made by no notebook's defaults (no notebook has NAME '{path.stem}')")
        elif not isinstance(recorded, dict):
            problems.append(f"{_shown(path)} records no parameters")
        else:
            differ = [f"{k}={recorded[k]!r} (default {v!r})" if k in recorded else f"{k} missing (default {v!r})"
                      for k, v in expected.items() if k not in NOT_COMPARED and recorded.get(k, ...) != v]
            if differ:
                problems.append(f"{_shown(path)} has {', '.join(differ)}")
    return problems


SUPERSEDED_FILE = "SUPERSEDED"


def superseded_results(results: str | os.PathLike = RESULTS_DIR) -> dict[str, str]:
    """``<results>/SUPERSEDED``: tracked results whose notebook has moved on to a protocol not yet
    run, one ``name: reason`` per line (``#`` comments). The paper guard skips them and says so
    each time, and the paper prints the reason where it uses them: an exception made on purpose
    and in the open, not a silent mismatch."""
    path = Path(results) / SUPERSEDED_FILE
    if not path.is_file():
        return {}
    listed = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, reason = line.partition(":")
            if not sep or not reason.strip():
                raise ConfigError(f"{path}: each line is 'name: reason', got {line!r}")
            listed[name.strip()] = reason.strip()
    return listed


def check_results(results: str | os.PathLike = RESULTS_DIR, notebooks: str | os.PathLike = NOTEBOOKS_DIR,
                  allow_nondefault: bool = False) -> list[str]:
    """``nondefault_results``; a one-line ``ConfigError`` naming them unless ``allow_nondefault``."""
    problems = nondefault_results(results, notebooks)
    if problems and not allow_nondefault:
        raise ConfigError(f"{'; '.join(problems)}. The paper is built from results made with each notebook's "
                          "defaults: run `make figures`, or build it anyway with `make paper ALLOW_NONDEFAULT=1`")
    return problems
