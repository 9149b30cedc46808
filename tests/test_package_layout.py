"""The package's import graph, read from the modules' own import statements (issue 9).

* no import cycle between modules;
* every module imports only from its own tier or the tiers below (the graph view at the bottom,
  ``api`` and ``cli`` on top);
* pipeline stages do not import each other: they meet only through their values;
* ``planning`` is pure: nothing in it runs onnxruntime or reads files of models.
Function-level imports count too: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "graphprune"

#: (module prefix, tier): the most specific prefix decides; a module may import its own tier or lower
TIERS = (
    ("graphprune.errors", 0), ("graphprune.vocabulary", 0), ("graphprune.progress", 0), ("graphprune.version", 0),
    ("graphprune.lazy", 0),
    ("graphprune.graph", 1),
    ("graphprune.rules", 2), ("graphprune.input_checks", 2), ("graphprune.structure_checks", 2), ("graphprune.report", 2),
    ("graphprune.analysis", 3), ("graphprune.io", 3),
    ("graphprune.passes", 4), ("graphprune.surgery", 4), ("graphprune.importance", 4), ("graphprune.planning", 4),
    ("graphprune.oracle", 4), ("graphprune.calibration.stats", 4), ("graphprune.calibration.sites", 4),
    ("graphprune.profiling.macs", 4), ("graphprune.profiling.counts", 4), ("graphprune.profiling.tensors", 4),
    ("graphprune.validation", 5), ("graphprune.profiling", 5), ("graphprune.calibration", 5),
    ("graphprune.compensation", 5), ("graphprune.execution", 5),
    ("graphprune.pipeline", 6),
    ("graphprune.api", 7),
    ("graphprune.cli", 8), ("graphprune.__main__", 8),
    ("graphprune", 9),  # the package's own __init__ (lazy re-exports of the API)
)
STAGES = ("load", "prepare", "analyze", "score", "decide", "budget", "apply", "check")
#: modules whose import means running onnxruntime or reading model files
RUNTIME = ("graphprune.validation", "graphprune.io", "graphprune.execution", "graphprune.calibration.collect",
           "graphprune.profiling.shapes", "graphprune.profiling.bench", "graphprune.profiling.model_profile")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _targets(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("graphprune")}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if not target.startswith("graphprune"):
                continue
            for alias in node.names:  # ``from pkg import module`` imports the module itself
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return {t for t in out if t != name}


@pytest.fixture(scope="module")
def imports() -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in _targets(name, path, set(modules)):
            assert target in modules, f"{name} imports {target}, which does not exist"
            graph.add_edge(name, target)
    return graph


def tier(module: str) -> int:
    matches = [(len(p), t) for p, t in TIERS if module == p or module.startswith(p + ".")]
    assert matches, f"{module} has no tier: add it to TIERS"
    return max(matches)[1]


def test_the_import_graph_is_read_from_every_module(imports):
    assert imports.number_of_nodes() > 80
    assert imports.has_edge("graphprune.pipeline.compose", "graphprune.pipeline.decide")
    assert imports.has_edge("graphprune.analysis.builder", "graphprune.rules.shapevalue")


def test_no_import_cycle(imports):
    cycles = [sorted(c) for c in nx.strongly_connected_components(imports) if len(c) > 1]
    assert cycles == []


def test_no_module_imports_one_above_it(imports):
    upward = [(a, b) for a, b in imports.edges if tier(b) > tier(a)]
    assert upward == []


def test_the_graph_view_is_at_the_bottom_and_cli_api_on_top(imports):
    for module in imports:
        if module.startswith("graphprune.graph"):
            assert all(tier(t) <= 1 for t in imports.successors(module)), module
    readers_of_cli = {a for a, b in imports.edges if b.startswith("graphprune.cli") and not a.startswith("graphprune.cli")}
    assert readers_of_cli <= {"graphprune.__main__"}
    readers_of_api = {a for a, b in imports.edges if b == "graphprune.api"}
    assert readers_of_api <= {m for m in imports if m.startswith("graphprune.cli")} | {"graphprune"}


def test_pipeline_stages_meet_only_through_values(imports):
    stages = {f"graphprune.pipeline.{s}" for s in STAGES}
    crossing = [(a, b) for a, b in imports.edges if a in stages and b in stages]
    assert crossing == []


def test_planning_runs_nothing(imports):
    planning = [m for m in imports if m.startswith("graphprune.planning")]
    reach = set().union(*(nx.descendants(imports, m) for m in planning))
    assert sorted(m for m in reach if m.startswith(RUNTIME)) == []


def test_test_files_import_no_other_test_file():
    """Shared test code lives in tests/helpers; a test file never imports another test file."""
    tests = PACKAGE.parent / "tests"
    offenders = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else []
            if any(part.startswith("test_") for name in names for part in name.split(".")[1:]):
                offenders.append(str(path.relative_to(tests)))
    assert offenders == []
