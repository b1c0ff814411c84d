"""The package's shape: no import cycles among asm's modules (function-level imports
included) and no product module over :data:`MAX_LINES` lines."""

from __future__ import annotations

import ast
from pathlib import Path

ASM = Path(__file__).resolve().parents[1] / "asm"
#: The longest a module under asm/ may be.
MAX_LINES = 400


def _name(path: Path) -> str:
    parts = list(path.relative_to(ASM.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_name(p): p for p in sorted(ASM.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The asm modules ``name`` imports anywhere in its body (``TYPE_CHECKING`` blocks
    excepted: they never run). ``from pkg import x`` counts ``pkg.x`` when that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) for name, path in modules.items()}
    for name in known:  # importing a.b.c runs a and a.b first
        for dep in list(graph[name]):
            parts = dep.split(".")
            graph[name] |= {".".join(parts[:i]) for i in range(1, len(parts))} - {name, "asm"}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_finds_function_level_imports():
    graph = _graph()
    assert "asm.search.search" in graph["asm.analysis"]
    assert "asm.settings" in graph["asm.batch.job"]  # imported inside a function there


def test_no_import_cycles():
    # package __init__ modules only name their children lazily (asm.lazy): importing a child
    # does not run its siblings, so the edges into a package's own children are left out
    graph = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in _graph().items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_module_over_the_line_limit():
    long = {name: n for name, p in _modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


# --------------------------------------------------------------------------- docs/architecture.md

DOC = ASM.parent / "docs" / "architecture.md"


def _resolve(dotted: str) -> object:
    """The object an ``asm.x.y.Name.attr`` name in the document means: the longest importable
    module prefix, then attributes."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)  # AttributeError: the document names what is not there
        return obj
    raise ModuleNotFoundError(dotted)


def _defined(path: Path, dotted: list[str]) -> bool:
    """Whether ``Class.method`` (or a function) is defined in the file at ``path`` (read, not
    imported: the handler needs TorchServe)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scope: list[ast.AST] = list(tree.body)
    for name in dotted:
        node = next((n for n in scope if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == name), None)
        if node is None:
            return False
        scope = list(node.body)
    return True


def test_the_architecture_document_names_what_exists():
    import re

    text = DOC.read_text(encoding="utf-8")
    names = sorted(set(re.findall(r"\basm(?:\.\w+)+", text)))
    assert len(names) > 30
    for name in names:
        _resolve(name)
    # the shells outside the package: handler/asm_handler.py, handler/kserve_v2.py, gradio_demo/app.py
    for name in sorted(set(re.findall(r"\b(handler\.asm_handler|kserve_v2|gradio_demo\.app)((?:\.\w+)*)", text))):
        module, rest = name
        path = ASM.parent / ("handler/kserve_v2.py" if module == "kserve_v2" else module.replace(".", "/") + ".py")
        assert path.is_file(), module
        assert _defined(path, rest.split(".")[1:]), module + rest
