"""The layering docs/architecture.md describes, checked on the source: the analysis core, the
memory model and the engine name no framework (frontends/registry.py composes them), frontends
do not import each other in a cycle, and model discovery does not import the memory estimate."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "vramlint"
CORE = ("analysis", "memory", "engine")
# The libraries with (or about to get) a frontend of their own. (An optimizer's description may say
# which library implements it: data, not a branch on a framework.)
FRAMEWORKS = re.compile(r"keras|transformers|peft|diffusers|lightning", re.IGNORECASE)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The vramlint modules a file imports, at the top or inside functions (a lazy import is an import)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("vramlint")}


def _framework_mentions(path: Path) -> list[str]:
    """Names, attributes, imports and string constants naming a framework; docstrings and
    comments (which may name one as an example) are not code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.alias):
            text = node.name
        elif isinstance(node, ast.ImportFrom):
            text = node.module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
        if text and FRAMEWORKS.search(text):
            found.append(f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', '?')}: {text[:60]!r}")
    return found


@pytest.mark.parametrize("layer", CORE)
def test_the_core_names_no_framework(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files
    assert [m for f in files for m in _framework_mentions(f)] == []


def test_the_check_sees_a_framework_in_code(tmp_path: Path) -> None:
    """The check above is not vacuous: an import and a string are found, a docstring is not."""
    f = PACKAGE / "analysis" / "_probe_for_test.py"
    try:
        f.write_text('"""Keras, as an example."""\nfrom vramlint.frontends.keras.layer import is_keras\nX = "keras"\n')
        assert len(_framework_mentions(f)) == 3  # the module, the name imported, the string
    finally:
        f.unlink()


def _frontend_graph() -> dict[str, set[str]]:
    frontends = PACKAGE / "frontends"
    # frontends/interface.py, registry.py, training_setup.py: shared by the frontends, not one of them.
    shared = {f.stem for f in frontends.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for f in frontends.rglob("*.py"):
        parts = f.relative_to(frontends).parts
        if len(parts) < 2:
            continue
        deps = {m.split(".")[2] for m in _imports(f) if m.startswith("vramlint.frontends.") and len(m.split(".")) > 2}
        graph.setdefault(parts[0], set()).update(deps - shared - {parts[0]})
    return graph


def test_frontends_do_not_import_each_other_in_a_cycle() -> None:
    graph = _frontend_graph()
    assert {"torch", "keras", "transformers", "diffusers"} <= set(graph)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for n in graph.get(start, ()):
            if n == goal or (n not in seen and reaches(n, goal, seen | {n})):
                return True
        return False

    assert [f for f in graph if reaches(f, f, set())] == []


def test_no_frontend_imports_the_registry() -> None:
    """Only the analysis composes the frontends: a frontend importing the registry would import all the others."""
    users = [f for f in (PACKAGE / "frontends").rglob("*.py")
             if f.name != "registry.py" and "vramlint.frontends.registry" in _imports(f)]
    assert users == []


def _closure(module: str) -> set[str]:
    seen: set[str] = set()
    stack = [module]
    while stack:
        m = stack.pop()
        path = PACKAGE.parent / (m.replace(".", "/") + ".py")
        if not path.exists():
            path = PACKAGE.parent / m.replace(".", "/") / "__init__.py"
        if m in seen or not path.exists():
            continue
        seen.add(m)
        stack.extend(_imports(path))
    return seen


def test_model_discovery_does_not_import_the_memory_estimate() -> None:
    """analysis/api.py composes them: models.py builds and counts, memory.py estimates."""
    assert "vramlint.analysis.memory" not in _closure("vramlint.analysis.models")
    assert not {m for m in _imports(PACKAGE / "analysis" / "models.py") if m.startswith("vramlint.memory")}
    assert "vramlint.analysis.memory" in _closure("vramlint.analysis.api")


def test_the_memory_model_reads_only_the_tensor_values_of_the_frontends() -> None:
    """memory/ models PyTorch's autograd and allocator over the tensors the tape records: from the
    frontends it imports the tensor values, nothing else (no stub, catalog or registry)."""
    used = {m for f in (PACKAGE / "memory").rglob("*.py") for m in _imports(f) if m.startswith("vramlint.frontends")}
    assert used <= {"vramlint.frontends.torch.tensors"} | {f"vramlint.frontends.torch.tensors.{n}" for n in
                                                          ("DTYPE_BYTES", "FLOAT_DTYPES", "BufferTensor", "TensorValue", "numel")}
