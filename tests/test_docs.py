"""docs/*.md say only what the repository has.

* every repository path a doc names exists (and a ``file.py:name`` names something that file
  defines), every relative link leads to a file and heading that exist;
* every ``--flag`` exists: in a ``graphprune COMMAND ...`` command, in that command's parser; in a
  ``python benchmarks/X.py ...`` command, in that script's; elsewhere in some parser of the CLI;
* docs/ops.md's op table is what the rule registry writes (``python -m graphprune.rules``);
* no doc mentions what the project no longer uses or paths outside the repository.

Each check is a function over a doc's text, tested on a broken text as well, so it can fail.
"""
from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from graphprune.cli import build_parser
from graphprune.rules import DEFAULT_RULES, RuleResult
from graphprune.rules.__main__ import build_parser as build_rules_parser
from graphprune.rules.catalog import BEGIN, END, ops_markdown, with_op_table
from tests.helpers.paths import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
PACKAGE = ROOT / "graphprune"
#: first components of repository-relative paths (``graphprune/`` may be left out, see architecture.md)
TOP = {"graphprune", "tests", "benchmarks", "models", "docs"}
SUBPACKAGES = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
SPAN = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"^(?P<path>[\w.\-/]+?)(?::(?P<symbol>[A-Za-z_][\w.]*))?$")
LINK = re.compile(r"\]\(([^)\s]+)\)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


# --------------------------------------------------------------------------- paths and links
def _defined(path: Path, symbol: str) -> bool:
    """Whether ``symbol`` (``name`` or ``Class.member``) is defined at the top of a Python file."""
    scope = ast.parse(path.read_text(encoding="utf-8")).body
    for part in symbol.split("."):
        found = None
        for node in scope:
            names = [node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else \
                [t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
            if part in names:
                found = node
        if found is None:
            return False
        scope = getattr(found, "body", [])
    return True


def _is_repo_path(path: str) -> bool:
    first = path.split("/", 1)[0]
    return ("/" in path and (first in TOP or first in SUBPACKAGES)) or ("/" not in path and path.endswith(".py"))


def _resolve(path: str, context: Path | None) -> Path | None:
    bases = ([context] if context is not None and "/" not in path else []) + [PACKAGE, ROOT]
    return next((base / path for base in bases if (base / path).exists()), None)


def missing_paths(text: str) -> list[str]:
    """Repository paths in code spans that do not exist (``x.py`` alone is looked up in the last
    directory named before it on the same line, then in graphprune/)."""
    missing = []
    for line in text.splitlines():
        context = None
        for span in SPAN.findall(line):
            match = PATH.match(span.strip())
            if not match or not _is_repo_path(match["path"]):
                continue
            found = _resolve(match["path"], context)
            if found is None:
                missing.append(span)
                continue
            if match["symbol"] and not (found.suffix == ".py" and _defined(found, match["symbol"])):
                missing.append(span)
            context = found if found.is_dir() else found.parent
    return missing


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    heads = re.findall(r"^#+\s+(.*)$", path.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def broken_links(text: str, doc_dir: Path) -> list[str]:
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = doc_dir / file if file else None
        if path is not None and not path.exists():
            broken.append(target)
        elif anchor and path is not None and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(target)
    return broken


# --------------------------------------------------------------------------- flags
def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


@cache
def cli_flags() -> dict[str, set[str]]:
    """Flags of the CLI: ``""`` the top-level parser's, else each command's (with the top-level's)."""
    root = build_parser()
    commands = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction)).choices
    top = _flags(root)
    return {"": top, **{name: _flags(sub) | top for name, sub in commands.items()}}


@cache
def script_flags(script: str) -> set[str]:
    """Flags of ``python benchmarks/<script>.py`` (from its --help) or ``python -m graphprune.rules``."""
    if script == "graphprune.rules":
        return _flags(build_rules_parser())
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "--help"], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return set(FLAG.findall(out.stdout))


def _scope(command: str) -> set[str] | None:
    """The flags a command line may use, or None when it is not a command."""
    command = command.strip().removeprefix("$ ")
    if match := re.match(r"graphprune (\w+)", command):
        return cli_flags().get(match[1], set())
    if match := re.match(r"python (?:benchmarks/(\w+)\.py|-m (graphprune\.rules))\b", command):
        return script_flags(match[1] or match[2])
    return None


def unknown_flags(text: str) -> list[str]:
    """Flags a command in the text does not take, and flags in prose that no CLI parser has."""
    unknown, rest = [], text
    commands = [(f"`{span}`", span) for span in SPAN.findall(text)]
    commands += [(line, line) for block in FENCE.findall(text) for line in block.splitlines()]
    for raw, command in commands:
        allowed = _scope(command)
        if allowed is not None:
            unknown += [f"{flag} ({command.strip()})" for flag in FLAG.findall(command) if flag not in allowed]
            rest = rest.replace(raw, "")
    every = set().union(*cli_flags().values())
    return unknown + [flag for flag in FLAG.findall(rest) if flag not in every]


# --------------------------------------------------------------------------- the docs
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_and_link_exists(doc):
    text = doc.read_text(encoding="utf-8")
    assert missing_paths(text) == []
    assert broken_links(text, doc.parent) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_flag_exists(doc):
    assert unknown_flags(doc.read_text(encoding="utf-8")) == []


STALE = re.compile(r"scipy|graphsurgeon|\bprov(?:en|e|es|ing)\b|\bproofs?\b|DESIGN\.md|/work/|\.\./shared", re.I)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_stale_names_or_outside_paths(doc):
    assert STALE.findall(doc.read_text(encoding="utf-8")) == []


def test_ops_doc_is_what_the_registry_writes():
    text = (ROOT / "docs" / "ops.md").read_text(encoding="utf-8")
    assert with_op_table(text) == text, "regenerate: python -m graphprune.rules --update docs/ops.md"
    table = text[text.index(BEGIN):text.index(END)]
    for domain, op_type in DEFAULT_RULES.ops():  # every op is named, in its own module's row
        module = DEFAULT_RULES.entries(domain, op_type)[0].fn.__module__.rsplit(".", 1)[-1]
        row = next(line for line in table.splitlines() if f"`graphprune/rules/{module}.py`" in line)
        assert re.search(rf"(?<![\w.]){op_type}\b", row), (domain, op_type)


# --------------------------------------------------------------------------- the checks can fail
def test_path_check_reports_missing_files_symbols_and_links(tmp_path):
    good = "`pipeline/compose.py:prune`, `rules/` (`conv.py`), `tests/test_docs.py`, `plan.json`"
    assert missing_paths(good) == []
    bad = "`pipeline/compose.py:no_such_stage`, `rules/` (`no_such_rules.py`), `tests/gone.py`, " \
          "`graph/index.py:GraphIndex.no_such_method`"
    assert missing_paths(bad) == ["pipeline/compose.py:no_such_stage", "no_such_rules.py", "tests/gone.py",
                                  "graph/index.py:GraphIndex.no_such_method"]
    (tmp_path / "other.md").write_text("# Other page\n## Memory use\n")
    links = "[a](other.md#memory-use) [b](other.md#memory) [c](gone.md) [d](https://example.org/x)"
    assert broken_links(links, tmp_path) == ["other.md#memory", "gone.md"]


def test_flag_check_reports_flags_no_parser_has():
    good = "`graphprune prune m.onnx -o s.onnx --ratio 0.3` and `--keep-bn`; `python -m graphprune.rules --markdown`"
    assert unknown_flags(good) == []
    bad = "`graphprune fold m.onnx --ratio 0.3`, `--no-such-flag`\n```text\n$ graphprune plan m.onnx --refit-all\n```\n"
    assert unknown_flags(bad) == ["--ratio (graphprune fold m.onnx --ratio 0.3)",
                                  "--refit-all ($ graphprune plan m.onnx --refit-all)", "--no-such-flag"]


def test_op_table_changes_with_the_registry():
    rules = DEFAULT_RULES.copy()
    rules.register("Swish", domain="my.ops", since=3)(lambda ctx: RuleResult())
    assert ops_markdown(rules) != ops_markdown() and "Swish (opset ≥ 3)" in ops_markdown(rules)
    text = (ROOT / "docs" / "ops.md").read_text(encoding="utf-8")
    edited = text.replace("Conv, ConvTranspose |", "Conv |", 1)  # a hand edit of the generated table
    assert edited != text and with_op_table(edited) == text
    with pytest.raises(ValueError, match="markers"):
        with_op_table(text.replace(END, ""))


def test_stale_pattern_catches_what_it_names():
    assert STALE.findall("uses scipy; onnx-graphsurgeon; proven; a proof; ../shared/DESIGN.md; /work/main") == \
        ["scipy", "graphsurgeon", "proven", "proof", "../shared", "DESIGN.md", "/work/"]
