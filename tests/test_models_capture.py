"""Summaries of the torch models a cell touches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch  # noqa: E402
from torch import nn  # noqa: E402

from nbtrack.capture.models import MAX_LAYERS, find_models, summarize_module


def small_model() -> Any:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))


def test_summarize_sequential() -> None:
    model = small_model()
    model[0].weight.requires_grad_(False)
    summary = summarize_module(model)
    assert summary["class"] == "Sequential"
    assert summary["params"] == 64 * 128 + 128 + 128 * 10 + 10
    assert summary["trainable_params"] == summary["params"] - 64 * 128
    assert summary["training"] is True
    assert summary["dtype"] == "float32" and summary["device"] == "cpu"
    assert summary["num_layers"] == 4 and summary["truncated"] is False
    assert summary["layers"][0] == {
        "name": "0",
        "type": "Linear",
        "params": 64 * 128 + 128,
        "repr": "Linear(in_features=64, out_features=128, bias=True)",
    }
    assert [layer["type"] for layer in summary["layers"]] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert summary["layers"][1]["params"] == 0
    assert summarize_module(model.eval())["training"] is False


def test_nested_names_and_shared_weights() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, 16)
            self.block = nn.Sequential(nn.Linear(16, 16))
            self.head = nn.Linear(16, 100, bias=False)
            self.head.weight = self.embed.weight  # tied: counted once
            self.scale = nn.Parameter(torch.ones(1))  # owned by the container itself

    summary = summarize_module(Tied())
    assert summary["class"] == "Tied"
    assert summary["params"] == 100 * 16 + 16 * 16 + 16 + 1
    names = [layer["name"] for layer in summary["layers"]]
    assert names == ["", "embed", "block.0", "head"]
    assert summary["layers"][0] == {"name": "", "type": "Tied", "params": 1, "repr": "Tied()"}


def test_layer_cap() -> None:
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(MAX_LAYERS + 5)])
    summary = summarize_module(model)
    assert len(summary["layers"]) == MAX_LAYERS
    assert summary["num_layers"] == MAX_LAYERS + 5
    assert summary["truncated"] is True
    assert summary["params"] == (MAX_LAYERS + 5) * 6


def test_lazy_module() -> None:
    summary = summarize_module(nn.Sequential(nn.LazyLinear(4), nn.Linear(4, 2)))
    assert summary["uninitialized"] is True
    assert summary["params"] == 4 * 2 + 2


def test_summarize_rejects_non_modules() -> None:
    with pytest.raises(TypeError):
        summarize_module(object())


def test_find_models() -> None:
    class Broken(nn.Module):
        def parameters(self, recurse: bool = True) -> Any:  # type: ignore[override]
            raise RuntimeError("broken")

    ns: dict[str, Any] = {
        "model": small_model(),
        "lr": 0.1,
        "broken": Broken(),
        "enc": nn.Linear(3, 4),
    }
    found = find_models(ns, ["lr", "model", "missing", "broken", "enc", "model"])
    assert [m["name"] for m in found] == ["model", "enc"]
    assert list(found[0])[0] == "name"
    assert found[1]["params"] == 3 * 4 + 4
    assert found[1]["layers"] == [
        {
            "name": "",
            "type": "Linear",
            "params": 16,
            "repr": "Linear(in_features=3, out_features=4, bias=True)",
        }
    ]
    assert [m["name"] for m in find_models(ns, {"model", "enc"})] == ["enc", "model"]


def test_find_models_without_torch_imported() -> None:
    code = (
        "import sys; from nbtrack.capture.models import find_models; "
        "r = find_models({'m': object()}, ['m']); print(r, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[] False"
