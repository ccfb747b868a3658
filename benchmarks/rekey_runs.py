"""Move run stores made under the Python-version-dependent code fingerprint to today's keys.

    python benchmarks/rekey_runs.py RUNS_DIR --python /path/to/python3.12

Until 2026-11-27 the code fingerprint hashed ``ast.dump`` of the simulator's modules, whose text
differs between Python versions (3.12 adds ``type_params``), so runs made on a machine with
another Python were keyed differently for the same source. This script re-keys such runs, but only
after *proving* they were made by the current source: it computes the old fingerprint of the
current ``RUN_MODULES`` with the interpreter that made them (``--python``) and moves a run only when
that equals the fingerprint the run recorded. Seed rows are never touched (their SHA-256 stays
valid); the seed and run records get the new cache key and a ``rekeyed_from`` note.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_OLD_FINGERPRINT = """
import ast, hashlib, sys
names = sys.argv[1].split(",")
def strip(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \\
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree
digest = hashlib.sha256()
for name in names:
    tree = strip(ast.parse(open(f"dbalib/{name}.py").read()))
    module = hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()
    digest.update(f"{name}:{module}\\n".encode())
print(digest.hexdigest()[:16])
"""


def old_fingerprint(python: str) -> str:
    from dbalib.fingerprint import RUN_MODULES

    return subprocess.run([python, "-c", _OLD_FINGERPRINT, ",".join(RUN_MODULES)], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--python", required=True, help="an interpreter of the Python version that made the runs")
    args = parser.parse_args()
    from dbalib.atomic import atomic_write_json
    from dbalib.config import Config

    legacy = old_fingerprint(args.python)
    print(f"old fingerprint of the current source under {args.python}: {legacy}")
    for run_dir in sorted(p for p in args.runs.iterdir() if (p / "run.json").is_file()):
        record = json.loads((run_dir / "run.json").read_text())
        made_by = record.get("environment", {}).get("code_fingerprint")
        if made_by != legacy:
            print(f"  {run_dir.name}: made by {made_by}, not the current source: left alone")
            continue
        key = Config.from_dict(record["config"]).cache_key()
        old_key = record["cache_key"]
        if key == old_key:
            continue
        for seed_json in sorted((run_dir / "seeds").glob("seed-*.json")):
            info = json.loads(seed_json.read_text())
            info |= {"cache_key": key, "rekeyed_from": old_key}
            atomic_write_json(seed_json, info)
        record |= {"cache_key": key, "rekeyed_from": old_key}
        atomic_write_json(run_dir / "run.json", record)
        target = run_dir.with_name(f"{record['name']}-{key}")
        run_dir.rename(target)
        print(f"  {run_dir.name} -> {target.name}")


if __name__ == "__main__":
    main()
