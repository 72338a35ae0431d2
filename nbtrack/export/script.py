"""Rendering a script: the PEP 723 header, parameters as flags, checks, cells; writing it.

Everything here produces text from plain values; nothing here runs the user's code.
"""

from __future__ import annotations

import base64
import json
import keyword
import os
import re
import tempfile
import zlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbtrack.errors import ExportError, UsageError
from nbtrack.export.helpers import helper_source
from nbtrack.pyast.bindings import (
    parameter_bindings,
    parameter_values,
    parse_module,
    rewrite_bindings,
    value_source,
)
from nbtrack.pyast.names import imported_modules as modules_imported
from nbtrack.pyast.positions import apply_edits
from nbtrack.secrets import Redactor, literal_sites, outermost_spans

__all__ = [
    "Param",
    "ScriptSpec",
    "render",
    "parametrize",
    "secrets_from_env",
    "literal_values",
    "script_params",
    "dependencies",
    "write_script",
    "imported_modules",
    "pep723_block",
    "requirements_text",
]

#: The script's own options; a parameter of the same name gets ``--param-NAME`` instead.
RESERVED_FLAGS = frozenset({"help", "h", "seed", "strict"})


@dataclass(frozen=True)
class Param:
    """A parameter that becomes a command-line flag of the script."""

    name: str
    default: Any

    @property
    def kind(self) -> str:
        value = self.default
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int):
            return "int"
        if isinstance(value, float):
            return "float"
        if isinstance(value, str):
            return "str"
        return "literal"

    def flags(self, reserved: Iterable[str]) -> list[str]:
        taken = set(reserved)
        if self.name in taken:
            return [f"--param-{self.name.replace('_', '-')}"]
        dashed = "--" + self.name.replace("_", "-")
        plain = "--" + self.name
        return [dashed] if dashed == plain else [dashed, plain]


@dataclass
class ScriptSpec:
    """Everything that goes into one script."""

    title: str  # first docstring line
    description: list[str]  # further docstring paragraphs (already wrapped)
    python: str | None = None  # the recorded Python version, e.g. "3.11.7"
    requires_python: str | None = None
    dependencies: list[str] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    params: list[Param] = field(default_factory=list)
    seed: int | None = None  # a --seed flag with this default (None: no flag)
    strict: bool = False
    inputs: list[tuple[str, str, str, str]] = field(default_factory=list)
    rng_state: dict[str, Any] | None = None
    track: bool = True
    blocks: list[str] = field(default_factory=list)  # the code, in order
    epilogue: str = ""
    defaults_from: str = "recorded"  # where flag defaults come from, for --help


def _literal_source(value: Any) -> str:
    try:
        return value_source(value)
    except ValueError as exc:
        raise ExportError(f"parameter value {exc}") from None


def _params_block(spec: ScriptSpec) -> str:
    lines = [
        f"# ---- parameters: the {spec.defaults_from} values are the defaults "
        "(--help lists them) ----",
        "_parser = _argparse.ArgumentParser(",
        f"    description={spec.title!r},",
        ")",
    ]
    reserved = set(RESERVED_FLAGS)
    for param in spec.params:
        flags = param.flags(reserved)
        reserved.add(param.name)
        options = [", ".join(repr(f) for f in flags), f"dest={param.name!r}"]
        default = _literal_source(param.default)
        kind = param.kind
        if kind == "bool":
            options.append("action=_argparse.BooleanOptionalAction")
        elif kind in ("int", "float", "str"):
            options.append(f"type={kind}")
        else:
            spec.helpers.add("literal")
            options.append("type=_nbtrack_literal")
        options.append(f"default={default}")
        recorded = default.replace("%", "%%")
        options.append(f"help={f'{spec.defaults_from}: {recorded}'!r}")
        lines.append(f"_parser.add_argument({', '.join(options)})")
    if spec.seed is not None:
        lines.append(
            f"_parser.add_argument('--seed', type=int, default={spec.seed!r}, "
            f"help={f'the seed ({spec.defaults_from}: {spec.seed})'!r})"
        )
    if spec.inputs:
        lines.append(
            "_parser.add_argument('--strict', action=_argparse.BooleanOptionalAction, "
            f"default={spec.strict!r}, help='stop when an input differs from the "
            "recorded one')"
        )
    lines.append("_ARGS = _parser.parse_args()")
    names = ", ".join(f"{p.name!r}: _ARGS.{p.name}" for p in spec.params)
    lines.append(f"PARAMS = {{{names}}}")
    if spec.seed is not None:
        lines.append("SEED = _ARGS.seed")
    return "\n".join(lines) + "\n"


def pep723_block(requires_python: str | None, dependencies: Sequence[str]) -> str:
    """The ``# /// script`` block (PEP 723) that ``uv run`` and ``pipx run`` read."""
    lines = ["# /// script"]
    if requires_python:
        lines.append(f"# requires-python = {json.dumps(requires_python)}")
    if dependencies:
        lines.append("# dependencies = [")
        lines += [f"#     {json.dumps(dep)}," for dep in dependencies]
        lines.append("# ]")
    else:
        lines.append("# dependencies = []")
    lines.append("# ///")
    return "\n".join(lines) + "\n"


def requirements_text(dependencies: Sequence[str], title: str) -> str:
    """A requirements.txt with the same pins as the script's header."""
    return f"# {title}\n" + "".join(f"{dep}\n" for dep in dependencies)


def _wrap_blob(text: str, width: int = 88) -> str:
    chunks = [text[i : i + width] for i in range(0, len(text), width)] or [""]
    return "(\n" + "".join(f"    {chunk!r},\n" for chunk in chunks) + ")"


def encode_rng_state(state: Mapping[str, Any]) -> str:
    """The RNG state as compact base64 text (zlib-compressed JSON) for the script."""
    raw = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def render(spec: ScriptSpec) -> str:
    """The whole script text."""
    if spec.python:
        spec.helpers.add("versions")
    if spec.inputs:
        spec.helpers.add("inputs")
    if spec.rng_state is not None:
        spec.helpers.add("rng")
    params = _params_block(spec)  # may add the "literal" helper
    imports, definitions = helper_source(spec.helpers)
    doc = spec.title + "\n\n" + "\n\n".join(spec.description)
    out = [
        "#!/usr/bin/env python3\n",
        pep723_block(spec.requires_python, spec.dependencies),
        f'"""{_docstring(doc)}\n"""\n\n',
    ]
    imports = sorted(set(imports) | {"import argparse as _argparse"})
    out.append("\n".join(imports) + "\n")
    if spec.track:
        out.append("\nimport nbtrack\n")
    if definitions:
        out.append("\n# ---- helpers for the notebook's magics and the checks ----\n")
        out.append(definitions)
    out.append("\n\n" + params)
    if spec.inputs:
        out.append("STRICT = _ARGS.strict\n")
    if spec.python:
        out.append(f"\n_nbtrack_check_versions({spec.python!r})\n")
    if spec.inputs:
        out.append("# What the run read: (name, kind, recorded fingerprint, recorded path).\n")
        out.append("_INPUTS = [\n" + "".join(f"    {tuple(i)!r},\n" for i in spec.inputs) + "]\n")
    if spec.rng_state is not None:
        out.append("# The RNG state at the tracked cell's start (random, NumPy, torch).\n")
        out.append(f"_RNG_STATE = {_wrap_blob(encode_rng_state(spec.rng_state))}\n")
    for block in spec.blocks:
        out.append("\n" + block.rstrip("\n") + "\n")
    if spec.epilogue:
        out.append("\n" + spec.epilogue.rstrip("\n") + "\n")
    text = "".join(out)
    try:
        compile(text, "<exported script>", "exec")
    except SyntaxError as exc:
        raise ExportError(
            f"the exported script does not compile ({exc.msg} at line "
            f"{exc.lineno}); please report this"
        ) from None
    return text


def _docstring(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


# --- parameters in code -------------------------------------------------------------------
# What a parameter binding is, and which one is rewritten, is nbtrack.pyast.bindings' rule:
# the same one the magic records and ``--set`` rewrites, so a flag changes what it says.


def literal_values(source: str) -> dict[str, Any]:
    """The parameters ``source`` sets: ``{name: value}`` of each name's last top-level
    literal binding (``{}`` if unparsable)."""
    return parameter_values(source)


def parametrize(source: str, names: Iterable[str], holder: str = "PARAMS") -> tuple[str, set[str]]:
    """Replace the parameter binding of each name with ``PARAMS["name"]``.

    Returns the new source and the names replaced (those with a parameter binding). Only
    the last literal binding is replaced, so code between two assignments of a name keeps
    reading the first value; a chained ``a = b = 1`` is split so each flag changes only
    its own name.
    """
    wanted = set(names)
    return rewrite_bindings(source, {name: f"{holder}[{name!r}]" for name in wanted})


#: The helper an exported script reads a secret with (export/helpers.py "secret").
SECRET_READER = "_nbtrack_secret"


def secrets_from_env(
    source: str, names: Collection[str] = (), redactor: Redactor | None = None
) -> tuple[str, list[str]]:
    """``source`` with each secret it holds read from the environment instead.

    The parameter binding of each of ``names`` (the run's secret params), and of any name
    bound to a secret (``'<redacted>'``, or a value :mod:`nbtrack.secrets` calls secret, as
    a store written before redaction holds), becomes ``_nbtrack_secret("name")`` by the
    one binding rule (:func:`~nbtrack.pyast.bindings.rewrite_bindings`); so does every
    other secret literal code gives a name (``f(api_key=...)``, ``{"password": ...}``,
    ``os.environ["HF_TOKEN"] = ...``). Returns the new source and the names read, in order.
    A secret no name is given (``connect("<redacted>")``) stays as it is.
    """
    tree = parse_module(source)
    if tree is None:
        return source, []
    judge = redactor if redactor is not None else Redactor()
    wanted = set(names)
    bound = {
        name: f"{SECRET_READER}({name!r})"
        for name, binding in parameter_bindings(tree).items()
        if name in wanted or judge.is_secret_param(name, binding.value)
    }
    source, replaced = rewrite_bindings(source, bound)
    read = [name for name in bound if name in replaced]
    edits: dict[tuple[int, int], str] = {}
    for site in literal_sites(source):
        # A bare word on a line of IPython syntax is not a Python literal to replace.
        if not site.bare and judge.is_secret_param(site.name, site.value):
            edits[(site.start, site.end)] = site.name
    if edits:
        spans = outermost_spans(edits)
        source = apply_edits(
            source, [(s, e, f"{SECRET_READER}({edits[s, e]!r})") for s, e in spans]
        )
        read += [edits[span] for span in spans]
    return source, list(dict.fromkeys(read))


def script_params(
    recorded: Mapping[str, Any],
    literal: Mapping[str, Any],
    replaced: Collection[str] | None = None,
) -> list[Param]:
    """Flags for the recorded params whose binding the code's rewrite replaced.

    ``replaced`` is the union of the names :func:`parametrize` returned; without it, the
    names in ``literal`` (the :func:`literal_values` of the same code) stand for it. A
    recorded param with no replaced binding (``track.log_params(...)``, or a binding the
    rule does not count) gets no flag: a flag that changes nothing would record a value
    the run never used. The code's own literal wins when it is the same value (a tuple
    stays a tuple, where the record's JSON made it a list).
    """
    flagged = set(literal) if replaced is None else set(replaced)
    out = []
    for name, value in recorded.items():
        if name not in flagged or not name.isidentifier() or keyword.iskeyword(name):
            continue
        if name in literal and _json_equal(literal[name], value):
            value = literal[name]
        out.append(Param(name, value))
    return out


def _json_equal(a: Any, b: Any) -> bool:
    try:
        return bool(json.loads(json.dumps(a)) == json.loads(json.dumps(b))) and type(
            json.loads(json.dumps(a))
        ) is type(json.loads(json.dumps(b)))
    except (TypeError, ValueError):
        return False


# --- dependencies ---------------------------------------------------------------------------


def imported_modules(sources: Iterable[str]) -> list[str]:
    """Top-level names of the modules the code imports (absolute imports only)."""
    found: dict[str, None] = {}
    for source in sources:
        tree = parse_module(source)
        if tree is not None:
            found.update(dict.fromkeys(modules_imported(tree)))
    return list(found)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependencies(
    modules: Iterable[str], recorded: Mapping[str, str] | None, extra: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """PEP 508 pins for the distributions behind ``modules``: ``(pins, notes)``.

    Versions come from ``recorded`` ({distribution: version}, the run's environment) when
    given, else from what is installed. A distribution the record lacks is pinned to the
    installed version with a note.
    """
    import importlib.metadata
    import sys

    mods = [m for m in modules if m not in ("nbtrack",) and m not in sys.stdlib_module_names]
    by_normal = {_normal(k): (k, v) for k, v in (recorded or {}).items()}
    # Most modules are named like their distribution (numpy, pandas, torch): those need no
    # scan of every installed distribution's file list, which costs half a second cold.
    dists: dict[str, str] = {}
    installed_normal: dict[str, str] = {}
    rest = []
    for module in mods:
        key = _normal(module)
        try:
            version = importlib.metadata.version(module)
        except Exception:  # noqa: BLE001 - not a distribution name (sklearn, PIL, yaml...)
            version = None
        if key in by_normal or version is not None:
            dists[module] = by_normal[key][0] if key in by_normal else module
            if version is not None:
                installed_normal[key] = version
        else:
            rest.append(module)
    if rest:
        from nbtrack.capture.environment import distribution_versions, module_distributions

        dists.update(module_distributions(rest))
        installed_normal.update({_normal(k): v for k, v in distribution_versions(rest).items()})
    pins: dict[str, str] = {}
    notes: list[str] = []
    for module, dist in dists.items():
        key = _normal(dist)
        if recorded is not None and key in by_normal:
            name, version = by_normal[key]
            pins[_normal(name)] = f"{dist}=={version}"
        elif key in installed_normal:
            pins[key] = f"{dist}=={installed_normal[key]}"
            if recorded is not None:
                notes.append(
                    f"{dist} (imported as {module}) is not in the run's recorded "
                    f"environment; pinned to the installed {installed_normal[key]}"
                )
    if recorded is not None:
        # What the imported distributions themselves require, at the versions the run had:
        # pandas without its numpy pinned would not rebuild the same environment.
        for key in _required_closure([p.split("==")[0] for p in pins.values()], by_normal):
            name, version = by_normal[key]
            pins.setdefault(key, f"{name}=={version}")
    for item in extra:
        pins.setdefault(_normal(re.split(r"[=<>!~ ]", item)[0]), item)
    return [pins[k] for k in sorted(pins)], notes


_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _required_closure(dists: Iterable[str], among: Mapping[str, Any]) -> set[str]:
    """Normalized names of the distributions ``dists`` require (transitively, extras
    left out) that are also in ``among``."""
    import importlib.metadata

    found: set[str] = set()
    todo = list(dists)
    while todo:
        dist = todo.pop()
        try:
            requirements = importlib.metadata.requires(dist) or []
        except Exception:  # noqa: BLE001 - not installed here, or broken metadata
            continue
        for requirement in requirements:
            if "extra ==" in requirement.replace('extra=="', 'extra == "'):
                continue
            match = _REQUIREMENT_NAME.match(requirement)
            if not match:
                continue
            key = _normal(match.group(1))
            if key in among and key not in found:
                found.add(key)
                todo.append(among[key][0])
    return found


# --- writing ---------------------------------------------------------------------------------


def write_script(
    text: str, path: str | os.PathLike[str], *, force: bool = False, executable: bool = True
) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file, then a rename).

    Raises :class:`UsageError` when ``path`` exists and ``force`` is false, and
    :class:`ExportError` when it cannot be written; no partial file is left behind.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise UsageError(f"{target} is a folder; give the path of the script to write")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; pass --force to overwrite it")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"cannot write {target}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        if executable:
            os.chmod(tmp, 0o755 & ~_umask())
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
