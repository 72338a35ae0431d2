"""What calls do beyond returning a value: read or write files, seed or draw from RNGs.

The tables here are the single source of these rules. Capture uses them to tell inputs
from outputs and to report the seeds a cell sets; the exporter's slicer uses them to know
which statements touch files and which generators a statement draws from or resets.
Calls are judged by name only (no execution, no types), so every table errs the way its
users can afford: a call wrongly taken for a writer only hides an output from the input
list, a library wrongly taken to draw from an RNG only keeps a statement in a script.
"""

from __future__ import annotations

import ast
import sys

from nbtrack.pyast.names import dotted_name

__all__ = [
    "FILE_READERS",
    "FILE_READER_PREFIXES",
    "FILE_WRITERS",
    "FILE_WRITER_PREFIXES",
    "FILE_TRANSFERS",
    "SHELL_CALLS",
    "writes_path",
    "file_effects",
    "GENERATORS",
    "TORCH_PACKAGES",
    "LIBRARY_GENERATORS",
    "NON_RNG_LIBRARIES",
    "library_generators",
    "GLOBAL_SEED_CALLS",
    "SEED_ALL_SUFFIXES",
    "SEED_FUNCTIONS",
    "SEED_KEYWORDS",
    "SEED_FUNCTION_KEYWORDS",
    "seeds_every_generator",
    "is_seed_call",
]

# --- files --------------------------------------------------------------------------------

#: Calls with one of these names read files (or list folders).
FILE_READERS = frozenset(
    {
        "open",
        "read_text",
        "read_bytes",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "imread",
        "listdir",
        "scandir",
        "walk",
        "glob",
        "iglob",
        "iterdir",
        "exists",
        "isfile",
        "isdir",
        "read",
        "readlines",
        "readline",
        "urlopen",
        "ImageFolder",
        "DatasetFolder",
        "memmap",
    }
)
#: Calls whose name starts with one of these read files.
FILE_READER_PREFIXES = ("read_", "load", "fetch_", "from_pretrained", "open_")
#: Calls with one of these names write, create or remove the path they are given: that
#: path is an output, not an input.
FILE_WRITERS = frozenset(
    {
        "savefig",
        "imwrite",
        "mkdir",
        "makedirs",
        "remove",
        "unlink",
        "rmtree",
        "rmdir",
        "touch",
        "tofile",
        "urlretrieve",
        "extractall",
    }
)
#: Calls whose name starts with one of these write the path they are given.
FILE_WRITER_PREFIXES = ("to_", "save", "write", "dump", "export", "download")
#: Calls that read one path and write (or move) another: both are touched, so neither
#: path is output-only.
FILE_TRANSFERS = frozenset(
    {"rename", "replace_file", "copy", "copyfile", "copy2", "copytree", "move"}
)
#: Calls that run a shell command or a program, which may read and write any file.
SHELL_CALLS = frozenset(
    {
        "system",
        "run",
        "call",
        "check_call",
        "check_output",
        "Popen",
        "getoutput",
        "getstatusoutput",
    }
)


def writes_path(name: str) -> bool:
    """Whether a call named ``name`` (its last dotted part) writes the path it is given.

    ``open`` is not decided by name: it writes only with a ``"w"``/``"a"``/``"x"`` mode,
    which the caller reads from the call.
    """
    return name in FILE_WRITERS or name.startswith(FILE_WRITER_PREFIXES)


def file_effects(name: str) -> tuple[bool, bool]:
    """``(may read files, may write files)`` for a call named ``name``, by name only.

    ``open`` counts as both (its mode is not looked at); transfers and shell commands
    may write anything.
    """
    reads = name in FILE_READERS or name.startswith(FILE_READER_PREFIXES)
    writes = name == "open" or writes_path(name) or name in FILE_TRANSFERS or name in SHELL_CALLS
    return reads, writes


# --- random number generators -----------------------------------------------------------

#: The global generators nbtrack records, seeds and restores.
GENERATORS = ("random", "numpy", "torch")

#: Packages that import torch themselves: after importing one, torch's RNG is in play and
#: their calls draw from torch's global generator.
TORCH_PACKAGES = frozenset(
    {"torch", "torchvision", "torchaudio", "torchtext", "lightning", "pytorch_lightning"}
)

#: Libraries whose calls draw from (or build objects that draw from) global generators:
#: dotted prefix → the generators (the longest matching prefix wins).
LIBRARY_GENERATORS: dict[str, frozenset[str]] = {
    "random": frozenset({"random"}),
    "numpy.random": frozenset({"numpy"}),
    **{package: frozenset({"torch"}) for package in sorted(TORCH_PACKAGES)},
    "sklearn": frozenset({"numpy"}),
    "scipy": frozenset({"numpy"}),
    "pandas": frozenset({"numpy"}),
}
#: Libraries with no global generator of their own and no draws from NumPy's.
NON_RNG_LIBRARIES = frozenset(
    {
        "numpy",
        "matplotlib",
        "seaborn",
        "plotly",
        "tqdm",
        "nbtrack",
        "IPython",
        "ipywidgets",
        "PIL",
        "cv2",
        "yaml",
        "requests",
        "xxhash",
        "pyarrow",
        "h5py",
        "rich",
        "tabulate",
        "joblib",
    }
)


def library_generators(dotted: str) -> frozenset[str]:
    """Global generators a call into ``dotted`` (e.g. ``numpy.random.rand``) may draw from.

    An unknown third-party library (or a local module) may draw from any of them; the
    standard library (but ``random``) and :data:`NON_RNG_LIBRARIES` from none.
    """
    top = dotted.split(".")[0]
    best = ""
    for prefix in LIBRARY_GENERATORS:
        if (dotted == prefix or dotted.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    if best:
        return LIBRARY_GENERATORS[best]
    if top in NON_RNG_LIBRARIES or not top or top.startswith("."):
        return frozenset()
    if top in sys.stdlib_module_names:
        return frozenset()
    return frozenset(GENERATORS)


# --- seeding ----------------------------------------------------------------------------

#: Calls that reset global generators: dotted path → the generators they reset.
GLOBAL_SEED_CALLS: dict[str, tuple[str, ...]] = {
    "random.seed": ("random",),
    "random.setstate": ("random",),
    "numpy.random.seed": ("numpy",),
    "numpy.random.set_state": ("numpy",),
    "torch.manual_seed": ("torch",),
    "torch.random.manual_seed": ("torch",),
    "torch.set_rng_state": ("torch",),
    "torch.random.set_rng_state": ("torch",),
    "nbtrack.capture.seeds.seed_everything": GENERATORS,
    "nbtrack.capture.seeds.restore_rng_state": GENERATORS,
}
#: A call whose name ends with one of these seeds every global generator at once,
#: whichever library it comes from (lightning's ``seed_everything``, transformers'
#: ``set_seed``, keras' ``set_random_seed``...).
SEED_ALL_SUFFIXES = ("seed_everything", "set_seed", "set_random_seed")

#: Calls that set a seed, by the last part of their name → the dotted prefixes that count
#: (``"*"``: any prefix, ``""``: called by its bare name). Besides the global seeding
#: calls, these include constructors of seeded generators (``default_rng(0)``).
SEED_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "seed": ("*",),  # random.seed, np.random.seed, numpy.random.seed, rng.seed
    "default_rng": ("*",),  # np.random.default_rng
    "RandomState": ("*",),  # np.random.RandomState
    "Random": ("random", ""),  # random.Random (bare after `from random import Random`)
    "manual_seed": ("*",),  # torch.manual_seed, torch.cuda.manual_seed, gen.manual_seed
    "manual_seed_all": ("*",),  # torch.cuda.manual_seed_all
    "PRNGKey": ("*",),  # jax.random.PRNGKey
}

#: Keyword arguments that carry a seed in any call (sklearn, xgboost, lightgbm...).
SEED_KEYWORDS = ("random_state", "seed", "random_seed")

#: Keywords that hold the seed in the seeding calls themselves (``random.seed(a=...)``).
SEED_FUNCTION_KEYWORDS = ("seed", "a", "x", "random_state", "seed_value", "key")


def seeds_every_generator(name: str) -> bool:
    """Whether a call named ``name`` (its last dotted part) seeds every global generator."""
    return name.endswith(SEED_ALL_SUFFIXES)


def is_seed_call(func: ast.expr) -> bool:
    """Whether calling ``func`` (a call's ``func`` node) sets a seed (see
    :data:`SEED_FUNCTIONS` and :data:`SEED_ALL_SUFFIXES`)."""
    if isinstance(func, ast.Name):
        last, prefix = func.id, ""
    elif isinstance(func, ast.Attribute):
        # A receiver that is no dotted name (torch.Generator().manual_seed) matches "*".
        last, prefix = func.attr, dotted_name(func.value) or "*"
    else:
        return False
    if seeds_every_generator(last):
        return True
    allowed = SEED_FUNCTIONS.get(last)
    return allowed is not None and ("*" in allowed or prefix in allowed)
