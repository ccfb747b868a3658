"""The code fingerprint: a digest of the source of every module that can change what a run computes.

A cached result is reused only for the same config *and* the same code: ``Config.cache_key`` and
the pretraining checkpoint key include ``code_fingerprint()``. The fingerprint hashes each
module's syntax tree with docstrings removed (a canonical dump, the same on every Python), so comments, docstrings and
formatting do not invalidate caches, while any change to what the code does does. Modules that
only store, plot or report results are not part of it.

``source_dirty()`` says whether the working tree differs from its commit in a file that can change
a result (the package, the notebooks, the project's pins), ignoring the generated outputs
(figures, results, paper numbers): ``git_dirty`` in a record means what it says.
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
from functools import lru_cache

from .paths import CORE_DIR, PROJECT_DIR

# modules whose code determines a run's numbers (files of the simulator core, dbalib/core/)
# (registry: which config keys each aggregator reads, which needs gradient sums or a root set;
# server: the root set of fltrust and validation_filter)
RUN_MODULES = ("aggregation", "attacks", "batched", "clients", "config", "data", "defenses", "engines",
               "evaluation", "model", "registry", "server", "simulation", "stacked", "triggers")
# tracked paths whose changes can change a result (outputs such as figures/ and results/ are not)
SOURCE_PATHS = ("dbalib", "notebooks", "pyproject.toml", "matplotlibrc", "Makefile")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


# fields that newer Pythons add to old nodes (3.12: type parameters) or that carry no meaning
_VERSION_FIELDS = frozenset({"type_params", "type_comment", "kind"})


def _canonical(node) -> str:
    """A dump of a syntax tree that is the same on every Python from 3.10 on (``ast.dump`` is not:
    3.12 adds ``type_params`` to every function and class, so its digest differed from 3.11's
    for the same source and a GPU machine's runs missed the CPU's cache)."""
    if isinstance(node, ast.AST):
        inner = ",".join(f"{f}={_canonical(getattr(node, f, None))}" for f in node._fields if f not in _VERSION_FIELDS)
        return f"{type(node).__name__}({inner})"
    if isinstance(node, list):
        return "[" + ",".join(_canonical(x) for x in node) + "]"
    return repr(node)


def module_digest(source: str) -> str:
    """SHA-256 of a module's syntax tree without docstrings (comments and layout never count),
    the same on every supported Python version."""
    return hashlib.sha256(_canonical(_strip_docstrings(ast.parse(source))).encode()).hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """16 hex digits over ``RUN_MODULES`` (see the module docstring)."""
    digest = hashlib.sha256()
    for name in RUN_MODULES:
        digest.update(f"{name}:{module_digest((CORE_DIR / f'{name}.py').read_text())}\n".encode())
    return digest.hexdigest()[:16]


def source_dirty() -> bool | None:
    """True when a tracked source file (``SOURCE_PATHS``) differs from HEAD; None without git."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *SOURCE_PATHS],
                             cwd=PROJECT_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None
