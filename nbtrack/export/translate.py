"""IPython syntax in a cell → plain Python that runs under ``python``.

IPython's own input transformer (imported lazily, only for cells that are not already
plain Python) turns magics and shell escapes into ``get_ipython().run_line_magic(...)``,
``run_cell_magic``, ``system`` and ``getoutput`` calls. Those calls are found in the
transformed code's AST and each is replaced, by source position, with its Python
equivalent; everything else in the cell (comments included) is kept as written.

Translations call a few helpers (``_nbtrack_sh``, ``_nbtrack_timeit``...) that the script
defines once in its preamble (:mod:`nbtrack.export.helpers`); :class:`Translation` lists
the ones a cell needs. A magic with no Python equivalent is an :class:`ExportError` that
names it and its cell, unless ``allow_ipython`` keeps it as a call into a real
``InteractiveShell`` (``_nbtrack_ipython()``).
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from dataclasses import dataclass

from nbtrack.errors import ExportError, NbtrackError
from nbtrack.pyast.positions import char_offset, line_starts
from nbtrack.trackline import TrackOptions, parse_track_line

__all__ = [
    "Translation",
    "CellSyntaxError",
    "translate_cell",
    "track_options",
    "indent",
]


class CellSyntaxError(ExportError):
    """A cell that is not valid (I)Python: it cannot have run."""


@dataclass(frozen=True)
class Translation:
    """One cell as plain Python.

    ``code`` is the cell's Python. ``helpers`` names the preamble helpers it calls.
    ``track`` is set (and ``code`` is the body only) when the cell is a ``%%track`` cell.
    """

    code: str
    helpers: frozenset[str] = frozenset()
    track: TrackOptions | None = None
    magics: tuple[str, ...] = ()  # the magics translated, for the script's comments


# --- %%track ----------------------------------------------------------------------------


def track_options(line: str, label: str, *, strict: bool = True) -> TrackOptions:
    """The options of a ``%%track`` line (:func:`nbtrack.trackline.parse_track_line`).

    A bad line is a :class:`CellSyntaxError` that names the cell: the magic refused it, so
    the cell never ran (an exported history leaves it out, as it does a syntax error).
    """
    try:
        return parse_track_line(line, strict=strict)
    except NbtrackError as exc:
        raise CellSyntaxError(f"{label}: {exc}") from None


# --- small text utilities ---------------------------------------------------------------


def indent(code: str, prefix: str) -> str:
    """``code`` with ``prefix`` before each line, except lines inside multi-line strings.

    Indenting the inside of a triple-quoted string would change the string's value.
    """
    import io
    import tokenize

    lines = code.splitlines(keepends=True)
    inside: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
                inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    out = []
    for number, line in enumerate(lines, start=1):
        if number in inside or not line.strip():
            out.append(line if number in inside else line.lstrip(" \t"))
        else:
            out.append(prefix + line)
    return "".join(out)


def _block(code: str) -> str:
    """``code`` indented as the body of a ``with`` or ``def``; ``pass`` when it holds no
    statement (only comments, say, where every magic in it was dropped)."""
    body = indent(code.rstrip("\n") + "\n", "    ") if code.strip() else ""
    try:
        tree = _parse(code)
        empty = isinstance(tree, ast.Module) and not tree.body
    except SyntaxError:
        empty = False  # not ours to judge here; the script's own check reports it
    return body + "    pass\n" if empty else body


def _strip_leading_blank_lines(source: str) -> str:
    lines = source.splitlines(keepends=True)
    while lines and not lines[0].strip():
        lines.pop(0)
    return "".join(lines)


_DOLLAR = re.compile(r"\$(\$?)([A-Za-z_][\w.]*)")


def _expand(text: str) -> ast.expr:
    """An expression for ``text`` after IPython's ``$name`` / ``{expr}`` expansion.

    IPython formats magic arguments and shell commands with the user's variables; when any
    field fails it leaves the whole text as it is. The same all-or-nothing rule applies here
    at export time: a ``{...}`` that is not a Python expression keeps the text literal.
    """
    if "$" not in text and "{" not in text:
        return ast.Constant(text)
    parts: list[ast.expr] = []
    literal: list[str] = []
    i = 0
    n = len(text)

    def flush() -> None:
        if literal:
            parts.append(ast.Constant("".join(literal)))
            literal.clear()

    while i < n:
        ch = text[i]
        if ch == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            depth, j = 1, i + 1
            while j < n and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if depth:
                return ast.Constant(text)
            inner = text[i + 1 : j - 1]
            try:
                expr = _expression(inner.strip())
            except SyntaxError:
                return ast.Constant(text)
            flush()
            parts.append(ast.FormattedValue(expr, -1, None))
            i = j
            continue
        if ch == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
            continue
        if ch == "$":
            match = _DOLLAR.match(text, i)
            if match and match.group(1):  # $$name: a literal $name for the shell
                literal.append("$" + match.group(2))
                i = match.end()
                continue
            if match:
                try:
                    expr = _expression(match.group(2).rstrip("."))
                except SyntaxError:
                    return ast.Constant(text)
                flush()
                parts.append(ast.FormattedValue(expr, -1, None))
                i = match.start() + 1 + len(match.group(2).rstrip("."))
                continue
        literal.append(ch)
        i += 1
    flush()
    if all(isinstance(p, ast.Constant) for p in parts):
        return ast.Constant("".join(str(p.value) for p in parts))  # type: ignore[attr-defined]
    return ast.JoinedStr(parts)


def _expression(code: str) -> ast.expr:
    tree = _parse(code, mode="eval")
    assert isinstance(tree, ast.Expression)
    return tree.body


def _src(node: ast.expr) -> str:
    return ast.unparse(node)


def _parse(code: str, mode: str = "exec") -> ast.AST:
    """``ast.parse(code)``, with every way Python refuses a source raised as ``SyntaxError``.

    Besides syntax errors, ``compile`` refuses lone surrogates (a ``UnicodeEncodeError``),
    NUL bytes (a ``ValueError`` before Python 3.12) and nesting deeper than its parser
    recurses (``RecursionError``, ``MemoryError``): a cell holding them never ran either.
    Warnings the parser emits (``"is" with a literal``) are the notebook's business, not
    the export's, so they are not printed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(code, mode=mode)
    except SyntaxError:
        raise
    except UnicodeError:
        raise SyntaxError("it holds text that is not valid Unicode (a lone surrogate)") from None
    except ValueError as exc:
        raise SyntaxError(str(exc)) from None
    except (RecursionError, MemoryError):
        raise SyntaxError("it is nested too deeply for Python to compile") from None


# --- the magics we know -----------------------------------------------------------------

#: Line magics that only display or configure the interactive session: dropped.
DROPPED_LINE = {
    "matplotlib": "figures are not shown when run as a script",
    "config": "IPython configuration has no effect in a script",
    "load_ext": "IPython extensions are not loaded in a script",
    "reload_ext": "IPython extensions are not loaded in a script",
    "unload_ext": "IPython extensions are not loaded in a script",
    "autoreload": "modules are imported once in a script",
    "aimport": "modules are imported once in a script",
    "xmode": "display setting",
    "precision": "display setting",
    "colors": "display setting",
    "pprint": "display setting",
    "automagic": "display setting",
    "autocall": "display setting",
    "pdb": "debugger setting",
    "debug": "interactive debugger",
    "tb": "display only",
    "who": "display only",
    "whos": "display only",
    "lsmagic": "display only",
    "magic": "display only",
    "history": "display only",
    "hist": "display only",
    "pinfo": "help display (x?)",
    "pinfo2": "help display (x??)",
    "psearch": "help display",
    "pdoc": "help display",
    "pdef": "help display",
    "psource": "help display",
    "pfile": "help display",
    "quickref": "help display",
    "page": "display only",
    "doctest_mode": "display setting",
    "notebook": "exports the session history",
    "save": "saves the session history",
    "edit": "opens an editor",
    "load": "replaced the cell's text; the loaded code ran when the cell ran again",
    "reset": "clears the interactive namespace",
    "reset_selective": "clears variables",
    "xdel": "deletes a variable from the interactive namespace",
    "clear": "clears the screen",
    "cls": "clears the screen",
    "dhist": "display only",
    "dirs": "display only",
    "bookmark": "interactive directory bookmarks",
    "killbgscripts": "interactive only",
    "nbtrack": "nbtrack session command",
    "pip": "dependencies are pinned in the script header",
    "conda": "dependencies are pinned in the script header",
    "mamba": "dependencies are pinned in the script header",
    "micromamba": "dependencies are pinned in the script header",
    "uv": "dependencies are pinned in the script header",
    "alias_magic": "interactive only",
    "logstart": "interactive logging",
    "logstop": "interactive logging",
    "logon": "interactive logging",
    "logoff": "interactive logging",
    "logstate": "interactive logging",
    "gui": "interactive event loop",
    "connect_info": "kernel information",
    "qtconsole": "interactive only",
    "prun": None,
    "time": None,
    "timeit": None,
}
#: IPython's default POSIX aliases: line magics that run a shell command.
SHELL_ALIASES = {
    "ls": "ls",
    "ll": "ls -F -l",
    "lf": "ls -F -l | grep ^-",
    "lk": "ls -F -l | grep ^l",
    "ldir": "ls -F -l | grep /$",
    "lx": "ls -F -l | grep ^-..x",
    "mkdir": "mkdir",
    "rmdir": "rmdir",
    "mv": "mv",
    "rm": "rm",
    "cp": "cp",
    "cat": "cat",
    "less": "cat",
    "man": "man",
    "more": "cat",
}
#: Cell magics whose body is only displayed (or runs in a browser): dropped.
DROPPED_CELL = {
    "html": "HTML display",
    "HTML": "HTML display",
    "markdown": "Markdown display",
    "latex": "LaTeX display",
    "svg": "SVG display",
    "javascript": "runs in the browser",
    "js": "runs in the browser",
    "perl": None,
    "ruby": None,
}
_PIP_COMMAND = re.compile(r"^\s*(?:(?:\S*/)?python[\d.]*\s+-m\s+)?(?:pip3?|conda|mamba|uv\s+pip)\s")


class _Cell:
    """One cell being translated: the transformed text, the edits, the helpers used."""

    def __init__(self, label: str, allow_ipython: bool, depth: int = 0) -> None:
        self.label = label
        self.allow_ipython = allow_ipython
        self.depth = depth
        self.helpers: set[str] = set()
        self.magics: list[str] = []

    def fail(self, message: str) -> ExportError:
        return ExportError(f"{self.label}: {message}")

    def unknown(self, kind: str, name: str) -> ExportError:
        return self.fail(
            f"unknown magic {kind}{name}: nbtrack cannot turn it into plain Python; remove "
            "it, or export with --allow-ipython to keep it (the script then needs IPython)"
        )

    def nested(self, source: str, what: str) -> Translation:
        """``source`` given to the magic ``what`` (``%time CODE``, a ``%%capture`` body)."""
        if self.depth >= MAX_NESTING:
            raise self.fail(
                f"magics nested more than {MAX_NESTING} deep cannot be exported; simplify the cell"
            )
        suffix = f" ({what})"
        label = self.label if self.label.endswith(suffix) else self.label + suffix
        return _translate_cached(source, label, self.allow_ipython, self.depth + 1)

    def split(self, text: str, what: str) -> list[str]:
        """``text`` split shell-style, as the magic ``what`` reads its arguments."""
        try:
            return shlex.split(text)
        except ValueError as exc:  # unbalanced quotes: IPython refuses the magic too
            raise self.fail(f"{what}: cannot read its arguments ({exc}): {text.strip()}") from None

    def keep_ipython(self, call: ast.Call) -> ast.expr:
        """The call as it is, on a real InteractiveShell (``--allow-ipython``)."""
        self.helpers.add("ipython")
        assert isinstance(call.func, ast.Attribute)
        func = ast.Attribute(ast.Call(ast.Name("_nbtrack_ipython"), [], []), call.func.attr)
        return ast.Call(func, call.args, call.keywords)

    # -- line magics --------------------------------------------------------------------
    def line_magic(self, name: str, arg: str, call: ast.Call, statement: bool) -> str | ast.expr:
        """Python for ``%name arg``: statement text (``statement``) or an expression."""
        self.magics.append("%" + name)
        handler = getattr(self, "_line_" + name, None)
        if handler is not None:
            return handler(arg, call, statement)  # type: ignore[no-any-return]
        if name in SHELL_ALIASES:
            command = (SHELL_ALIASES[name] + " " + arg).strip()
            return self.system(command, statement)
        if name in DROPPED_LINE and DROPPED_LINE[name] is not None:
            if not statement:
                raise self.fail(f"%{name} is used as a value; it has no plain-Python equivalent")
            return f"# %{name} {arg}".rstrip() + f"  -- dropped: {DROPPED_LINE[name]}"
        if self.allow_ipython:
            return self.keep_ipython(call)
        raise self.unknown("%", name)

    def _statement_only(self, name: str, statement: bool) -> None:
        if not statement:
            raise self.fail(f"%{name} is used as a value; write it on a line of its own")

    def _line_cd(self, arg: str, call: ast.Call, statement: bool) -> str:
        self._statement_only("cd", statement)
        words = arg.split()
        if words and words[0] == "-q":
            arg = arg.split(None, 1)[1] if len(words) > 1 else ""
        arg = arg.strip().strip("'\"") if arg.strip()[:1] in "'\"" else arg.strip()
        if arg.startswith("-"):
            raise self.fail(
                f"%cd {arg}: directory history and bookmarks cannot be exported; use a path"
            )
        self.helpers.add("os")
        target = _src(_expand(arg or "~"))
        return f"_os.chdir(_os.path.expanduser({target}))"

    def _line_pwd(self, arg: str, call: ast.Call, statement: bool) -> str | ast.expr:
        self.helpers.add("os")
        expr = ast.Call(ast.Attribute(ast.Name("_os"), "getcwd"), [], [])
        return f"print({_src(expr)})" if statement else expr

    def _line_env(self, arg: str, call: ast.Call, statement: bool) -> str | ast.expr:
        self.helpers.add("os")
        arg = arg.strip()
        if not arg:
            expr: ast.expr = ast.Call(
                ast.Name("dict"), [ast.Attribute(ast.Name("_os"), "environ")], []
            )
            return f"print({_src(expr)})" if statement else expr
        match = re.match(r"^([\w.]+)\s*(?:=\s*|\s+)(.*)$", arg, re.S)
        if match:
            self._statement_only("env", statement)
            name, value = match.group(1), match.group(2)
            return f"_os.environ[{name!r}] = {_src(_expand(value))}"
        expr = ast.Subscript(ast.Attribute(ast.Name("_os"), "environ"), ast.Constant(arg))
        return f"print({_src(expr)})" if statement else expr

    _line_set_env = _line_env

    def _python_arg(self, arg: str, what: str) -> str:
        """The Python code given to %time / %timeit / %prun, translated itself."""
        inner = self.nested(arg, what)
        self.helpers.update(inner.helpers)
        return inner.code

    def _line_time(self, arg: str, call: ast.Call, statement: bool) -> str | ast.expr:
        code = self._python_arg(arg, "%time")
        if not statement:
            try:
                return _expression(code.strip())
            except SyntaxError:
                raise self.fail(
                    "%time is used as a value with a statement; write it on a line of its own"
                ) from None
        self.helpers.add("time")
        return (
            "_nbtrack_t0 = _time.perf_counter()\n" + code.rstrip("\n") + "\n"
            'print(f"Wall time: {_time.perf_counter() - _nbtrack_t0:.3f} s")'
        )

    def _line_prun(self, arg: str, call: ast.Call, statement: bool) -> str | ast.expr:
        words = self.split(arg, "%prun") if arg.strip().startswith("-") else []
        if words:  # options come first; the code is what follows them
            raise self.fail("%prun with options cannot be exported; drop the options")
        code = self._python_arg(arg, "%prun")
        self._statement_only("prun", statement)
        return "# %prun: profiled in the notebook, run plainly here\n" + code.rstrip("\n")

    def _timeit_options(self, arg: str) -> tuple[dict[str, str], str]:
        options: dict[str, str] = {}
        rest = arg.lstrip()
        while rest.startswith("-"):
            match = re.match(r"-([nrp])\s*(\d+)\s*|-([tcqo])\s*", rest)
            if not match:
                raise self.fail(f"%timeit: cannot read the options of {arg.strip()!r}")
            if match.group(1):
                options[match.group(1)] = match.group(2)
            else:
                options[match.group(3)] = ""
            rest = rest[match.end() :]
        return options, rest

    def _timeit(
        self, options: dict[str, str], setup: str, code: str, statement: bool
    ) -> str | ast.expr:
        self.helpers.add("timeit")
        number = options.get("n", "None")
        repeat = options.get("r", "7")
        body = _block(code)
        define = ""
        if setup.strip():
            # %%timeit's first line is setup code, run once before the timings.
            define = setup.rstrip("\n") + "\n"
        define += "def _nbtrack_timed():\n" + body
        call = f"_nbtrack_timeit(_nbtrack_timed, number={number}, repeat={repeat})"
        if statement:
            return define + call
        raise self.fail(
            "%timeit -o used as a value cannot be exported; time it with the timeit module instead"
        )

    def _line_timeit(self, arg: str, call: ast.Call, statement: bool) -> str | ast.expr:
        options, code = self._timeit_options(arg)
        return self._timeit(options, "", self._python_arg(code, "%timeit"), statement)

    def _line_run(self, arg: str, call: ast.Call, statement: bool) -> str:
        self._statement_only("run", statement)
        words = self.split(arg, "%run")
        interactive = module = False
        while words and words[0].startswith("-"):
            flag = words.pop(0)
            if flag == "-i":
                interactive = True
            elif flag == "-m":
                module = True
            elif flag in ("-t", "-e", "-G", "-q"):
                continue
            else:
                raise self.fail(f"%run {flag} cannot be exported; run the file plainly")
        if not words:
            raise self.fail("%run without a file")
        target, argv = words[0], words[1:]
        if target.endswith(".ipynb") and not self.allow_ipython:
            raise self.fail(
                f"%run {target}: running a notebook needs IPython; export that "
                "notebook to a script and run or import it instead, or export "
                "with --allow-ipython"
            )
        if target.endswith(".ipynb"):
            return _src(self.keep_ipython(call))
        self.helpers.add("run")
        return (
            f"_nbtrack_run({_src(_expand(target))}, {[a for a in argv]!r}, globals(), "
            f"module={module}, interactive={interactive})"
        )

    def _line_sx(self, arg: str, call: ast.Call, statement: bool) -> str | ast.expr:
        return self.getoutput(arg, statement)

    _line_system = _line_sx

    def _line_pylab(self, arg: str, call: ast.Call, statement: bool) -> str:
        self._statement_only("pylab", statement)
        self.helpers.add("os")
        return (
            '_os.environ.setdefault("MPLBACKEND", "Agg")  # %pylab: figures are not '
            "shown in a script\nimport numpy\nimport matplotlib\n"
            "from matplotlib import pylab, mlab, pyplot\nnp = numpy\nplt = pyplot\n"
            "from pylab import *\nfrom numpy import *"
        )

    def _line_matplotlib(self, arg: str, call: ast.Call, statement: bool) -> str:
        self._statement_only("matplotlib", statement)
        self.helpers.add("os")
        return (
            f'_os.environ.setdefault("MPLBACKEND", "Agg")  # %matplotlib {arg.strip()}'
            ": figures are not shown in a script"
        ).replace("  #  :", "  #:")

    # -- shell escapes ------------------------------------------------------------------
    def system(self, command: str, statement: bool) -> str | ast.expr:
        if _PIP_COMMAND.match(command):
            if not statement:
                raise self.fail(f"!{command.strip()} is used as a value")
            return f"# !{command.strip()}  -- dropped: dependencies are pinned in the script header"
        self.helpers.add("sh")
        expr = ast.Call(ast.Name("_nbtrack_sh"), [_expand(command)], [])
        return _src(expr) if statement else expr

    def getoutput(self, command: str, statement: bool) -> str | ast.expr:
        self.helpers.add("getoutput")
        expr = ast.Call(ast.Name("_nbtrack_getoutput"), [_expand(command)], [])
        return f'print("\\n".join({_src(expr)}))' if statement else expr

    # -- cell magics --------------------------------------------------------------------
    def cell_magic(self, name: str, line: str, body: str, call: ast.Call | None) -> str:
        """Python for a whole ``%%name line`` cell."""
        self.magics.append("%%" + name)
        if name in (
            "time",
            "prun",
            "debug",
            "capture",
            "timeit",
            "writefile",
            "file",
            "bash",
            "sh",
            "script",
            "python",
            "python3",
            "pypy",
            "system",
            "!",
        ):
            return str(
                getattr(
                    self,
                    "_cell_"
                    + {
                        "file": "writefile",
                        "python3": "python",
                        "pypy": "python",
                        "!": "system",
                    }.get(name, name),
                )(line, body)
            )
        if name in DROPPED_CELL and DROPPED_CELL[name] is not None:
            return (
                f"# %%{name} {line}".rstrip()
                + f"  -- dropped: {DROPPED_CELL[name]}\n"
                + "".join(f"#   {ln}\n" for ln in body.splitlines())
            )
        if name in ("perl", "ruby"):
            return self._cell_script(f"{name} {line}", body)
        if self.allow_ipython:
            self.helpers.add("ipython")
            return f"_nbtrack_ipython().run_cell_magic({name!r}, {line!r}, {body!r})"
        raise self.unknown("%%", name)

    def _body(self, body: str, what: str) -> str:
        inner = self.nested(body, what)
        if inner.track is not None:
            raise self.fail(f"{what} around %%track cannot be exported")
        self.helpers.update(inner.helpers)
        self.magics.extend(inner.magics)
        return inner.code.rstrip("\n") + "\n"

    def _cell_time(self, line: str, body: str) -> str:
        self.helpers.add("time")
        code = self._body(body, "%%time")
        if line.strip():
            code = self._body(line, "%%time") + code
        return (
            "_nbtrack_t0 = _time.perf_counter()\n"
            + code
            + 'print(f"Wall time: {_time.perf_counter() - _nbtrack_t0:.3f} s")\n'
        )

    def _cell_prun(self, line: str, body: str) -> str:
        return "# %%prun: profiled in the notebook, run plainly here\n" + self._body(body, "%%prun")

    def _cell_debug(self, line: str, body: str) -> str:
        return "# %%debug: run plainly here\n" + self._body(body, "%%debug")

    def _cell_timeit(self, line: str, body: str) -> str:
        options, setup = self._timeit_options(line)
        setup_code = self._python_arg(setup, "%%timeit setup") if setup.strip() else ""
        result = self._timeit(options, setup_code, self._body(body, "%%timeit"), True)
        assert isinstance(result, str)
        return result + "\n"

    def _cell_capture(self, line: str, body: str) -> str:
        words = line.split()
        flags = {w for w in words if w.startswith("--")}
        names = [w for w in words if not w.startswith("-")]
        unknown = flags - {"--no-stdout", "--no-stderr", "--no-display"}
        if unknown or len(names) > 1:
            raise self.fail(f"%%capture {line.strip()}: options not understood")
        self.helpers.add("capture")
        code = self._body(body, "%%capture")
        stdout = "--no-stdout" not in flags
        stderr = "--no-stderr" not in flags
        target = names[0] if names else "_nbtrack_captured"
        return f"with _nbtrack_capture(stdout={stdout}, stderr={stderr}) as {target}:\n" + (
            _block(code)
        )

    def _cell_writefile(self, line: str, body: str) -> str:
        words = self.split(line, "%%writefile")
        append = False
        if words and words[0] in ("-a", "--append"):
            append = True
            words = words[1:]
        if len(words) != 1:
            raise self.fail(f"%%writefile {line.strip()}: give one file name")
        self.helpers.add("writefile")
        return f"_nbtrack_writefile({_src(_expand(words[0]))}, {body!r}, append={append})\n"

    def _cell_bash(self, line: str, body: str) -> str:
        return self._cell_script("bash " + line, body)

    def _cell_sh(self, line: str, body: str) -> str:
        return self._cell_script("sh " + line, body)

    def _cell_system(self, line: str, body: str) -> str:
        return "".join(f"{self.system(ln, True)}\n" for ln in body.splitlines() if ln.strip())

    def _cell_python(self, line: str, body: str) -> str:
        self.helpers.add("script")
        return f"_nbtrack_script(None, {body!r})\n"

    def _cell_script(self, line: str, body: str) -> str:
        words = self.split(line, "%%script")
        program = [w for w in words if not w.startswith("-")]
        if not program or len(program) != len(words):
            raise self.fail(f"%%script {line.strip()}: give the program and no options")
        self.helpers.add("script")
        return f"_nbtrack_script({program!r}, {body!r})\n"


def _ipython_call(node: ast.AST) -> str | None:
    """``run_line_magic`` etc. when ``node`` is ``get_ipython().<that>(...)``, else None."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    owner = node.func.value
    if (
        isinstance(owner, ast.Call)
        and isinstance(owner.func, ast.Name)
        and owner.func.id == "get_ipython"
        and not owner.args
    ):
        return node.func.attr
    return None


def _constant_args(call: ast.Call, count: int, cell: _Cell) -> list[str]:
    values = []
    for arg in call.args[:count]:
        if not isinstance(arg, ast.Constant) or not isinstance(arg.value, str):
            raise cell.fail("a get_ipython() call with computed arguments cannot be exported")
        values.append(arg.value)
    if len(values) != count:
        raise cell.fail("a get_ipython() call with missing arguments cannot be exported")
    return values


def translate_cell(
    source: str, *, label: str = "the cell", allow_ipython: bool = False
) -> Translation:
    """Translate one cell's IPython source to plain Python.

    ``label`` names the cell in errors (``"cell In[4]"``). Raises :class:`ExportError` for
    a syntax error or an unknown magic (see the module doc for ``allow_ipython``).
    """
    return _translate_cached(source, label, allow_ipython, 0)


#: How deep magics may nest (``%time %time CODE``, ``%%capture`` around ``%%time``): far
#: beyond real cells, and far below Python's recursion limit.
MAX_NESTING = 16


def _translate_cached(source: str, label: str, allow_ipython: bool, depth: int) -> Translation:
    key = (source, allow_ipython)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    result = _translate(source, label, allow_ipython, depth)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[key] = result  # a history repeats cells: re-runs translate once
    return result


_CACHE: dict[tuple[str, bool], Translation] = {}
_CACHE_SIZE = 4096


def _translate(source: str, label: str, allow_ipython: bool, depth: int) -> Translation:
    cell = _Cell(label, allow_ipython, depth)
    text = _strip_leading_blank_lines(source)
    if text.startswith("%%"):
        first, _, body = text.partition("\n")
        if body and not body.endswith("\n"):
            body += "\n"  # IPython hands cell magics their body with a final newline
        head = first[2:].split(None, 1)
        name = head[0] if head else ""
        line = head[1] if len(head) > 1 else ""
        if name == "track":
            options = track_options(line, label)
            inner = _translate_cached(body, label, allow_ipython, depth + 1)
            if inner.track is not None:
                raise cell.fail("%%track inside %%track cannot be exported")
            return Translation(
                code=inner.code,
                helpers=inner.helpers,
                track=options,
                magics=("%%track", *inner.magics),
            )
        code = cell.cell_magic(name, line, body, None)
        return Translation(code=code, helpers=frozenset(cell.helpers), magics=tuple(cell.magics))

    # Most cells are plain Python: no need for IPython's transformer at all.
    try:
        tree = _parse(source)
        code = source
    except SyntaxError:
        code = _transform(source)
        try:
            tree = _parse(code)
        except SyntaxError as exc:
            automagic = _automagic(source)
            if automagic is None:
                raise _syntax_error(label, exc) from None
            code = _transform(automagic)
            try:
                tree = _parse(code)
            except SyntaxError:
                raise _syntax_error(label, exc) from None
    assert isinstance(tree, ast.Module)
    code = _end_continuation(_rewrite(code, tree, cell))
    return Translation(code=code, helpers=frozenset(cell.helpers), magics=tuple(cell.magics))


def _end_continuation(code: str) -> str:
    """``code`` without a backslash that continues its last line into the cell's trailing
    blank lines: valid in the cell, but a script trims those lines (and a ``with`` block
    indents them), which leaves the backslash continuing into the next cell or the end."""
    text = code.rstrip()
    if not text.endswith("\\"):
        return code
    try:
        _parse(text + "\n")
        return code  # the backslash ends a comment, not a line
    except SyntaxError:
        return text[:-1].rstrip() + "\n"


def _transform(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its tokenizer warns about odd line endings
            return str(TransformerManager().transform_cell(source))  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - text IPython cannot read is reported as a syntax error
        return source


def _automagic(source: str) -> str | None:
    """``cd x`` → ``%cd x``: IPython's automagic applies to one-line cells."""
    lines = [ln for ln in source.splitlines() if ln.strip()]
    if len(lines) != 1:
        return None
    word = lines[0].split()[0]
    if word in DROPPED_LINE or word in SHELL_ALIASES or hasattr(_Cell, "_line_" + word):
        return "%" + lines[0].strip()
    return None


def _syntax_error(label: str, exc: SyntaxError) -> CellSyntaxError:
    where = f" at line {exc.lineno}" if exc.lineno else ""
    text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
    return CellSyntaxError(
        f"{label} has a syntax error{where} ({exc.msg}){text}; fix the "
        "cell (it cannot have run as written)"
    )


@dataclass
class _Edit:
    start: int
    end: int
    text: str


def _rewrite(code: str, tree: ast.Module, cell: _Cell) -> str:
    """Replace every ``get_ipython()`` call in ``code`` with its translation."""
    if "get_ipython" not in code:
        return code
    offsets = line_starts(code)
    edits: list[_Edit] = []
    statement_calls: dict[int, ast.Expr] = {}
    for node in ast.walk(tree):
        for field_name in ("body", "orelse", "finalbody"):
            statements = getattr(node, field_name, None)
            if not isinstance(statements, list):
                continue  # a lambda's or an if-expression's body is one expression
            for stmt in statements:
                if isinstance(stmt, ast.Expr) and _ipython_call(stmt.value):
                    statement_calls[id(stmt.value)] = stmt
        if isinstance(node, ast.ExceptHandler | ast.match_case):
            for stmt in node.body:
                if isinstance(stmt, ast.Expr) and _ipython_call(stmt.value):
                    statement_calls[id(stmt.value)] = stmt

    handled: set[int] = set()
    for node in ast.walk(tree):
        kind = _ipython_call(node)
        if kind is None or id(node) in handled:
            continue
        assert isinstance(node, ast.Call)
        handled.update(id(n) for n in ast.walk(node))
        statement = statement_calls.get(id(node))
        translated = _translate_call(kind, node, statement is not None, cell)
        if statement is not None:
            start = offsets[statement.lineno - 1]
            assert statement.end_lineno is not None
            end = (
                offsets[statement.end_lineno] if statement.end_lineno < len(offsets) else len(code)
            )
            pad = " " * statement.col_offset
            text = translated if isinstance(translated, str) else _src(translated)
            nested = statement.col_offset > 0
            lines = text.rstrip("\n").splitlines() or ["pass"]
            if nested and all(ln.lstrip().startswith("#") for ln in lines):
                lines = ["pass  " + lines[0].lstrip(), *lines[1:]]
            body = "".join(pad + ln + "\n" if ln.strip() else "\n" for ln in lines)
            if end == len(code) and not code.endswith("\n"):  # the cell's last line
                body = body.rstrip("\n")
            edits.append(_Edit(start, end, body))
        else:
            if isinstance(translated, str):
                raise cell.fail("a magic used as a value cannot be exported")
            assert node.end_lineno is not None and node.end_col_offset is not None
            start = char_offset(code, offsets, node.lineno, node.col_offset)
            end = char_offset(code, offsets, node.end_lineno, node.end_col_offset)
            edits.append(_Edit(start, end, "(" + _src(translated) + ")"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "get_ipython" and id(node) not in handled:
            if not cell.allow_ipython:
                raise cell.fail(
                    "the cell calls get_ipython(), which does not exist under "
                    "plain python; remove the call, or export with "
                    "--allow-ipython"
                )
            cell.helpers.add("ipython")
            start = char_offset(code, offsets, node.lineno, node.col_offset)
            end = char_offset(code, offsets, node.lineno, node.col_offset + len("get_ipython"))
            edits.append(_Edit(start, end, "_nbtrack_ipython"))
    edits.sort(key=lambda e: e.start, reverse=True)
    for edit in edits:
        code = code[: edit.start] + edit.text + code[edit.end :]
    try:
        _parse(code)
    except SyntaxError as exc:  # our own translation broke the cell: say so plainly
        raise cell.fail(
            f"could not translate the cell's magics into valid Python ({exc.msg} "
            f"at line {exc.lineno}); please report this"
        ) from None
    return code


def _translate_call(kind: str, call: ast.Call, statement: bool, cell: _Cell) -> str | ast.expr:
    if kind == "run_line_magic":
        name, arg = _constant_args(call, 2, cell)
        return cell.line_magic(name, arg, call, statement)
    if kind == "run_cell_magic":
        name, line, body = _constant_args(call, 3, cell)
        if not statement:
            raise cell.fail(f"%%{name} used as a value cannot be exported")
        return cell.cell_magic(name, line, body, call)
    if kind == "system":
        (command,) = _constant_args(call, 1, cell)
        cell.magics.append("!")
        return cell.system(command, statement)
    if kind == "getoutput":
        (command,) = _constant_args(call, 1, cell)
        cell.magics.append("!")
        return cell.getoutput(command, statement)
    if cell.allow_ipython:
        return cell.keep_ipython(call)
    raise cell.fail(
        f"get_ipython().{kind}(...) cannot be exported; export with --allow-ipython to keep it"
    )
