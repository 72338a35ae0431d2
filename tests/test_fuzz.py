"""Fuzzed bad input: every input gives a result or ONE clear line, never a traceback or a hang.

Targets: notebooks given to the exporter (``export_notebook`` and ``nbtrack export NB``), the
``%%track`` option line (``parse_track_line`` and the magic in a real InteractiveShell), the
compare widget's query language, and the server endpoints that take a notebook path (through
a real in-process Jupyter server). Inputs come from hypothesis with ``derandomize=True`` and
no example database, so CI runs the same bounded examples every time. Each example runs under
a watchdog that fails it (naming the input) if it hangs; no test asserts anything about speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shlex
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nbtrack.errors import NbtrackError, UsageError
from nbtrack.trackline import OPTIONS, TrackOptions, parse_track_line

#: Seconds one example may take before the watchdog calls it a hang (generous: 2 shared cores).
HANG_LIMIT = 30

EXPORT_NOTEBOOKS = Path(__file__).parent / "export_notebooks"


#: CI runs the bounded, derandomized examples; to hunt for new defects locally, scale them up
#: (NBTRACK_FUZZ_SCALE=20) and draw fresh ones on each run (NBTRACK_FUZZ_RANDOM=1).
FUZZ_SCALE = float(os.environ.get("NBTRACK_FUZZ_SCALE", "1"))
FUZZ_RANDOM = os.environ.get("NBTRACK_FUZZ_RANDOM") == "1"


def fuzz_settings(examples: int) -> settings:
    """Deterministic, bounded hypothesis settings: same examples on every run, no database."""
    return settings(
        max_examples=max(1, int(examples * FUZZ_SCALE)),
        derandomize=not FUZZ_RANDOM,
        database=None,
        deadline=None,  # hangs are the watchdog's job; speed is the benchmarks' job
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


@contextlib.contextmanager
def watchdog(what: object, seconds: int = HANG_LIMIT) -> Iterator[None]:
    """Fail with ``what`` in the message when the block runs longer than ``seconds``."""

    def hung(signum: int, frame: Any) -> None:
        raise AssertionError(f"no answer within {seconds} s (a hang?) for input {what!r:.300}")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_line(message: str) -> bool:
    """A message a user reads as one line: not empty, no line break of any kind, and not
    an internal check that failed (those end in "please report this")."""
    return (
        bool(message.strip()) and len(message.splitlines()) == 1 and "please report" not in message
    )


# -- building blocks of bad input ---------------------------------------------------------------

#: Text that has broken parsers before: quotes, escapes, NUL, surrogates, odd line breaks,
#: deep nesting, huge numbers, IPython syntax.
NASTY = [
    "",
    " ",
    "'",
    '"',
    "'''",
    '"unbalanced',
    "\\",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udcff",
    "\r",
    "\x0b",
    "\x0c",
    "\u2028",
    "\x85",
    "\t",
    "é",
    "𝔁",
    "\ufeff",
    "\x1b[31m",
    "%",
    "%%",
    "!",
    "!!",
    "?",
    "??",
    "$x",
    "{x}",
    "{",
    "}",
    "(" * 300,
    "[" * 120 + "]" * 120,
    "not " * 300,
    "-" * 50,
    "9" * 5000,
    "1e999",
    "-1e999",
    "nan",
    "inf",
    "True",
    "None",
    "2**64",
    "-1",
    "0x10",
    "__import__('os')",
    "().__class__",
    "lambda: 1",
    "x" * 3000,
]

#: Fragments of cells: IPython magics (known, unknown, malformed) and plain Python.
CELL_FRAGMENTS = [
    "x = 1",
    "lr = 0.1\nepochs = 2",
    "import os",
    "print('hi')",
    "%time x = 1",
    "%timeit -n",
    "%timeit -n 1 -r 1 pass",
    "%prun -s",
    "%prun -s 'cumulative",
    "%run",
    "%run -z file.py",
    "%run 'unbalanced",
    "%run other.ipynb",
    "%cd -",
    "%cd '",
    "%env",
    "%env A=1",
    "%env A",
    "%matplotlib inline",
    "%pip install nothing",
    "%load_ext nothing",
    "%nosuchmagic arg",
    "%%nosuchcellmagic\nbody",
    "%%time\nx = 1",
    "%%time x = (\nx = 1",
    "%%timeit -q -n\npass",
    "%%writefile 'unbalanced\ntext",
    "%%writefile\ntext",
    "%%writefile a b\ntext",
    "%%bash\necho hi",
    "%%script\necho",
    "%%script 'x\necho",
    "%%capture --bad\nx = 1",
    "%%capture out\nx = 1",
    "%%html\n<b>",
    "%%track --name n\nx = 1",
    "%%track --seed -1\nx = 1",
    "%%track --note 'open\nx = 1",
    "%%track --set x=1\nx = 2",
    "%%track --set y=1\nx = 2",
    "%%track\n%%track\nx = 1",
    "%%track --bogus\nx = 1",
    "%%time\n%%track\nx = 1",
    "%%",
    "%",
    "!ls",
    "!pip install x",
    "files = !ls",
    "y = %pwd",
    "y = %time 1",
    "x?",
    "x??",
    "get_ipython().system('ls')",
    "get_ipython().run_line_magic(name, '')",
    "get_ipython().run_line_magic('x')",
    "get_ipython().kernel",
    "get_ipython",
    "def f(:\n    pass",
    "if True:\n%time x = 1",
    "x = '''\n%time\n'''",
    "\tx = 1",
    "x = 1\x00",
    "x = '\ud800'",
    "\x0cx = 1",
    "x = 1\r\ny = 2",
    "x = (" * 150 + "1" + ")" * 150,
    "x = " + "[" * 120 + "]" * 120,
    "x = " + "-" * 3000 + "1",
    "\n" * 50,
    "x = 1\n" * 3000,  # a huge cell
    "%time " * 300 + "x = 1",
    "%%capture\n" * 300 + "x = 1",
    "x = 1  # " + "\x00",
    "# %%track\nx = 1",
    "%pwd\nkey = lambda v: v\ny = 1 if key else 2",
]

text_fragments = st.sampled_from(NASTY) | st.text(max_size=20)
cell_sources = st.lists(
    st.sampled_from(CELL_FRAGMENTS) | st.sampled_from(NASTY) | st.text(max_size=30),
    min_size=0,
    max_size=4,
).map("\n".join)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def _deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


@st.composite
def sound_notebooks(draw: st.DrawFn) -> dict[str, Any]:
    """A valid nbformat 4 notebook whose cells hold odd text: magics, NUL, quotes, nesting."""
    cell_list = []
    for index in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["code", "code", "code", "markdown", "raw"]))
        cell: dict[str, Any] = {
            "id": f"c{index}",
            "cell_type": kind,
            "metadata": draw(st.sampled_from([{}, {}, {"tags": ["parameters"]}])),
            "source": draw(cell_sources),
        }
        if kind == "code":
            cell.update(outputs=[], execution_count=draw(st.none() | st.integers(1, 99)))
        cell_list.append(cell)
    language = draw(st.sampled_from(["python", "python", "ipython3", "R", "", "\x00"]))
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "k", "display_name": "k", "language": language}},
        "cells": cell_list,
    }


@st.composite
def odd_notebooks(draw: st.DrawFn) -> Any:
    """A notebook document that breaks the format: other versions, missing or mistyped fields."""
    document: Any = draw(sound_notebooks())
    cell_list = document["cells"]
    for cell in cell_list:
        for key in draw(st.sets(st.sampled_from(["id", "cell_type", "metadata", "source"]))):
            del cell[key]
        if draw(st.booleans()):
            key = draw(st.sampled_from(["source", "cell_type", "metadata", "execution_count"]))
            cell[key] = draw(json_values | st.just(_deep(60)))
    change = draw(
        st.sampled_from(
            ["v3", "v2", "v5", "v99", "string-version", "no-version", "no-cells", "cells-dict"]
            + ["metadata-list", "not-a-dict", "cells-only"]
        )
    )
    if change == "v3":
        document = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}}
        document["worksheets"] = draw(st.sampled_from([[{"cells": cell_list}], [], {}, None]))
    elif change.startswith("v"):
        document["nbformat"] = {"v2": 2, "v5": 5, "v99": 99}[change]
    elif change == "string-version":
        document["nbformat"] = "4"
    elif change == "no-version":
        del document["nbformat"]
    elif change == "no-cells":
        del document["cells"]
    elif change == "cells-dict":
        document["cells"] = {"0": cell_list}
    elif change == "metadata-list":
        document["metadata"] = draw(st.sampled_from([[], None, "x", {"kernelspec": 3}]))
    elif change == "not-a-dict":
        document = draw(st.sampled_from([[document], "notebook", 4, None]))
    else:
        document = {"cells": cell_list}
    return document


def _corpus() -> list[bytes]:
    files = sorted(EXPORT_NOTEBOOKS.glob("*.ipynb")) + sorted(EXPORT_NOTEBOOKS.glob("*/*.ipynb"))
    return [f.read_bytes() for f in files]


def _serialized(document: Any) -> bytes:
    return json.dumps(document, indent=1).encode("utf-8", "surrogatepass")


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` truncated, with bytes inserted, in another encoding, or replaced outright."""
    damage = draw(st.sampled_from(["truncate", "insert", "utf-16", "bom", "nest", "empty"]))
    if damage == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if damage == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if damage == "utf-16":
        return data.decode("utf-8", "replace").encode("utf-16")
    if damage == "bom":
        return b"\xef\xbb\xbf" + data
    if damage == "nest":
        return b"[" * 100_000 + b"]" * 100_000  # JSON nested deeper than any parser recurses
    return b""


#: The bytes of a .ipynb file: a valid notebook with odd cells, a real one from the export
#: corpus, a document that breaks the format, or any of them damaged on disk.
notebook_bytes = st.one_of(
    sound_notebooks().map(_serialized),
    st.sampled_from(_corpus()),
    odd_notebooks().map(_serialized),
    (sound_notebooks().map(_serialized) | st.sampled_from(_corpus())).flatmap(damaged),
)


# -- the %%track option line ----------------------------------------------------------------------

_FLAGS = [flag for spec in OPTIONS for flag in spec.flags]
option_words = (
    st.sampled_from(_FLAGS)
    | st.sampled_from(NASTY)
    | st.builds(
        lambda k, v: f"{k}={v}", st.sampled_from(["x", "lr", "1x", "", "class"]), text_fragments
    )
    | st.builds(lambda f: f + "=1", st.sampled_from(_FLAGS))
    | st.sampled_from(["--", "-", "--det", "--name=", "--seed=4294967296", "-qs", "-s1"])
    | st.text(max_size=12)
)


@st.composite
def well_formed_options(draw: st.DrawFn) -> str:
    """Options as the grammar wants them (each flag with a quoted value), odd values inside."""
    words: list[str] = []
    for spec in draw(st.lists(st.sampled_from(OPTIONS), max_size=4)):
        words.append(draw(st.sampled_from(spec.flags)))
        if spec.action == "store_true":
            continue
        if spec.dest == "overrides":
            value = "x=" + draw(text_fragments | st.integers().map(str) | st.just("[1, 2]"))
        else:
            value = draw(text_fragments | st.integers(-1, 2**33).map(str))
        words.append(shlex.quote(value))
    return " ".join(words)


track_lines = (
    st.lists(option_words, max_size=8).map(" ".join)
    | well_formed_options()
    | st.builds("{} {}".format, well_formed_options(), option_words)
)


@fuzz_settings(1000)
@given(line=track_lines)
def test_track_line_parses_or_gives_one_usage_line(line: str) -> None:
    with watchdog(line):
        try:
            options = parse_track_line(line)
        except UsageError as exc:
            assert one_line(str(exc)), str(exc)
            return
        # A result is a real result: the exporter writes it back and reads the same options.
        assert parse_track_line(options.to_line()) == options
        # What the magic tolerates from other versions must also parse without strictness.
        assert isinstance(parse_track_line(line, strict=False), TrackOptions)


def _one_kernel_line(line: str) -> bool:
    # IPython ends a cell magic's line at any line break str.splitlines knows (the rest is
    # the cell's body), and its own history database refuses lone surrogates.
    return len(f"x{line}x".splitlines()) == 1 and not any(0xD800 <= ord(c) < 0xE000 for c in line)


@fuzz_settings(300)
@given(line=track_lines.filter(_one_kernel_line))
def test_track_magic_runs_the_cell_or_says_one_usage_line(shell: Any, line: str) -> None:
    from IPython.core.error import UsageError as IPythonUsageError

    shell.user_ns.pop("x", None)
    cell = f"%%track -q --no-env --no-data {line}\nx = 1\n"
    with watchdog(line):
        result = shell.run_cell(cell, store_history=True)
    event("ran" if result.success else "refused")
    if result.success:
        try:
            overrides = dict(parse_track_line(line).overrides)
        except UsageError:
            pytest.fail(f"the magic accepted a line the grammar refuses: {line!r}")
        assert shell.user_ns["x"] == overrides.get("x", 1)
        return
    error = result.error_in_exec or result.error_before_exec
    assert isinstance(error, IPythonUsageError), f"{type(error).__name__}: {error} for {line!r}"
    assert one_line(str(error)), str(error)


# -- the compare widget's query language ---------------------------------------------------------

COLUMNS = [
    "number",
    "name",
    "status",
    "tags",
    "params.lr",
    "params.opt",
    "params.layers",
    "params.flag",
    "metrics.acc",
    "metrics.loss",
    "metrics.lr",
]


@pytest.fixture(scope="module")
def run_frame() -> Any:
    """Runs with every kind of column value: NaN, None, lists, mixed types, bools."""
    import pandas as pd

    return pd.DataFrame(
        {
            "number": [1, 2, 3, 4],
            "name": ["a/b", None, "", "x"],
            "status": ["finished", "failed", "running", None],
            "tags": [["t"], [], None, ["t", "u"]],
            "params.lr": [0.1, math.nan, 1e-3, None],
            "params.opt": ["adam", 3, None, ["x"]],
            "params.layers": [[64, 64], (1,), None, "64"],
            "params.flag": [True, False, None, 1],
            "metrics.acc": [0.5, math.inf, -math.inf, math.nan],
            "metrics.loss": [1, 2, 3, 4],
            "metrics.lr": [0.1, 0.2, 0.3, 0.4],
        }
    )


query_atoms = (
    st.sampled_from(COLUMNS + ["acc", "lr", "opt", "nosuch", "params", "params.__class__"])
    | st.sampled_from(["1", "-2.5", "'adam'", '"t"', "None", "True", "[1, 'a']", "[]", "()"])
    | st.sampled_from(["1e999", "-1e999", "b'x'", "1j", "...", "f'{x}'", "x.y()", "x[0]", "-'a'"])
)
query_ops = st.sampled_from(
    ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or", "is", "+", ","]
)


@st.composite
def queries(draw: st.DrawFn) -> str:
    """Mostly grammatical queries, then maybe damaged with nasty text."""
    parts = [draw(query_atoms)]
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.integers(0, 5)) == 0:
            parts.insert(0, "not")
        parts += [draw(query_ops), draw(query_atoms)]
    if draw(st.booleans()):
        parts = ["(", *parts, ")"]
    text = " ".join(parts)
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(text_fragments) + text[at:]
    return text


@fuzz_settings(1000)
@given(text=queries() | text_fragments)
def test_query_filters_or_gives_one_line(run_frame: Any, text: str) -> None:
    from nbtrack.widgets.filters import QueryError, parse_query

    with watchdog(text):
        try:
            query = parse_query(text, list(run_frame.columns))
        except QueryError as exc:
            assert one_line(str(exc)), str(exc)
            return
        if query is None:
            assert not text.strip()
            return
        # The widget only reports errors when the query is typed: a query it accepted must
        # then filter every frame without raising.
        mask = query.mask(run_frame)
    assert mask.dtype == bool and list(mask.index) == list(run_frame.index)


# -- notebooks given to the exporter -----------------------------------------------------------


def _export_one(notebook: dict[str, Any]) -> str | None:
    """The script for ``notebook``, or None when the exporter refused it with one line."""
    import ast

    from nbtrack.export.notebook import export_notebook_node

    try:
        script = export_notebook_node(notebook, name="fuzzed.ipynb")
    except NbtrackError as exc:
        assert one_line(str(exc)), str(exc)
        return None
    ast.parse(script)  # a script is only a result if Python can run it
    script.encode("utf-8")  # and it can be written to a file
    return script


def test_every_fragment_in_every_place_exports_or_gives_one_line() -> None:
    """Each odd fragment at least once, alone and inside the magics that translate their
    body, in a code and a markdown cell (hypothesis below mixes them further)."""
    places = ["{}", "%%track --name n\n{}", "%%time\n{}", "%time {}", "%%capture\n{}"]
    refused = 0
    for fragment in CELL_FRAGMENTS + NASTY:
        for place in places:
            source = place.format(fragment)
            cells = [
                {"cell_type": "code", "source": source, "metadata": {}, "outputs": []},
                {"cell_type": "markdown", "source": source, "metadata": {}},
            ]
            with watchdog(source[:300]):
                if _export_one({"nbformat": 4, "metadata": {}, "cells": cells}) is None:
                    refused += 1
                # A markdown cell is a comment whatever it holds.
                assert _export_one({"nbformat": 4, "metadata": {}, "cells": cells[1:]})
    assert 0 < refused < len(CELL_FRAGMENTS + NASTY) * len(places)


@fuzz_settings(400)
@given(data=notebook_bytes)
def test_export_notebook_gives_a_script_or_one_line(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    import ast

    from nbtrack.export import export_notebook

    path = tmp_path_factory.mktemp("nb") / "fuzzed.ipynb"
    path.write_bytes(data)
    with watchdog(data[:300]):
        try:
            script = export_notebook(path)
        except NbtrackError as exc:
            event(f"refused: {str(exc)[:150]}")
            assert one_line(str(exc)), str(exc)
            return
    event("exported")
    ast.parse(script)  # a script is only a result if Python can run it
    script.encode("utf-8")  # and it can be written to a file


@fuzz_settings(200)
@given(data=notebook_bytes)
def test_export_command_prints_a_script_or_one_line(
    tmp_path_factory: pytest.TempPathFactory, capfd: pytest.CaptureFixture[str], data: bytes
) -> None:
    from nbtrack import cli

    path = tmp_path_factory.mktemp("nb") / "fuzzed.ipynb"
    path.write_bytes(data)
    capfd.readouterr()
    with watchdog(data[:300]), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = cli.main(["export", str(path)])
    out, err = capfd.readouterr()
    # What a terminal would show on stderr too (Python's default filters hide these).
    hidden = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)
    err += "".join(f"{w.message}\n" for w in caught if not issubclass(w.category, hidden))
    if status == 0:
        assert out.strip() and not err, err
    else:
        assert status == 1, status
        assert err.startswith("nbtrack: error: ") and one_line(err), err


def test_the_installed_command_on_the_worst_inputs(tmp_path: Path) -> None:
    """``nbtrack export`` as a user runs it: a real process, its real stdout and stderr."""
    import ast
    import subprocess
    import sys

    odd = "# title\x00 with NUL, a lone \udcff, and \u2028 a break"
    good = {
        "nbformat": 4,
        "nbformat_minor": 4,  # before cell ids: nbformat must not warn on stderr
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": odd},
            {"cell_type": "code", "metadata": {}, "outputs": [], "source": "%pwd\nf = lambda: 1"},
        ],
    }
    # A file name that is not UTF-8 text (the title of the script quotes it).
    named = os.path.join(os.fsencode(tmp_path), b"odd-\xff.ipynb")
    with open(named, "wb") as fh:
        fh.write(_serialized(good))
    broken = tmp_path / "broken.ipynb"
    broken.write_bytes(_serialized(good)[:40])
    command = [sys.executable, "-m", "nbtrack", "export"]
    done = subprocess.run([*command, named], capture_output=True, timeout=120)
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode(errors="replace")
    ast.parse(done.stdout.decode("utf-8"))
    done = subprocess.run([*command, str(broken)], capture_output=True, timeout=120)
    err = done.stderr.decode("utf-8")
    assert done.returncode == 1 and done.stdout == b""
    assert err.startswith("nbtrack: error: ") and one_line(err.rstrip("\n")), err


# -- notebooks and paths given to the server --------------------------------------------------

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"nbtrack.server": True}}}


#: Paths a browser (or an attacker) might send as the notebook's path.
server_paths = st.sampled_from(
    [
        "nb.ipynb",
        "sub/nb.ipynb",
        "../nb.ipynb",
        "/etc/passwd.ipynb",
        "a/../../nb.ipynb",
        "%2e%2e%2fnb.ipynb",
        "..\\nb.ipynb",
        "C:/nb.ipynb",
        "nb.ipynb\x00.ipynb",
        "x" * 5000 + ".ipynb",
        ("d" * 200 + "/") * 30 + "nb.ipynb",
        "\ud800.ipynb",
        ".ipynb",
        "nb.txt",
        "sub",
        "",
        "loop/nb.ipynb",
        "loop.ipynb",
        "afile/nb.ipynb",
        "sub/../nb.ipynb",
        "./nb.ipynb",
        "sub//nb.ipynb",
    ]
) | st.builds(lambda t: t + ".ipynb", text_fragments)
run_refs = st.sampled_from(["1", "0", "-1", "last", "", "9" * 5000, "%", "'", "\x00"]) | st.text(
    max_size=10
)


@st.composite
def server_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], str | None, bytes]:
    """(endpoint, method, query arguments, body, notebook file content) of one request."""
    content = draw(notebook_bytes)
    endpoint = draw(st.sampled_from(["runs", "run", "diff", "export"]))
    path = draw(st.sampled_from(["nb.ipynb"]) | server_paths)
    if endpoint == "export":
        body_doc: Any = {"path": path}
        if draw(st.booleans()):
            body_doc["run"] = draw(run_refs | st.integers() | json_values)
        if draw(st.integers(0, 5)) == 0:
            body_doc = draw(json_values)
        body = json.dumps(body_doc)
        if draw(st.integers(0, 5)) == 0:
            body = body[: draw(st.integers(0, len(body)))]
        return endpoint, "POST", {}, body, content
    params = {"path": path}
    for name in {"run": ["run"], "diff": ["a", "b"]}.get(endpoint, []):
        if draw(st.integers(0, 5)):
            params[name] = draw(run_refs)
    return endpoint, "GET", params, None, content


def _notebook_with_runs(root: Path) -> None:
    """``nb.ipynb`` in ``root`` with a store holding two runs (so run refs can resolve)."""
    import nbformat

    from nbtrack.model import HistoryEntry
    from nbtrack.store.sqlite import Store
    from nbtrack.tracker import RunSpec, start_run

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%%track\nlr = 0.1\n")])
    nbformat.write(nb, root / "nb.ipynb")
    (root / "sub").mkdir()
    (root / "afile").write_text("not a folder")
    os.symlink("loop", root / "loop")  # a symbolic link to itself
    os.symlink("loop.ipynb", root / "loop.ipynb")
    store = Store(root / ".nbtrack")
    for count, lr in ((1, 0.1), (2, 0.2)):
        run = start_run(
            RunSpec(
                name="t",
                source=f"lr = {lr}\n",
                code=f"lr = {lr}\n",
                capture_env=False,
                history=[HistoryEntry(count, f"%%track\nlr = {lr}\n")],
                notebook=str(root / "nb.ipynb"),
                cwd=str(root),
                namespace={"lr": lr},
            ),
            store=store,
        )
        run.log(acc=lr)
        run.finish(None)
    store.close()


async def test_server_answers_fuzzed_notebooks_and_paths_with_json(
    jp_serverapp: Any,
    http_server_client: Any,
    jp_auth_header: dict[str, str],
    jp_base_url: str,
    jp_root_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from urllib.parse import quote

    from jupyter_server.utils import url_path_join

    from nbtrack import config

    monkeypatch.delenv(config.ENV_STORE, raising=False)
    config.set_store_dir(None)
    _notebook_with_runs(jp_root_dir)
    loop = asyncio.get_running_loop()
    seen: list[int] = []

    def fetch(endpoint: str, method: str, params: dict[str, str], body: str | None) -> Any:
        # The query is encoded here rather than by jp_fetch, so that a lone surrogate goes
        # out as the invalid UTF-8 bytes a broken client would send.
        query = "&".join(
            f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in params.items()
        )
        url = url_path_join(jp_base_url, "nbtrack", endpoint) + "?" + query
        payload = None if body is None else body.encode("utf-8", "surrogatepass")

        async def request() -> Any:
            return await http_server_client.fetch(
                url,
                method=method,
                body=payload,
                headers=jp_auth_header,
                raise_error=False,
                request_timeout=HANG_LIMIT,
            )

        # Hypothesis drives the requests from a worker thread; the server keeps this loop.
        future = asyncio.run_coroutine_threadsafe(request(), loop)
        try:
            return future.result(timeout=HANG_LIMIT + 5)
        except TimeoutError:
            future.cancel()
            raise AssertionError(f"no answer within {HANG_LIMIT} s for {url}") from None

    @fuzz_settings(200)
    @given(request=server_requests())
    def one_request(request: tuple[str, str, dict[str, str], str | None, bytes]) -> None:
        endpoint, method, params, body, content = request
        (jp_root_dir / "nb.ipynb").write_bytes(content)
        for script in jp_root_dir.glob("nb_*.py"):
            script.unlink()
        response = fetch(endpoint, method, params, body)
        assert response is not None, (endpoint, params, body)
        assert response.headers["Content-Type"].startswith("application/json"), response.body
        data = json.loads(response.body)
        seen.append(response.code)
        if response.code == 200:
            assert isinstance(data, dict)
            return
        assert set(data) == {"message", "reason"}, data  # never a traceback
        assert data["reason"] != "internal-error", (endpoint, params, body, content[:200])
        assert one_line(data["message"]), data

    await asyncio.to_thread(one_request)
    # The fuzzer reached every side: answers, bad requests and refused paths.
    assert {200, 400, 403} <= set(seen), sorted(set(seen))
