"""The package's layers, bottom to top; an import may only go down (or sideways where allowed below).

    0  rlvr.errors, rlvr.interfaces           the errors users see; small types and protocols
       rlvr.distributed                       rank 0, barriers, gathering (identity without a launcher)
       rlvr.files                             atomic writes: stage, fsync, rename, fsync the directory
    1  rlvr.scoring                           answer formats, extraction, numbers, verifiers, Scorer
       rlvr.schema                            a component's arguments checked against its signature
    2  rlvr.config, rlvr.data, rlvr.rewards, rlvr.model
    3  rlvr.train, rlvr.evaluation, rlvr.observers, rlvr.report
    4  rlvr.orchestration                     the pipeline and its run context
    5  rlvr.cli, rlvr.benchmark, rlvr.audit, rlvr.report_cli   entry points
       rlvr.preflight                         the checks before a run (the CLI branches to it; it runs the audit)

Within a layer, only the pairs in SIDEWAYS may import each other (and never both ways). An import inside a
function is allowed only for a heavy third-party library (to keep --help and config errors fast), never for
one of our own modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "rlvr"
LAYERS = {
    "errors": 0, "interfaces": 0, "distributed": 0, "devices": 0, "files": 0,
    "scoring": 1, "schema": 1,
    "config": 2, "data": 2, "rewards": 2, "model": 2,
    "train": 3, "evaluation": 3, "observers": 3, "report": 3,
    "orchestration": 4,
    "cli": 5, "benchmark": 5, "audit": 5, "report_cli": 5, "preflight": 5,
    "conf": 0, "__init__": 0,
}
SIDEWAYS = {("observers", "report"),  # the report observer writes the run report
            ("cli", "preflight"), ("preflight", "audit")}  # preflight=true; the audit is one of its checks


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out.append((name, path))
    return out


def rlvr_imports(path: Path) -> list[tuple[str, bool]]:
    """``(imported rlvr module, inside a function)`` for every import of ours in the file."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.module and child.module.split(".")[0] == "rlvr":
                found.append((child.module, in_function))
            elif isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names if a.name.split(".")[0] == "rlvr")
            visit(child, nested)

    visit(tree, False)
    return found


def test_every_package_has_a_layer():
    assert {package(m) for m, _ in modules()} <= set(LAYERS)


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_only_go_down(module, path):
    mine = package(module)
    for imported, in_function in rlvr_imports(path):
        theirs = package(imported)
        assert not in_function, f"{module} imports {imported} inside a function: import it at the top"
        if theirs == mine:
            continue
        assert LAYERS[theirs] <= LAYERS[mine], (f"{module} (layer {LAYERS[mine]}) imports {imported} "
                                                f"(layer {LAYERS[theirs]})")
        if LAYERS[theirs] == LAYERS[mine]:
            assert (mine, theirs) in SIDEWAYS, f"{module} imports {imported}, a sibling in layer {LAYERS[mine]}"


def test_config_validation_imports_no_component():
    for module, path in modules():
        if package(module) == "config":
            assert all(package(m) in ("errors", "interfaces", "schema", "scoring", "config", "devices")
                       for m, _ in rlvr_imports(path))


def test_a_violation_is_caught(tmp_path):
    """The checker itself: a data module importing the rewards layer is flagged."""
    bad = tmp_path / "bad.py"
    bad.write_text("from rlvr.rewards import RewardSuite\n\ndef f():\n    from rlvr.scoring import Scorer\n")
    assert rlvr_imports(bad) == [("rlvr.rewards", False), ("rlvr.scoring", True)]
