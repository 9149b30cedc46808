"""Small modules and functions: every module of the package under 400 lines, every function under 60."""
from __future__ import annotations

import ast

from tests.helpers.paths import ROOT

MODULE_LINES = 400
FUNCTION_LINES = 60
PACKAGE = ROOT / "graphprune"


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_modules_to_measure():
    assert len(_modules()) > 100 and (PACKAGE / "pipeline" / "compose.py") in _modules()


def test_every_module_is_under_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) >= MODULE_LINES}
    assert long == {}


def test_every_function_is_under_the_line_limit():
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines >= FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}
