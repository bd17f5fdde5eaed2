"""The import rules of the layout (DESIGN.md "Layout"), asserted from the code's own imports.

Every `pipeline/**/*.py` is parsed with `ast`; every `import` / `from ... import` statement
counts, wherever it is: at module level, inside a function, under `if TYPE_CHECKING:`. A name
in a string (`importlib.import_module("pipeline.stages.x")`, a forkserver preload list) is not
an import statement and is not checked.

A module `M` "imports" `pipeline.x` when a statement names it; `from pipeline.x import y`
imports `pipeline.x`, and also `pipeline.x.y` when that is a module of its own. A forbidden
prefix `pipeline.read` matches `pipeline.read` and `pipeline.read.*` (not `pipeline.reader`).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"

# `ftprep check` / `ftprep convert` library modules: pipeline/check.py and pipeline/convert.py
# (named pipeline/checks.py and pipeline/conversion.py in some revisions): both names are rules.
CHECK = ("pipeline.check", "pipeline.checks")
CONVERT = ("pipeline.convert", "pipeline.conversion")

PURE = (
    "pipeline.records",
    "pipeline.reasons",
    "pipeline.errors",
    "pipeline.configdoc",
    "pipeline.registry",
    "pipeline.tokens",
    "pipeline.targets",
    "pipeline.shipped",
    "pipeline.shapes",
    "pipeline.shape_detect",
    "pipeline.dataset.identity",
    "pipeline.dataset.textnorm",
    "pipeline.dataset.minhash",
)


@dataclass(frozen=True)
class Rule:
    importers: tuple[str, ...]  # module prefixes the rule applies to
    forbidden: tuple[str, ...]  # module prefixes they must not import
    why: str


# fmt: off
RULES: tuple[Rule, ...] = (
    # importer prefixes,                    forbidden prefixes,                      why
    Rule(
        ("pipeline.stages", "pipeline.dataset"),
        (
            "pipeline.read", "pipeline.write", "pipeline.engine", "pipeline.runner",
            "pipeline.report", "pipeline.gate", *CHECK, *CONVERT, "pipeline.cli",
            "pipeline.config",
        ),
        "stages and dataset decisions are pure functions over batches / key tables; they "
        "never read, write, run or report, and take their options from pipeline.configdoc, "
        "not the config loader",
    ),
    Rule(
        ("pipeline.read",),
        (
            "pipeline.stages", "pipeline.dataset", "pipeline.write", "pipeline.engine",
            "pipeline.runner", "pipeline.report", "pipeline.gate", "pipeline.cli",
        ),
        "readers only turn inputs into canonical batches; data flows one way",
    ),
    Rule(
        ("pipeline.write",),
        (
            "pipeline.read", "pipeline.stages", "pipeline.engine", "pipeline.runner",
            "pipeline.report", "pipeline.gate", "pipeline.cli",
        ),
        "writers take finished records; they know nothing of reading, stages or running",
    ),
    Rule(
        ("pipeline.engine",),
        (
            "pipeline.runner", "pipeline.read", "pipeline.write", "pipeline.stages",
            "pipeline.dataset", "pipeline.report", "pipeline.gate", "pipeline.cli",
            *CHECK, *CONVERT,
        ),
        "an engine is handed a work function; it knows nothing of stages, files or reports",
    ),
    Rule(
        ("pipeline.report",),
        ("pipeline.runner", "pipeline.engine", "pipeline.cli"),
        "reports are built from the run's counts and metrics, not by running anything",
    ),
    Rule(
        PURE,
        (
            "pipeline.read", "pipeline.write", "pipeline.engine", "pipeline.runner",
            "pipeline.report", "pipeline.gate", "pipeline.cli", *CHECK, *CONVERT,
            "pipeline.stages",
        ),
        "the pure layer is shared by everything above it and depends on nothing above it "
        "(the registry loads stage modules by name through importlib, not an import)",
    ),
)
# fmt: on


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """Whether `name` (pipeline.x.y) is a module file or a package of the tree."""
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_in(source: str, package: str, filename: str = "<probe>") -> Iterator[tuple[int, str]]:
    """(line, module) for every pipeline module an import statement in `source` names.

    `package` is the package the source belongs to (for relative imports).
    """
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _matches(alias.name, "pipeline"):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not _matches(target, "pipeline"):
                continue
            yield node.lineno, target
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if alias.name != "*" and is_module(sub):
                    yield node.lineno, sub


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    yield from imports_in(path.read_text(encoding="utf-8"), package_of(path), str(path))


def all_imports() -> dict[str, list[tuple[str, int, str]]]:
    """Importer module -> [(file, line, imported module)] over the whole package."""
    out: dict[str, list[tuple[str, int, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        out[module_name(path)] = [(rel, line, mod) for line, mod in imports_of(path)]
    return out


IMPORTS = all_imports()


def violations(imports: dict[str, list[tuple[str, int, str]]]) -> list[str]:
    """Every rule violation in `imports` (importer -> [(file, line, module)]), as text."""
    found: list[str] = []
    for importer, imported in sorted(imports.items()):
        for rule in RULES:
            if not any(_matches(importer, p) for p in rule.importers):
                continue
            for where, line, mod in imported:
                bad = [p for p in rule.forbidden if _matches(mod, p)]
                if bad and not _matches(importer, bad[0]):  # a package's own modules are fine
                    found.append(f"{where}:{line}: {importer} imports {mod} ({rule.why})")
        for where, line, mod in imported:
            # a stage module never imports another stage module
            if (
                importer.startswith("pipeline.stages.")
                and mod.startswith("pipeline.stages.")
                and mod.split(".")[2] != importer.split(".")[2]
            ):
                found.append(
                    f"{where}:{line}: {importer} imports {mod} (a stage never imports another "
                    "stage; shared code belongs in the pure layer)"
                )
            # the library never imports the CLI
            if _matches(mod, "pipeline.cli") and importer != "pipeline.cli":
                found.append(
                    f"{where}:{line}: {importer} imports {mod} (the library never imports the "
                    "CLI: cli.py is a thin layer over it)"
                )
    return sorted(dict.fromkeys(found))


def test_import_rules_hold() -> None:
    found = violations(IMPORTS)
    assert not found, f"{len(found)} import rule violation(s):\n" + "\n".join(found)


# --- the checker itself sees what it must --------------------------------------------------


def test_the_parser_sees_the_trees_imports() -> None:
    runner = {mod for _, _, mod in IMPORTS["pipeline.runner"]}
    assert any(_matches(m, "pipeline.engine") for m in runner), runner
    assert "pipeline.dataset" in runner  # `from pipeline.dataset import Decisions, KeyTable`
    # imports inside functions: get_engine imports the local engine in its body
    assert "pipeline.engine.local" in {mod for _, _, mod in IMPORTS["pipeline.engine"]}
    # `from pipeline.dataset import minhash as mh` resolves to the module pipeline.dataset.minhash
    assert "pipeline.dataset.minhash" in {mod for _, _, mod in IMPORTS["pipeline.dataset.dedupe"]}
    # strings are not imports: the registry names stage modules, the engine preloads the runner
    assert not any(m.startswith("pipeline.stages") for _, _, m in IMPORTS["pipeline.registry"])
    assert not any(_matches(m, "pipeline.runner") for _, _, m in IMPORTS["pipeline.engine.local"])


def test_the_parser_sees_nested_type_checking_and_relative_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pipeline.write import jsonl, Something\n"
        "def f():\n"
        "    import pipeline.runner as r\n"
        "    from ..read.plan import iter_units\n"
        "    from . import jsonl\n"
        "import os\n"
    )
    assert sorted(set(imports_in(source, "pipeline.stages"))) == [
        (3, "pipeline.write"),
        (3, "pipeline.write.jsonl"),  # a module of its own; `Something` is not
        (5, "pipeline.runner"),
        (6, "pipeline.read.plan"),
        (7, "pipeline.stages"),
    ]


def test_the_checker_reports_each_kind_of_violation_with_file_and_line() -> None:
    fake = {
        "pipeline.stages.a": [("pipeline/stages/a.py", 3, "pipeline.stages.b")],
        "pipeline.stages.b": [("pipeline/stages/b.py", 4, "pipeline.config")],
        "pipeline.dataset.split": [("pipeline/dataset/split.py", 5, "pipeline.write.jsonl")],
        "pipeline.read.plan": [("pipeline/read/plan.py", 6, "pipeline.stages")],
        "pipeline.write.jsonl": [("pipeline/write/jsonl.py", 7, "pipeline.report.summary")],
        "pipeline.engine.local": [("pipeline/engine/local.py", 8, "pipeline.runner")],
        "pipeline.report.summary": [("pipeline/report/summary.py", 9, "pipeline.engine")],
        "pipeline.gate": [("pipeline/gate.py", 10, "pipeline.cli")],
        "pipeline.tokens": [("pipeline/tokens.py", 11, "pipeline.check")],
        "pipeline.dataset.minhash": [("pipeline/dataset/minhash.py", 12, "pipeline.stages.x")],
        # allowed: a package's own modules, the pure layer, the config loader outside stages
        "pipeline.write.spool": [("pipeline/write/spool.py", 1, "pipeline.write.jsonl")],
        "pipeline.stages.c": [("pipeline/stages/c.py", 1, "pipeline.configdoc")],
        "pipeline.read.jsonl": [("pipeline/read/jsonl.py", 1, "pipeline.readers")],
        "pipeline.cli": [("pipeline/cli.py", 1, "pipeline.runner")],
    }
    found = violations(fake)
    where = [v.split(": ", 1)[0] for v in found]
    assert where == [
        "pipeline/dataset/minhash.py:12",
        "pipeline/dataset/split.py:5",
        "pipeline/engine/local.py:8",
        "pipeline/gate.py:10",
        "pipeline/read/plan.py:6",
        "pipeline/report/summary.py:9",
        "pipeline/stages/a.py:3",
        "pipeline/stages/b.py:4",
        "pipeline/tokens.py:11",
        "pipeline/write/jsonl.py:7",
    ], found


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.importers[0])
def test_every_rule_applies_to_some_module(rule: Rule) -> None:
    """A rule whose importers are all gone (a rename) would pass without checking anything."""
    assert any(any(_matches(m, p) for p in rule.importers) for m in IMPORTS), rule.importers


def test_the_rules_name_real_modules() -> None:
    """Forbidden prefixes name modules of the tree (alternative names: at least one of them)."""
    alternatives = {name: group for group in (CHECK, CONVERT) for name in group}
    missing = set()
    for rule in RULES:
        for prefix in rule.forbidden:
            if not any(is_module(p) for p in alternatives.get(prefix, (prefix,))):
                missing.add(prefix)
    assert not missing, sorted(missing)


# --- `ftprep check` stays light to import ---------------------------------------------------

HEAVY = ("pandas", "numpy", "pyarrow", "tiktoken", "great_expectations")


def test_importing_the_cli_does_not_import_heavy_libraries() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pipeline.cli"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") < 2:
            continue
        name = line.rsplit("|", 1)[1].strip()
        imported.add(name)
    assert "pipeline.cli" in imported, "importtime output not understood"
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert not heavy, f"`import pipeline.cli` imports {heavy}"


NOT_FOR_CHECK = ("great_expectations", "scipy", "altair", "vl_convert", "jinja2", "openpyxl")


def test_ftprep_check_never_imports_the_gate_or_report_libraries(tmp_path: Path) -> None:
    """What README.md promises about a plain `ftprep check` of a JSONL file."""
    chat = '{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}'
    data = tmp_path / "d.jsonl"
    data.write_text((chat + "\n") * 12, encoding="utf-8")
    code = (
        "import sys\n"
        "from pipeline.cli import main\n"
        f"try:\n    main(['check', {str(data)!r}, '--target', 'openai:gpt-4o-mini-2024-07-18'])\n"
        "except SystemExit as e:\n    code = e.code\n"
        f"bad = {NOT_FOR_CHECK!r}\n"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & set(bad)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout
