"""The package's modules import each other without a cycle, counting the imports inside
functions too (a function-local import hides a cycle from Python, not from a reader).

The graph is read from the source with ``ast``, so the test needs no import to succeed; a
module's edges are its ``import latentboost_lab...`` and ``from .x import y`` statements
anywhere in the file. Run ``python tests/test_import_graph.py`` to print the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "latentboost_lab"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """``{module: the package's modules it imports}``."""
    modules = _modules()

    def owner(name: str) -> str:  # a name inside a module -> that module
        while name not in modules:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("latentboost_lab")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                if base.startswith("latentboost_lab"):
                    targets |= {f"{base}.{a.name}" for a in node.names}
        graph[name] = {owner(t) for t in targets} - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle():
    # The same algorithm on a made-up graph: it cannot pass by finding nothing anywhere.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_local_imports():
    graph = import_graph()
    # report imports results at the top, cli imports estimate inside a function.
    assert "latentboost_lab.results" in graph["latentboost_lab.report"]
    assert "latentboost_lab.estimate" in graph["latentboost_lab.cli"]


def test_no_module_imports_itself_back():
    assert cycles(import_graph()) == []


def test_results_and_runstore_import_nothing_that_computes():
    graph = import_graph()
    assert graph["latentboost_lab.runstore"] == set()
    assert graph["latentboost_lab.results"] == {"latentboost_lab.runstore"}
    # __version__, and the thread settings (which read the environment and torch's counts)
    assert graph["latentboost_lab.provenance"] <= {"latentboost_lab", "latentboost_lab.threads"}
    assert graph["latentboost_lab.threads"] == set()


if __name__ == "__main__":
    for module, imports in sorted(import_graph().items()):
        print(module, "->", ", ".join(sorted(imports)) or "-")
    print("cycles:", cycles(import_graph()) or "none")
