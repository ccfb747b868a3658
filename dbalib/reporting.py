"""What a notebook records: its parameters, each run's key numbers and the claim checks, as JSON.

``write_key_numbers`` writes ``results/<name>.json`` (tracked in git; the paper's numbers are
generated from these files) atomically. ``summary_table`` shows the same numbers as a table.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .paths import RESULTS_DIR
from .results import Result, atomic_write_json, environment_info
from .study import Claim, claims_to_json, summarize


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
    """Write ``<folder>/<name>.json`` with everything the paper and the smoke tests read."""
    path = Path(folder or RESULTS_DIR) / f"{name}.json"
    payload = {
        "name": name,
        "parameters": parameters,
        "runs": {label: summarize(result) | {"cache_key": result.config.cache_key(), "config": result.config.to_dict()}
                 for label, result in runs.items()},
        "claims": claims_to_json(claims),
        "claims_agreeing": sum(c.agrees for c in claims),
        "claims_total": len(claims),
        "environment": {k: v for k, v in environment_info().items() if k != "platform"},
    }
    if extra:
        payload["extra"] = extra
    atomic_write_json(path, payload)
    return path


def summary_table(runs: dict[str, Result]) -> pd.DataFrame:
    """Per run and trigger: peak ASR (and its round), ASR at the last attack, final ASR, rounds to < 50%."""
    rows = []
    for label, result in runs.items():
        summary = summarize(result)
        for trigger, numbers in summary["triggers"].items():
            rows.append({"run": label, "trigger": trigger, **{k: numbers[k] for k in (
                "peak", "peak_round", "at_last_attack", "final", "final_std", "rounds_to_below_50")}})
    return pd.DataFrame(rows).set_index(["run", "trigger"])


def print_claims(claims: list[Claim]) -> None:
    agreeing = sum(c.agrees for c in claims)
    print(f"{agreeing} of {len(claims)} claims agree with this run\n")
    for claim in claims:
        print(claim.line())
