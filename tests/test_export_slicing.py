"""The backward slice, table-driven: which cells it keeps, and that what it keeps reproduces.

Each case is a list of cells as a kernel ran them (re-executed cells appear twice); the
last one is the tracked cell and sets ``result``. The harness runs all cells in one
namespace (like a kernel), then only the kept code in a fresh namespace, restoring the
RNG state at the tracked cell's start as an exported script does, and compares ``result``.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from nbtrack.export.slicing import SliceResult, backward_slice

CASES = [
    ("imports", ["import math", "import json", "result = math.sqrt(16)"], [1, 3]),
    (
        "function defined earlier, its global resolved at the call",
        [
            "def area(r):\n    return math.pi * r * r",
            "import math",
            "unused = 3",
            "result = area(2)",
        ],
        [1, 2, 4],
    ),
    (
        "function redefined before the call",
        [
            "def g():\n    return 1",
            "def f():\n    return g() * k",
            "k = 2",
            "def g():\n    return 5",
            "result = f()",
        ],
        [2, 3, 4, 5],
    ),
    (
        "class defined earlier, instances mutated through methods",
        [
            "class Acc:\n    def __init__(self):\n        self.items = []\n\n"
            "    def add(self, x):\n        self.items.append(x * factor)\n\n"
            "    def total(self):\n        return sum(self.items)",
            "factor = 10",
            "acc = Acc()",
            "acc.add(1)",
            "other = Acc()\nother.add(5)",
            "acc.add(2)",
            "result = acc.total()",
        ],
        [1, 2, 3, 4, 6, 7],
    ),
    (
        "mutation through .append",
        ["items = []", "items.append(1)", "items2 = [9]", "items.append(2)", "result = sum(items)"],
        [1, 2, 4, 5],
    ),
    (
        "mutation through .fit",
        [
            "from sklearn.linear_model import LinearRegression\nimport numpy as np",
            "X = np.arange(8.0).reshape(-1, 1)\ny = 2 * X.ravel() + 1",
            "model = LinearRegression()",
            "model.fit(X, y)",
            "spare = LinearRegression().fit(X, y * 3)",
            "result = float(model.predict([[10.0]])[0])",
        ],
        [1, 2, 3, 4, 6],
    ),
    (
        "inplace=True",
        [
            "import pandas as pd",
            "df = pd.DataFrame({'a': [1.0, None, 3.0]})",
            "df.fillna(0.0, inplace=True)",
            "preview = df.head(2)",
            "df.replace(3.0, 4.0, inplace=True)",
            "result = float(df['a'].sum())",
        ],
        [1, 2, 3, 5, 6],
    ),
    (
        "aliasing (a shallow copy is kept too: its elements are shared)",
        [
            "a = [1, 2]",
            "b = a",
            "b.append(3)",
            "n = len(a)",
            "c = list(a)\nc.append(100)",
            "d = [0]\nd.append(1)",
            "result = sum(a) + n",
        ],
        [1, 2, 3, 4, 5, 7],
    ),
    (
        "augmented assignment",
        ["total = 0", "total += 5", "other = 1\nother += 1", "total += 10", "result = total"],
        [1, 2, 4, 5],
    ),
    (
        "del of a name, then a new definition",
        ["x = 1", "y = x + 1", "del x", "x = 5", "result = x + y"],
        [1, 2, 4, 5],
    ),
    (
        "del of an item is a mutation",
        ["d = {'a': 1, 'b': 2}", "e = 3", "del d['a']", "result = sorted(d)"],
        [1, 3, 4],
    ),
    (
        "a re-executed cell that accumulates",
        ["count = 0", "count += 1", "count += 1", "result = count"],
        [1, 2, 3, 4],
    ),
    (
        "a re-executed cell, then a certain redefinition",
        ["v = 1", "v = v * 3", "w = 7", "v = v * 3", "v = 2", "result = v"],
        [5, 6],
    ),
    (
        "RNG consumed by an earlier cell",
        [
            "import numpy as np",
            "np.random.seed(0)",
            "a = np.random.rand(3)",
            "X = np.random.rand(4)",
            "junk = np.random.rand(2)",
            "result = float(X.sum() + np.random.rand())",
        ],
        [1, 2, 3, 4, 6],
    ),
    (
        "a seed call makes earlier draws irrelevant",
        [
            "import random",
            "early = random.random()",
            "random.seed(1)",
            "X = random.random()",
            "result = X",
        ],
        [1, 3, 4, 5],
    ),
    (
        "files written by one cell, read by another",
        [
            "with open('f.txt', 'w') as fh:\n    fh.write('42')",
            "unrelated = 1",
            "result = int(open('f.txt').read())",
        ],
        [1, 3],
    ),
    (
        "a function that mutates a global",
        [
            "hist = []",
            "def log(v):\n    hist.append(v)",
            "log(3)",
            "log(4)",
            "x = 2",
            "result = sum(hist)",
        ],
        [1, 2, 3, 4, 6],
    ),
    (
        "a closure",
        [
            "def make(k):\n    def f(x):\n        return x * k\n    return f",
            "triple = make(3)",
            "junk = make(4)",
            "result = triple(5)",
        ],
        [1, 2, 4],
    ),
    ("globals() may define anything", ["a = 1", "globals()['b'] = 2", "result = b + a"], [1, 2, 3]),
    ("a star import", ["from math import *", "z = 1", "result = sqrt(9)"], [1, 3]),
    (
        "attribute assignment is a mutation",
        ["class C:\n    pass", "obj = C()", "obj.value = 4", "result = obj.value"],
        [1, 2, 3, 4],
    ),
    (
        "process-wide settings are kept",
        ["import numpy as np", "np.set_printoptions(precision=3)", "result = 1"],
        [1, 2, 3],
    ),
    (
        "statement-level: only the needed statements of a cell",
        ["import numpy as np\nimport json\nk = 2\nbig = np.zeros(3)", "result = k * 2"],
        [1, 2],
    ),
]


def _rng_state() -> tuple[object, object]:
    return random.getstate(), np.random.get_state()


def _set_rng(state: tuple[object, object]) -> None:
    random.setstate(state[0])  # type: ignore[arg-type]
    np.random.set_state(state[1])  # type: ignore[arg-type]


def _replay(cells: list[str], result: SliceResult, reset: bool) -> tuple[object, object]:
    """``result`` from all cells, and from the kept code only."""
    np.random.seed(12345)
    random.seed(12345)
    full: dict[str, object] = {}
    for cell in cells[:-1]:
        exec(cell, full)  # noqa: S102 - the point: run the cells like a kernel
    start = _rng_state()
    exec(cells[-1], full)  # noqa: S102
    np.random.seed(999)  # a different state before the sliced run
    random.seed(999)
    sliced: dict[str, object] = {}
    for index in result.kept_cells():
        if index == result.target:
            if reset:
                _set_rng(start)
        text = result.cell_text(index)
        assert text is not None
        exec(text, sliced)  # noqa: S102
    return full["result"], sliced["result"]


@pytest.mark.parametrize(("cells", "kept"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_slice_keeps_what_the_result_needs(
    cells: list[str], kept: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = backward_slice(list(enumerate(cells, start=1)))
    assert result.kept_counts() == kept
    expected, reproduced = _replay(cells, result, reset=True)
    assert reproduced == expected


def test_without_an_rng_reset_earlier_draws_are_kept(tmp_path: Path) -> None:
    cells = [
        "import numpy as np",
        "np.random.seed(0)",
        "junk = np.random.rand(2)",
        "result = float(np.random.rand())",
    ]
    with_reset = backward_slice(list(enumerate(cells, start=1)))
    without = backward_slice(list(enumerate(cells, start=1)), reset_rng=())
    assert with_reset.kept_counts() == [1, 4]
    assert without.kept_counts() == [1, 2, 3, 4]
    expected, reproduced = _replay(cells, without, reset=False)
    assert reproduced == expected


def test_partial_cells_keep_comments_above_kept_statements() -> None:
    cells = [(1, "import json\n# the factor\nk = 2\nz = 3\n"), (2, "result = k")]
    result = backward_slice(cells)
    assert result.cell_text(0) == "# the factor\nk = 2\n"
    assert result.cell_text(1) == "result = k"


def test_names_defined_nowhere_are_reported() -> None:
    result = backward_slice(
        [(1, "a = 1"), (2, "result = a + mystery\nfor i in range(2):\n    print(i)")]
    )
    assert result.unresolved == {"mystery"}


def test_later_cells_are_ignored() -> None:
    result = backward_slice([(1, "a = 1"), (2, "b = a"), (3, "a = 5")], target=1)
    assert result.kept_counts() == [1, 2]
