"""Move run stores to today's cache keys when only the key, not the computation, has changed.

    python benchmarks/rekey_runs.py RUNS_DIR --python /path/to/python3.12   (old fingerprint)
    python benchmarks/rekey_runs.py RUNS_DIR --from-commit COMMIT          (refactor since COMMIT)

Second form: the simulator's source changed since COMMIT without changing what it computes (moved
imports, moved modules), so its fingerprint, and every cache key, changed. The script moves a run
only when (1) its key is the key COMMIT's code computes for its config (checked in a temporary
worktree of COMMIT), and (2) a short CPU run of DBA and CBA, with both engines, gives bit-identical
metrics under COMMIT's code and today's. Otherwise nothing moves. Pretraining checkpoints made by
COMMIT's code are then copied to the names today's code looks for.

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
import os
import subprocess
import sys
import tempfile
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
    tree = strip(ast.parse(open(f"dbalib/core/{name}.py").read()))
    module = hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()
    digest.update(f"{name}:{module}\\n".encode())
print(digest.hexdigest()[:16])
"""


def old_fingerprint(python: str) -> str:
    from dbalib.core.fingerprint import RUN_MODULES

    return subprocess.run([python, "-c", _OLD_FINGERPRINT, ",".join(RUN_MODULES)], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


_KEYS = """
import json, sys
from dbalib import Config
print(json.dumps([Config.from_dict(c).cache_key() for c in json.load(sys.stdin)]))
"""

_PROBE = """
import json, sys, tempfile
import dbalib
small = dict(rounds=14, pretrain_rounds=2, data_fraction=0.1, test_samples=500, progress=False)
out = {}
for engine in ("sequential", "batched"):
    for name, rounds in (("single_shot_dba", [12, 12, 13, 14]), ("multi_shot_cba", [11, 12, 13])):
        cfg = dbalib.preset(name, attack_rounds=rounds, engine=engine, **small)
        result = dbalib.run_many([cfg], seeds=[0, 1], out=tempfile.mkdtemp(), progress=False)[0]
        frame = result.metrics.drop(columns=[c for c in result.metrics if c.startswith("seconds")])
        out[f"{name}/{engine}"] = frame.to_json(orient="split", double_precision=15)
print(json.dumps(out))
"""


_FINGERPRINT = "from dbalib.core.fingerprint import code_fingerprint; print(code_fingerprint())"


def _python_in(tree: Path, script: str, stdin: str = "") -> str:
    env = dict(os.environ, PYTHONPATH=str(tree), DBALIB_CACHE=str(Path(tempfile.mkdtemp()) / "cache"))
    return subprocess.run([sys.executable, "-c", script], cwd=tree, input=stdin, env=env, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]


def refactor_only(commit: str, configs: list[dict]) -> tuple[list[str], str]:
    """The keys ``commit``'s code gives ``configs`` and its code fingerprint, after proving that a
    short run computes the same metrics under ``commit`` and today's code (raises otherwise)."""
    old = Path(tempfile.mkdtemp()) / "old"
    subprocess.run(["git", "worktree", "add", "--detach", str(old), commit], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        keys = json.loads(_python_in(old, _KEYS, json.dumps(configs)))
        old_code = _python_in(old, _FINGERPRINT)
        before, after = json.loads(_python_in(old, _PROBE)), json.loads(_python_in(ROOT, _PROBE))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)
    differ = [name for name in before if before[name] != after.get(name)]
    if differ:
        raise SystemExit(f"today's code computes other metrics than {commit} for {differ}: not a refactor")
    print(f"probe runs ({', '.join(before)}): bit-identical under {commit} and today's code")
    return keys, old_code


def rekey_pretraining(old_code: str) -> None:
    """Copy every pretraining checkpoint made by the code with fingerprint ``old_code`` to the name
    today's code looks for (its key with today's fingerprint); the old file stays. Only after
    ``refactor_only`` proved that the code computes the same (the probe runs pretrain too)."""
    import torch

    from dbalib.core.checkpoint import checkpoint_problem, save_checkpoint
    from dbalib.core.fingerprint import code_fingerprint
    from dbalib.core.paths import cache_dir
    from dbalib.core.simulation import pretrain_digest

    folder, moved = cache_dir() / "pretrain", 0
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        key = saved.get("key") if isinstance(saved, dict) else None
        if not isinstance(key, dict) or key.get("code") != old_code or checkpoint_problem(saved, key):
            continue
        new_key = key | {"code": code_fingerprint()}
        target = folder / f"{pretrain_digest(new_key)}.pt"
        if not target.exists():
            save_checkpoint(target, saved["global"], saved["seconds"], new_key)
            moved += 1
    print(f"pretraining checkpoints re-keyed: {moved} (in {folder})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--python", help="an interpreter of the Python version that made the runs")
    how.add_argument("--from-commit", help="the commit whose code made the runs (refactor since)")
    args = parser.parse_args()
    from dbalib import Config
    from dbalib.core.atomic import atomic_write_json

    run_dirs = sorted(p for p in args.runs.iterdir() if (p / "run.json").is_file())
    records = [json.loads((d / "run.json").read_text()) for d in run_dirs]
    if args.python:
        legacy = old_fingerprint(args.python)
        print(f"old fingerprint of the current source under {args.python}: {legacy}")
        valid = [r.get("environment", {}).get("code_fingerprint") == legacy for r in records]
    else:
        old_keys, old_code = refactor_only(args.from_commit, [r["config"] for r in records])
        valid = [r["cache_key"] == k for r, k in zip(records, old_keys)]
        rekey_pretraining(old_code)
    for run_dir, record, ok in zip(run_dirs, records, valid):
        if not ok:
            print(f"  {run_dir.name}: not made by that code: left alone")
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
