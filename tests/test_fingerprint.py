"""The code fingerprint: caches never return results made by other code; git_dirty means what it says."""

from __future__ import annotations

import dbalib
from dbalib.core import fingerprint
from dbalib.core.fingerprint import code_fingerprint, module_digest
from dbalib.core.results import RunStore, environment_info

CODE = '''"""Module docstring."""
def step(x):
    """Docstring."""
    return x + 1  # comment
'''


def test_digest_ignores_docstrings_comments_and_layout_but_not_code():
    same = CODE.replace('"""Docstring."""', '"""Another docstring."""').replace("# comment", "# other")
    assert module_digest(same) == module_digest(CODE)
    assert module_digest(CODE.replace("x + 1", "x  +  1")) == module_digest(CODE)
    assert module_digest(CODE.replace("x + 1", "x + 2")) != module_digest(CODE)


def test_fingerprint_covers_the_simulator_core():
    assert {"simulation", "batched", "clients", "evaluation", "defenses", "model"} <= set(fingerprint.RUN_MODULES)
    assert len(code_fingerprint()) == 16


def test_other_code_gets_another_cache_key_and_folder(tmp_path, monkeypatch):
    cfg = dbalib.preset("single_shot_dba", device="cpu")
    before = cfg.cache_key(), RunStore(tmp_path, cfg).dir
    monkeypatch.setattr(fingerprint, "code_fingerprint", lambda: "0123456789abcdef")
    after = cfg.cache_key(), RunStore(tmp_path, cfg).dir
    assert before[0] != after[0] and before[1] != after[1]


def test_records_carry_the_fingerprint_and_a_source_only_dirty_flag(monkeypatch):
    info = environment_info()
    assert info["code_fingerprint"] == code_fingerprint()
    assert info["git_dirty"] in (True, False, None)
    calls = []
    monkeypatch.setattr(fingerprint.subprocess, "run", lambda args, **kw: calls.append(args) or
                        type("Done", (), {"stdout": "", "returncode": 0})())
    assert fingerprint.source_dirty() is False
    assert calls and "figures" not in calls[0] and "dbalib" in calls[0]  # outputs never make a tree dirty


def test_a_worker_with_other_code_refuses_to_compute(tmp_path, monkeypatch):
    """Files edited while a sweep runs: spawned workers would import other code; they refuse."""
    import pytest

    from dbalib.core import sweep  # the module (dbalib.sweep is the function)
    from dbalib.core.errors import CodeChangedError

    sweep._same_code_as_parent(code_fingerprint())  # same code: fine
    sweep._same_code_as_parent(None)  # not started by a parent
    monkeypatch.setenv(sweep.PARENT_CODE, "0123456789abcdef")
    with pytest.raises(CodeChangedError, match="changed while this run was in flight"):
        sweep._local_job(dbalib.preset("clean", device="cpu").to_dict(), 0, str(tmp_path))
    assert not list(tmp_path.iterdir())  # nothing computed or stored


def test_digest_is_the_same_on_every_python():
    """ast.dump differs between versions (3.12 adds type_params to functions and classes); the
    canonical dump leaves such fields out, so a GPU machine's Python keys runs like the CPU's."""
    import ast

    source = "class A:\n    def f(self, x):\n        return x + 1\n"
    plain = fingerprint._canonical(ast.parse(source))
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            node.type_params = []
            node._fields = (*node._fields, "type_params") if "type_params" not in node._fields else node._fields
    assert fingerprint._canonical(tree) == plain
    assert module_digest(source) != module_digest(source.replace("x + 1", "x + 2"))
