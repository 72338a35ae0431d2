"""nbtrack's modules import one another without circles.

The import graph is read from the source (AST only, nothing is imported): every ``import``
and ``from ... import`` statement, at module level or inside a function, is an edge, except
those under ``if TYPE_CHECKING:`` (read by type checkers, never run). ``from pkg import x``
is an edge to ``pkg.x`` when that is a module, else to ``pkg``. Two exceptions, both because
they can never form a circle that runs:

* a package imported only because it is the parent of the named module is not an edge
  (Python has already begun importing it before any of its modules);
* the public façade ``nbtrack/__init__.py`` imports, inside each public function, the module
  that implements it (docs ARCHITECTURE.md: it "may import, lazily, everything"); those
  function-level imports are not edges. Its module-level imports are.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import nbtrack

PACKAGE = Path(nbtrack.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, module_level_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements of ``tree``, skipping ``if TYPE_CHECKING:`` bodies (and function
    bodies when ``module_level_only``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for other in node.orelse:
                yield from _imports(
                    ast.Module(body=[other], type_ignores=[]), module_level_only=module_level_only
                )
        elif module_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        else:
            yield from _imports(node, module_level_only=module_level_only)


def import_graph() -> dict[str, set[str]]:
    """Each module of nbtrack mapped to the nbtrack modules it imports."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in _imports(tree, module_level_only=name == "nbtrack"):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            if node.level:  # relative: resolved against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in paths else source)
        edges = set()
        for target in targets:
            while target and target not in paths:  # `import a.b.c` of a name inside a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_reader_sees_imports_of_every_kind() -> None:
    graph = import_graph()
    # Module level, inside a function, and `from pkg import module`.
    assert "nbtrack.store.sqlite" in graph["nbtrack.store.routing"]
    assert "nbtrack.store.postgres" in graph["nbtrack.store.routing"]  # in a function
    assert "nbtrack.config" in graph["nbtrack.store.sqlite"]  # `from nbtrack import config`
    # Under `if TYPE_CHECKING:` only: no edge.
    assert "nbtrack.registry.records" not in graph["nbtrack.registry.render"]
    # The façade's module-level import counts; its lazy ones do not.
    assert graph["nbtrack"] == {"nbtrack.suggest"}


def test_circles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert circles(graph) == [["a", "b", "c"], ["d", "e"]]


def test_nbtrack_has_no_import_circle() -> None:
    found = circles(import_graph())
    assert found == [], "import circles (move the shared part into a module below both): " + (
        "; ".join(" <-> ".join(c) for c in found)
    )
