"""Which names and files a cell reads, and their fingerprints."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbtrack.capture.fingerprint import fingerprint, fingerprint_file
from nbtrack.capture.inputs import (
    cell_inputs,
    names_loaded,
    names_stored,
    string_literal_paths,
)


def src(code: str) -> str:
    return textwrap.dedent(code).strip() + "\n"


# ------------------------------------------------------------------ names


def test_names_loaded_and_stored_simple() -> None:
    code = src("""
        import numpy as np
        from sklearn.model_selection import train_test_split as split
        import os.path
        X_train, X_test = split(X, y, test_size=0.2)
        model.fit(X_train, y_train)
        total += 1
    """)
    assert names_loaded(code) == {"split", "X", "y", "model", "X_train", "y_train", "total"}
    assert names_stored(code) == {"np", "split", "os", "X_train", "X_test", "total"}


def test_names_nested_for_with_def_class() -> None:
    code = src("""
        for epoch in range(epochs):
            with open(path) as fh:
                data = fh.read()
        def train(batch):
            return model(batch) + offset
        class Net(Base):
            width = hidden
        try:
            pass
        except ValueError as err:
            print(err)
        if (n := len(items)) > 3:
            squares = [k * k for k in items]
    """)
    loaded = names_loaded(code)
    stored = names_stored(code)
    assert {
        "range",
        "epochs",
        "open",
        "path",
        "fh",
        "model",
        "batch",
        "offset",
        "Base",
        "hidden",
        "len",
        "items",
        "k",
        "ValueError",
        "err",
        "print",
    } <= loaded
    assert {"epoch", "fh", "data", "train", "Net", "width", "err", "n", "squares", "k"} <= stored
    assert "data" not in loaded and "epochs" not in stored


def test_match_captures_are_stored() -> None:
    code = src("""
        match command:
            case ["go", direction]:
                pass
            case {"k": value, **rest}:
                pass
            case Point(x=0) as origin:
                pass
    """)
    assert {"direction", "value", "rest", "origin"} <= names_stored(code)
    assert {"command", "Point"} <= names_loaded(code)


def test_syntax_errors_give_empty_sets() -> None:
    for bad in ("%timeit x = 1", "def f(:\n", "x = (", "a\x00b", "!ls"):
        assert names_loaded(bad) == set()
        assert names_stored(bad) == set()
        assert string_literal_paths(bad) == []
        assert cell_inputs(bad, {"x": np.zeros(3)}) == ([], [])


# ------------------------------------------------------------------ paths


def test_string_literal_paths(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("a\n1\n")
    (tmp_path / "config.yaml").write_text("lr: 1\n")
    code = src("""
        df = pd.read_csv("data/train.csv")
        cfg = load("config.yaml")
        other = load("missing.csv")
        again = "data/train.csv"
        parts = name.split("/")
        folder = "data"
        msg = f"{name}data/train.csv"
        doc = '''config.yaml
        more'''
    """)
    assert string_literal_paths(code, cwd=str(tmp_path)) == [
        "data/train.csv",
        "config.yaml",
        "data",
    ]


def test_string_literal_paths_refuses_huge_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "project" / "nb"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code = src(f"""
        a = "."
        b = ".."
        c = "{tmp_path}"
        d = "/"
        e = "~"
        f = "{"x" * 5000}"
    """)
    assert string_literal_paths(code) == []


def test_string_literal_absolute_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "weights.bin").write_bytes(b"\1\2")
    code = 'a = "~/weights.bin"\nb = "%s"\n' % (tmp_path / "weights.bin")
    assert string_literal_paths(code, cwd="/") == ["~/weights.bin", str(tmp_path / "weights.bin")]


# ------------------------------------------------------------------ cell_inputs


def test_cell_inputs_reads_namespace_values() -> None:
    X = np.arange(10.0)
    df = pd.DataFrame({"a": [1, 2]})
    ns: dict[str, Any] = {
        "X": X,
        "df": df,
        "lr": 0.1,
        "np": np,
        "unused": np.zeros(2),
        "_private": np.ones(2),
        "Out": {1: np.ones(2)},
    }
    code = src("""
        result = model_fn(X, df["a"], lr, _private, Out)
        print(result)
    """)
    fps, warnings = cell_inputs(code, ns)
    assert warnings == []
    assert [f.name for f in fps] == ["X", "df"]
    assert fps[0] == fingerprint(X, "X")
    assert fps[1].kind == "dataframe"


def test_cell_inputs_skips_names_bound_before_read() -> None:
    ns: dict[str, Any] = {
        name: np.arange(3.0) for name in ("X", "y", "w", "k", "item", "seen", "arr", "f")
    }
    code = src("""
        X = np.random.rand(5)
        fit(X, y)
        for k in range(3):
            w = w + k
        squares = [item * 2 for item in X]
        if cond:
            seen = 1
        print(seen)
        def f(arr):
            return arr + 1
        f(X)
    """)
    fps, _ = cell_inputs(code, ns)
    # X is rebound before any read; k, item and arr are local; seen is bound only maybe.
    assert [f.name for f in fps] == ["y", "w", "seen"]


def test_cell_inputs_function_body_reads_global() -> None:
    ns: dict[str, Any] = {"table": pd.Series([1, 2, 3])}
    code = src("""
        def lookup(i):
            return table[i]
        lookup(1)
    """)
    fps, _ = cell_inputs(code, ns)
    assert [f.name for f in fps] == ["table"]
    assert fps[0].kind == "series"


def test_cell_inputs_augmented_assignment_reads() -> None:
    ns: dict[str, Any] = {"acc": np.zeros(4)}
    fps, _ = cell_inputs("acc += 1\n", ns)
    assert [f.name for f in fps] == ["acc"]


def test_cell_inputs_tensor() -> None:
    import torch

    ns: dict[str, Any] = {"t": torch.ones(2, 2)}
    fps, _ = cell_inputs("out = t @ t\n", ns)
    assert len(fps) == 1 and fps[0].kind == "tensor"


def test_cell_inputs_files(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    (tmp_path / "out.csv").write_text("old output\n")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.png").write_bytes(b"\x89PNG")
    code = src("""
        df = pd.read_csv("train.csv")
        again = pd.read_csv("./train.csv")
        imgs = load_dir("images")
        df.to_csv("out.csv")
    """)
    fps, warnings = cell_inputs(code, {}, cwd=str(tmp_path))
    assert warnings == []
    assert [(f.name, f.kind) for f in fps] == [("train.csv", "file"), ("images", "dir")]
    assert fps[0].hash == fingerprint_file(tmp_path / "train.csv").hash
    assert fps[0].meta["path"] == str(tmp_path / "train.csv")


def test_outputs_that_are_also_read_are_inputs(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("x")
    (tmp_path / "model.pt").write_bytes(b"w")
    (tmp_path / "notes.txt").write_text("n")
    code = src("""
        history = open("log.txt").read()
        with open("log.txt", "a") as fh:
            fh.write("more")
        torch.save(model.state_dict(), "model.pt")
        Path("notes.txt").write_text("new")
        json.dump(cfg, open("notes.txt", mode="w"))
    """)
    fps, _ = cell_inputs(code, {}, cwd=str(tmp_path))
    assert [f.name for f in fps] == ["log.txt"]


def test_cell_inputs_warns_instead_of_raising(tmp_path: Path) -> None:
    class Exploding(np.ndarray):
        def view(self, *args: object, **kwargs: object) -> np.ndarray:  # type: ignore[override]
            raise OSError("device not ready\nsecond line")

    weird = np.arange(3.0).view(Exploding)
    good = np.arange(3.0)
    fps, warnings = cell_inputs("f(weird, good)\n", {"weird": weird, "good": good})
    assert [f.name for f in fps] == ["good"]
    assert warnings == ["could not fingerprint 'weird': OSError: device not ready second line"]


def test_cell_inputs_warns_for_unreadable_path(tmp_path: Path) -> None:
    # /proc/self/mem is a file that exists but cannot be read from offset 0, even as root.
    fps, warnings = cell_inputs('load("/proc/self/mem")\n', {}, cwd=str(tmp_path))
    assert fps == []
    assert len(warnings) == 1 and warnings[0].startswith("could not fingerprint '/proc/self/mem'")


def test_cell_inputs_namespace_lookup_failure_is_a_warning() -> None:
    class Hostile(dict[str, object]):
        def __getitem__(self, key: str) -> object:
            raise RuntimeError("lazy value failed")

    fps, warnings = cell_inputs("print(data)\n", Hostile(data=1))
    assert fps == []
    assert warnings == ["could not fingerprint 'data': RuntimeError: lazy value failed"]


def test_cell_inputs_deep_expression_does_not_crash() -> None:
    code = "total = " + " + ".join(["x"] * 1500) + "\n"
    fps, warnings = cell_inputs(code, {"x": np.zeros(1)})
    assert [f.name for f in fps] == ["x"]
    assert warnings == []


def test_cell_inputs_warns_for_oversized_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtrack.capture import fingerprint as fp_module

    monkeypatch.setattr(fp_module, "MAX_DIR_FILES", 2)
    (tmp_path / "shards").mkdir()
    for i in range(3):
        (tmp_path / "shards" / f"{i}.bin").write_bytes(b"x")
    (tmp_path / "small.txt").write_text("ok")
    fps, warnings = cell_inputs('read("shards", "small.txt")\n', {}, cwd=str(tmp_path))
    assert [f.name for f in fps] == ["small.txt"]
    assert len(warnings) == 1
    assert warnings[0].startswith("could not fingerprint 'shards': ValueError:")
    assert "\n" not in warnings[0]
