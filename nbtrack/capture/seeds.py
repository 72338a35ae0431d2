"""Seeds, determinism and the full state of the random number generators.

torch is imported here only when it is already in :data:`sys.modules` or the caller says
the cell imports it (``torch_too=True``, usually from :func:`cell_imports_torch`):
importing torch costs seconds and hundreds of MB, which a run that never uses it should
not pay. CUDA is never initialized here either (see :func:`rng_state`).

The RNG state is a JSON-able dict (``json.dumps`` works; bytes are base64)::

    {
      "format": "nbtrack.rng/1",
      "random": {"version": 3, "internal": "<base64 of 625 little-endian uint32>",
                 "gauss_next": null},
      "numpy":  {"bit_generator": "MT19937", "key": "<base64 of 624 little-endian uint32>",
                 "pos": 624, "has_gauss": 0, "cached_gaussian": 0.0},
      "torch":  {"version": "2.13.0", "cpu": "<base64 of torch.get_rng_state()>",
                 "cuda": {"initialized": true, "states": ["<base64>", ...]}}
    }
"""

from __future__ import annotations

import ast
import base64
import os
import random
import struct
import sys
from typing import TYPE_CHECKING, Any

from nbtrack.errors import UsageError
from nbtrack.pyast.bindings import LITERAL_ERRORS, parse_module
from nbtrack.pyast.effects import (
    SEED_FUNCTION_KEYWORDS,
    SEED_KEYWORDS,
    TORCH_PACKAGES,
    is_seed_call,
)
from nbtrack.pyast.names import dotted_name, imported_modules

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "check_seed",
    "SEED_MAX",
    "cell_imports_torch",
    "seed_everything",
    "set_deterministic",
    "find_seed_calls",
    "rng_state",
    "restore_rng_state",
    "RNG_STATE_FORMAT",
    "CUBLAS_WORKSPACE_CONFIG",
]

#: Format tag of :func:`rng_state` records, checked by :func:`restore_rng_state`.
RNG_STATE_FORMAT = "nbtrack.rng/1"

#: cuBLAS workspace setting that makes cuBLAS deterministic on CUDA >= 10.2.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"

#: The largest seed: ``np.random.seed`` accepts 0 .. 2**32 - 1, the narrowest of the RNGs.
SEED_MAX = 2**32 - 1


def check_seed(seed: object, option: str = "seed") -> int:
    """``seed`` when it is a usable seed (an int from 0 to :data:`SEED_MAX`), else a
    :class:`UsageError` naming ``option`` (``--seed`` for the magic, ``seed`` for the API).

    The one definition of the seed range: the magic, the script API and
    :func:`seed_everything` all check through it.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise UsageError(
            f"{option} {seed!r} is out of range: use a whole number from 0 to {SEED_MAX} "
            "(2**32 - 1, NumPy's limit)"
        )
    return seed


def _torch_module(torch_too: bool) -> ModuleType | None:
    """torch when the cell uses it (already imported, or ``torch_too``), else None.

    An uninstalled or broken torch is treated as "not in use" rather than failing the run:
    the cell's own ``import torch`` will report that error where the user expects it.
    """
    if "torch" not in sys.modules and not torch_too:
        return None
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means torch is not usable
        return None
    return torch


def _cuda_available(torch: ModuleType) -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken driver means no CUDA for our purposes
        return False


def cell_imports_torch(source: str) -> bool:
    """Whether ``source`` imports torch anywhere (``import torch``, ``from torch.nn ...``).

    Packages that always import torch (torchvision, torchaudio, lightning...) count too:
    after such an import torch's RNG is in play. Returns False when ``source`` does not
    parse.
    """
    tree = parse_module(source)
    if tree is None:
        return False
    return any(top in TORCH_PACKAGES for top in imported_modules(tree))


def cell_may_load_numpy(source: str) -> bool:
    """Whether running ``source`` may import NumPy when it is not loaded yet.

    True when the cell imports NumPy or any package that is neither loaded nor part of the
    standard library (most scientific packages import NumPy), and for code that does not
    parse. The tracker then loads NumPy first, so its RNG state at the cell's start is
    recorded and the run can be replayed; a cell like ``x = 1`` does not pay for NumPy.
    """
    tree = parse_module(source)
    if tree is None:
        return True
    return any(
        top == "numpy" or (top not in sys.modules and top not in sys.stdlib_module_names)
        for top in imported_modules(tree)
    )


def seed_everything(seed: int, *, torch_too: bool, numpy_too: bool = True) -> list[str]:
    """Seed ``random``, NumPy's global RNG and, when in use, torch; return what was seeded.

    torch is seeded when ``torch_too`` or it is already imported: ``torch.manual_seed``
    (CPU and every CUDA device) plus ``torch.cuda.manual_seed_all`` when CUDA is available
    (lazy: it does not initialize CUDA). Returns e.g. ``["random", "numpy", "torch",
    "torch.cuda"]``. Raises :class:`UsageError` unless ``0 <= seed < 2**32`` (NumPy's range).
    """
    check_seed(seed)
    random.seed(seed)
    seeded = ["random"]
    if numpy_too or "numpy" in sys.modules:
        import numpy as np

        np.random.seed(seed)
        seeded.append("numpy")
    torch = _torch_module(torch_too)
    if torch is not None:
        torch.manual_seed(seed)
        seeded.append("torch")
        if _cuda_available(torch):
            # manual_seed already queues this; being explicit keeps us correct on torch
            # builds where manual_seed does not reach every device.
            torch.cuda.manual_seed_all(seed)
            seeded.append("torch.cuda")
    return seeded


def set_deterministic(*, torch_too: bool) -> dict[str, Any]:
    """Make torch pick deterministic algorithms; return a JSON-able record of what was set.

    Sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless already set (cuBLAS needs it for
    determinism on CUDA >= 10.2, and it must be in place before cuBLAS initializes),
    ``torch.use_deterministic_algorithms(True)`` (ops with no deterministic version then
    raise), ``torch.backends.cudnn.deterministic = True`` and ``benchmark = False``.
    The record holds ``"torch": False`` and sets nothing when torch is not in use.
    """
    torch = _torch_module(torch_too)
    if torch is None:
        return {
            "torch": False,
            "flags": {},
            "env": {},
            "note": "torch is not in use; nothing to make deterministic",
        }
    previous = {
        "torch.use_deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "torch.backends.cudnn.deterministic": bool(torch.backends.cudnn.deterministic),
        "torch.backends.cudnn.benchmark": bool(torch.backends.cudnn.benchmark),
    }
    env_already_set = "CUBLAS_WORKSPACE_CONFIG" in os.environ
    if not env_already_set:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE_CONFIG
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return {
        "torch": True,
        "torch_version": str(torch.__version__),
        "flags": {
            "torch.use_deterministic_algorithms": True,
            "torch.backends.cudnn.deterministic": True,
            "torch.backends.cudnn.benchmark": False,
        },
        "previous": previous,
        "env": {"CUBLAS_WORKSPACE_CONFIG": os.environ["CUBLAS_WORKSPACE_CONFIG"]},
        "env_already_set": ["CUBLAS_WORKSPACE_CONFIG"] if env_already_set else [],
    }


# --- seeds the cell sets itself -------------------------------------------------------


def _expr_value(source: str, node: ast.expr) -> object:
    """The literal value of ``node``, or its source text when it is not a literal."""
    try:
        return ast.literal_eval(node)
    except LITERAL_ERRORS:
        text = ast.get_source_segment(source, node)
        return text if text is not None else ast.unparse(node)


def find_seed_calls(source: str) -> list[dict[str, Any]]:
    """Seeds the cell sets itself, in source order, found with :mod:`ast`.

    Finds ``random.seed(N)``, ``np.random.seed(N)``, ``np.random.default_rng(N)``,
    ``np.random.RandomState(N)``, ``random.Random(N)``, ``torch.manual_seed(N)``,
    ``torch.cuda.manual_seed[_all](N)``, ``tf.random.set_seed(N)``, ``set_seed(N)``,
    ``seed_everything(N)``, ``jax.random.PRNGKey(N)``, and ``random_state=N`` /
    ``seed=N`` / ``random_seed=N`` keyword arguments of any call. Each is
    ``{"call": "np.random.seed", "value": 42, "line": 3}`` (plus ``"keyword"`` for keyword
    arguments). ``value`` is the literal, the expression's source text when it is not a
    literal, or None for a call with no seed (which seeds from OS entropy). Lines count
    from 1 in ``source``. Returns ``[]`` when ``source`` does not parse.
    """
    tree = parse_module(source)
    if tree is None:
        return []
    found: list[tuple[int, int, dict[str, Any]]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted_name(node.func)
        if name is None:  # torch.Generator().manual_seed(1): name it by its source text
            name = ast.get_source_segment(source, node.func) or ast.unparse(node.func)
        if is_seed_call(node.func):
            arg: ast.expr | None = node.args[0] if node.args else None
            if arg is None:
                arg = next(
                    (k.value for k in node.keywords if k.arg in SEED_FUNCTION_KEYWORDS), None
                )
            value = None if arg is None else _expr_value(source, arg)
            found.append(
                (node.lineno, node.col_offset, {"call": name, "value": value, "line": node.lineno})
            )
            continue
        for kw in node.keywords:
            if kw.arg in SEED_KEYWORDS:
                found.append(
                    (
                        kw.value.lineno,
                        kw.value.col_offset,
                        {
                            "call": name,
                            "keyword": kw.arg,
                            "value": _expr_value(source, kw.value),
                            "line": kw.value.lineno,
                        },
                    )
                )
    # ast.walk is breadth-first; report in reading order instead.
    found.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in found]


# --- full RNG state -------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise UsageError(f"bad RNG state: {what} is not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError as err:
        raise UsageError(f"bad RNG state: {what} is not valid base64 ({err})") from None


def _pack_words(words: tuple[int, ...] | list[int]) -> str | list[int]:
    """Base64 of little-endian uint32 words (a third the size of a JSON int list)."""
    try:
        return _b64(struct.pack(f"<{len(words)}I", *words))
    except struct.error:  # not all uint32 (not CPython's MT19937?): keep plain ints
        return [int(w) for w in words]


def _unpack_words(data: object, what: str) -> tuple[int, ...]:
    if isinstance(data, list):
        return tuple(int(w) for w in data)
    raw = _unb64(data, what)
    if len(raw) % 4:
        raise UsageError(f"bad RNG state: {what} is not a whole number of uint32 words")
    return struct.unpack(f"<{len(raw) // 4}I", raw)


def _encode_generic(value: Any) -> Any:
    """JSON-able form of a NumPy bit generator state (dicts, ints, arrays)."""
    import numpy as np  # imported only when NumPy's RNG is in play

    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {
            "__ndarray__": _b64(array.tobytes()),
            "dtype": array.dtype.str,
            "shape": list(array.shape),
        }
    if isinstance(value, dict):
        return {str(k): _encode_generic(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_generic(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode_generic(value: Any) -> Any:
    import numpy as np  # imported only when NumPy's RNG is in play

    if isinstance(value, dict):
        if "__ndarray__" in value:
            raw = _unb64(value["__ndarray__"], "numpy array")
            return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        return {k: _decode_generic(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_generic(v) for v in value]
    return value


def _numpy_state() -> dict[str, Any]:
    import numpy as np  # imported only when NumPy's RNG is in play

    full = np.random.get_state(legacy=False)
    if full.get("bit_generator") != "MT19937":
        # The global RandomState was given another bit generator (np.random.set_bit_generator):
        # there is no legacy tuple, so keep its own state dict.
        return {"bit_generator": str(full["bit_generator"]), "state": _encode_generic(full)}
    # The legacy tuple's fields, read from the state already taken: asking NumPy twice
    # copied the 624-word key twice at every run start.
    state = full["state"]
    return {
        "bit_generator": "MT19937",
        "key": _b64(np.ascontiguousarray(state["key"], dtype="<u4").tobytes()),
        "pos": int(state["pos"]),
        "has_gauss": int(full["has_gauss"]),
        "cached_gaussian": float(full["gauss"]),
    }


def _restore_numpy(state: dict[str, Any]) -> None:
    import numpy as np  # imported only when NumPy's RNG is in play

    if "state" in state:
        np.random.set_state(_decode_generic(state["state"]))
        return
    key = np.frombuffer(_unb64(state["key"], "numpy key"), dtype="<u4").astype(np.uint32)
    if key.size != 624:
        raise UsageError(f"bad RNG state: numpy key has {key.size} words, expected 624")
    np.random.set_state(
        (
            str(state["bit_generator"]),
            key,
            int(state["pos"]),
            int(state["has_gauss"]),
            float(state["cached_gaussian"]),
        )
    )


def _torch_bytes(tensor: Any) -> str:
    return _b64(tensor.cpu().numpy().tobytes())


def _torch_tensor(torch: ModuleType, data: object, what: str) -> Any:
    # set_rng_state wants a CPU ByteTensor; bytearray makes frombuffer's tensor writable.
    return torch.frombuffer(bytearray(_unb64(data, what)), dtype=torch.uint8).clone()


def _pending_cuda_seeds(torch: ModuleType) -> list[list[Any]] | None:
    """Seeds queued for CUDA before it initialized, as ``[["all"|"current", seed], ...]``.

    ``torch.manual_seed`` before CUDA is initialized only queues the CUDA seeding. Reading
    the queue goes through torch internals, so this is best effort: None when unknown.
    """
    try:
        tracker = torch.cuda._lazy_seed_tracker
        pending: list[list[Any]] = []
        for entry in tracker.get_calls():
            if not entry:
                continue
            callback = entry[0]
            cells = dict(
                zip(callback.__code__.co_freevars, callback.__closure__ or (), strict=False)
            )
            seed = int(cells["seed"].cell_contents)
            scope = "all" if entry is tracker.manual_seed_all_cb else "current"
            pending.append([scope, seed])
        return pending
    except Exception:  # noqa: BLE001 - internals changed: say "unknown" rather than guess
        return None


def _torch_state(torch: ModuleType) -> dict[str, Any]:
    state: dict[str, Any] = {
        "version": str(torch.__version__),
        "cpu": _torch_bytes(torch.get_rng_state()),
    }
    if not _cuda_available(torch):
        return state
    if torch.cuda.is_initialized():
        state["cuda"] = {
            "initialized": True,
            "states": [_torch_bytes(s) for s in torch.cuda.get_rng_state_all()],
        }
    else:
        # Reading a CUDA generator initializes CUDA (a context on the GPU, seconds of
        # start-up, and no more fork()ed workers using CUDA); a run that has not touched
        # the GPU yet must not pay that. Its CUDA generators have drawn nothing, so their
        # state is fully described by the seeds queued for when CUDA starts.
        state["cuda"] = {"initialized": False, "pending_seeds": _pending_cuda_seeds(torch)}
    return state


def rng_state(*, torch_too: bool, numpy_too: bool = True) -> dict[str, Any]:
    """A JSON-able snapshot of the full state of every RNG in use (see the module doc).

    Covers ``random`` (``getstate()``), NumPy's global RNG (the legacy MT19937 state: key,
    pos, has_gauss, cached_gaussian) and, when ``torch_too`` or torch is already imported,
    torch's CPU generator and every CUDA device's generator. When CUDA is available but
    not yet initialized, the seeds queued for it are recorded instead of initializing it.
    """
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "format": RNG_STATE_FORMAT,
        "random": {
            "version": int(version),
            "internal": _pack_words(internal),
            "gauss_next": gauss_next,
        },
    }
    if numpy_too or "numpy" in sys.modules:
        # Without NumPy loaded (numpy_too=False) nothing can draw from its global RNG.
        state["numpy"] = _numpy_state()
    torch = _torch_module(torch_too)
    if torch is not None:
        state["torch"] = _torch_state(torch)
    return state


def _restore_torch(state: dict[str, Any]) -> list[str]:
    try:
        import torch
    except Exception as err:  # noqa: BLE001
        raise UsageError(
            f"this RNG state includes torch, but torch cannot be imported here ({err})"
        ) from None
    restored: list[str] = []
    torch.set_rng_state(_torch_tensor(torch, state["cpu"], "torch cpu state"))
    restored.append("torch")
    cuda = state.get("cuda")
    if not cuda or not _cuda_available(torch):
        # Recorded without CUDA, or replayed where there is none: nothing to set.
        return restored
    if cuda.get("initialized"):
        states = cuda.get("states") or []
        # Restore the devices both machines have; set_rng_state_all insists on all.
        for index in range(min(len(states), torch.cuda.device_count())):
            torch.cuda.set_rng_state(
                _torch_tensor(torch, states[index], f"torch cuda:{index} state"), index
            )
        restored.append("torch.cuda")
    elif cuda.get("pending_seeds"):
        # Replaying the queued seeds gives the generators the state they had when the
        # recorded run first used CUDA (lazily here too if CUDA is not up yet). With no
        # seed queued (or the queue unreadable) the recorded run's CUDA generators started
        # from torch's default, which we cannot reproduce: "torch.cuda" is not reported.
        for scope, seed in cuda["pending_seeds"]:
            if scope == "all":
                torch.cuda.manual_seed_all(int(seed))
            else:
                torch.cuda.manual_seed(int(seed))
        restored.append("torch.cuda")
    return restored


def restore_rng_state(state: dict[str, Any]) -> list[str]:
    """Set every RNG back to the exact state :func:`rng_state` recorded.

    Imports torch only when ``state`` has torch entries. Returns what was restored, e.g.
    ``["random", "numpy", "torch", "torch.cuda"]`` ("torch.cuda" is left out when this
    machine has no CUDA or the recorded run had not used it). Raises :class:`UsageError`
    for a record that is not an nbtrack RNG state.
    """
    if not isinstance(state, dict) or state.get("format") != RNG_STATE_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise UsageError(
            f"not an nbtrack RNG state (format {found!r}, expected {RNG_STATE_FORMAT!r})"
        )
    restored: list[str] = []
    try:
        py = state.get("random")
        if py is not None:
            internal = _unpack_words(py["internal"], "random state")
            gauss = py["gauss_next"]
            random.setstate((int(py["version"]), internal, None if gauss is None else float(gauss)))
            restored.append("random")
        numpy_state = state.get("numpy")
        if numpy_state is not None:
            _restore_numpy(numpy_state)
            restored.append("numpy")
        torch_state = state.get("torch")
        if torch_state is not None:
            restored.extend(_restore_torch(torch_state))
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"bad RNG state: {type(err).__name__}: {err}") from None
    return restored
