"""Tests for nbtrack.capture.environment: secrets never recorded, packages mapped to
distributions, caching and its invalidation, per-part failure isolation, and torch rules."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nbtrack.capture import environment as env_mod
from nbtrack.capture.environment import (
    clear_cache,
    distribution_versions,
    environment,
    is_secret_name,
    module_distributions,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(autouse=True)
def private_disk_cache(tmp_path_factory, monkeypatch):
    """Each test starts without the import-name map that earlier processes saved on disk."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def count_scans(monkeypatch):
    """Count importlib.metadata.packages_distributions() calls (the expensive scan)."""
    calls = []
    real = importlib.metadata.packages_distributions

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(importlib.metadata, "packages_distributions", counting)
    return calls


def _make_dist(site: Path, dist: str, version: str, module: str) -> None:
    """A minimal installed distribution: a module plus its .dist-info folder."""
    (site / module).mkdir()
    (site / module / "__init__.py").write_text("VALUE = 1\n")
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n")


def _forget_module(monkeypatch, name: str) -> None:
    monkeypatch.delitem(sys.modules, name, raising=False)


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "name",
    [
        "MY_API_KEY",
        "HF_TOKEN",
        "DB_PASSWORD",
        "TORCH_SECRET_THING",
        "aws_secret_access_key",
        "GIT_PASSWD",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "NBTRACK_AUTH",
        "SSH_PRIVATE",
        "SESSION_ID",
        "CUDA_COOKIE",
        "TF_CERT_PATH",
        "wandb_api_key",
    ],
)
def test_secret_names_detected(name):
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "PYTHONHASHSEED",
        "CUDA_VISIBLE_DEVICES",
        "OMP_NUM_THREADS",
        "TORCH_HOME",
        "NBTRACK_STORE",
    ],
)
def test_ordinary_names_not_secret(name):
    assert not is_secret_name(name)


def test_secret_values_appear_nowhere(monkeypatch):
    secrets = {
        "MY_API_KEY": "val-my-api-key-8f3a",
        "HF_TOKEN": "hf_val_token_19c2",
        "DB_PASSWORD": "val-db-password-77e1",
        "TORCH_SECRET_THING": "val-torch-secret-51b0",
        "CUDA_AUTH_TOKEN": "val-cuda-auth-0d9e",
        "NBTRACK_API_KEY": "val-nbtrack-key-a1c4",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TORCH_HOME", "/opt/torch-home-visible")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("UNRELATED_VARIABLE_NBT", "should-not-be-recorded")

    snap = environment()
    text = json.dumps(snap)
    for name, value in secrets.items():
        assert value not in text
        assert name not in snap["env_vars"]
    # Relevant, non-secret variables are recorded; unrelated ones are not.
    assert snap["env_vars"]["TORCH_HOME"] == "/opt/torch-home-visible"
    assert snap["env_vars"]["OMP_NUM_THREADS"] == "3"
    assert "UNRELATED_VARIABLE_NBT" not in snap["env_vars"]
    assert "should-not-be-recorded" not in text


def test_credentials_in_relevant_values_are_stripped(monkeypatch):
    monkeypatch.setenv("TORCH_MIRROR_URL", "https://alice:hunter2-nbt@mirror.example/torch")
    snap = environment()
    assert snap["env_vars"]["TORCH_MIRROR_URL"] == "https://mirror.example/torch"
    assert "hunter2-nbt" not in json.dumps(snap)


def test_env_vars_not_stale_between_calls(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    assert environment()["env_vars"]["PYTHONHASHSEED"] == "0"
    monkeypatch.setenv("PYTHONHASHSEED", "123")
    assert environment()["env_vars"]["PYTHONHASHSEED"] == "123"


# --------------------------------------------------------------------------- snapshot shape


def test_snapshot_is_json_and_has_static_parts():
    snap = environment()
    assert json.loads(json.dumps(snap)) == snap
    assert snap["python"]["version"].startswith(
        f"{sys.version_info.major}.{sys.version_info.minor}"
    )
    assert snap["python"]["executable"] == sys.executable
    assert snap["python"]["implementation"]
    assert snap["cpu"]["count"] == os.cpu_count()
    assert snap["os"]["system"] and snap["os"]["platform"]
    assert snap["hostname"]
    if hasattr(os, "sysconf"):
        assert snap["memory_total"] > 0
    assert snap["warnings"] == []


def test_cpu_model_read_from_proc_cpuinfo():
    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("no /proc/cpuinfo")
    with open("/proc/cpuinfo") as fh:
        names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
    if not names:
        pytest.skip("this CPU's /proc/cpuinfo has no model name")
    assert environment()["cpu"]["model"] == names[0]


def test_stdlib_modules_not_listed_as_packages():
    import json as _json  # noqa: F401 - make sure a stdlib module is in sys.modules

    packages = environment()["packages"]
    assert "json" not in packages
    assert "sys" not in packages
    assert module_distributions(["json", "os.path", "sys", "__main__"]) == {}


# --------------------------------------------------------------------------- packages


def test_sklearn_maps_to_scikit_learn():
    import sklearn  # noqa: F401

    snap = environment()
    assert snap["packages"]["scikit-learn"] == importlib.metadata.version("scikit-learn")
    assert "sklearn" not in snap["packages"]
    assert module_distributions(["sklearn.linear_model", "numpy"]) == {
        "sklearn": "scikit-learn",
        "numpy": "numpy",
    }
    assert distribution_versions(["sklearn"]) == {
        "scikit-learn": importlib.metadata.version("scikit-learn")
    }


def test_new_import_shows_up_after_refresh(tmp_path, monkeypatch, count_scans):
    _make_dist(tmp_path, "nbt-fake-dist", "1.2.3", "nbt_fake_mod")
    monkeypatch.syspath_prepend(str(tmp_path))
    _forget_module(monkeypatch, "nbt_fake_mod")

    before = environment()
    assert "nbt-fake-dist" not in before["packages"]
    importlib.import_module("nbt_fake_mod")
    after = environment()
    assert after["packages"]["nbt-fake-dist"] == "1.2.3"
    # Only the imported set changed: no new scan of installed distributions was needed.
    assert len(count_scans) == 1


def test_installing_a_distribution_refreshes_the_mapping(tmp_path, monkeypatch, count_scans):
    site = tmp_path / "site"
    site.mkdir()
    _make_dist(site, "nbt-first", "0.1", "nbt_first_mod")
    monkeypatch.syspath_prepend(str(site))
    for name in ("nbt_first_mod", "nbt_second_mod"):
        _forget_module(monkeypatch, name)
    importlib.import_module("nbt_first_mod")
    assert environment()["packages"]["nbt-first"] == "0.1"
    assert len(count_scans) == 1

    # "pip install" a second distribution into the same (watched) folder.
    _make_dist(site, "nbt-second", "2.0", "nbt_second_mod")
    st = os.stat(site)
    os.utime(site, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # coarse-mtime filesystems
    importlib.invalidate_caches()
    importlib.import_module("nbt_second_mod")
    snap = environment()
    assert snap["packages"]["nbt-second"] == "2.0"
    assert len(count_scans) == 2


def test_unwatched_folder_changes_do_not_rescan(tmp_path, monkeypatch, count_scans):
    # A folder on sys.path without distribution metadata (like the notebook's own folder)
    # gains files all the time; that must not trigger the expensive scan.
    plain = tmp_path / "notebook_dir"
    plain.mkdir()
    monkeypatch.syspath_prepend(str(plain))
    environment()
    (plain / "results.csv").write_text("a,b\n")
    st = os.stat(plain)
    os.utime(plain, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    environment()
    assert len(count_scans) == 1


def test_warm_call_is_cached_and_returns_a_copy(count_scans):
    first = environment()
    second = environment()
    assert first == second
    assert len(count_scans) == 1
    assert env_mod._cache.mapping_computations == 1

    # Editing a snapshot must not leak into the next one.
    second["packages"]["nbt-injected"] = "9"
    second["python"]["version"] = "0.0"
    third = environment()
    assert "nbt-injected" not in third["packages"]
    assert third["python"]["version"] == first["python"]["version"]
    assert len(count_scans) == 1


def test_clear_cache_without_disk_cache_rescans(count_scans, tmp_path, monkeypatch):
    environment()
    clear_cache()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    environment()
    assert len(count_scans) == 2


def test_extra_modules_included(tmp_path, monkeypatch):
    _make_dist(tmp_path, "nbt-extra", "4.5.6", "nbt_extra_mod")
    monkeypatch.syspath_prepend(str(tmp_path))
    _forget_module(monkeypatch, "nbt_extra_mod")
    assert "nbt-extra" not in environment()["packages"]
    assert environment(["nbt_extra_mod.sub"])["packages"]["nbt-extra"] == "4.5.6"
    assert "nbt_extra_mod" not in sys.modules  # looked up, not imported


# --------------------------------------------------------------------------- failures


def test_failing_part_is_omitted_with_a_warning(monkeypatch):
    def boom():
        raise RuntimeError("environ exploded\nsecond line")

    monkeypatch.setattr(env_mod, "_env_vars", boom)
    snap = environment()
    assert "env_vars" not in snap
    assert "packages" in snap and "python" in snap
    assert len(snap["warnings"]) == 1
    assert "env_vars" in snap["warnings"][0] and "environ exploded" in snap["warnings"][0]
    assert "\n" not in snap["warnings"][0]


def test_failing_static_part_is_omitted_with_a_warning(monkeypatch):
    def boom():
        raise OSError("no sysconf here")

    monkeypatch.setattr(
        env_mod,
        "_STATIC_PARTS",
        (*env_mod._STATIC_PARTS[:3], ("memory_total", boom), *env_mod._STATIC_PARTS[4:]),
    )
    snap = environment()
    assert "memory_total" not in snap
    assert snap["hostname"]
    assert any("memory_total" in w for w in snap["warnings"])


# --------------------------------------------------------------------------- torch rules
# Run in fresh interpreters: whether torch is imported is process-wide state.


def _run_python(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_no_torch_import_and_cheap_module_import():
    out = _run_python("""
        import json, sys
        import nbtrack.capture.environment as e
        imported_at_import = sorted(m for m in ("importlib.metadata", "platform", "subprocess",
                                                "torch", "IPython") if m in sys.modules)
        snap = e.environment()
        print(json.dumps({"at_import": imported_at_import, "gpu": "gpu" in snap,
                          "torch": "torch" in sys.modules, "IPython": "IPython" in sys.modules,
                          "subprocess": "subprocess" in sys.modules}))
    """)
    assert out == {
        "at_import": [],
        "gpu": False,
        "torch": False,
        "IPython": False,
        "subprocess": False,
    }


def test_gpu_section_when_torch_imported():
    import torch  # noqa: F401 -- a test dependency; missing is a failure

    out = _run_python("""
        import json, torch
        import nbtrack.capture.environment as e
        first = e.environment()["gpu"]
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = True
        second = e.environment()["gpu"]
        print(json.dumps({"first": first, "second": second, "version": torch.__version__,
                          "cuda": torch.version.cuda,
                          "initialized": torch.cuda.is_initialized()}))
    """)
    first, second = out["first"], out["second"]
    assert first["torch"] == out["version"]
    assert first["cuda"] == out["cuda"]
    assert first["deterministic_algorithms"] is False
    assert isinstance(first["device_count"], int)
    assert isinstance(first["cuda_available"], bool)
    # Flags are re-read on every call, not served stale from the cache.
    assert second["deterministic_algorithms"] is True
    assert second["cudnn_benchmark"] is True
    # Capturing must not initialise CUDA behind the user's back.
    assert out["initialized"] is False
    assert "devices" not in first


def test_prewarm_does_the_scan_once(count_scans):
    thread = env_mod.prewarm()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert len(count_scans) == 1
    environment()
    assert len(count_scans) == 1


# --------------------------------------------------------------------------- fake CUDA
# No GPU is needed to check what is read from torch.cuda and, above all, what is not.


class _FakeCuda:
    def __init__(self, *, initialized: bool, count: int) -> None:
        self.initialized = initialized
        self.count = count
        self.calls: list[str] = []

    def is_initialized(self) -> bool:
        return self.initialized

    def device_count(self) -> int:
        self.calls.append("device_count")
        return self.count

    def is_available(self) -> bool:
        self.calls.append("is_available")  # calls cuInit: only allowed once initialised
        return self.count > 0

    def get_device_properties(self, index: int):
        self.calls.append(f"props{index}")
        from types import SimpleNamespace

        return SimpleNamespace(
            name=f"NVIDIA Fake {index}", major=9, minor=0, total_memory=80 * 2**30
        )


def _fake_torch(monkeypatch, cuda: _FakeCuda):
    from types import SimpleNamespace

    cudnn = SimpleNamespace(
        is_available=lambda: True, version=lambda: 91002, deterministic=True, benchmark=False
    )
    torch = SimpleNamespace(
        __version__="9.9.9+cu999",
        version=SimpleNamespace(cuda="99.9"),
        cuda=cuda,
        backends=SimpleNamespace(cudnn=cudnn),
        get_num_threads=lambda: 7,
        are_deterministic_algorithms_enabled=lambda: True,
        is_deterministic_algorithms_warn_only_enabled=lambda: False,
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    return torch


def test_gpu_devices_listed_once_cuda_is_initialised(monkeypatch):
    cuda = _FakeCuda(initialized=True, count=2)
    _fake_torch(monkeypatch, cuda)
    gpu = environment()["gpu"]
    assert gpu["torch"] == "9.9.9+cu999" and gpu["cuda"] == "99.9" and gpu["cudnn"] == 91002
    assert gpu["cuda_available"] is True and gpu["device_count"] == 2
    assert gpu["devices"] == [
        {"index": i, "name": f"NVIDIA Fake {i}", "capability": "9.0", "total_memory": 80 * 2**30}
        for i in range(2)
    ]
    assert gpu["deterministic_algorithms"] is True and gpu["cudnn_deterministic"] is True
    assert gpu["num_threads"] == 7
    # Device properties are cached: a second call does not ask again.
    environment()
    assert cuda.calls.count("props0") == 1


def test_gpu_capture_never_initialises_cuda(monkeypatch):
    cuda = _FakeCuda(initialized=False, count=1)
    _fake_torch(monkeypatch, cuda)
    gpu = environment()["gpu"]
    assert gpu["cuda_initialized"] is False
    assert gpu["cuda_available"] is True and gpu["device_count"] == 1
    assert "devices" not in gpu
    assert "is_available" not in cuda.calls
    assert not any(c.startswith("props") for c in cuda.calls)


def test_gpu_failure_is_a_warning(monkeypatch):
    cuda = _FakeCuda(initialized=True, count=1)

    def broken(index):
        raise RuntimeError("CUDA error: device-side assert")

    cuda.get_device_properties = broken  # type: ignore[method-assign]
    _fake_torch(monkeypatch, cuda)
    snap = environment()
    assert "gpu" not in snap
    assert any(w.startswith("environment: gpu not captured") for w in snap["warnings"])


def test_a_new_process_reuses_the_map_saved_on_disk(count_scans):
    first = environment()
    assert len(count_scans) == 1
    clear_cache()  # what a fresh kernel starts with
    second = environment()
    assert len(count_scans) == 1  # read from the disk cache, not rescanned
    assert second["packages"] == first["packages"]
