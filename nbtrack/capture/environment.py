"""A JSON-able snapshot of the environment a cell ran in: interpreter, OS, hardware,
imported packages, reproducibility-relevant environment variables and, when torch is
already imported, the GPU and determinism settings.

This runs on every tracked cell, so everything that cannot change while the process lives
is computed once, and the expensive ``importlib.metadata`` scan is redone only when the
set of installed distributions changes. A warm call with nothing changed costs tens of
microseconds.

Rules this module keeps:

* it never imports torch (only reads it when the user's code already imported it) and never
  initialises CUDA, so it cannot take GPU memory or break fork-based data loaders;
* it never spawns a subprocess (``platform.processor()``/``platform.platform()`` run
  ``uname -p`` on Linux);
* it never records an environment variable whose name looks like a secret, whatever its
  prefix: :func:`nbtrack.secrets.is_secret_env_name`, the one rule for that.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nbtrack.secrets import (
    ENV_SECRET_MARKERS,
    is_secret_env_name,
    redact_text,
    secret_env_values,
)

__all__ = [
    "ENV_VAR_NAMES",
    "ENV_VAR_PREFIXES",
    "SECRET_MARKERS",
    "clear_cache",
    "distribution_versions",
    "environment",
    "is_secret_name",
    "module_distributions",
    "prewarm",
]

#: Substrings (upper case) that make an environment variable name a secret; defined once,
#: in :mod:`nbtrack.secrets` (kept here under its old name for existing imports).
SECRET_MARKERS: tuple[str, ...] = ENV_SECRET_MARKERS

#: Whether an environment variable name looks secret (substring rule): the one rule of
#: :func:`nbtrack.secrets.is_secret_env_name`, under its old name here.
is_secret_name = is_secret_env_name

#: Environment variables recorded by exact name (when set and not secret-looking).
ENV_VAR_NAMES: frozenset[str] = frozenset(
    {
        "PYTHONHASHSEED",
        "PYTHONPATH",
        "PYTHONOPTIMIZE",
        "PYTHONUTF8",
        "PYTHONWARNINGS",
        "CUBLAS_WORKSPACE_CONFIG",
        "CUDA_VISIBLE_DEVICES",
        "CUDA_LAUNCH_BLOCKING",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "NUMEXPR_MAX_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "BLIS_NUM_THREADS",
        "VIRTUAL_ENV",
        "CONDA_DEFAULT_ENV",
        "CONDA_PREFIX",
        "LANG",
        "LC_ALL",
        "TZ",
    }
)

#: Environment variable prefixes recorded (when set and not secret-looking): thread pools,
#: deep learning frameworks and nbtrack's own settings.
ENV_VAR_PREFIXES: tuple[str, ...] = (
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "KMP_",
    "TORCH_",
    "PYTORCH_",
    "CUDA_",
    "CUDNN_",
    "CUBLAS_",
    "NCCL_",
    "NVIDIA_",
    "TF_",
    "XLA_",
    "JAX_",
    "NBTRACK_",
)

# ``scheme://user:password@host`` inside a value (e.g. a proxy or mirror URL in an
# otherwise harmless variable): the userinfo part is dropped before recording.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s]*@")

_lock = threading.RLock()


class _Cache:
    """Per-process state; one instance, guarded by ``_lock``."""

    def __init__(self) -> None:
        self.static: dict[str, Any] | None = None
        self.static_warnings: list[str] = []
        # packages_distributions() result and what it was computed against.
        self.mapping: dict[str, list[str]] | None = None
        self.sys_path: tuple[str, ...] = ()
        self.watched: tuple[tuple[str, int], ...] = ()
        self.mapping_computations = 0
        self.versions: dict[str, str | None] = {}
        # The top-level imported names and the packages dict built from them.
        self.modules_len = -1
        self.top_level: frozenset[str] = frozenset()
        self.packages: dict[str, str] | None = None
        self.gpu_devices: tuple[Any, ...] | None = None


_cache = _Cache()


def clear_cache() -> None:
    """Forget everything cached, so the next :func:`environment` call recomputes it all."""
    global _cache
    with _lock:
        _cache = _Cache()


def prewarm() -> threading.Thread:
    """Do the one expensive step (scanning installed distributions) in the background.

    The first :func:`environment` call otherwise pays it (a few hundred milliseconds with
    a large environment); calling this when nbtrack is loaded hides that. A call to
    :func:`environment` made meanwhile waits for the scan instead of repeating it.
    Returns the started daemon thread.
    """

    def work() -> None:
        try:
            with _lock:
                _static()
                _mapping()
        except Exception:  # noqa: BLE001 - environment() will retry and report it
            pass

    thread = threading.Thread(target=work, name="nbtrack-env-prewarm", daemon=True)
    thread.start()
    return thread


def secret_values(min_length: int = 6) -> list[str]:
    """The values of this process's secret-named environment variables, longest first.

    Values shorter than ``min_length`` are left out: redacting "1" or "true" everywhere
    would mangle code without protecting anything.
    """
    # One rule, one place: nbtrack.secrets scans (and reuses its scan while os.environ is
    # unchanged).
    return secret_env_values(min_length)


# --------------------------------------------------------------------------- static parts


def _python() -> dict[str, Any]:
    impl = sys.implementation.name
    # Same spelling as platform.python_implementation(), without importing platform.
    pretty = {
        "cpython": "CPython",
        "pypy": "PyPy",
        "ironpython": "IronPython",
        "jython": "Jython",
    }.get(impl, impl)
    info = sys.version_info
    return {
        "version": f"{info.major}.{info.minor}.{info.micro}"
        + ("" if info.releaselevel == "final" else f"{info.releaselevel[0]}{info.serial}"),
        "implementation": pretty,
        "executable": sys.executable,
    }


def _os() -> dict[str, Any]:
    if hasattr(os, "uname"):
        uname = os.uname()
        system, release, machine = uname.sysname, uname.release, uname.machine
    else:  # Windows: platform.uname() is cheap there (no `uname -p` subprocess).
        import platform

        u = platform.uname()
        system, release, machine = u.system, u.release, u.machine
    platform_str = f"{system}-{release}-{machine}"
    libc = ""
    try:
        # e.g. "glibc 2.36"; confstr reads a constant, unlike platform.libc_ver() which
        # scans the interpreter binary.
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        pass
    if libc:
        platform_str += "-with-" + libc.replace(" ", "")
    out: dict[str, Any] = {"system": system, "release": release, "platform": platform_str}
    if system == "Linux":
        try:
            import platform

            # Reads /etc/os-release; tells apart e.g. Ubuntu 22.04 from Debian 12.
            out["distribution"] = platform.freedesktop_os_release().get("PRETTY_NAME")
        except OSError:
            pass
    return out


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                # x86 says "model name"; some ARM kernels only say "Hardware"/"Processor".
                if sep and key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                    value = value.strip()
                    if value:
                        return value
                if not line.strip():
                    # The first processor's block is over; the rest repeat it.
                    break
    except OSError:
        pass
    return None


def _cpu() -> dict[str, Any]:
    machine = (
        os.uname().machine if hasattr(os, "uname") else os.environ.get("PROCESSOR_ARCHITECTURE", "")
    )
    out: dict[str, Any] = {"machine": machine, "model": _cpu_model(), "count": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        # What this process may use (containers, taskset) can be less than the machine has.
        out["available"] = len(os.sched_getaffinity(0))
    return out


def _memory_total() -> int:
    return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))


def _hostname() -> str:
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


_STATIC_PARTS = (
    ("python", _python),
    ("os", _os),
    ("cpu", _cpu),
    ("memory_total", _memory_total),
    ("hostname", _hostname),
)


def _static() -> tuple[dict[str, Any], list[str]]:
    # Caller holds _lock.
    if _cache.static is None:
        static: dict[str, Any] = {}
        warnings: list[str] = []
        for key, fn in _STATIC_PARTS:
            try:
                static[key] = fn()
            except Exception as exc:  # noqa: BLE001 - one failing part must not lose the rest
                warnings.append(_warning(key, exc))
        _cache.static, _cache.static_warnings = static, warnings
    return _cache.static, _cache.static_warnings


def _warning(part: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"environment: {part} not captured: {type(exc).__name__}" + (
        f": {text[0]}" if text else ""
    )


# --------------------------------------------------------------------------- packages


def _has_metadata(path: str) -> bool:
    """True when *path* holds installed-distribution metadata (or is a site dir)."""
    base = os.path.basename(path.rstrip("/\\"))
    if base in ("site-packages", "dist-packages"):
        return True
    try:
        with os.scandir(path) as it:
            for entry in it:
                if entry.name.endswith((".dist-info", ".egg-info")):
                    return True
    except OSError:
        pass
    return False


def _stat_mtimes(paths: Iterable[str]) -> tuple[tuple[str, int], ...]:
    out = []
    for p in paths:
        try:
            out.append((p, os.stat(p).st_mtime_ns))
        except OSError:
            out.append((p, -1))
    return tuple(out)


def _disk_cache_file(path: tuple[str, ...], watched: tuple[tuple[str, int], ...]) -> Path:
    import hashlib

    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256(json.dumps([sys.executable, path, watched]).encode()).hexdigest()[:24]
    return Path(root) / "nbtrack" / f"distributions-{key}.json"


def _load_disk_mapping(
    path: tuple[str, ...], watched: tuple[tuple[str, int], ...]
) -> dict[str, list[str]] | None:
    """The import-name map saved by an earlier process with the same installed packages.

    Scanning every installed distribution costs a few hundred milliseconds, which a
    kernel's first tracked cell would otherwise pay; the key covers the interpreter,
    sys.path and the mtimes of the folders holding distribution metadata.
    """
    try:
        data = json.loads(_disk_cache_file(path, watched).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _save_disk_mapping(
    path: tuple[str, ...], watched: tuple[tuple[str, int], ...], mapping: dict[str, list[str]]
) -> None:
    target = _disk_cache_file(path, watched)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(mapping), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only home only costs the next kernel a rescan


def _mapping() -> dict[str, list[str]]:
    """packages_distributions(), recomputed only when installed distributions changed.

    Installing, upgrading or removing a distribution adds or removes a ``*.dist-info``
    folder, which changes the mtime of the folder holding it; so the signature is the
    sys.path list plus the mtimes of the sys.path folders that hold distribution metadata.
    Folders without metadata (notably the notebook's own folder, which gains files all
    the time) are deliberately not watched, or every written file would cost a rescan.
    Caller holds _lock.
    """
    path = tuple(p for p in sys.path if isinstance(p, str))
    if _cache.mapping is not None and path == _cache.sys_path:
        if _stat_mtimes(p for p, _ in _cache.watched) == _cache.watched:
            return _cache.mapping
    import importlib.metadata

    watched_paths = [p for p in path if p and os.path.isdir(p) and _has_metadata(p)]
    # Take the signature before scanning: a change during the scan shows up next call.
    watched = _stat_mtimes(watched_paths)
    mapping = _load_disk_mapping(path, watched)
    if mapping is None:
        raw = importlib.metadata.packages_distributions()
        mapping = {}
        for name, dists in raw.items():
            # A distribution installed in two sys.path folders is listed twice.
            mapping[name] = list(dict.fromkeys(dists))
        _save_disk_mapping(path, watched, mapping)
    _cache.mapping, _cache.sys_path, _cache.watched = mapping, path, watched
    _cache.versions = {}
    _cache.packages = None
    _cache.mapping_computations += 1
    return mapping


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _is_stdlib(name: str) -> bool:
    return name in sys.stdlib_module_names or name in sys.builtin_module_names


def _version(dist: str) -> str | None:
    # Caller holds _lock.
    try:
        return _cache.versions[dist]
    except KeyError:
        pass
    import importlib.metadata

    try:
        version: str | None = importlib.metadata.version(dist)
    except Exception:  # noqa: BLE001 - broken metadata: skip this one distribution
        version = None
    _cache.versions[dist] = version
    return version


def _providers(module: str, mapping: Mapping[str, list[str]]) -> list[str]:
    top = module.partition(".")[0]
    if not top or _is_stdlib(top):
        return []
    return mapping.get(top, [])


def _primary(module: str, dists: list[str]) -> str:
    # A namespace package (e.g. ``google``) has several providers; prefer the one named
    # like the module, else the first one importlib.metadata lists.
    wanted = _normalize(module)
    for dist in dists:
        if _normalize(dist) == wanted:
            return dist
    return dists[0]


def module_distributions(modules: Iterable[str]) -> dict[str, str]:
    """Map import names to the distributions that install them.

    Dotted names are reduced to their top-level package (``sklearn.linear_model`` ->
    ``sklearn``). Standard-library and built-in modules, and modules that no installed
    distribution provides (local files, ``__main__``), are left out. For a namespace
    package installed by several distributions one is chosen: the one named like the
    module, else the first listed.

    >>> module_distributions(["sklearn", "PIL.Image"])  # doctest: +SKIP
    {'sklearn': 'scikit-learn', 'PIL': 'Pillow'}
    """
    with _lock:
        mapping = _mapping()
        out: dict[str, str] = {}
        for module in modules:
            top = module.partition(".")[0]
            dists = _providers(top, mapping)
            if dists:
                out[top] = _primary(top, dists)
        return out


def distribution_versions(modules: Iterable[str]) -> dict[str, str]:
    """Map each distribution behind *modules* (import names) to its installed version.

    Every provider of a namespace package is included. Distributions whose metadata
    cannot be read are left out. The result is sorted by distribution name.
    """
    with _lock:
        mapping = _mapping()
        return _versions_for({m.partition(".")[0] for m in modules}, mapping)


def _versions_for(tops: Iterable[str], mapping: Mapping[str, list[str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for top in tops:
        for dist in _providers(top, mapping):
            if dist not in found:
                version = _version(dist)
                if version is not None:
                    found[dist] = version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def _packages() -> dict[str, str]:
    # Caller holds _lock.
    mapping = _mapping()
    modules = sys.modules
    n = len(modules)
    if n != _cache.modules_len:
        # Importing anything grows sys.modules, so an unchanged length means nothing new
        # was imported; that saves walking thousands of keys on every warm call.
        top = frozenset(k.partition(".")[0] for k in list(modules))
        _cache.modules_len = n
        if top != _cache.top_level:
            _cache.top_level = top
            _cache.packages = None
    if _cache.packages is None:
        _cache.packages = _versions_for(_cache.top_level, mapping)
    return _cache.packages


# --------------------------------------------------------------------------- env vars


def _relevant_env_name(name: str) -> bool:
    return (name in ENV_VAR_NAMES or name.startswith(ENV_VAR_PREFIXES)) and not is_secret_env_name(
        name
    )


def _env_vars() -> dict[str, str]:
    # Not cached: the notebook may set os.environ between cells, and this is a cheap scan.
    out = {}
    for name, value in os.environ.items():
        if _relevant_env_name(name):
            value = _URL_USERINFO.sub(r"\g<scheme>", value) if "@" in value else value
            # A credential pasted into an ordinary variable (a mirror URL's token, say).
            out[name] = redact_text(value)
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- gpu


def _gpu() -> dict[str, Any] | None:
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "cuda"):
        # Not imported (or only half-imported): importing it ourselves would cost seconds.
        return None
    cuda = torch.cuda
    cudnn = torch.backends.cudnn
    version = getattr(torch, "version", None)
    out: dict[str, Any] = {
        "torch": str(torch.__version__),
        "cuda": getattr(version, "cuda", None),
        "cudnn": cudnn.version() if cudnn.is_available() else None,
    }
    initialized = bool(cuda.is_initialized())
    # device_count() asks NVML before CUDA is initialised, so it neither takes GPU memory
    # nor poisons fork; is_available() would call cuInit, so it is used only afterwards.
    count = int(cuda.device_count())
    out["cuda_available"] = bool(cuda.is_available()) if initialized else count > 0
    out["cuda_initialized"] = initialized
    out["device_count"] = count
    if initialized and count:
        out["devices"] = _gpu_devices(torch, count)
    out["num_threads"] = int(torch.get_num_threads())
    # Flags are read every call: the user may flip them between cells.
    out["deterministic_algorithms"] = bool(torch.are_deterministic_algorithms_enabled())
    warn_only = getattr(torch, "is_deterministic_algorithms_warn_only_enabled", None)
    if warn_only is not None:
        out["deterministic_warn_only"] = bool(warn_only())
    out["cudnn_deterministic"] = bool(cudnn.deterministic)
    out["cudnn_benchmark"] = bool(cudnn.benchmark)
    return out


def _gpu_devices(torch: Any, count: int) -> list[dict[str, Any]]:
    # Caller holds _lock. Device properties do not change once CUDA is initialised.
    key = (id(torch), count)
    if _cache.gpu_devices is not None and _cache.gpu_devices[0] == key:
        return _cache.gpu_devices[1]  # type: ignore[no-any-return]
    devices = []
    for i in range(count):
        props = torch.cuda.get_device_properties(i)
        devices.append(
            {
                "index": i,
                "name": str(props.name),
                "capability": f"{props.major}.{props.minor}",
                "total_memory": int(props.total_memory),
            }
        )
    _cache.gpu_devices = (key, devices)
    return devices


# --------------------------------------------------------------------------- snapshot


def _copy(value: Any) -> Any:
    # The cached parts are shared between calls; hand out copies so a caller that edits
    # its snapshot cannot corrupt the next one. Faster than copy.deepcopy for JSON data.
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def environment(extra_modules: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON-able snapshot of the environment, cheap enough to take on every cell.

    Keys: ``python``, ``os``, ``cpu``, ``memory_total`` (bytes), ``hostname``,
    ``packages`` ({distribution: version} for every non-stdlib top-level module in
    ``sys.modules`` plus *extra_modules*), ``env_vars`` (reproducibility-relevant
    variables only, never secret-looking ones), ``gpu`` (only when torch is already
    imported) and ``warnings`` (one line per part that could not be captured; that part's
    key is then absent). Never raises for a failing part.
    """
    warnings: list[str] = []
    snapshot: dict[str, Any] = {}
    with _lock:
        static, static_warnings = _static()
        snapshot.update(static)
        warnings.extend(static_warnings)
        try:
            packages = _packages()
            extra = [m for m in extra_modules if m.partition(".")[0] not in _cache.top_level]
            if extra:
                packages = dict(
                    sorted(
                        {
                            **packages,
                            **_versions_for(
                                {m.partition(".")[0] for m in extra}, _cache.mapping or {}
                            ),
                        }.items(),
                        key=lambda kv: kv[0].lower(),
                    )
                )
            snapshot["packages"] = packages
        except Exception as exc:  # noqa: BLE001
            warnings.append(_warning("packages", exc))
        try:
            snapshot["env_vars"] = _env_vars()
        except Exception as exc:  # noqa: BLE001
            warnings.append(_warning("env_vars", exc))
        try:
            gpu = _gpu()
            if gpu is not None:
                snapshot["gpu"] = gpu
        except Exception as exc:  # noqa: BLE001
            warnings.append(_warning("gpu", exc))
        snapshot = _copy(snapshot)
    snapshot["warnings"] = warnings
    return snapshot
