"""Magics and shell escapes → plain Python (nbtrack.export.translate), no kernel needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbtrack.errors import ExportError
from nbtrack.export.helpers import helper_source
from nbtrack.export.translate import (
    CellSyntaxError,
    indent,
    track_options,
    translate_cell,
)

# (cell, text the translation must contain, helpers it must need)
CASES = [
    ("x = 1\ny = x + 1", "x = 1\ny = x + 1", set()),
    ("%cd /tmp", "_os.chdir(_os.path.expanduser('/tmp'))", {"os"}),
    ("%cd", "_os.chdir(_os.path.expanduser('~'))", {"os"}),
    ("%env MODE=fast", "_os.environ['MODE'] = 'fast'", {"os"}),
    ("%env MODE fast", "_os.environ['MODE'] = 'fast'", {"os"}),
    ("%set_env MODE=fast", "_os.environ['MODE'] = 'fast'", {"os"}),
    ("%time y = 2 * 3", "y = 2 * 3", {"time"}),
    ("%%time\nz = 4\n", "z = 4", {"time"}),
    ("value = %time 2 + 3", "value = (2 + 3)", set()),
    ("%timeit sum(range(10))", "def _nbtrack_timed():\n    sum(range(10))", {"timeit"}),
    ("%%timeit -n 3 -r 2\nsum(range(10))\n", "number=3, repeat=2", {"timeit"}),
    ("%matplotlib inline", 'MPLBACKEND", "Agg"', {"os"}),
    ("!pip install numpy==2.0", "# !pip install numpy==2.0  -- dropped", set()),
    ("%pip install numpy", "# %pip install numpy  -- dropped", set()),
    ("!python -m pip install -q x", "-- dropped", set()),
    ("!echo hello", "_nbtrack_sh('echo hello')", {"sh"}),
    ("!echo {name}", "_nbtrack_sh(f'echo {name}')", {"sh"}),
    ("!echo $name and $$HOME", "_nbtrack_sh(f'echo {name} and $HOME')", {"sh"}),
    ("!awk '{print $1}' f.txt", "_nbtrack_sh(\"awk '{print $1}' f.txt\")", {"sh"}),
    ("files = !ls", "files = (_nbtrack_getoutput('ls'))", {"getoutput"}),
    ("%ls -l", "_nbtrack_sh('ls -l')", {"sh"}),
    ("%run helper.py --n 2", "_nbtrack_run('helper.py', ['--n', '2'], globals()", {"run"}),
    ("%run -i helper.py", "interactive=True", {"run"}),
    ("%load_ext nbtrack", "# %load_ext nbtrack  -- dropped", set()),
    ("%load_ext autoreload\n%autoreload 2", "# %autoreload 2  -- dropped", set()),
    ("%config InlineBackend.figure_format = 'retina'", "-- dropped", set()),
    ("%who", "# %who  -- dropped", set()),
    ("x?", "# %pinfo x  -- dropped", set()),
    (
        "%%capture out\nprint('hidden')\n",
        "with _nbtrack_capture(stdout=True, stderr=True) as out:\n    print('hidden')",
        {"capture"},
    ),
    (
        "%%capture --no-stderr\nprint(1)\n",
        "_nbtrack_capture(stdout=True, stderr=False)",
        {"capture"},
    ),
    (
        "%%writefile data.txt\nhello\n",
        "_nbtrack_writefile('data.txt', 'hello\\n', append=False)",
        {"writefile"},
    ),
    ("%%writefile -a data.txt\nmore\n", "append=True", {"writefile"}),
    ("%%bash\necho hi\n", "_nbtrack_script(['bash'], 'echo hi\\n')", {"script"}),
    ("%%html\n<b>x</b>\n", "# %%html  -- dropped", set()),
    ("%pwd", "print(_os.getcwd())", {"os"}),
    ("here = %pwd", "here = (_os.getcwd())", {"os"}),
    (
        "for i in range(2):\n    !echo {i}\n",
        "for i in range(2):\n    _nbtrack_sh(f'echo {i}')",
        {"sh"},
    ),
    ("if True:\n    %matplotlib inline\n", "    _os.environ.setdefault", {"os"}),
    ("if True:\n    %who\n", "    pass  # %who  -- dropped", set()),
    ("cd ..", "_os.chdir(_os.path.expanduser('..'))", {"os"}),  # automagic
    ("%nbtrack runs", "# %nbtrack runs  -- dropped", set()),
]


@pytest.mark.parametrize(("cell", "expected", "helpers"), CASES, ids=[c[0][:30] for c in CASES])
def test_translation(cell: str, expected: str, helpers: set[str]) -> None:
    result = translate_cell(cell, label="cell 1")
    assert expected in result.code
    assert helpers <= set(result.helpers)
    assert "get_ipython" not in result.code
    compile(result.code, "<cell>", "exec")


def test_comments_and_layout_are_kept() -> None:
    cell = "# load\nx = 1  # one\n%cd /tmp\n# done\ny = 2\n"
    result = translate_cell(cell)
    assert result.code.splitlines()[0:2] == ["# load", "x = 1  # one"]
    assert "# done\ny = 2" in result.code


@pytest.mark.parametrize(
    "cell", ["%foo bar", "%%sql\nSELECT 1\n", "%store -r x", "x = %who_ls", "ip = get_ipython()"]
)
def test_unknown_magic_is_an_error_naming_it_and_the_cell(cell: str) -> None:
    with pytest.raises(ExportError) as info:
        translate_cell(cell, label="cell In[7]")
    message = str(info.value)
    assert "cell In[7]" in message
    assert "\n" not in message
    if cell.startswith("%foo"):
        assert "%foo" in message and "--allow-ipython" in message
    if cell.startswith("%%sql"):
        assert "%%sql" in message


def test_allow_ipython_keeps_unknown_magics_through_ipython() -> None:
    result = translate_cell("%foo bar\nx = get_ipython()", allow_ipython=True)
    assert "_nbtrack_ipython().run_line_magic('foo', 'bar')" in result.code
    assert "x = _nbtrack_ipython()" in result.code
    assert "get_ipython" not in result.code
    assert "ipython" in result.helpers


def test_syntax_error_names_the_cell_and_line() -> None:
    with pytest.raises(CellSyntaxError) as info:
        translate_cell("x = 1\ny = (", label="cell 3")
    assert "cell 3" in str(info.value) and "line 2" in str(info.value)


def test_track_cells_give_their_options_and_body() -> None:
    result = translate_cell(
        "%%track --name a/b --seed 3 --tag x -t y --set lr=0.1 --no-env\nlr = 1\n!echo {lr}\n"
    )
    assert result.track is not None
    assert result.track.name == "a/b" and result.track.seed == 3
    assert result.track.tags == ("x", "y") and result.track.no_env
    assert result.track.overrides == (("lr", 0.1),)
    assert result.code.startswith("lr = 1\n_nbtrack_sh(f'echo {lr}')")


def test_bad_track_options_are_export_errors_naming_the_cell() -> None:
    with pytest.raises(ExportError, match=r"^cell 2: %%track: argument --seed/-s: invalid int"):
        track_options("--seed notanumber", "cell 2")
    with pytest.raises(ExportError, match=r"^cell 2: bad --set option 'lr'"):
        track_options("--set lr", "cell 2")
    with pytest.raises(
        ExportError, match=r"^cell In\[4\]: %%track: unrecognized arguments: --bogus"
    ):
        translate_cell("%%track --bogus\nx = 1\n", label="cell In[4]")
    # A line recorded by another nbtrack version: unknown options are left out, not errors.
    assert track_options("--sweep 40 --name a", "run #3", strict=False).name == "a"


def test_indent_leaves_multiline_strings_alone() -> None:
    code = 'text = """a\nb"""\nx = 1\n'
    assert indent(code, "    ") == '    text = """a\nb"""\n    x = 1\n'


def test_helpers_run_under_plain_python(tmp_path: Path) -> None:
    """The preamble helpers the translations call do what the magics did."""
    cells = [
        "%%writefile out.txt\nhello\n",
        "%%writefile -a out.txt\nworld\n",
        "lines = !cat out.txt",
        "%%capture cap\nprint('quiet')\n",
        "%env NB_X=1",
        "%cd sub",
        "here = %pwd",
        "%%bash\necho from-bash > made.txt\n",
        "%time total = sum(range(5))",
        "%timeit -n 1 -r 1 sum(range(5))",
    ]
    translations = [translate_cell(c) for c in cells]
    helpers = set().union(*(t.helpers for t in translations))
    imports, definitions = helper_source(helpers)
    check = (
        "import os\nprint(repr((lines, cap.stdout, os.environ['NB_X'], "
        "os.path.basename(here), total)))\n"
    )
    script = (
        "\n".join(imports)
        + "\n"
        + definitions
        + "\n"
        + "\n".join(t.code for t in translations)
        + "\n"
        + check
    )
    (tmp_path / "sub").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == repr((["hello", "world"], "quiet\n", "1", "sub", 10))
    assert (tmp_path / "sub" / "made.txt").read_text() == "from-bash\n"
    assert "quiet" not in done.stdout.replace("'quiet\\n'", "")
