"""The small pieces of Python an exported script defines for translated magics.

Each entry is source text written into the script once, when a cell needs it. They use
private names (``_nbtrack_*``, ``_os``...) so they never collide with the user's own.
Only the standard library is used, except ``ipython`` (``--allow-ipython``).
"""

from __future__ import annotations

__all__ = ["HELPERS", "helper_source", "HELPER_IMPORTS"]

#: Import lines a helper needs, by helper name.
HELPER_IMPORTS: dict[str, tuple[str, ...]] = {
    "os": ("import os as _os",),
    "time": ("import time as _time",),
    "sh": ("import subprocess as _subprocess",),
    "getoutput": ("import subprocess as _subprocess",),
    "script": ("import subprocess as _subprocess", "import sys as _sys"),
    "run": ("import runpy as _runpy", "import sys as _sys"),
    "timeit": ("import timeit as _timeit",),
    "capture": ("import contextlib as _contextlib", "import io as _io"),
    "writefile": ("import os as _os",),
    "ipython": ("import sys as _sys",),
    "seed": ("import sys as _sys",),
    "versions": ("import sys as _sys",),
    "inputs": ("import os as _os", "import sys as _sys"),
    "literal": ("import ast as _ast",),
    "failed": ("import sys as _sys",),
    "secret": ("import os as _os",),
}

HELPERS: dict[str, str] = {
    "os": "",
    "time": "",
    "sh": '''
def _nbtrack_sh(command):
    """!command: run it in a shell, like IPython (a failure does not stop the script)."""
    return _subprocess.run(command, shell=True).returncode
''',
    "getoutput": '''
def _nbtrack_getoutput(command):
    """x = !command: the command's output lines (stderr included, as IPython does)."""
    done = _subprocess.run(command, shell=True, stdout=_subprocess.PIPE,
                           stderr=_subprocess.STDOUT, text=True)
    return done.stdout.splitlines()
''',
    "script": '''
def _nbtrack_script(program, body):
    """%%bash / %%script PROGRAM: run the cell's text with that program."""
    command = program or [_sys.executable]
    return _subprocess.run(command, input=body, text=True).returncode
''',
    "run": '''
def _nbtrack_run(target, argv, namespace, module=False, interactive=False):
    """%run [-i] [-m] TARGET ARGS: run a file (or module) as __main__, keep its names."""
    saved = _sys.argv
    _sys.argv = [target, *argv]
    try:
        if module:
            found = _runpy.run_module(target, run_name="__main__", alter_sys=True)
        elif interactive:
            with open(target, encoding="utf-8") as fh:
                exec(compile(fh.read(), target, "exec"), namespace)
            return
        else:
            found = _runpy.run_path(target, run_name="__main__")
    finally:
        _sys.argv = saved
    namespace.update({k: v for k, v in found.items() if not k.startswith("__")})
''',
    "timeit": '''
def _nbtrack_timeit(function, number=None, repeat=7):
    """%timeit: time a statement (its assignments stay local, as in IPython)."""
    timer = _timeit.Timer(function)
    if number is None:
        number, _ = timer.autorange()
    times = [t / number for t in timer.repeat(repeat=repeat, number=number)]
    mean = sum(times) / len(times)
    print(f"{mean * 1e6:.3g} us per loop (mean of {repeat} runs, {number} loops each)")
''',
    "capture": '''
class _nbtrack_capture:
    """%%capture [name]: keep what the block prints; .stdout, .stderr, .show()."""

    def __init__(self, stdout=True, stderr=True):
        self._streams = (stdout, stderr)
        self._out, self._err = _io.StringIO(), _io.StringIO()
        self._stack = _contextlib.ExitStack()

    stdout = property(lambda self: self._out.getvalue())
    stderr = property(lambda self: self._err.getvalue())
    outputs = property(lambda self: [])

    def show(self):
        print(self.stdout, end="")
        print(self.stderr, end="", file=__import__("sys").stderr)

    def __call__(self):
        self.show()

    def __enter__(self):
        if self._streams[0]:
            self._stack.enter_context(_contextlib.redirect_stdout(self._out))
        if self._streams[1]:
            self._stack.enter_context(_contextlib.redirect_stderr(self._err))
        return self

    def __exit__(self, *exc):
        self._stack.close()
        return False
''',
    "writefile": '''
def _nbtrack_writefile(path, text, append=False):
    """%%writefile [-a] PATH: write the cell's text to a file."""
    path = _os.path.expanduser(path)
    with open(path, "a" if append else "w", encoding="utf-8") as fh:
        fh.write(text)
    print(("Appending to " if append else "Writing ") + path)
''',
    "ipython": '''
def _nbtrack_ipython():
    """An IPython shell working in this script's namespace (--allow-ipython)."""
    from IPython.core.interactiveshell import InteractiveShell

    if not InteractiveShell.initialized():
        InteractiveShell.instance(user_module=_sys.modules[__name__])
    return InteractiveShell.instance()
''',
    "seed": '''
def _nbtrack_seed(seed, torch_too=False):
    """Seed random, NumPy and torch (when in use) the way `%%track --seed` does."""
    import random

    random.seed(seed)
    try:
        import numpy
    except ImportError:
        pass
    else:
        numpy.random.seed(seed)
    if torch_too or "torch" in _sys.modules:
        import torch

        torch.manual_seed(seed)
''',
    "rng": '''
def _nbtrack_restore_rng(encoded):
    """Put random, NumPy and torch back in the state the run started from."""
    import base64
    import json
    import zlib

    from nbtrack.capture.seeds import restore_rng_state

    restore_rng_state(json.loads(zlib.decompress(base64.b64decode("".join(encoded)))))
''',
    "versions": '''
def _nbtrack_check_versions(python):
    """Warn about each installed version that differs from the one the run used.

    The pins are read from this file's own `# /// script` header, so editing a pin there
    changes what is checked.
    """
    import importlib.metadata
    import platform
    import re
    import tomllib

    with open(__file__, encoding="utf-8") as fh:
        text = fh.read()
    block = re.search(r"(?m)^# /// script$\\s(?P<content>(^#(| .*)$\\s)+)^# ///$", text)
    pins = []
    if block:
        content = "".join(line[2:] if line.startswith("# ") else line[1:]
                          for line in block.group("content").splitlines(keepends=True))
        pins = tomllib.loads(content).get("dependencies", [])
    problems = []
    if python and platform.python_version() != python:
        problems.append(f"Python {platform.python_version()} runs this; the run used {python}")
    for pin in pins:
        name, sep, wanted = pin.partition("==")
        if not sep:
            continue
        name, wanted = name.strip(), wanted.strip()
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if have != wanted:
            problems.append(f"{name} {have or \'is not installed\'}; the run used {wanted}")
    for problem in problems:
        print(f"warning: {problem} (results may differ)", file=_sys.stderr)
    return problems
''',
    "inputs": '''
def _nbtrack_check_inputs(inputs, namespace, strict):
    """Compare what the run read (files and data) with their recorded fingerprints."""
    try:
        from nbtrack.capture.fingerprint import fingerprint, fingerprint_file
    except ImportError:
        print("warning: nbtrack is not installed: the run\'s inputs are not checked",
              file=_sys.stderr)
        return []
    problems = []
    for name, kind, digest, path in inputs:
        try:
            if kind in ("file", "dir"):
                where = name if _os.path.exists(name) or not path else path
                found = fingerprint_file(where, name).hash
            elif name in namespace:
                fp = fingerprint(namespace[name], name)
                found = fp.hash if fp is not None else None
            else:
                problems.append(f"input {name!r} is not defined before the tracked cell")
                continue
        except (OSError, ValueError) as exc:
            problems.append(f"input {name!r} cannot be read ({exc})")
            continue
        if found != digest:
            problems.append(f"input {name!r} differs from what the run read "
                            f"(recorded {digest}, found {found})")
    for problem in problems:
        print(f"{\'error\' if strict else \'warning\'}: {problem}", file=_sys.stderr)
    if problems and strict:
        raise SystemExit(f"{len(problems)} input(s) differ from the recorded run (--strict)")
    return problems
''',
    "untracked": '''
class _nbtrack_stopped(BaseException):
    """The untracked run reached its stop_at: it ends the cell (a BaseException, so the
    cell\'s own `except Exception` does not catch it), as the pruned trial ended."""


class _nbtrack_untracked:
    """Stands in for `track` in code exported untracked; keeps each metric\'s last value.

    With stop_at={"metric": M, "step": S} its log raises _nbtrack_stopped once M is logged
    at step S (or past it), as the tracked script\'s run block does.
    """

    def __init__(self, stop_at=None):
        self.metrics = {}
        self._steps = {}
        self._stop_at = stop_at

    def log(self, step=None, **metrics):
        for key, value in metrics.items():
            try:
                self.metrics[key] = float(value.item() if hasattr(value, "item") else value)
            except (TypeError, ValueError):
                continue
            self._steps[key] = self._steps.get(key, -1) + 1 if step is None else int(step)
        stop = self._stop_at
        if (stop and stop["metric"] in metrics
                and self._steps.get(stop["metric"], -1) >= stop["step"]):
            raise _nbtrack_stopped(f"stopped at step {self._steps[stop[\'metric\']]} of "
                                   f"{stop[\'metric\']}, where the recorded run stopped")

    def artifact(self, obj, name=None):
        return None

    def tag(self, *tags):
        pass

    def note(self, text):
        pass

    def log_params(self, **params):
        pass

    def input(self, obj, name):
        pass

    def goal(self, **directions):
        pass

    def register(self, model, artifact=None, description=None):
        return None
''',
    "failed": '''
def _nbtrack_failed(count, error):
    """A cell that raised in the notebook raises here too; go on, as the notebook did."""
    print(f"note: In[{count}] raised {type(error).__name__}: {error} (as in the notebook)",
          file=_sys.stderr)
''',
    "secret": '''
def _nbtrack_secret(name):
    """A secret the run used, which nbtrack never stored: read from the environment
    variable NAME (or NAME in upper case); stop with one line when neither is set."""
    for key in (name, name.upper()):
        if key in _os.environ:
            return _os.environ[key]
    raise SystemExit(f"error: {name} is a secret the recorded run used and nbtrack did not "
                     f"store it; set the environment variable {name} and run again")
''',
    "display": '''
def display(*objs, **kwargs):
    """IPython's display(): printed, in a script."""
    for obj in objs:
        print(obj)
''',
    "literal": '''
def _nbtrack_literal(text):
    """A command-line value read as a Python literal ([64, 64], None, \'adam\'), else text."""
    try:
        return _ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
''',
}


def helper_source(names: set[str] | frozenset[str]) -> tuple[list[str], str]:
    """``(import lines, definitions)`` for the helpers ``names``, in a stable order."""
    imports: list[str] = []
    for name in sorted(names):
        for line in HELPER_IMPORTS.get(name, ()):
            if line not in imports:
                imports.append(line)
    body = "".join(HELPERS[name] for name in sorted(names) if HELPERS.get(name))
    return sorted(imports), body
