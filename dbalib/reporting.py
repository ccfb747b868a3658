"""What a notebook records: its parameters, each run's key numbers and the claim checks, as JSON.

``write_key_numbers`` writes ``results/<name>.json`` (tracked in git; the paper's numbers are
generated from these files) atomically: with every claim's verdict ("agrees", "differs" or
"inconclusive"), per-seed values, interval and threshold sensitivity, how many claims got each
verdict, and the threshold table they were judged by. ``summary_table`` shows the key numbers as a
table.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .paths import RESULTS_DIR
from .results import Result, atomic_write_json, environment_info
from .stats import AGREES, DIFFERS, INCONCLUSIVE
from .study import Claim, claims_to_json, summarize, threshold_table, verdict_counts


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
    counts = verdict_counts(claims)
    print(f"{counts[AGREES]} of {len(claims)} claims agree with this run ({counts[DIFFERS]} differ, "
          f"{counts[INCONCLUSIVE]} inconclusive: 95% intervals over seeds against the thresholds of "
          "dbalib.stats.THRESHOLDS)\n")
    for claim in claims:
        print(claim.line())
