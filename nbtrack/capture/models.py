"""Summaries of the PyTorch models a cell touches: size, layers, mode.

torch is never imported here: a value can only be an ``nn.Module`` if the user's code
imported torch already, so :data:`sys.modules` is consulted instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MAX_LAYERS", "find_models", "summarize_module"]

#: Layers listed per model; a bigger model lists the first ones and sets ``truncated``.
MAX_LAYERS = 200
#: Longest layer ``repr`` kept; custom modules can print a lot.
MAX_REPR = 300


def summarize_module(module: Any) -> dict[str, Any]:
    """A JSON-able summary of a ``torch.nn.Module``.

    Keys: ``class`` (class name), ``module`` (where the class is defined), ``params`` and
    ``trainable_params`` (element counts; shared parameters counted once), ``training``
    (train/eval mode), ``dtype`` and ``device`` (of the first parameter, or ``None``),
    ``layers`` (the leaf modules, plus any container that owns parameters directly, each
    ``{"name", "type", "params", "repr"}``, at most :data:`MAX_LAYERS`), ``num_layers`` (how
    many there are in all) and ``truncated``. ``uninitialized`` is present and true when a
    lazy module has parameters without a shape yet (they count as 0).
    Raises ``TypeError`` for anything that is not an ``nn.Module``.
    """
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(module, torch.nn.Module):
        raise TypeError(f"not a torch.nn.Module: {type(module).__name__}")
    uninitialized = False
    total = trainable = 0
    first = None
    for param in module.parameters():  # deduplicated, so tied weights count once
        count = _numel(param)
        if count is None:
            uninitialized = True
            continue
        first = first if first is not None else param
        total += count
        if param.requires_grad:
            trainable += count
    layers: list[dict[str, Any]] = []
    num_layers = 0
    for name, sub in module.named_modules():
        is_leaf = next(iter(sub.children()), None) is None
        own = list(sub.parameters(recurse=False))
        if not is_leaf and not own:
            continue
        num_layers += 1
        if len(layers) >= MAX_LAYERS:
            continue
        layers.append(
            {
                "name": name,
                "type": type(sub).__name__,
                "params": sum(_numel(p) or 0 for p in own),
                "repr": _layer_repr(sub, is_leaf),
            }
        )
    summary: dict[str, Any] = {
        "class": type(module).__name__,
        "module": type(module).__module__,
        "params": total,
        "trainable_params": trainable,
        "training": bool(module.training),
        "dtype": None if first is None else str(first.dtype).removeprefix("torch."),
        "device": None if first is None else str(first.device),
        "layers": layers,
        "num_layers": num_layers,
        "truncated": num_layers > len(layers),
    }
    if uninitialized:
        summary["uninitialized"] = True
    return summary


def _numel(param: Any) -> int | None:
    try:
        return int(param.numel())
    except Exception:  # UninitializedParameter (lazy modules) has no shape yet
        return None


def _layer_repr(sub: Any, is_leaf: bool) -> str:
    # A container's repr spans its whole subtree; for one that owns parameters show just
    # its own line, as a leaf's repr would be.
    text = repr(sub) if is_leaf else f"{type(sub).__name__}({sub.extra_repr()})"
    text = " ".join(text.split())
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def find_models(namespace: Mapping[str, object], names: Iterable[str]) -> list[dict[str, Any]]:
    """Summaries of the ``nn.Module`` values bound to ``names`` in ``namespace``.

    Each is :func:`summarize_module`'s dict with a ``"name"`` key first. Returns ``[]`` at
    once when torch was never imported. Never raises: a name that is missing, not a module,
    or fails to summarise is skipped. Order follows ``names`` (sorted if it is a set).
    """
    torch = sys.modules.get("torch")
    module_type = getattr(getattr(torch, "nn", None), "Module", None)
    if module_type is None:
        return []
    try:
        ordered = sorted(names) if isinstance(names, set | frozenset) else list(names)
    except Exception:
        return []
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name in ordered:
        if name in seen:
            continue
        seen.add(name)
        try:
            value = namespace.get(name)
            if not isinstance(value, module_type):
                continue
            found.append({"name": name, **summarize_module(value)})
        except Exception:
            continue
    return found
