"""The backward slice: which statements of an execution history a tracked cell needs.

Pure: input is a list of ``(execution_count, python_source)`` in the order the kernel ran
them (plain Python, magics already translated), the last one (or ``target``) being the
tracked cell. Every statement of the tracked cell is kept; then, walking backwards, every
earlier statement that may define something a kept statement uses is kept too, until a
statement that certainly redefines it (see :mod:`nbtrack.export.defuse` for the rules).

Random numbers. The tracked cell starts from a known generator state: the recorded seed
is applied (as ``%%track --seed`` did), or, for a run without a seed, the RNG state
recorded at the tracked cell's start is restored. Either way, what earlier cells drew
cannot change what the tracked cell draws, so the generators listed in ``reset_rng`` are
not uses of the tracked cell. Earlier cells still depend on each other through the
generators (``np.random.seed(0)``, then ``a = np.random.rand()``, then
``X = np.random.rand(100)``: ``X`` needs both earlier statements), which the
``<rng:...>`` pseudo-names capture; a seed call redefines its generator, so draws
before it are not needed for draws after it.
"""

from __future__ import annotations

import ast
import bisect
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from nbtrack.export.defuse import (
    BUILTIN_NAMES,
    HELPER_MODULES,
    PROCESS,
    Analyzer,
    Facts,
    rng_name,
)
from nbtrack.pyast.effects import GENERATORS
from nbtrack.pyast.positions import source_lines

__all__ = ["Statement", "SliceResult", "analyze", "backward_slice"]


@dataclass(frozen=True)
class Statement:
    """One top-level statement of one cell, with its facts."""

    cell: int  # index into the cells given
    first: int  # first line in the cell's source (decorators included), from 1
    last: int  # last line
    facts: Facts


@dataclass(frozen=True)
class SliceResult:
    """The statements kept, and what could not be resolved."""

    cells: tuple[tuple[int, str], ...]
    statements: tuple[Statement, ...]
    kept: frozenset[int]  # indices into ``statements``
    target: int  # index of the tracked cell in ``cells``
    unresolved: frozenset[str]  # names used, defined nowhere before (and not builtins)

    def kept_cells(self) -> list[int]:
        """Indices (into ``cells``) of the cells with at least one statement kept."""
        return sorted({self.statements[i].cell for i in self.kept})

    def kept_counts(self) -> list[int]:
        """Execution counts of the kept cells, in execution order."""
        return [self.cells[i][0] for i in self.kept_cells()]

    def cell_text(self, index: int) -> str | None:
        """The kept part of cell ``index``: all of it, the kept lines, or None."""
        source = self.cells[index][1]
        mine = [i for i, st in enumerate(self.statements) if st.cell == index]
        kept = [i for i in mine if i in self.kept]
        if not kept:
            return None
        if len(kept) == len(mine):
            return source
        lines = source_lines(source)  # as ast numbers them: a form feed is no line break
        wanted: set[int] = set()
        for i in kept:
            st = self.statements[i]
            first = st.first
            # Comment lines right above a statement belong to it.
            while first > 1 and lines[first - 2].lstrip().startswith("#"):
                first -= 1
            wanted.update(range(first, st.last + 1))
        text = "".join(lines[n - 1] for n in sorted(wanted))
        return text if text.endswith("\n") else text + "\n"


def _external(name: str, facts: Facts) -> bool:
    """Whether a name with no earlier definition must come from outside the history."""
    return not (
        name.startswith(("<", "_nbtrack_"))
        or name in BUILTIN_NAMES
        or name in HELPER_MODULES
        or name in facts.must
        or name in facts.may
    )


def _span(node: ast.stmt) -> tuple[int, int]:
    first = node.lineno
    for deco in getattr(node, "decorator_list", ()):
        first = min(first, deco.lineno)
    return first, node.end_lineno or node.lineno


def analyze(cells: Sequence[tuple[int, str]]) -> list[Statement]:
    """Facts for every top-level statement of ``cells``, in order.

    Raises :class:`SyntaxError` for a cell that does not parse (translate first).
    """
    analyzer = Analyzer()
    statements: list[Statement] = []
    for index, (_, source) in enumerate(cells):
        tree = ast.parse(source)
        for node in tree.body:
            first, last = _span(node)
            statements.append(Statement(index, first, last, analyzer.statement(node)))
    return statements


def backward_slice(
    cells: Sequence[tuple[int, str]],
    *,
    target: int | None = None,
    reset_rng: Collection[str] = GENERATORS,
    whole: Collection[int] = (),
) -> SliceResult:
    """Slice ``cells`` backwards from cell ``target`` (default: the last one).

    ``reset_rng``: the generators (``"random"``, ``"numpy"``, ``"torch"``) whose state is
    set afresh when the tracked cell starts (by its seed or the restored RNG state).
    ``whole``: indices of cells kept entirely once any of their statements is (a cell
    that raised must raise at the same statement again). Cells after ``target`` are
    ignored.
    """
    cells = tuple(cells)
    if target is None:
        target = len(cells) - 1
    if not 0 <= target < len(cells):
        raise ValueError(f"target {target} is not a cell index (0..{len(cells) - 1})")
    statements = analyze(cells[: target + 1])
    reset = {rng_name(g) for g in reset_rng}

    defs: dict[str, list[tuple[int, bool]]] = {}
    wildcards: list[int] = []
    for i, st in enumerate(statements):
        for name in st.facts.must:
            defs.setdefault(name, []).append((i, True))
        for name in st.facts.may - st.facts.must:
            defs.setdefault(name, []).append((i, False))
        if st.facts.wildcard:
            wildcards.append(i)

    kept: set[int] = set()
    work: list[int] = []
    for i, st in enumerate(statements):
        if st.cell == target:
            kept.add(i)
            work.append(i)

    by_cell: dict[int, list[int]] = {}
    for i, st in enumerate(statements):
        by_cell.setdefault(st.cell, []).append(i)
    whole = set(whole)

    def keep(j: int) -> None:
        if j in kept:
            return
        kept.add(j)
        work.append(j)
        if statements[j].cell in whole:
            for other in by_cell[statements[j].cell]:
                if other not in kept:
                    kept.add(other)
                    work.append(other)

    unresolved: set[str] = set()
    done: set[tuple[str, int]] = set()
    all_before = -1  # every statement before this index is kept (uses_all)
    while work:
        i = work.pop()
        st = statements[i]
        if st.facts.uses_all and i - 1 > all_before:
            for j in range(all_before + 1, i):
                keep(j)
            all_before = i - 1
        uses = set(st.facts.uses)
        if st.cell == target:
            uses.add(PROCESS)
            uses -= reset
        for name in uses:
            if (name, i) in done:
                continue
            done.add((name, i))
            found = defs.get(name, [])
            k = bisect.bisect_left(found, (i, False)) - 1
            if k < 0 and _external(name, st.facts) and not (wildcards and wildcards[0] < i):
                unresolved.add(name)
            stop = -1
            while k >= 0:
                j, must = found[k]
                keep(j)
                if must:
                    stop = j
                    break
                k -= 1
            lo = bisect.bisect_right(wildcards, stop)
            hi = bisect.bisect_left(wildcards, i)
            for j in wildcards[lo:hi]:
                keep(j)
    return SliceResult(
        cells=cells,
        statements=tuple(statements),
        kept=frozenset(kept),
        target=target,
        unresolved=frozenset(unresolved),
    )
