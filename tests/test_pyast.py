"""Tests for nbtrack.pyast: the one place that says what Python code binds, reads and does."""

from __future__ import annotations

import ast

import pytest

from nbtrack.pyast.bindings import (
    parameter_values,
    parse_module,
    rewrite_bindings,
    value_source,
)
from nbtrack.pyast.effects import (
    LIBRARY_GENERATORS,
    TORCH_PACKAGES,
    file_effects,
    is_seed_call,
    library_generators,
    writes_path,
)
from nbtrack.pyast.names import (
    argument_names,
    dotted_name,
    imported,
    imported_modules,
    node_binds,
)
from nbtrack.pyast.positions import (
    apply_edits,
    char_offset,
    line_starts,
    node_span,
    source_lines,
)

# --- bindings -------------------------------------------------------------------------

BINDING_FORMS = [
    ("simple", "lr = 1e-3", {"lr": 1e-3}),
    ("annotated", "lr: float = 1e-3", {"lr": 1e-3}),
    ("annotated without value", "lr: float", {}),
    ("tuple unpacking", "lr, wd = 1e-3, 0.5", {"lr": 1e-3, "wd": 0.5}),
    ("list unpacking", "[a, (b, c)] = [1, (2, 3)]", {"a": 1, "b": 2, "c": 3}),
    ("starred unpacking", "a, *b = 1, 2, 3", {}),
    ("unpacking a name", "a, b = pair", {}),
    ("chained immutable", "lr = wd = 1e-3", {"lr": 1e-3, "wd": 1e-3}),
    ("chained tuple", "a = b = (1, ('x', None))", {"a": (1, ("x", None)), "b": (1, ("x", None))}),
    ("chained list", "xs = ys = []", {}),
    ("chained tuple of list", "a = b = ([1],)", {}),
    ("chained set", "a = b = {1}", {}),
    ("chained non-name target", "a = (b, c) = 1, 2", {}),
    ("chained attribute target", "a = cfg.b = 1", {}),
    ("augmented", "lr *= 0.5", {}),
    ("augmented after simple", "lr = 1e-3\nlr *= 0.5", {"lr": 1e-3}),
    ("rebinding twice", "lr = 1e-3\nlr = 2e-3", {"lr": 2e-3}),
    ("non-literal after literal", "lr = 1e-3\nlr = float(lr)", {"lr": 1e-3}),
    ("nested", "if True:\n    lr = 1", {}),
    ("non-literal", "lr = 2 ** 10", {}),
    ("syntax error", "lr = (", {}),
]


@pytest.mark.parametrize(
    ("source", "expected"), [f[1:] for f in BINDING_FORMS], ids=[f[0] for f in BINDING_FORMS]
)
def test_parameter_values(source: str, expected: dict[str, object]) -> None:
    got = parameter_values(source)
    assert got == expected
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}


def test_rewrite_is_the_last_binding_only() -> None:
    source = "lr = 1e-3\nfirst = lr\nlr = 2e-3  # later\nlr *= 2\nlr = float(lr)\n"
    out, replaced = rewrite_bindings(source, {"lr": "P"})
    assert out == "lr = 1e-3\nfirst = lr\nlr = P  # later\nlr *= 2\nlr = float(lr)\n"
    assert replaced == {"lr"}


def test_rewrite_splits_a_chained_assignment() -> None:
    out, replaced = rewrite_bindings("x = 0; lr = wd = 1e-3  # both\n", {"wd": "W"})
    assert out == "x = 0; lr = 1e-3; wd = W  # both\n"
    assert replaced == {"wd"}
    out, _ = rewrite_bindings("lr = wd = (1,\n  2)\n", {"lr": "L", "wd": "W"})
    assert out == "lr = L; wd = W\n"
    # A name rebound later keeps the chained value; only the later binding is its param.
    out, replaced = rewrite_bindings("lr = wd = 1\nwd = 2\n", {"lr": "L", "wd": "W"})
    assert out == "lr = L; wd = 1\nwd = W\n"
    assert replaced == {"lr", "wd"}
    namespace: dict[str, object] = {"L": 5, "W": 6}
    exec(out, namespace)  # noqa: S102 - the rewritten code must still run
    assert (namespace["lr"], namespace["wd"]) == (5, 6)


def test_rewrite_leaves_what_is_no_binding() -> None:
    source = "xs = ys = []\nif c:\n    lr = 1\n"
    assert rewrite_bindings(source, {"xs": "X", "lr": "L", "missing": "M"}) == (source, set())
    assert rewrite_bindings("lr = (", {"lr": "L"}) == ("lr = (", set())
    assert rewrite_bindings("lr = 1", {}) == ("lr = 1", set())


def test_rewrite_with_crlf_form_feed_and_non_ascii() -> None:
    source = "título = 'é'; lr = 1\r\n\x0cwd = [1,\r\n 2]\r\na = b = 'ü'\r\n"
    out, replaced = rewrite_bindings(source, {"lr": "2", "wd": "[3]", "b": "'x'"})
    assert out == "título = 'é'; lr = 2\r\n\x0cwd = [3]\r\na = 'ü'; b = 'x'\r\n"
    assert replaced == {"lr", "wd", "b"}
    assert parameter_values(out) == {"título": "é", "lr": 2, "wd": [3], "a": "ü", "b": "x"}


def test_value_source_round_trips_and_refuses_objects() -> None:
    for value in [1e-300, -0.0, "it's", b"\x00", (1,), {"a": [1]}, None, 10**30]:
        assert ast.literal_eval(value_source(value)) == value
    assert value_source(float("inf")) == "float('inf')"
    with pytest.raises(ValueError, match="not a Python literal"):
        value_source(object())


# --- positions ------------------------------------------------------------------------


def test_char_offset_after_non_ascii_text() -> None:
    source = 'título = "x"; lr = 1\n日本 = 2; z = 3\n'
    tree = parse_module(source)
    assert tree is not None
    starts = line_starts(source)
    lr = tree.body[1]
    assert isinstance(lr, ast.Assign)
    start, end = node_span(source, starts, lr.value)
    assert source[start:end] == "1"
    z = tree.body[3]
    assert isinstance(z, ast.Assign)
    assert source[char_offset(source, starts, z.lineno, z.col_offset) :].startswith("z = 3")


def test_line_starts_follow_the_tokenizer() -> None:
    # Form feeds and other separators that str.splitlines honours are not line breaks.
    assert line_starts("a\r\nb\rc\nd\x0ce\x1cf") == [0, 3, 5, 7]
    assert source_lines("a\r\nb\x0cc\n") == ["a\r\n", "b\x0cc\n"]
    assert source_lines("a\nb") == ["a\n", "b"]
    assert source_lines("") == []


def test_apply_edits_back_to_front_and_refuses_overlap() -> None:
    assert apply_edits("abcdef", [(4, 5, "E"), (0, 1, "AA")]) == "AAbcdEf"
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits("abcdef", [(0, 3, "x"), (2, 4, "y")])


# --- effects --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "writes"),
    [
        ("to_csv", True),
        ("savefig", True),
        ("download_url", True),
        ("write_text", True),
        ("read_csv", False),
        ("open", False),  # decided by its mode, not its name
        ("copy", False),  # reads its source too
    ],
)
def test_writes_path(name: str, writes: bool) -> None:
    assert writes_path(name) is writes


def test_file_effects() -> None:
    assert file_effects("open") == (True, True)
    assert file_effects("read_csv") == (True, False)
    assert file_effects("system") == (False, True)
    assert file_effects("copy") == (False, True)
    assert file_effects("mean") == (False, False)


@pytest.mark.parametrize(
    ("call", "seeds"),
    [
        ("random.seed(1)", True),
        ("np.random.seed(1)", True),
        ("rng.manual_seed(1)", True),
        ("torch.Generator().manual_seed(1)", True),
        ("Random(1)", True),
        ("other.Random(1)", False),
        ("L.seed_everything(1)", True),
        ("transformers.set_seed(1)", True),
        ("np.random.rand(1)", False),
        ("fs[0](1)", False),
    ],
)
def test_is_seed_call(call: str, seeds: bool) -> None:
    node = ast.parse(call, mode="eval").body
    assert isinstance(node, ast.Call)
    assert is_seed_call(node.func) is seeds


def test_library_generators_and_torch_family() -> None:
    assert library_generators("numpy.random.rand") == {"numpy"}
    assert library_generators("numpy.zeros") == frozenset()
    assert library_generators("random.random") == {"random"}
    assert library_generators("json.loads") == frozenset()
    assert library_generators("mystery.fit") == {"random", "numpy", "torch"}
    # The torch family is one table: every package that imports torch draws from it.
    for package in TORCH_PACKAGES:
        assert LIBRARY_GENERATORS[package] == {"torch"}
        assert library_generators(f"{package}.anything") == {"torch"}


# --- names ----------------------------------------------------------------------------


def test_dotted_name() -> None:
    assert dotted_name(ast.parse("np.random.seed", mode="eval").body) == "np.random.seed"
    assert dotted_name(ast.parse("f().x", mode="eval").body) is None


def test_imported_and_modules() -> None:
    tree = ast.parse("import a.b\nimport c.d as e\nfrom .f import g\nfrom h import *\n")
    found = [
        t
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for t in imported(node)
    ]
    assert found == [("a", "a", True), ("e", "c.d", True), ("g", "f.g", False)]
    assert list(imported_modules(tree)) == ["a", "c", "h"]


def test_node_binds_and_argument_names() -> None:
    source = (
        "import os.path\n"
        "def f(a, /, b, *c, d, **e): pass\n"
        "try:\n    pass\nexcept E as err:\n    pass\n"
        "match v:\n    case {'k': x, **rest}: pass\n    case [y, *more]: pass\n"
        "(w := 1)\n"
    )
    tree = ast.parse(source)
    bound = {name for node in ast.walk(tree) for name in node_binds(node)}
    assert bound == {"os", "f", "err", "x", "rest", "y", "more", "w"}
    func = tree.body[1]
    assert isinstance(func, ast.FunctionDef)
    assert argument_names(func.args) == {"a", "b", "c", "d", "e"}
