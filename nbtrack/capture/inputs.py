"""What a cell reads: the names it loads, the files it names, and their fingerprints.

Everything works on the cell's source (already transformed from IPython syntax to Python)
with :mod:`ast`; nothing is executed. Source that does not parse gives empty answers rather
than an error, because a tracked cell must never fail for nbtrack's sake.
"""

from __future__ import annotations

import ast
import os
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from nbtrack.capture.fingerprint import fingerprint, fingerprint_file
from nbtrack.model import Fingerprint
from nbtrack.pyast.effects import writes_path
from nbtrack.pyast.names import argument_names, imported_names, node_binds

__all__ = ["cell_inputs", "names_loaded", "names_stored", "string_literal_paths"]

#: String literals longer than this are never taken for paths.
MAX_PATH_LITERAL = 4096
#: Names IPython puts in the user namespace that are never data inputs.
IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
#: Longest warning line, so one odd object can't flood the run's record.
MAX_WARNING = 300


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except Exception:  # SyntaxError, ValueError (NUL bytes), RecursionError, MemoryError
        return None


def names_loaded(source: str) -> set[str]:
    """Every name the code reads, anywhere in it (function bodies too).

    An augmented assignment (``x += 1``) reads its target, so it counts. Returns an empty
    set for source that does not parse.
    """
    tree = _parse(source)
    if tree is None:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def names_stored(source: str) -> set[str]:
    """Every name the code binds, anywhere in it.

    Assignment targets (including ``for`` targets, ``with ... as``, ``except ... as``,
    walrus and ``match`` captures), ``def`` and ``class`` names and imported names all
    count. Returns an empty set for source that does not parse.
    """
    tree = _parse(source)
    if tree is None:
        return set()
    return {name for node in ast.walk(tree) for name in node_binds(node)}


def string_literal_paths(source: str, cwd: str | None = None) -> list[str]:
    """The string literals in the code that name an existing file or directory.

    Relative paths are taken from ``cwd`` (the process's working directory by default) and
    ``~`` is expanded. Literals that are very long, hold a newline, have no letter or digit
    (``"/"``, ``"."``), or name the filesystem root, the home or temp folder, the working
    directory or one of its parents are skipped: they are separators and the like, and
    hashing those folders would be ruinous. Pieces of f-strings are skipped too. Returned
    as written, in source order, without duplicates.
    """
    tree = _parse(source)
    if tree is None:
        return []
    return [literal for literal, _ in _literal_paths(tree, cwd or os.getcwd())]


def _literal_paths(tree: ast.AST, base: str) -> list[tuple[str, str]]:
    """``(literal, absolute path)`` for each distinct literal naming an existing path."""
    in_fstrings = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in ast.walk(node)
    }
    constants = [
        (node.lineno, node.col_offset, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in in_fstrings
    ]
    constants.sort(key=lambda item: item[:2])
    refused = _refused_dirs(base)
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for _, _, literal in constants:
        if literal in seen or not _could_be_path(literal):
            continue
        seen.add(literal)
        full = os.path.abspath(os.path.join(base, os.path.expanduser(literal)))
        try:
            if os.path.isfile(full) or (os.path.isdir(full) and full not in refused):
                found.append((literal, full))
        except (OSError, ValueError):
            continue
    return found


def _could_be_path(literal: str) -> bool:
    return (
        0 < len(literal) <= MAX_PATH_LITERAL
        and "\n" not in literal
        and "\r" not in literal
        and "\x00" not in literal
        and "://" not in literal
        and any(ch.isalnum() for ch in literal)
    )


def _refused_dirs(base: str) -> set[str]:
    # Folders that a literal may well name by accident and that hold far too much to hash.
    refused = {os.path.abspath(os.path.expanduser("~")), os.path.abspath(tempfile.gettempdir())}
    current = os.path.abspath(base)
    while True:
        refused.add(current)
        parent = os.path.dirname(current)
        if parent == current:
            return refused
        current = parent


def _output_only_literals(tree: ast.AST) -> set[str]:
    """Literals that appear only as the path argument of a call that writes it.

    ``df.to_csv("out.csv")`` names an output, not an input; without this, every re-run of
    a cell would list the previous run's output among its inputs.
    """
    total: dict[str, int] = {}
    as_output: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            total[node.value] = total.get(node.value, 0) + 1
        if isinstance(node, ast.Call):
            for literal in _written_literals(node):
                as_output[literal] = as_output.get(literal, 0) + 1
    return {literal for literal, n in as_output.items() if n >= total.get(literal, 0)}


def _written_literals(call: ast.Call) -> list[str]:
    func = call.func
    name = (
        func.id
        if isinstance(func, ast.Name)
        else (func.attr if isinstance(func, ast.Attribute) else "")
    )
    args = [*call.args, *(kw.value for kw in call.keywords)]
    if name == "open":
        mode = (
            call.args[1]
            if len(call.args) > 1
            else next((kw.value for kw in call.keywords if kw.arg == "mode"), None)
        )
        writes = (
            isinstance(mode, ast.Constant)
            and isinstance(mode.value, str)
            and any(ch in mode.value for ch in "wax")
        )
        args = call.args[:1] + [kw.value for kw in call.keywords if kw.arg == "file"]
    else:
        writes = writes_path(name)
        if writes and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call):
            # Path("out.txt").write_text(...): the path is the receiver's argument.
            args = [*args, *func.value.args]
    if not writes:
        return []
    return [
        arg.value for arg in args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
    ]


class _ReadScanner:
    """Finds the names a cell reads before it has bound them itself, in source order.

    A name the cell assigns before reading (``X = load(); fit(X)``) is not an input: the
    value in the namespace before the cell ran is never seen. Bindings count only where
    they are certain (straight-line code, ``with``); those inside ``if``/``for``/``try``
    bodies don't escape them, so the answer errs towards listing a name.
    """

    def __init__(self) -> None:
        self.reads: dict[str, None] = {}

    def block(self, body: Iterable[ast.stmt], defined: set[str]) -> None:
        for stmt in body:
            self.stmt(stmt, defined)

    def stmt(self, node: ast.stmt, defined: set[str]) -> None:
        if isinstance(node, ast.Assign):
            self.expr(node.value, defined)
            for target in node.targets:
                self.expr(target, defined)
        elif isinstance(node, ast.AugAssign):
            self.expr(node.value, defined)
            if isinstance(node.target, ast.Name):
                self.read(node.target.id, defined)
                defined.add(node.target.id)
            else:
                self.expr(node.target, defined)
        elif isinstance(node, ast.AnnAssign):
            self.expr(node.annotation, defined)
            if node.value is not None:
                self.expr(node.value, defined)
                self.expr(node.target, defined)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined.update(imported_names(node))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for expr in [
                *node.decorator_list,
                *node.args.defaults,
                *(d for d in node.args.kw_defaults if d is not None),
            ]:
                self.expr(expr, defined)
            # The body runs later, when any name the cell binds before the call is bound; a
            # name the cell binds after the def is still counted (errs towards listing).
            self.block(node.body, defined | argument_names(node.args) | {node.name})
            defined.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
                self.expr(expr, defined)
            self.block(node.body, set(defined))
            defined.add(node.name)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self.expr(node.iter, defined)
            inner = set(defined)
            self.expr(node.target, inner)
            self.block(node.body, inner)
            self.block(node.orelse, set(defined))
        elif isinstance(node, ast.If | ast.While):
            self.expr(node.test, defined)
            self.block(node.body, set(defined))
            self.block(node.orelse, set(defined))
        elif isinstance(node, ast.With | ast.AsyncWith):
            # The body runs whenever the statement completes, so its bindings escape it.
            for item in node.items:
                self.expr(item.context_expr, defined)
                if item.optional_vars is not None:
                    self.expr(item.optional_vars, defined)
            self.block(node.body, defined)
        elif isinstance(node, ast.Try | ast.TryStar):
            self.block(node.body, set(defined))
            for handler in node.handlers:
                if handler.type is not None:
                    self.expr(handler.type, defined)
                self.block(handler.body, defined | ({handler.name} if handler.name else set()))
            self.block(node.orelse, set(defined))
            self.block(node.finalbody, set(defined))
        elif isinstance(node, ast.Match):
            self.expr(node.subject, defined)
            for case in node.cases:
                inner = set(defined)
                for pattern in ast.walk(case.pattern):
                    if isinstance(pattern, ast.MatchValue):
                        self.expr(pattern.value, defined)
                    elif isinstance(pattern, ast.MatchClass):
                        self.expr(pattern.cls, defined)
                    elif isinstance(pattern, ast.MatchMapping):
                        for key in pattern.keys:
                            self.expr(key, defined)
                    inner.update(node_binds(pattern))
                if case.guard is not None:
                    self.expr(case.guard, inner)
                self.block(case.body, inner)
        else:
            # Expr, Return, Raise, Assert, Delete, Global...: only reads.
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    self.stmt(child, set(defined))
                elif isinstance(child, ast.expr):
                    self.expr(child, defined)

    def expr(self, node: ast.expr | None, defined: set[str]) -> None:
        if node is None:
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.read(node.id, defined)
            elif isinstance(node.ctx, ast.Store):
                defined.add(node.id)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value, defined)
            defined.add(node.target.id)
        elif isinstance(node, ast.Lambda):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                self.expr(default, defined)
            self.expr(node.body, defined | argument_names(node.args))
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            # Comprehension variables are local to it; only the first iterable is evaluated
            # in the enclosing scope.
            inner = set(defined)
            for i, generator in enumerate(node.generators):
                self.expr(generator.iter, defined if i == 0 else inner)
                self.expr(generator.target, inner)
                for condition in generator.ifs:
                    self.expr(condition, inner)
            if isinstance(node, ast.DictComp):
                self.expr(node.key, inner)
                self.expr(node.value, inner)
            else:
                self.expr(node.elt, inner)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, defined)
                elif isinstance(child, ast.keyword):
                    self.expr(child.value, defined)

    def read(self, name: str, defined: set[str]) -> None:
        if name not in defined:
            self.reads.setdefault(name)


def _input_names(tree: ast.Module, source: str) -> list[str]:
    try:
        scanner = _ReadScanner()
        scanner.block(tree.body, set())
        return list(scanner.reads)
    except RecursionError:
        # Absurdly deep expressions: fall back to every name read, in a stable order.
        return sorted(names_loaded(source))


def _warning(name: str, exc: BaseException) -> str:
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    line = f"could not fingerprint {name!r}: {reason}"
    return line if len(line) <= MAX_WARNING else line[: MAX_WARNING - 3] + "..."


def cell_inputs(
    source: str, namespace: Mapping[str, object], cwd: str | None = None
) -> tuple[list[Fingerprint], list[str]]:
    """Fingerprints of what a cell reads, taken before it runs; and warnings.

    Inputs are (1) the values of names the cell reads before binding them itself that are
    in ``namespace`` and are arrays, DataFrames, Series or tensors (names starting with
    ``_`` and IPython's ``In``/``Out`` are skipped); (2) files and directories named by
    string literals (see :func:`string_literal_paths`), except literals used only as the
    path of a writing call (``to_csv``, ``save``, ``open(..., "w")``, ...). Returns
    ``(fingerprints, warnings)``: a value or path that fails to fingerprint gives a one-line
    warning instead of an exception. Deduplicated by name and by absolute path.
    """
    tree = _parse(source)
    if tree is None:
        return [], []
    fingerprints: list[Fingerprint] = []
    warnings: list[str] = []
    for name in _input_names(tree, source):
        if name.startswith("_") or name in IPYTHON_NAMES:
            continue
        try:
            if name not in namespace:
                continue
            value: Any = namespace[name]
            found = fingerprint(value, name)
        except Exception as exc:
            warnings.append(_warning(name, exc))
            continue
        if found is not None:
            fingerprints.append(found)
    base = cwd or os.getcwd()
    outputs = _output_only_literals(tree)
    seen: set[str] = set()
    for literal, full in _literal_paths(tree, base):
        if literal in outputs or full in seen:
            continue
        seen.add(full)
        try:
            fingerprints.append(fingerprint_file(full, name=literal))
        except Exception as exc:
            warnings.append(_warning(literal, exc))
    return fingerprints, warnings
