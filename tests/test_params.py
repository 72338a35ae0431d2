"""Tests for nbtrack.capture.params: parameters, --set and papermill cells."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from nbtrack.capture.params import (
    apply_overrides,
    extract_params,
    notebook_parameter_cells,
    papermill_params,
    parse_set_option,
)
from nbtrack.errors import UsageError

# --- extract_params -------------------------------------------------------------------

EXTRACT_CASES = [
    ("x = 1", {"x": 1}),
    ("lr = 1e-3", {"lr": 1e-3}),
    ("lr = -1e-3", {"lr": -1e-3}),
    ("n = -5", {"n": -5}),
    ("big = 1E+6", {"big": 1e6}),
    ("z = 1+2j", {"z": 1 + 2j}),
    ("name = 'resnet'", {"name": "resnet"}),
    ("flag = True\nnothing = None", {"flag": True, "nothing": None}),
    ("x: float = 1e-3", {"x": 1e-3}),
    ("x: int", {}),
    ("a = b = 2", {"a": 2, "b": 2}),
    ("a = b = (1, 'x')", {"a": (1, "x"), "b": (1, "x")}),
    ("a = b = []", {}),  # one list under two names: not a parameter
    ("a = b = {'k': 1}", {}),
    ("a = (b, c) = 1, 2", {}),  # chained with a non-name target
    ("a = 1\na = b = []", {"a": 1}),  # a mutable chain does not remove a's binding
    ("x = 1\nx *= 2", {"x": 1}),
    ("a, b = 1, 2", {"a": 1, "b": 2}),
    ("(a, b), c = (1, 2), 3", {"a": 1, "b": 2, "c": 3}),
    ("[a, b] = [1, 'two']", {"a": 1, "b": "two"}),
    ("a, b = 1, f()", {"a": 1}),
    ("a, *b = 1, 2, 3", {}),
    ("a, b = pair", {}),
    ("layers = [64, 64, 32]", {"layers": [64, 64, 32]}),
    ("shape = (28, 28)", {"shape": (28, 28)}),
    ("t = 1,", {"t": (1,)}),
    (
        "cfg = {'lr': 0.1, 'opt': 'adam', 'betas': (0.9, 0.99)}",
        {"cfg": {"lr": 0.1, "opt": "adam", "betas": (0.9, 0.99)}},
    ),
    ("tags = {'a', 'b'}", {"tags": {"a", "b"}}),
    ("empty = set()", {"empty": set()}),
    ("x = 1\nx = 2", {"x": 2}),
    ("x = 1\nx = float(x)", {"x": 1}),  # non-literal rebinding is not a param
    ("x = f()", {}),
    ("x = y", {}),
    ("x = 2 ** 10", {}),
    ("x = [1, y]", {}),
    ("if True:\n    x = 1", {}),
    ("for i in range(3):\n    x = i\ny = 3", {"y": 3}),
    ("def f():\n    x = 1", {}),
    ("with open('f') as fh:\n    x = 1", {}),
    ("try:\n    x = 1\nexcept Exception:\n    pass", {}),
    ("cfg.lr = 1\nd['k'] = 2", {}),
    ("x += 1", {}),
    ("x = 1\ndef broken(:", {}),  # SyntaxError -> {}
    ("", {}),
    ("título = 'é'; lr = 0.5  # ünïcode", {"título": "é", "lr": 0.5}),
]


@pytest.mark.parametrize(("source", "expected"), EXTRACT_CASES)
def test_extract_params(source: str, expected: dict[str, object]) -> None:
    got = extract_params(source)
    assert got == expected
    for key, value in expected.items():  # 1 == 1.0 == True, so compare types too
        assert type(got[key]) is type(value)


# --- parse_set_option -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr=0.01", ("lr", 0.01)),
        ("lr=1e-3", ("lr", 1e-3)),
        ("n=-3", ("n", -3)),
        ("opt=adam", ("opt", "adam")),
        ("opt='adam'", ("opt", "adam")),
        ("flag=True", ("flag", True)),
        ("x=None", ("x", None)),
        ("layers=[64,64]", ("layers", [64, 64])),
        ("shape=(1, 2)", ("shape", (1, 2))),
        ("name=", ("name", "")),
        ("expr=a=b", ("expr", "a=b")),  # split on the first '=' only
        ("path=/tmp/data.csv", ("path", "/tmp/data.csv")),
        ("msg=hello world", ("msg", "hello world")),
        ("_private=1", ("_private", 1)),
        ("é=1", ("é", 1)),
    ],
)
def test_parse_set_option_good(text: str, expected: tuple[str, object]) -> None:
    assert parse_set_option(text) == expected


@pytest.mark.parametrize(
    "text", ["lr", "", "=1", " =1", "1lr=2", "a-b=1", "a.b=1", "class=1", "lr 0.1"]
)
def test_parse_set_option_bad(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_set_option(text)
    message = str(info.value)
    assert "\n" not in message
    assert repr(text) in message
    assert "KEY=VALUE" in message


# --- apply_overrides ------------------------------------------------------------------


def test_apply_overrides_keeps_everything_else_identical() -> None:
    source = (
        "# hyper-parameters\n"
        "lr = 1e-3  # learning rate\n"
        "epochs: int = 10\n"
        "opt = 'sgd'   # keep this comment\n"
        "\n"
        "model = build(lr=lr)  # lr here is not touched\n"
    )
    out = apply_overrides(source, {"lr": 0.01, "opt": "adam"})
    assert out == (
        "# hyper-parameters\n"
        "lr = 0.01  # learning rate\n"
        "epochs: int = 10\n"
        "opt = 'adam'   # keep this comment\n"
        "\n"
        "model = build(lr=lr)  # lr here is not touched\n"
    )
    assert extract_params(out) == {"lr": 0.01, "epochs": 10, "opt": "adam"}


def test_apply_overrides_utf8_before_value() -> None:
    # ast column offsets are UTF-8 byte offsets: 'título' and 'é' shift them.
    source = "título = 'café'; lr = 0.5  # ñ\nnote = '日本語'; n = 3\n"
    out = apply_overrides(source, {"lr": 0.25, "n": 7, "título": "bar"})
    assert out == "título = 'bar'; lr = 0.25  # ñ\nnote = '日本語'; n = 7\n"


def test_apply_overrides_multiline_values() -> None:
    source = (
        "layers = [\n"
        "    64,  # first\n"
        "    32,\n"
        "]\n"
        "cfg = {'a': 1,\n"
        "       'é': 2}; after = 1\n"
        "tail = 'x'\n"
    )
    out = apply_overrides(source, {"layers": [128, 128], "after": 5})
    assert out == ("layers = [128, 128]\ncfg = {'a': 1,\n       'é': 2}; after = 5\ntail = 'x'\n")


def test_apply_overrides_crlf_and_formfeed() -> None:
    source = "a = 1\r\n\x0cb = [1,\r\n 2]\r\nc = 'ü'; d = 3\r\n"
    out = apply_overrides(source, {"b": [9], "d": 4})
    assert out == "a = 1\r\n\x0cb = [9]\r\nc = 'ü'; d = 4\r\n"


def test_apply_overrides_rewrites_only_the_last_literal_binding() -> None:
    # The parameter is the last literal binding: code between the assignments keeps
    # reading the earlier values, as it did when the cell ran.
    source = "x = 1\nw, x = 'w', 2  # unpack\nx: float = 3.0\nif cond:\n    x = 4\n"
    out = apply_overrides(source, {"x": 9})
    assert out == "x = 1\nw, x = 'w', 2  # unpack\nx: float = 9\nif cond:\n    x = 4\n"
    out = apply_overrides("x = 1\nw, x = 'w', 2  # unpack\nx *= 2\n", {"x": 9})
    assert out == "x = 1\nw, x = 'w', 9  # unpack\nx *= 2\n"


def test_apply_overrides_tuple_values() -> None:
    assert apply_overrides("t = 1,\n", {"t": (5,)}) == "t = (5,)\n"
    assert apply_overrides("a, b = 1, 2\n", {"a": (3, 4)}) == "a, b = (3, 4), 2\n"
    assert apply_overrides("x = -1e-3\n", {"x": -0.5}) == "x = -0.5\n"
    assert apply_overrides("x = (1)\n", {"x": 2}) == "x = (2)\n"


def test_apply_overrides_written_values_round_trip() -> None:
    values: list[object] = [
        'it\'s "quoted"\n',
        1e-300,
        -0.0,
        True,
        None,
        {"a": [1, (2, 3)]},
        {1, 2},
        b"\x00",
        float("inf"),
        10**30,
    ]
    for value in values:
        out = apply_overrides("v = 0\n", {"v": value})
        namespace: dict[str, object] = {}
        exec(out, namespace)  # noqa: S102 - the point is that the cell still runs
        assert namespace["v"] == value
    out = apply_overrides("v = 0\n", {"v": float("nan")})
    assert out == "v = float('nan')\n"


def test_apply_overrides_rejects_unknown_key() -> None:
    source = "lr = 0.1\nepochs = 3\nmodel = make()\nif x:\n    hidden = 1\n"
    for key in ("batch", "model", "hidden"):
        with pytest.raises(UsageError) as info:
            apply_overrides(source, {key: 1})
        message = str(info.value)
        assert repr(key) in message and "epochs, lr" in message
        assert "\n" not in message
    with pytest.raises(UsageError, match="parameters are: none"):
        apply_overrides("print(1)\n", {"x": 1})


def test_apply_overrides_rejects_non_literal_value() -> None:
    with pytest.raises(UsageError, match="Python literal"):
        apply_overrides("v = 0\n", {"v": object()})


def test_apply_overrides_splits_chained_assignment() -> None:
    # One --set changes one name: the chained line becomes one assignment per name.
    assert apply_overrides("a = b = 2  # both\n", {"a": 3}) == "a = 3; b = 2  # both\n"
    assert apply_overrides("a = b = 2\n", {"b": 3}) == "a = 2; b = 3\n"
    assert apply_overrides("a = b = 2\n", {"a": 3, "b": 4}) == "a = 3; b = 4\n"
    namespace: dict[str, object] = {}
    exec(apply_overrides("a = b = 2\n", {"a": 3}), namespace)  # noqa: S102
    assert (namespace["a"], namespace["b"]) == (3, 2)


def test_apply_overrides_rejects_chained_mutable() -> None:
    # xs = ys = [] is one list under two names: not a parameter at all.
    with pytest.raises(UsageError, match="parameters are: none"):
        apply_overrides("xs = ys = []\n", {"xs": [1]})


def test_apply_overrides_no_overrides_and_bad_source() -> None:
    assert apply_overrides("def broken(:\n", {}) == "def broken(:\n"
    with pytest.raises(UsageError, match="not valid Python"):
        apply_overrides("def broken(:\n", {"x": 1})


def test_apply_overrides_output_parses_like_input() -> None:
    source = "import numpy as np\nlr = 1e-3\nlayers = [\n  1,\n  2]\nx = np.zeros(3)\n"
    out = apply_overrides(source, {"lr": 0.1, "layers": [3]})
    expected = "import numpy as np\nlr = 0.1\nlayers = [3]\nx = np.zeros(3)\n"
    assert out == expected
    assert ast.dump(ast.parse(out)) == ast.dump(ast.parse(expected))


# --- papermill ------------------------------------------------------------------------


def test_papermill_params() -> None:
    sources = [
        "lr = 0.1\nepochs = 1\n",  # the notebook's own defaults (tagged 'parameters')
        '# Parameters\nlr = 0.5\nname = "run-1"\n',  # injected by papermill
        "x = 1\n",
        "\n# Parameters\nepochs = 20\n",  # a later injected cell wins
        "# Parameters are below\nbatch = 1\n",  # not papermill's marker
    ]
    assert papermill_params(sources) == {"lr": 0.5, "name": "run-1", "epochs": 20}
    assert papermill_params([]) == {}


def _write_notebook(path: Path, cells: list[dict[str, object]]) -> Path:
    path.write_text(
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}),
        encoding="utf-8",
    )
    return path


def test_notebook_parameter_cells(tmp_path: Path) -> None:
    nb = _write_notebook(
        tmp_path / "nb.ipynb",
        [
            {"cell_type": "markdown", "metadata": {"tags": ["parameters"]}, "source": "# md"},
            {
                "cell_type": "code",
                "metadata": {"tags": ["parameters"]},
                "source": ["lr = 0.1\n", "epochs = 1\n"],
                "outputs": [],
                "execution_count": None,
            },
            {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []},
            {
                "cell_type": "code",
                "metadata": {"tags": ["injected-parameters", "other"]},
                "source": "# Parameters\nlr = 0.5\n",
                "outputs": [],
            },
            {"cell_type": "code", "metadata": {"tags": "parameters"}, "source": "bad = 1"},
        ],
    )
    cells = notebook_parameter_cells(nb)
    assert cells == ["lr = 0.1\nepochs = 1\n", "# Parameters\nlr = 0.5\n"]
    assert notebook_parameter_cells(str(nb)) == cells
    assert papermill_params(cells) == {"lr": 0.5}


def test_notebook_parameter_cells_errors(tmp_path: Path) -> None:
    assert notebook_parameter_cells(tmp_path / "missing.ipynb") == []
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    assert notebook_parameter_cells(bad) == []
    weird = tmp_path / "weird.ipynb"
    weird.write_text("[1, 2]", encoding="utf-8")
    assert notebook_parameter_cells(weird) == []
    assert notebook_parameter_cells(tmp_path) == []  # a directory
