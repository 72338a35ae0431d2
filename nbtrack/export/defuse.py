"""What each top-level statement defines and uses: the facts a backward slice runs on.

Pure :mod:`ast` work, no execution. The analysis is conservative: where it cannot tell
(mutation through a method, an alias, a function that touches globals) it says "maybe
defines", which keeps a statement rather than dropping it. A kept statement too many only
costs time; a missing one breaks the script.

Facts per statement:

``must``
    names it certainly rebinds (``x = ...``, ``def f``, ``import m``, ``del x``): the
    search for an earlier definition of those names stops here.
``may``
    names it may change without ending the search: mutation (``x.append(1)``,
    ``x[0] = 1``, ``x.attr = 1``, ``model.fit(X)``, ``f(x)`` for a function of the
    notebook), conditional bindings (inside ``if``/``for``/``try``), and names aliased to a
    mutated one (``b = a; b.append(1)`` may change ``a``).
``uses``
    names whose earlier value it reads. A function's body reads its free names when it is
    *called*, so they count as uses of the statements that use the function (resolved at
    that point, not at the ``def``). Calling a function of the notebook may change what its
    body mutates.

Pseudo-names stand for state that is not a variable: ``<rng:random>``, ``<rng:numpy>``,
``<rng:torch>`` (the global generators: a draw uses and changes one, a seed call
redefines it), ``<files>`` (calls that read files use it, calls that write files or run
shell commands may change it) and ``<process>`` (working directory, environment
variables, ``sys.path``, library settings like ``torch.set_num_threads``: may changed by
such calls, always used by the tracked cell).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable
from dataclasses import dataclass, field

from nbtrack.pyast.effects import (
    GENERATORS,
    GLOBAL_SEED_CALLS,
    file_effects,
    library_generators,
    seeds_every_generator,
)
from nbtrack.pyast.names import (
    argument_names,
    imported,
    imported_names,
    node_binds,
    target_leaves,
)

__all__ = ["Facts", "Analyzer", "RNG", "FILES", "PROCESS", "rng_name", "GENERATORS"]

RNG = frozenset(f"<rng:{g}>" for g in GENERATORS)
FILES = "<files>"
PROCESS = "<process>"


def rng_name(generator: str) -> str:
    """The pseudo-name of a global generator (``"numpy"`` → ``"<rng:numpy>"``)."""
    return f"<rng:{generator}>"


BUILTIN_NAMES = frozenset(dir(builtins)) | {
    "__name__",
    "__file__",
    "__doc__",
    "__builtins__",
    "__spec__",
    "__loader__",
    "__package__",
}
#: Builtins that neither change their arguments nor touch files or global state.
PURE_BUILTINS = frozenset(
    {
        "print",
        "len",
        "range",
        "list",
        "dict",
        "set",
        "frozenset",
        "tuple",
        "str",
        "int",
        "float",
        "bool",
        "complex",
        "bytes",
        "bytearray",
        "repr",
        "abs",
        "round",
        "min",
        "max",
        "sum",
        "any",
        "all",
        "sorted",
        "reversed",
        "enumerate",
        "zip",
        "map",
        "filter",
        "isinstance",
        "issubclass",
        "type",
        "hash",
        "id",
        "format",
        "getattr",
        "hasattr",
        "callable",
        "divmod",
        "pow",
        "chr",
        "ord",
        "hex",
        "oct",
        "bin",
        "ascii",
        "iter",
        "slice",
        "object",
        "super",
        "property",
        "staticmethod",
        "classmethod",
        "dir",
        "help",
        "memoryview",
        "input",
        "NotImplementedError",
        "ValueError",
        "TypeError",
        "KeyError",
        "RuntimeError",
        "Exception",
        "AssertionError",
        "IndexError",
        "StopIteration",
        "ZeroDivisionError",
        "AttributeError",
        "Warning",
        "UserWarning",
        "DeprecationWarning",
    }
)
#: Builtins whose result is a new immutable value (never shares the argument's objects).
SCALAR_BUILTINS = frozenset(
    {
        "len",
        "sum",
        "abs",
        "round",
        "int",
        "float",
        "str",
        "bool",
        "repr",
        "hash",
        "id",
        "isinstance",
        "any",
        "all",
        "format",
        "ord",
        "chr",
        "complex",
        "divmod",
        "pow",
    }
)
#: Builtins that read or change anything at all.
OPAQUE_BUILTINS = frozenset(
    {"exec", "eval", "globals", "locals", "vars", "__import__", "compile", "breakpoint"}
)
#: Methods that do not change their object (or their arguments) on the common data types.
PURE_METHODS = frozenset(
    {
        "copy",
        "head",
        "tail",
        "describe",
        "mean",
        "sum",
        "std",
        "var",
        "min",
        "max",
        "median",
        "argmax",
        "argmin",
        "argsort",
        "item",
        "tolist",
        "to_numpy",
        "numpy",
        "keys",
        "values",
        "items",
        "get",
        "count",
        "index",
        "format",
        "join",
        "split",
        "rsplit",
        "strip",
        "lstrip",
        "rstrip",
        "lower",
        "upper",
        "title",
        "startswith",
        "endswith",
        "encode",
        "decode",
        "astype",
        "reshape",
        "view",
        "transpose",
        "flatten",
        "ravel",
        "squeeze",
        "unsqueeze",
        "detach",
        "clone",
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
        "score",
        "get_params",
        "isna",
        "isnull",
        "notna",
        "notnull",
        "unique",
        "nunique",
        "value_counts",
        "groupby",
        "agg",
        "aggregate",
        "abs",
        "all",
        "any",
        "dot",
        "matmul",
        "exp",
        "log",
        "sqrt",
        "cumsum",
        "cumprod",
        "prod",
        "corr",
        "cov",
        "quantile",
        "nlargest",
        "nsmallest",
        "idxmax",
        "idxmin",
        "memory_usage",
        "equals",
        "isin",
        "between",
        "dim",
        "size",
        "numel",
        "norm",
        "state_dict",
        "parameters",
        "named_parameters",
        "buffers",
        "children",
        "modules",
        "named_modules",
        "is_integer",
        "isdigit",
        "isalpha",
        "splitlines",
        "total_seconds",
        "tobytes",
        "nonzero",
        "allclose",
        "isclose",
        "diff",
        "pct_change",
        "rolling",
        "expanding",
        "shift",
        "resample",
        "to_dict",
        "to_list",
        "to_string",
    }
)
#: Methods that change their object but never their arguments.
ARG_SAFE_METHODS = frozenset(
    {
        "fit",
        "partial_fit",
        "fit_transform",
        "transform",
        "inverse_transform",
        "log",
        "step",
        "zero_grad",
        "backward",
        "load_state_dict",
        "set_params",
        "write",
        "add_scalar",
        "add_scalars",
        "info",
        "warning",
        "error",
        "debug",
        "sort",
        "reverse",
        "clear",
        "pop",
        "popitem",
        "discard",
        "remove",
        "artifact",
        "tag",
        "note",
        "input",
        "log_params",
        "drop",
        "fillna",
        "rename",
        "reset_index",
        "set_index",
        "sort_values",
        "sort_index",
        "dropna",
        "replace",
        "update_layout",
        "plot",
        "hist",
        "scatter",
        "bar",
        "imshow",
        "set_title",
        "set_xlabel",
        "set_ylabel",
        "legend",
    }
)
#: Methods that store their arguments inside the object: the two become aliases.
STORING_METHODS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "add",
        "update",
        "setdefault",
        "put",
        "__setitem__",
        "register",
        "add_module",
        "register_buffer",
        "register_parameter",
    }
)
#: Module functions (and module attribute methods) that change process-wide settings.
SETTER_PREFIXES = (
    "set_",
    "use_",
    "enable",
    "disable",
    "seterr",
    "filterwarnings",
    "simplefilter",
    "resetwarnings",
    "basicConfig",
    "chdir",
    "putenv",
    "unsetenv",
    "register",
    "manual_seed",
    "seed",
    "setstate",
    "set_state",
    "setrecursionlimit",
    "setdefaultencoding",
    "rc",
    "style",
)
SETTER_NAMES = frozenset(
    {
        "use",
        "set",
        "reload",
        "append",
        "insert",
        "extend",
        "update",
        "setdefault",
        "pop",
        "remove",
        "clear",
        "add",
        "put",
        "chdir",
        "umask",
        "setitem",
    }
)
#: Module attributes that hold process-wide mutable state.
MUTABLE_MODULE_ATTRS = frozenset(
    {
        "environ",
        "path",
        "modules",
        "argv",
        "rcParams",
        "options",
        "meta_path",
        "backends",
        "flags",
        "defaults",
    }
)
#: Module functions that change their first argument in place.
INPLACE_FUNCTIONS = frozenset(
    {
        "shuffle",
        "copyto",
        "fill_diagonal",
        "put",
        "place",
        "putmask",
        "put_along_axis",
        "setattr",
        "delattr",
        "seed",
    }
)
#: Preamble helpers of an exported script and what calling them does.
HELPER_EFFECTS: dict[str, str] = {
    "_nbtrack_sh": "shell",
    "_nbtrack_getoutput": "shell",
    "_nbtrack_script": "shell",
    "_nbtrack_writefile": "write",
    "_nbtrack_run": "opaque",
    "_nbtrack_ipython": "opaque",
    "_nbtrack_seed": "seed",
    "_nbtrack_timeit": "call",
    "_nbtrack_capture": "pure",
    "_nbtrack_untracked": "pure",
}
#: Module aliases the preamble defines for translated magics.
HELPER_MODULES = {
    "_os": "os",
    "_time": "time",
    "_subprocess": "subprocess",
    "_sys": "sys",
    "_runpy": "runpy",
    "_timeit": "timeit",
    "_contextlib": "contextlib",
    "_io": "io",
}

_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


@dataclass
class Facts:
    """What one top-level statement defines and uses (see the module doc)."""

    must: set[str] = field(default_factory=set)
    may: set[str] = field(default_factory=set)
    uses: set[str] = field(default_factory=set)
    wildcard: bool = False  # may define any name (from m import *, %run, exec)
    uses_all: bool = False  # may read any name (exec, eval, globals())
    kills: set[str] = field(default_factory=set)  # pseudo-names redefined (seed calls)


# --- small AST helpers ------------------------------------------------------------------


def _chain(node: ast.expr) -> tuple[str | None, list[str]]:
    """``a.b.c`` → ``("a", ["b", "c"])``; the root through subscripts and calls too."""
    attrs: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Starred):
            node = node.value
        else:
            break
    attrs.reverse()
    return (node.id if isinstance(node, ast.Name) else None), attrs


def _root(node: ast.expr) -> str | None:
    return _chain(node)[0]


def _roots(node: ast.expr) -> set[str]:
    """Names an expression's value may be (part of): every name in it but callees'."""
    found: set[str] = set()
    if isinstance(node, ast.Name):
        found.add(node.id)
    elif isinstance(node, ast.Call):
        found |= _roots_of_callee(node.func)
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            found |= _roots(arg)
    elif isinstance(
        node, ast.Lambda | ast.Constant | ast.BinOp | ast.UnaryOp | ast.Compare | ast.JoinedStr
    ):
        pass  # a new value: it shares no object with the names in it
    else:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                found |= _roots(child)
    return found


def _roots_of_callee(func: ast.expr) -> set[str]:
    # `a.view()` may return (part of) a; `f(x)` need not return f.
    if isinstance(func, ast.Attribute):
        return _roots(func.value)
    return set()


def _is_setter(name: str) -> bool:
    return name in SETTER_NAMES or name.startswith(SETTER_PREFIXES)


# --- function bodies --------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What calling a function (or using a class) of the notebook reads and may change."""

    uses: frozenset[str]
    mutates: frozenset[str]


class _ScopeWalker:
    """Loads, stores and mutation roots of one scope, nested scopes folded in as free names."""

    def __init__(self) -> None:
        self.loads: set[str] = set()
        self.stores: set[str] = set()
        self.globals: set[str] = set()
        self.mutated: set[str] = set()
        self.calls: list[ast.Call] = []
        self.nested_free: set[str] = set()
        self.nested_mutated: set[str] = set()

    def walk(self, nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            self.visit(node)

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.stores.add(node.name)
            outer = [*node.decorator_list]
            if isinstance(node, ast.ClassDef):
                outer += [*node.bases, *(k.value for k in node.keywords)]
            else:
                outer += [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]
            self.walk(outer)
            free, mutated, calls = scope_summary(node)
            self.nested_free |= free
            self.nested_mutated |= mutated
            self.calls += calls
            return
        if isinstance(
            node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
        ):
            free, mutated, calls = scope_summary(node)
            self.nested_free |= free
            self.nested_mutated |= mutated
            self.calls += calls
            if isinstance(node, ast.Lambda):
                self.walk([*node.args.defaults, *(d for d in node.args.kw_defaults if d)])
            return
        if isinstance(node, ast.Global | ast.Nonlocal):
            self.globals.update(node.names)
            return
        if isinstance(node, ast.Name):
            (self.stores if isinstance(node.ctx, ast.Store | ast.Del) else self.loads).add(node.id)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            self.stores.update(imported_names(node))
            return
        # except ... as e, match captures (names and defs were handled above)
        self.stores.update(node_binds(node))
        if isinstance(node, ast.Subscript | ast.Attribute) and isinstance(
            node.ctx, ast.Store | ast.Del
        ):
            root = _root(node)
            if root:
                self.mutated.add(root)
        if isinstance(node, ast.AugAssign):
            root = _root(node.target)
            if root:
                self.mutated.add(root)
        if isinstance(node, ast.Call):
            self.calls.append(node)
            root, attrs = _chain(node.func)
            if attrs and root and attrs[-1] not in PURE_METHODS:
                self.mutated.add(root)
            callee = node.func.id if isinstance(node.func, ast.Name) else None
            if callee not in PURE_BUILTINS:
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    self.mutated |= _roots(arg)
        for child in ast.iter_child_nodes(node):
            self.visit(child)


def scope_summary(node: ast.AST) -> tuple[set[str], set[str], list[ast.Call]]:
    """``(free names, free names it may mutate, calls)`` of a function, class, lambda or
    comprehension: what it reads from (and may change in) the scope around it."""
    walker = _ScopeWalker()
    local: set[str] = set()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        local |= argument_names(node.args)
        if isinstance(node, ast.Lambda):
            walker.visit(node.body)
        else:
            walker.walk(node.body)
            walker.walk(
                [
                    a.annotation
                    for a in (*node.args.args, *node.args.kwonlyargs)
                    if a.annotation is not None
                ]
            )
    elif isinstance(node, ast.ClassDef):
        walker.walk(node.body)
    else:  # a comprehension: its targets are local to it
        assert isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp)
        for gen in node.generators:
            walker.visit(gen.iter)
            for cond in gen.ifs:
                walker.visit(cond)
            for leaf in target_leaves(gen.target):
                if isinstance(leaf, ast.Name):
                    local.add(leaf.id)
                else:
                    walker.visit(leaf)
        if isinstance(node, ast.DictComp):
            walker.visit(node.key)
            walker.visit(node.value)
        else:
            walker.visit(node.elt)
    if isinstance(node, ast.ClassDef):
        # A class body's names are not visible inside its methods; count them all as
        # free (reading a class attribute through a global of the same name is harmless).
        local = set()
    else:
        local |= walker.stores - walker.globals
    free = (walker.loads | walker.nested_free | walker.globals) - local
    mutated = ((walker.mutated | walker.nested_mutated) - local) | (walker.globals & walker.stores)
    return free, mutated & (free | walker.globals), walker.calls


# --- the forward analysis ---------------------------------------------------------------


class Analyzer:
    """Walks top-level statements in execution order, keeping what is known about names.

    Call :meth:`statement` for each top-level statement, oldest first; it returns that
    statement's :class:`Facts`, with function bodies' reads and writes already resolved
    to the definitions visible at that point.
    """

    def __init__(self) -> None:
        # name -> dotted origin of an imported module or library object
        self.origin: dict[str, str] = dict(HELPER_MODULES)
        self.modules: set[str] = set(HELPER_MODULES)  # names bound by `import x`
        self.functions: set[str] = set()  # names bound by def/class in the notebook
        self.summaries: dict[str, Summary] = {}  # name -> what using it reads/changes
        self.taint: dict[str, frozenset[str]] = {}  # data name -> generators its calls use
        self.alias_of: dict[str, set[str]] = {}  # name -> its alias class (shared sets)
        self.defined: set[str] = set()

    # -- environment queries ------------------------------------------------------------
    def is_library(self, name: str) -> bool:
        return name in self.origin

    def aliases(self, name: str) -> set[str]:
        return self.alias_of.get(name, {name})

    def _link(self, names: set[str]) -> None:
        names = {
            n
            for n in names
            if not self.is_library(n) and n not in self.functions and not n.startswith("<")
        }
        if len(names) < 2:
            return
        merged: set[str] = set()
        for name in names:
            merged |= self.aliases(name)
        for name in merged:
            self.alias_of[name] = merged

    # -- per statement --------------------------------------------------------------------
    def statement(self, stmt: ast.stmt) -> Facts:
        scan = _StatementScan(self)
        scan.stmt(stmt, conditional=False)
        facts = scan.facts
        # Uses through functions: what the functions used here read when they run.
        uses = set(facts.uses)
        queue = list(uses)
        while queue:
            name = queue.pop()
            summary = self.summaries.get(name)
            if summary is None:
                continue
            for inner in summary.uses:
                if inner not in uses:
                    uses.add(inner)
                    queue.append(inner)
        mutated = set(facts.may)
        deferred: set[str] = set()
        deferred_mutates: set[str] = set()
        for name in uses:
            summary = self.summaries.get(name)
            if summary is not None:
                mutated |= summary.mutates
                deferred |= summary.uses
                deferred_mutates |= summary.mutates
            if name not in facts.uses:
                # Read inside a function body: calling it may call what the name holds.
                for gen in self.taint.get(name, ()):
                    uses.add(rng_name(gen))
                    mutated.add(rng_name(gen))
        for name in list(mutated):
            if name in BUILTIN_NAMES and name not in self.defined:
                mutated.discard(name)  # super().__init__() changes nothing of ours
            elif not name.startswith("<"):
                mutated |= self.aliases(name)
        facts.uses = uses
        facts.may = (mutated | facts.may) - facts.must
        self._remember(scan, facts, deferred, deferred_mutates)
        return facts

    def _remember(
        self, scan: _StatementScan, facts: Facts, deferred: set[str], deferred_mutates: set[str]
    ) -> None:
        generators = frozenset(n[5:-1] for n in facts.uses if n.startswith("<rng:"))
        for name in scan.direct_uses:
            generators |= self.taint.get(name, frozenset())
        carried = deferred | scan.lambda_free
        for name in facts.must | facts.may:
            if name.startswith("<"):
                continue
            if name in facts.must:
                self.modules.discard(name)
                self.origin.pop(name, None)
                self.functions.discard(name)
                self.summaries.pop(name, None)
                self.taint.pop(name, None)
            if name in scan.imports:
                origin, plain = scan.imports[name]
                self.origin[name] = origin
                if plain:
                    self.modules.add(name)
                continue
            if name in scan.defs:
                self.functions.add(name)
                summary = scan.defs[name]
                old = self.summaries.get(name) if name not in facts.must else None
                if old is not None:
                    summary = Summary(summary.uses | old.uses, summary.mutates | old.mutates)
                self.summaries[name] = summary
                continue
            if carried:
                # An object built from a class (or holding a function) of the notebook:
                # using it later runs that code.
                old = self.summaries.get(name)
                summary = Summary(frozenset(carried), frozenset(deferred_mutates))
                if old is not None:
                    summary = Summary(summary.uses | old.uses, summary.mutates | old.mutates)
                self.summaries[name] = summary
            if generators:
                self.taint[name] = self.taint.get(name, frozenset()) | generators
        for target, sources in scan.alias_links:
            self._link({target} | sources)
        self.defined |= {n for n in facts.must | facts.may if not n.startswith("<")}


class _StatementScan:
    """One top-level statement's facts, before function reads are resolved."""

    def __init__(self, env: Analyzer) -> None:
        self.env = env
        self.facts = Facts()
        self.direct_uses: set[str] = set()
        self.lambda_free: set[str] = set()
        self.imports: dict[str, tuple[str, bool]] = {}
        self.defs: dict[str, Summary] = {}
        self.alias_links: list[tuple[str, set[str]]] = []

    # -- recording ------------------------------------------------------------------------
    def use(self, name: str) -> None:
        self.facts.uses.add(name)
        if not name.startswith("<"):
            self.direct_uses.add(name)

    def bind(self, name: str, conditional: bool) -> None:
        if conditional:
            self.facts.may.add(name)
        else:
            self.facts.must.add(name)
            self.facts.may.discard(name)

    def mutate(self, name: str | None) -> None:
        if name is None:
            return
        if self.env.is_library(name):
            self.facts.may.add(PROCESS)
        if name not in self.facts.must:
            self.facts.may.add(name)

    def draw(self, generators: Iterable[str]) -> None:
        for gen in generators:
            self.use(rng_name(gen))
            self.facts.may.add(rng_name(gen))

    def files(self, reads: bool, writes: bool) -> None:
        if reads:
            self.use(FILES)
        if writes:
            self.facts.may.add(FILES)

    # -- statements -----------------------------------------------------------------------
    def block(self, body: Iterable[ast.stmt]) -> None:
        for stmt in body:
            self.stmt(stmt, conditional=True)

    def stmt(self, node: ast.stmt, conditional: bool) -> None:
        if isinstance(node, ast.Assign):
            self.expr(node.value)
            sources = self._alias_sources(node.value)
            for target in node.targets:
                self.target(target, conditional, sources)
        elif isinstance(node, ast.AnnAssign):
            self.expr(node.annotation)
            if node.value is not None:
                self.expr(node.value)
                self.target(node.target, conditional, self._alias_sources(node.value))
        elif isinstance(node, ast.AugAssign):
            self.expr(node.value)
            if isinstance(node.target, ast.Name):
                name = node.target.id
                self.use(name)
                # In place for lists and arrays: the aliases of the name change too.
                for other in self.env.aliases(name) - {name}:
                    self.facts.may.add(other)
                self.bind(name, conditional)
            else:
                self.expr(node.target)
                self.mutate(_root(node.target))
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                for leaf in target_leaves(target):
                    if isinstance(leaf, ast.Name):
                        self.use(leaf.id)
                        self.bind(leaf.id, conditional)
                    else:
                        self.expr(leaf)
                        self.mutate(_root(leaf))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                self.facts.wildcard = True
            for name, origin, plain in imported(node):
                self.imports[name] = (origin, plain)
                self.bind(name, conditional)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.define(node, conditional)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self.expr(node.iter)
            self.target(node.target, True, self._alias_sources(node.iter))
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.While | ast.If):
            self.expr(node.test)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.target(item.optional_vars, True, self._alias_sources(item.context_expr))
            self.block(node.body)
        elif isinstance(node, ast.Try | ast.TryStar):
            self.block(node.body)
            for handler in node.handlers:
                if handler.type is not None:
                    self.expr(handler.type)
                if handler.name:
                    self.bind(handler.name, True)
                self.block(handler.body)
            self.block(node.orelse)
            self.block(node.finalbody)
        elif isinstance(node, ast.Match):
            self.expr(node.subject)
            for case in node.cases:
                for pattern in ast.walk(case.pattern):
                    for name in node_binds(pattern):
                        self.bind(name, True)
                    if isinstance(pattern, ast.MatchValue):
                        self.expr(pattern.value)
                    elif isinstance(pattern, ast.MatchClass):
                        self.expr(pattern.cls)
                if case.guard is not None:
                    self.expr(case.guard)
                self.block(case.body)
        elif isinstance(node, ast.Expr):
            self.expr(node.value, top=not conditional)
        else:  # Return, Raise, Assert, Global, Pass, Break, Continue...
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)
                elif isinstance(child, ast.stmt):
                    self.stmt(child, True)

    def define(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, conditional: bool
    ) -> None:
        outer: list[ast.expr] = [*node.decorator_list]
        if isinstance(node, ast.ClassDef):
            outer += [*node.bases, *(k.value for k in node.keywords)]
        else:
            outer += [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]
            outer += [
                a.annotation
                for a in (*node.args.args, *node.args.kwonlyargs)
                if a.annotation is not None
            ]
            if node.returns is not None:
                outer.append(node.returns)
        for expr in outer:
            self.expr(expr)
        free, mutated, calls = scope_summary(node)
        mutated = {n for n in mutated if not self.env.is_library(n)}
        pseudo_uses, pseudo_mutates = self._call_effects(calls)
        summary = Summary(frozenset(free | pseudo_uses), frozenset(mutated | pseudo_mutates))
        if isinstance(node, ast.ClassDef):
            # The class body runs now: what it reads is read here too.
            for name in free:
                self.use(name)
        self.defs[node.name] = summary
        self.bind(node.name, conditional)

    def _call_effects(self, calls: list[ast.Call]) -> tuple[set[str], set[str]]:
        """Pseudo-names the calls inside a function body read and change."""
        uses: set[str] = set()
        changes: set[str] = set()
        for call in calls:
            root, attrs = _chain(call.func)
            name = attrs[-1] if attrs else (root or "")
            reads, writes = file_effects(name)
            if reads:
                uses.add(FILES)
            if writes:
                changes.add(FILES)
            if root is not None and self.env.is_library(root):
                dotted = ".".join([self.env.origin[root], *attrs])
                gens = library_generators(dotted)
                uses |= {rng_name(g) for g in gens}
                changes |= {rng_name(g) for g in gens}
                if attrs and (_is_setter(attrs[-1]) or MUTABLE_MODULE_ATTRS & set(attrs[:-1])):
                    changes.add(PROCESS)
            elif root in HELPER_EFFECTS:
                if HELPER_EFFECTS[root] in ("shell", "write"):
                    changes |= {FILES, PROCESS}
            elif root is not None and root in OPAQUE_BUILTINS:
                changes.add(PROCESS)
        return uses, changes

    # -- targets --------------------------------------------------------------------------
    def _alias_sources(self, value: ast.expr) -> set[str]:
        if isinstance(value, ast.BinOp | ast.UnaryOp | ast.Compare | ast.Constant | ast.JoinedStr):
            return set()
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in SCALAR_BUILTINS
            and value.func.id not in self.env.defined
        ):
            return set()  # len(a), sum(a): a new number, not a view of a
        return {
            n for n in _roots(value) if not self.env.is_library(n) and n not in self.env.functions
        }

    def target(self, target: ast.expr, conditional: bool, sources: set[str]) -> None:
        for leaf in target_leaves(target):
            if isinstance(leaf, ast.Name):
                self.bind(leaf.id, conditional)
                if sources:
                    self.alias_links.append((leaf.id, sources))
            else:
                # x[i] = v, x.a = v: x changes (and v may now live inside x).
                self.expr(leaf)
                root = _root(leaf)
                self.mutate(root)
                if root and sources:
                    self.alias_links.append((root, sources))

    # -- expressions ----------------------------------------------------------------------
    def expr(
        self, node: ast.expr | None, top: bool = False, local: frozenset[str] = frozenset()
    ) -> None:
        if node is None:
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id not in local:
                self.use(node.id)
            return
        if isinstance(node, ast.NamedExpr):
            self.expr(node.value, local=local)
            self.bind(node.target.id, True)
            return
        if isinstance(
            node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
        ):
            if isinstance(node, ast.Lambda):
                for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]:
                    self.expr(default, local=local)
            free, mutated, calls = scope_summary(node)
            mutated = {n for n in mutated if not self.env.is_library(n)}
            pseudo_uses, pseudo_mutates = self._call_effects(calls)
            for name in (free - local) | pseudo_uses:
                self.use(name)
            for name in mutated - local:
                self.mutate(name)
            self.facts.may |= pseudo_mutates
            if isinstance(node, ast.Lambda):
                self.lambda_free |= (free - local) | pseudo_uses
            for walrus in ast.walk(node):
                if isinstance(walrus, ast.NamedExpr):
                    self.bind(walrus.target.id, True)
            return
        if isinstance(node, ast.Call):
            self.call(node, top, local)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, local=local)
            elif isinstance(child, ast.keyword):
                self.expr(child.value, local=local)

    def call(self, node: ast.Call, top: bool, local: frozenset[str]) -> None:
        self.expr(node.func, local=local)
        args = [*node.args, *(k.value for k in node.keywords)]
        for arg in args:
            self.expr(arg, local=local)
        root, attrs = _chain(node.func)
        if root in local:
            return
        name = attrs[-1] if attrs else (root or "")
        self.files(*file_effects(name))
        arg_roots: set[str] = set()
        for arg in args:
            arg_roots |= _roots(arg)
        arg_roots -= local
        inplace = any(
            k.arg == "inplace"
            and not (isinstance(k.value, ast.Constant) and k.value.value is False)
            for k in node.keywords
        )
        out = [k.value for k in node.keywords if k.arg == "out"]
        for value in out:
            self.mutate(_root(value))
        env = self.env

        if root is None or not isinstance(node.func, ast.Name | ast.Attribute):
            # f()(x), x[0](y), (a or b).m(): anything reached may change.
            for name_ in _roots(node.func) | arg_roots:
                self.mutate(name_)
            self.draw(GENERATORS)
            return
        if root in HELPER_EFFECTS and root not in env.defined:
            effect = HELPER_EFFECTS[root]
            if effect == "shell":
                self.use(FILES)
                self.facts.may |= {FILES, PROCESS}
            elif effect == "write":
                self.facts.may.add(FILES)
            elif effect == "opaque":
                self.facts.wildcard = self.facts.uses_all = True
                self.facts.may |= {FILES, PROCESS} | RNG
            elif effect == "seed":
                self._seed(GENERATORS, top)
            return
        if env.is_library(root):
            dotted = ".".join([env.origin[root], *attrs])
            seeded = GLOBAL_SEED_CALLS.get(dotted)
            if seeded is None and seeds_every_generator(name):
                seeded = GENERATORS
            if seeded is not None:
                self._seed(seeded, top)
                return
            self.draw(library_generators(dotted))
            if attrs and (_is_setter(name) or MUTABLE_MODULE_ATTRS & set(attrs[:-1])):
                self.mutate(root)
                self.facts.may.add(PROCESS)
            if dotted.startswith("matplotlib.pyplot") or dotted.startswith("pylab"):
                self.mutate(root)  # pyplot keeps the current figure in the module
            if name.endswith("_") and not name.startswith("_") or name in INPLACE_FUNCTIONS:
                for arg in node.args[:1]:
                    self.mutate(_root(arg))
            if attrs and name in STORING_METHODS:
                env_links = {n for n in arg_roots if not env.is_library(n)}
                if env_links:
                    self.alias_links.append((root, env_links))
            return
        if root not in env.defined and root in BUILTIN_NAMES and not attrs:
            if root in OPAQUE_BUILTINS:
                self.facts.wildcard = self.facts.uses_all = True
                self.facts.may.add(PROCESS)
            elif root in ("setattr", "delattr", "next"):
                for arg in node.args[:1]:
                    self.mutate(_root(arg))
            elif root not in PURE_BUILTINS and root != "open":
                for name_ in arg_roots:
                    self.mutate(name_)
            return
        if not attrs:
            # f(x): a function or class of the notebook, or a callable object (a model).
            if root not in env.functions:
                self.mutate(root)
                self.draw(env.taint.get(root, GENERATORS if root not in env.defined else ()))
            for name_ in arg_roots:
                self.mutate(name_)
            return
        # x.method(...): a method of a data object.
        pure = name in PURE_METHODS and not inplace
        if not pure:
            self.mutate(root)
            self.draw(env.taint.get(root, ()))
            if name in STORING_METHODS:
                self.alias_links.append((root, arg_roots))
            elif name not in ARG_SAFE_METHODS:
                for name_ in arg_roots:
                    self.mutate(name_)

    def _seed(self, generators: Iterable[str], top: bool) -> None:
        for gen in generators:
            pseudo = rng_name(gen)
            if top:
                self.facts.kills.add(pseudo)
                self.facts.must.add(pseudo)
                self.facts.may.discard(pseudo)
            else:
                self.facts.may.add(pseudo)
                self.use(pseudo)
