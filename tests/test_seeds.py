"""Tests for nbtrack.capture.seeds: seeding, determinism, seed calls and RNG replay."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nbtrack.capture.seeds import (
    CUBLAS_WORKSPACE_CONFIG,
    RNG_STATE_FORMAT,
    cell_imports_torch,
    find_seed_calls,
    restore_rng_state,
    rng_state,
    seed_everything,
    set_deterministic,
)
from nbtrack.errors import UsageError


def _draws() -> list[bytes]:
    """Draws from every RNG, as bytes so comparisons are bit for bit."""
    py = [random.random() for _ in range(5)]
    return [
        np.array(py).tobytes(),
        random.getrandbits(64).to_bytes(8, "little"),
        np.random.rand(5).tobytes(),
        np.random.normal(size=3).tobytes(),
        np.random.standard_normal(3).tobytes(),  # odd count: leaves a cached gaussian
        np.random.randint(0, 2**31, size=4).tobytes(),
        torch.rand(5).numpy().tobytes(),
        torch.randn(3).numpy().tobytes(),
    ]


@pytest.fixture(autouse=True)
def _keep_global_rngs() -> Iterator[None]:
    """Tests here reseed the global RNGs; put them back for whoever runs next."""
    py, npy, tch = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(py)
    np.random.set_state(npy)
    torch.set_rng_state(tch)


# --- replay ---------------------------------------------------------------------------


def test_rng_state_replay_is_bit_identical() -> None:
    np.random.standard_normal()  # has_gauss = 1 inside the recorded state
    random.gauss(0, 1)  # and random's gauss_next
    state = rng_state(torch_too=True)
    assert state["numpy"]["has_gauss"] == 1
    assert state["random"]["gauss_next"] is not None
    first = _draws()
    assert restore_rng_state(state) == ["random", "numpy", "torch"]
    second = _draws()
    assert first == second


def test_rng_state_survives_json_round_trip() -> None:
    np.random.standard_normal()
    state = rng_state(torch_too=True)
    text = json.dumps(state)
    first = _draws()
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    restore_rng_state(json.loads(text))
    assert _draws() == first
    # The encoded state re-encodes to the same text (stable for hashing).
    assert json.dumps(rng_state(torch_too=True)) != text  # RNGs moved on
    restore_rng_state(json.loads(text))
    assert json.dumps(rng_state(torch_too=True)) == text


def test_rng_state_is_full_state() -> None:
    state = rng_state(torch_too=True)
    version, internal, gauss_next = random.getstate()
    assert state["format"] == RNG_STATE_FORMAT
    assert state["random"]["version"] == version
    legacy = np.random.get_state()
    assert legacy[0] == state["numpy"]["bit_generator"] == "MT19937"
    assert state["numpy"]["pos"] == legacy[2]
    import base64

    key = np.frombuffer(base64.b64decode(state["numpy"]["key"]), dtype="<u4")
    assert key.size == 624 and np.array_equal(key, legacy[1])
    words = np.frombuffer(base64.b64decode(state["random"]["internal"]), dtype="<u4")
    assert tuple(int(w) for w in words) == internal and words.size == 625
    assert base64.b64decode(state["torch"]["cpu"]) == torch.get_rng_state().numpy().tobytes()


def test_rng_state_typical_size() -> None:
    size = len(json.dumps(rng_state(torch_too=True)))
    assert 10_000 < size < 20_000  # ~13.6 kB: random 3.3k + numpy 3.3k + torch cpu 6.7k


def test_restore_rejects_bad_state() -> None:
    with pytest.raises(UsageError, match="not an nbtrack RNG state"):
        restore_rng_state({"format": "other"})
    with pytest.raises(UsageError):
        restore_rng_state([])  # type: ignore[arg-type]
    good = rng_state(torch_too=False)
    broken = dict(good, numpy={"bit_generator": "MT19937"})
    with pytest.raises(UsageError, match="bad RNG state"):
        restore_rng_state(broken)
    broken = dict(good, random={"version": 3, "internal": "!!not base64!!", "gauss_next": None})
    with pytest.raises(UsageError, match="base64"):
        restore_rng_state(broken)


def test_restore_numpy_with_other_bit_generator() -> None:
    rs = np.random.mtrand._rand
    original = rs._bit_generator
    try:
        np.random.set_bit_generator(np.random.PCG64(7))
        state = json.loads(json.dumps(rng_state(torch_too=False)))
        assert state["numpy"]["bit_generator"] == "PCG64"
        first = np.random.rand(4).tobytes()
        restore_rng_state(state)
        assert np.random.rand(4).tobytes() == first
    finally:
        np.random.set_bit_generator(original)


# --- CUDA paths, with torch.cuda faked (these machines may have no GPU) ---------------


class _FakeCuda:
    """Stand-in for the bits of torch.cuda that seeds.py calls."""

    def __init__(self, initialized: bool, devices: int = 2) -> None:
        self.initialized = initialized
        self.devices = devices
        self.states = [torch.arange(16, dtype=torch.uint8) + i for i in range(devices)]
        self.seeded: list[tuple[str, int]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        cuda = torch.cuda
        monkeypatch.setattr(cuda, "is_available", lambda: True)
        monkeypatch.setattr(cuda, "is_initialized", lambda: self.initialized)
        monkeypatch.setattr(cuda, "device_count", lambda: self.devices)
        monkeypatch.setattr(cuda, "get_rng_state_all", lambda: [s.clone() for s in self.states])
        monkeypatch.setattr(cuda, "set_rng_state", self._set)
        monkeypatch.setattr(cuda, "manual_seed_all", lambda s: self.seeded.append(("all", s)))
        monkeypatch.setattr(cuda, "manual_seed", lambda s: self.seeded.append(("current", s)))

    def _set(self, state: Any, device: int) -> None:
        self.states[device] = state.clone()


def test_cuda_states_recorded_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeCuda(initialized=True)
    fake.install(monkeypatch)
    state = json.loads(json.dumps(rng_state(torch_too=True)))
    assert state["torch"]["cuda"]["initialized"] is True
    assert len(state["torch"]["cuda"]["states"]) == 2
    recorded = [s.clone() for s in fake.states]
    fake.states = [torch.zeros(16, dtype=torch.uint8) for _ in range(2)]
    assert restore_rng_state(state) == ["random", "numpy", "torch", "torch.cuda"]
    assert all(torch.equal(a, b) for a, b in zip(fake.states, recorded, strict=True))
    # Fewer devices when replaying: restore the ones there are instead of failing.
    fake.devices = 1
    fake.states = [torch.zeros(16, dtype=torch.uint8)]
    assert "torch.cuda" in restore_rng_state(state)
    assert torch.equal(fake.states[0], recorded[0])


def test_cuda_not_initialized_records_pending_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read torch's real lazy-seed queue: manual_seed only queues CUDA seeding before init.
    torch.manual_seed(1234)
    fake = _FakeCuda(initialized=False)
    fake.install(monkeypatch)
    state = rng_state(torch_too=True)
    cuda = state["torch"]["cuda"]
    assert cuda["initialized"] is False
    assert cuda["pending_seeds"] == [["all", 1234]]
    assert restore_rng_state(json.loads(json.dumps(state)))[-1] == "torch.cuda"
    assert fake.seeded == [("all", 1234)]
    # Nothing queued (an unseeded run): nothing to replay, so CUDA is not claimed restored.
    unseeded = json.loads(json.dumps(state))
    unseeded["torch"]["cuda"]["pending_seeds"] = []
    assert restore_rng_state(unseeded) == ["random", "numpy", "torch"]


def test_restore_cuda_state_without_cuda_skips_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeCuda(initialized=True)
    fake.install(monkeypatch)
    state = rng_state(torch_too=True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert restore_rng_state(state) == ["random", "numpy", "torch"]


def test_seed_everything_seeds_cuda_when_available(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeCuda(initialized=False)
    fake.install(monkeypatch)
    assert seed_everything(5, torch_too=True) == ["random", "numpy", "torch", "torch.cuda"]
    assert fake.seeded and set(fake.seeded) == {("all", 5)}  # torch.manual_seed calls it too


# --- seeding --------------------------------------------------------------------------


def test_seed_everything_makes_draws_repeatable() -> None:
    assert seed_everything(42, torch_too=True) == ["random", "numpy", "torch"]
    first = _draws()
    seed_everything(42, torch_too=True)
    assert _draws() == first
    seed_everything(43, torch_too=True)
    assert _draws() != first


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "42", True, None])
def test_seed_everything_rejects_bad_seed(bad: Any) -> None:
    with pytest.raises(UsageError, match="seed"):
        seed_everything(bad, torch_too=False)


_REPO_ROOT = str(Path(__file__).resolve().parents[1])


def _run_isolated(code: str) -> str:
    """Run ``code`` in a fresh interpreter (torch may already be imported here)."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": _REPO_ROOT},
        timeout=120,
    )
    return result.stdout.strip()


def test_torch_not_imported_unless_asked() -> None:
    out = _run_isolated(
        "import json, sys\n"
        "from nbtrack.capture import seeds\n"
        "print(seeds.seed_everything(1, torch_too=False))\n"
        "s = seeds.rng_state(torch_too=False)\n"
        "print('torch' in s, seeds.set_deterministic(torch_too=False)['torch'])\n"
        "print(seeds.restore_rng_state(json.loads(json.dumps(s))))\n"
        "print(seeds.cell_imports_torch('import torch'), seeds.find_seed_calls('torch.manual_seed(1)')[0]['value'])\n"
        "print('torch' in sys.modules)\n"
    )
    assert out.splitlines() == [
        "['random', 'numpy']",
        "False False",
        "['random', 'numpy']",
        "True 1",
        "False",
    ]


def test_replay_in_a_fresh_process_imports_torch_only_for_torch_states(tmp_path: Path) -> None:
    draw = (
        "print(random.random().hex(), np.random.rand(2).tobytes().hex(), "
        "torch.rand(2).numpy().tobytes().hex() if 'torch' in sys.modules else '-')\n"
    )
    header = "import json, random, sys\nimport numpy as np\nfrom nbtrack.capture import seeds\n"
    recorded = _run_isolated(
        header + "import torch\n"
        f"seeds.seed_everything(7, torch_too=True)\ntorch.rand(3)\n"
        f"open({str(tmp_path / 'state.json')!r}, 'w').write(json.dumps(seeds.rng_state(torch_too=True)))\n"
        + draw
    )
    replayed = _run_isolated(
        header + f"state = json.load(open({str(tmp_path / 'state.json')!r}))\n"
        "print('torch' in sys.modules, seeds.restore_rng_state(state), 'torch' in sys.modules)\n"
        "import torch\n" + draw
    )
    lines = replayed.splitlines()
    assert lines[0] == "False ['random', 'numpy', 'torch'] True"
    assert lines[1] == recorded


# --- determinism ----------------------------------------------------------------------


@pytest.fixture
def _restore_determinism(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.backends.cudnn.deterministic = before[1]
    torch.backends.cudnn.benchmark = before[2]


@pytest.mark.usefixtures("_restore_determinism")
def test_set_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.backends.cudnn.benchmark = True
    record = set_deterministic(torch_too=True)
    json.dumps(record)
    assert record["torch"] is True
    assert record["flags"] == {
        "torch.use_deterministic_algorithms": True,
        "torch.backends.cudnn.deterministic": True,
        "torch.backends.cudnn.benchmark": False,
    }
    assert record["previous"]["torch.backends.cudnn.benchmark"] is True
    assert record["env"] == {"CUBLAS_WORKSPACE_CONFIG": CUBLAS_WORKSPACE_CONFIG}
    assert record["env_already_set"] == []
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark

    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the user's own choice stays
    record = set_deterministic(torch_too=True)
    assert record["env"] == {"CUBLAS_WORKSPACE_CONFIG": ":16:8"}
    assert record["env_already_set"] == ["CUBLAS_WORKSPACE_CONFIG"]


# --- what the cell does itself --------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch", True),
        ("import torch.nn as nn", True),
        ("from torch import nn", True),
        ("from torch.utils.data import DataLoader", True),
        ("import numpy as np, torch", True),
        ("def f():\n    import torch\n", True),
        ("import torchvision.transforms as T", True),
        ("import lightning as L", True),
        ("import torchmetrics_fake", False),
        ("import numpy as np", False),
        ("from . import torch", False),
        ("x = 'import torch'", False),
        ("# import torch", False),
        ("import torch(", False),
    ],
)
def test_cell_imports_torch(source: str, expected: bool) -> None:
    assert cell_imports_torch(source) is expected


SEED_CASES: list[tuple[str, list[dict[str, Any]]]] = [
    ("import random\nrandom.seed(42)", [{"call": "random.seed", "value": 42, "line": 2}]),
    ("np.random.seed(0)", [{"call": "np.random.seed", "value": 0, "line": 1}]),
    ("numpy.random.seed(seed=7)", [{"call": "numpy.random.seed", "value": 7, "line": 1}]),
    (
        "rng = np.random.default_rng(12345)",
        [{"call": "np.random.default_rng", "value": 12345, "line": 1}],
    ),
    (
        "rng = np.random.default_rng()",
        [{"call": "np.random.default_rng", "value": None, "line": 1}],
    ),
    ("rs = np.random.RandomState(3)", [{"call": "np.random.RandomState", "value": 3, "line": 1}]),
    ("r = random.Random(99)", [{"call": "random.Random", "value": 99, "line": 1}]),
    ("torch.manual_seed(SEED)", [{"call": "torch.manual_seed", "value": "SEED", "line": 1}]),
    (
        "torch.cuda.manual_seed(1)\ntorch.cuda.manual_seed_all(2)",
        [
            {"call": "torch.cuda.manual_seed", "value": 1, "line": 1},
            {"call": "torch.cuda.manual_seed_all", "value": 2, "line": 2},
        ],
    ),
    (
        "g = torch.Generator().manual_seed(8)",
        [{"call": "torch.Generator().manual_seed", "value": 8, "line": 1}],
    ),
    (
        "import tensorflow as tf\ntf.random.set_seed(1234)",
        [{"call": "tf.random.set_seed", "value": 1234, "line": 2}],
    ),
    (
        "from transformers import set_seed\nset_seed(42)",
        [{"call": "set_seed", "value": 42, "line": 2}],
    ),
    (
        "import lightning as L\nL.seed_everything(42, workers=True)",
        [{"call": "L.seed_everything", "value": 42, "line": 2}],
    ),
    (
        "pl.seed_everything(cfg['seed'])",
        [{"call": "pl.seed_everything", "value": "cfg['seed']", "line": 1}],
    ),
    ("key = jax.random.PRNGKey(0)", [{"call": "jax.random.PRNGKey", "value": 0, "line": 1}]),
    (
        "X_tr, X_te = train_test_split(X, test_size=0.2, random_state=42)",
        [{"call": "train_test_split", "keyword": "random_state", "value": 42, "line": 1}],
    ),
    (
        "clf = RandomForestClassifier(\n    n_estimators=100,\n    random_state=rs + 1,\n)",
        [
            {
                "call": "RandomForestClassifier",
                "keyword": "random_state",
                "value": "rs + 1",
                "line": 3,
            }
        ],
    ),
    (
        "model = xgb.XGBClassifier(seed=7)",
        [{"call": "xgb.XGBClassifier", "keyword": "seed", "value": 7, "line": 1}],
    ),
    (
        "df.sample(frac=0.5, random_state=None)",
        [{"call": "df.sample", "keyword": "random_state", "value": None, "line": 1}],
    ),
    (
        "for s in range(3):\n    run(seed=s)\n    np.random.seed(s)",
        [
            {"call": "run", "keyword": "seed", "value": "s", "line": 2},
            {"call": "np.random.seed", "value": "s", "line": 3},
        ],
    ),
    (
        "f(g(random_state=1), seed=2)",
        [
            {"call": "g", "keyword": "random_state", "value": 1, "line": 1},
            {"call": "f", "keyword": "seed", "value": 2, "line": 1},
        ],
    ),
    ("título = 'é'; random.seed(-1)", [{"call": "random.seed", "value": -1, "line": 1}]),
    ("x = rand.Random(1)", []),  # not the random module's Random
    ("np.random.rand(3)\nrandom.shuffle(x)\nprint('seed=1')", []),
    ("random.seed(1", []),  # SyntaxError
]


@pytest.mark.parametrize(("source", "expected"), SEED_CASES)
def test_find_seed_calls(source: str, expected: list[dict[str, Any]]) -> None:
    found = find_seed_calls(source)
    assert found == expected
    json.dumps(found)
