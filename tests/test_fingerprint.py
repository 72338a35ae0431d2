"""Content fingerprints of arrays, frames, tensors, files and directories."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xxhash

from nbtrack.capture import fingerprint as fp_module
from nbtrack.capture.fingerprint import (
    MAX_DIR_FILES,
    clear_file_cache,
    fingerprint,
    fingerprint_file,
)

HASH_RE = re.compile(r"^xxh3_128:[0-9a-f]{32}$")


def h(obj: object) -> str:
    result = fingerprint(obj, "x")
    assert result is not None
    assert HASH_RE.match(result.hash), result.hash
    return result.hash


# ------------------------------------------------------------------ numpy


def test_unsupported_types_give_none() -> None:
    for obj in (1, "text", [1, 2], {"a": 1}, None, object(), np.float64(1.0)):
        assert fingerprint(obj, "x") is None


def test_ndarray_same_data_same_hash_and_meta() -> None:
    a = np.arange(1000, dtype=np.float32).reshape(10, 100)
    result = fingerprint(a, "a")
    assert result is not None
    assert result.name == "a" and result.kind == "ndarray"
    assert result.hash == h(a.copy())
    assert result.meta == {"shape": [10, 100], "dtype": "float32"}
    assert result.size == a.nbytes


def test_ndarray_one_changed_byte_changes_hash() -> None:
    a = np.zeros(1 << 16, dtype=np.uint8)
    b = a.copy()
    b[12345] = 1
    assert h(a) != h(b)


def test_ndarray_shape_and_dtype_matter() -> None:
    a = np.arange(12, dtype=np.int32)
    assert h(a) != h(a.reshape(3, 4))
    assert h(a.reshape(3, 4)) != h(a.reshape(4, 3))
    assert h(a) != h(a.view(np.float32))  # same bytes, other dtype
    assert h(a) != h(a.view(np.uint8))
    assert h(a.astype("<i4")) != h(a.astype(">i4"))


def test_non_contiguous_arrays_hash_like_their_contiguous_copy() -> None:
    base = np.random.default_rng(0).random((300, 200))
    for view in (base.T, base[::2, ::3], base[:, 5], np.asfortranarray(base)):
        assert not view.flags.c_contiguous or view is base
        assert h(view) == h(np.ascontiguousarray(view))
    assert h(base.T) != h(base)


def test_non_contiguous_array_copied_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp_module, "COPY_CHUNK", 1024)
    base = np.random.default_rng(1).random((50, 40, 30))
    strided = base[:, ::2, :]
    transposed = base.transpose(2, 1, 0)
    assert h(strided) == h(np.ascontiguousarray(strided))
    assert h(transposed) == h(np.ascontiguousarray(transposed))


def test_contiguous_array_is_hashed_without_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("contiguous data must not be copied")

    a = np.arange(1 << 20, dtype=np.float64)
    expected = h(a)
    monkeypatch.setattr(np, "ascontiguousarray", refuse)
    result = fingerprint(a, "a")
    assert result is not None
    assert result.hash == expected
    assert result.size == a.nbytes


def test_zero_d_empty_and_special_dtypes() -> None:
    assert h(np.array(1.5)) != h(np.array([1.5]))
    assert h(np.zeros((0, 3))) != h(np.zeros((3, 0)))
    dates = np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]")
    assert h(dates) != h(dates.astype("datetime64[s]"))
    assert h(np.array([True, False])) != h(np.array([True, True]))
    structured = np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")])
    renamed = np.array([(1, 2.0)], dtype=[("x", "<i4"), ("b", "<f8")])
    assert h(structured) != h(renamed)
    assert h(np.array(["ab", "c"])) != h(np.array(["a", "bc"]))


def test_object_arrays() -> None:
    words = np.array(["alpha", "beta", "gamma"], dtype=object)
    assert h(words) == h(words.copy())
    assert h(words) != h(np.array(["alpha", "beta", "gammA"], dtype=object))
    # Boundaries between strings are part of the content.
    assert h(np.array(["ab", "c"], dtype=object)) != h(np.array(["a", "bc"], dtype=object))
    # Strings that contain the separator still can't collide.
    assert h(np.array(["a\x00", "b"], dtype=object)) != h(np.array(["a", "\x00b"], dtype=object))
    # Mixed types: the string "1" is not the int 1, None is not NaN.
    assert h(np.array(["1", "x"], dtype=object)) != h(np.array([1, "x"], dtype=object))
    assert h(np.array([None, "x"], dtype=object)) != h(np.array([np.nan, "x"], dtype=object))
    assert h(np.array([1.0, 2], dtype=object)) != h(np.array([1, 2], dtype=object))


def test_arrays_inside_object_arrays_are_hashed_whole() -> None:
    # repr() of a big array elides its middle; a change there must still show.
    inner = np.zeros(10_000)
    changed = inner.copy()
    changed[5000] = 1.0
    a = np.empty(2, dtype=object)
    b = np.empty(2, dtype=object)
    a[0], a[1] = inner, "x"
    b[0], b[1] = changed, "x"
    assert h(a) != h(b)


def test_masked_array_mask_is_content() -> None:
    data = np.arange(4.0)
    first = np.ma.masked_array(data, mask=[False, True, False, False])
    second = np.ma.masked_array(data, mask=[False, False, True, False])
    assert h(first) != h(second)


class ExplodingArray(np.ndarray):
    """An ndarray subclass whose buffer can't be read, like a broken memory map."""

    def view(self, *args: object, **kwargs: object) -> np.ndarray:  # type: ignore[override]
        raise OSError("device not ready")


def test_broken_buffer_raises() -> None:
    weird = np.arange(3.0).view(ExplodingArray)
    with pytest.raises(OSError, match="device not ready"):
        fingerprint(weird, "weird")


# ------------------------------------------------------------------ pandas


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": np.arange(5, dtype=np.int64),
            "b": np.linspace(0, 1, 5),
            "c": ["x", "y", None, "w", "v"],
        }
    )


def test_dataframe_meta() -> None:
    result = fingerprint(frame(), "df")
    assert result is not None and result.kind == "dataframe"
    assert result.meta["shape"] == [5, 3]
    assert result.meta["rows"] == 5
    assert result.meta["columns"] == ["a", "b", "c"]
    assert result.meta["schema"]["a"] == "int64"
    assert result.meta["schema"]["b"] == "float64"
    assert result.meta["dtype"] == "mixed"
    assert result.size > 5 * 16


def test_dataframe_same_content_same_hash() -> None:
    assert h(frame()) == h(frame())
    assert h(frame()) == h(frame().copy(deep=True))


def test_dataframe_value_change() -> None:
    df = frame()
    df.loc[3, "b"] = 0.123
    assert h(df) != h(frame())
    strings = frame()
    strings.loc[0, "c"] = "X"
    assert h(strings) != h(frame())


def test_dataframe_missing_string_is_content() -> None:
    df = frame()
    df.loc[2, "c"] = ""
    assert h(df) != h(frame())


def test_dataframe_column_name_order_and_dtype() -> None:
    base = h(frame())
    assert h(frame().rename(columns={"a": "A"})) != base
    assert h(frame()[["b", "a", "c"]]) != base
    assert h(frame().astype({"a": "int32"})) != base
    assert h(frame().drop(columns="c")) != base


def test_dataframe_index_matters() -> None:
    base = h(frame())
    assert h(frame().set_axis([10, 11, 12, 13, 14])) != base
    assert h(frame().set_axis(list("abcde"))) != base
    named = frame()
    named.index.name = "row"
    assert h(named) != base
    # A RangeIndex hashes as the labels it stands for.
    assert h(frame().set_axis(pd.Index(np.arange(5)))) == base
    assert h(frame().iloc[::-1]) != base


def test_dataframe_consolidated_vs_split_blocks() -> None:
    # The same content, stored as one 2-D block or as separate arrays.
    data = np.random.default_rng(2).random((100, 4))
    one_block = pd.DataFrame(data, columns=list("abcd"))
    separate = pd.DataFrame({c: data[:, i].copy() for i, c in enumerate("abcd")})
    assert h(one_block) == h(separate)


def test_dataframe_extension_dtypes() -> None:
    cat = pd.DataFrame({"k": pd.Categorical(["a", "b", "a"])})
    assert h(cat) == h(pd.DataFrame({"k": pd.Categorical(["a", "b", "a"])}))
    assert h(cat) != h(pd.DataFrame({"k": pd.Categorical(["a", "b", "b"])}))
    assert h(cat) != h(pd.DataFrame({"k": pd.Categorical(["a", "b", "a"], ordered=True)}))
    assert h(cat) != h(pd.DataFrame({"k": ["a", "b", "a"]}))
    nullable = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")})
    assert h(nullable) != h(pd.DataFrame({"n": pd.array([1, 2, 3], dtype="Int64")}))
    assert h(nullable) != h(pd.DataFrame({"n": pd.array([1, None, 4], dtype="Int64")}))
    times = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, tz="UTC")})
    assert h(times) != h(pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3)}))
    assert h(times) != h(pd.DataFrame({"t": pd.date_range("2024-01-02", periods=3, tz="UTC")}))
    multi = frame().set_index(["a", "b"])
    assert h(multi) != h(frame().set_index(["b", "a"]))


def test_object_column_with_separator_and_mixed_values() -> None:
    a = pd.DataFrame({"c": pd.Series(["a\x00", "b"], dtype=object)})
    b = pd.DataFrame({"c": pd.Series(["a", "\x00b"], dtype=object)})
    assert h(a) != h(b)
    mixed = pd.DataFrame({"c": pd.Series([1, "1", None, 2.5], dtype=object)})
    assert h(mixed) == h(mixed.copy())
    assert h(mixed) != h(pd.DataFrame({"c": pd.Series(["1", "1", None, 2.5], dtype=object)}))


def test_wide_dataframe_meta_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp_module, "MAX_META_COLUMNS", 3)
    wide = pd.DataFrame(np.zeros((2, 5)), columns=list("abcde"))
    result = fingerprint(wide, "wide")
    assert result is not None
    assert result.meta["columns"] == ["a", "b", "c"]
    assert result.meta["columns_truncated"] is True
    assert result.meta["dtype"] == "float64"
    other = wide.copy()
    other["e"] = 1.0  # beyond the listed columns, still in the hash
    assert h(other) != h(wide)


def test_series() -> None:
    s = pd.Series([1.0, 2.0, 3.0], name="loss")
    result = fingerprint(s, "s")
    assert result is not None and result.kind == "series"
    assert result.meta["shape"] == [3] and result.meta["dtype"] == "float64"
    assert h(s) == h(s.copy())
    assert h(s) != h(s.rename("other"))
    assert h(s) != h(pd.Series([1.0, 2.0, 3.5], name="loss"))
    assert h(s) != h(s.set_axis([1, 2, 3]))
    # A frame is not its column.
    assert h(s) != h(s.to_frame())
    strings = pd.Series(["a", None, "c"])
    assert h(strings) != h(pd.Series(["a", "", "c"]))
    assert h(strings) == h(pd.Series(["a", None, "c"]))


def test_index_object() -> None:
    result = fingerprint(pd.Index(["a", "b"]), "idx")
    assert result is not None and result.kind == "index"
    assert h(pd.Index(["a", "b"])) != h(pd.Index(["a", "c"]))


def test_large_string_column_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp_module, "OBJECT_BLOCK", 7)
    values = [f"v{i}" for i in range(100)]
    a = pd.Series(values)
    changed = values.copy()
    changed[50] = "v5"
    assert h(a) == h(pd.Series(values))
    assert h(a) != h(pd.Series(changed))


def test_pyarrow_strings_if_available() -> None:
    import pyarrow as pa

    values = ["a", None, "ccc", "", "dd"] * 3
    arrow = pd.Series(values, dtype="string[pyarrow]")
    assert h(arrow) == h(pd.Series(values, dtype="string[pyarrow]"))
    changed = values.copy()
    changed[2] = "ccd"
    assert h(arrow) != h(pd.Series(changed, dtype="string[pyarrow]"))
    # Chunking is not content.
    chunked = pa.chunked_array([values[:4], values[4:9], values[9:]], type=pa.large_string())
    whole = pa.chunked_array([values], type=pa.large_string())
    dtype = pd.ArrowDtype(pa.large_string())
    assert h(pd.Series(pd.arrays.ArrowExtensionArray(chunked), dtype=dtype)) == h(
        pd.Series(pd.arrays.ArrowExtensionArray(whole), dtype=dtype)
    )
    # A slice starts at an offset into the Arrow buffers.
    sliced = arrow.iloc[3:].reset_index(drop=True)
    assert h(sliced) == h(pd.Series(values[3:], dtype="string[pyarrow]"))
    ints = pd.Series([1, None, 3], dtype="int64[pyarrow]")
    assert h(
        pd.Series([0, 1, None, 3], dtype="int64[pyarrow]").iloc[1:].reset_index(drop=True)
    ) == h(ints)
    assert h(ints) != h(pd.Series([1, None, 4], dtype="int64[pyarrow]"))
    assert h(ints) != h(pd.Series([1, 2, 3], dtype="int64[pyarrow]"))
    nested = pd.Series([[1, 2], None], dtype=pd.ArrowDtype(pa.list_(pa.int64())))
    assert h(nested) != h(pd.Series([[1, 3], None], dtype=pd.ArrowDtype(pa.list_(pa.int64()))))


# ------------------------------------------------------------------ torch

import torch  # noqa: E402


def test_tensor_basic() -> None:
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    result = fingerprint(t, "t")
    assert result is not None and result.kind == "tensor"
    assert result.meta == {
        "shape": [3, 4],
        "dtype": "float32",
        "device": "cpu",
        "requires_grad": False,
    }
    assert result.size == 48
    assert h(t) == h(t.clone())
    changed = t.clone()
    changed[1, 2] = -1
    assert h(t) != h(changed)
    assert h(t) != h(t.reshape(4, 3))
    assert h(t) != h(t.to(torch.float64))
    assert h(t) != h(t.view(torch.int32))


def test_tensor_non_contiguous_and_grad() -> None:
    t = torch.randn(8, 6)
    assert h(t.T) == h(t.T.contiguous())
    assert h(t.T) != h(t)
    p = torch.nn.Parameter(t.clone())
    result = fingerprint(p, "p")
    assert result is not None and result.meta["requires_grad"] is True
    assert result.hash == h(t)  # grad tracking is meta, not content


def test_tensor_dtypes_numpy_lacks() -> None:
    t = torch.linspace(0, 1, 10)
    assert h(t.to(torch.bfloat16)) != h(t.to(torch.float16))
    bf = t.to(torch.bfloat16)
    bumped = bf.clone()
    bumped[3] = 5
    assert h(bf) != h(bumped)
    assert h(torch.tensor([True, False])) != h(torch.tensor([True, True]))
    c = torch.complex(t, t)
    assert h(c) != h(c.conj())  # the lazy conjugate bit is resolved
    assert h(c.conj()) == h(c.conj().resolve_conj())


def test_tensor_is_not_the_ndarray() -> None:
    a = np.arange(4, dtype=np.float32)
    assert h(a) != h(torch.from_numpy(a))


def test_sparse_tensor() -> None:
    dense = torch.zeros(4, 5)
    dense[1, 2] = 3.0
    sparse = dense.to_sparse()
    result = fingerprint(sparse, "s")
    assert result is not None and result.meta["layout"] == "sparse_coo"
    other = dense.clone()
    other[1, 2] = 4.0
    assert h(sparse) != h(other.to_sparse())


def test_meta_tensor_raises() -> None:
    with pytest.raises(Exception):  # noqa: B017 - torch's own error type varies
        fingerprint(torch.empty(3, device="meta"), "m")


# ------------------------------------------------------------------ files


def test_file_hash_is_content_xxh3(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(payload)
    result = fingerprint_file(path)
    assert result.kind == "file"
    assert result.name == str(path)
    assert result.hash == "xxh3_128:" + xxhash.xxh3_128_hexdigest(payload)
    assert result.size == len(payload)
    assert result.meta["path"] == str(path.resolve())
    assert result.meta["size"] == len(payload)
    assert result.meta["mtime"] == pytest.approx(path.stat().st_mtime)


def test_file_streamed_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp_module, "FILE_CHUNK", 1000)
    payload = os.urandom(12_345)
    path = tmp_path / "f"
    path.write_bytes(payload)
    assert fingerprint_file(path).hash == "xxh3_128:" + xxhash.xxh3_128_hexdigest(payload)


def test_relative_path_and_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    monkeypatch.chdir(tmp_path)
    result = fingerprint_file("a.csv", name="train data")
    assert result.name == "train data"
    assert result.meta["path"] == str(tmp_path / "a.csv")


def test_file_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_file_cache()
    calls: list[str] = []
    real = fp_module._hash_stream

    def counting(path: str) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(fp_module, "_hash_stream", counting)
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    old = time.time() - 3600
    os.utime(path, (old, old))
    first = fingerprint_file(path)
    second = fingerprint_file(path)
    assert first.hash == second.hash
    assert len(calls) == 1  # unchanged: not read again
    path.write_text("a,b\n1,3\n")  # same size, new content
    os.utime(path, (old + 10, old + 10))
    third = fingerprint_file(path)
    assert len(calls) == 2
    assert third.hash != first.hash
    clear_file_cache()
    fingerprint_file(path)
    assert len(calls) == 3


def test_recently_modified_file_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_file_cache()
    calls: list[str] = []
    real = fp_module._hash_stream

    def counting(path: str) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(fp_module, "_hash_stream", counting)
    path = tmp_path / "fresh.txt"
    path.write_text("just written")
    fingerprint_file(path)
    fingerprint_file(path)
    assert len(calls) == 2  # a write within the same timestamp tick could hide


def test_file_modified_in_place_same_mtime(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("one")
    old = time.time() - 3600
    os.utime(path, (old, old))
    first = fingerprint_file(path)
    path.write_text("two")  # same size; then restore the mtime as rsync -t would
    os.utime(path, (old, old))
    assert fingerprint_file(path).hash != first.hash  # ctime changed, so it was re-read


def test_missing_and_special_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fingerprint_file(tmp_path / "nope")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        with pytest.raises(ValueError, match="neither a regular file"):
            fingerprint_file(fifo)


def make_tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")


def test_directory(tmp_path: Path) -> None:
    make_tree(tmp_path / "d1")
    make_tree(tmp_path / "d2")
    r1 = fingerprint_file(tmp_path / "d1")
    assert r1.kind == "dir"
    assert r1.meta["files"] == 2
    assert r1.meta["size"] == len("alpha") + len("beta")
    assert r1.meta["path"] == str(tmp_path / "d1")
    assert r1.hash == fingerprint_file(tmp_path / "d2").hash  # location is not content
    (tmp_path / "d2" / "sub" / "b.txt").write_text("betA")
    assert fingerprint_file(tmp_path / "d2").hash != r1.hash
    (tmp_path / "d2" / "sub" / "b.txt").write_text("beta")
    assert fingerprint_file(tmp_path / "d2").hash == r1.hash
    (tmp_path / "d2" / "sub" / "b.txt").rename(tmp_path / "d2" / "sub" / "c.txt")
    assert fingerprint_file(tmp_path / "d2").hash != r1.hash  # names are content


def test_directory_skips_debris(tmp_path: Path) -> None:
    make_tree(tmp_path / "d")
    before = fingerprint_file(tmp_path / "d").hash
    (tmp_path / "d" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "d" / ".ipynb_checkpoints" / "x.txt").write_text("noise")
    (tmp_path / "d" / "__pycache__").mkdir()
    (tmp_path / "d" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    assert fingerprint_file(tmp_path / "d").hash == before


def test_directory_file_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_DIR_FILES == 10_000
    monkeypatch.setattr(fp_module, "MAX_DIR_FILES", 3)
    for i in range(4):
        (tmp_path / f"f{i}").write_text(str(i))
    with pytest.raises(ValueError, match="more than 3 files"):
        fingerprint_file(tmp_path)


def test_import_is_cheap() -> None:
    code = (
        "import sys, nbtrack.capture.fingerprint, nbtrack.capture.inputs, "
        "nbtrack.capture.models; "
        "print(sorted(m for m in ('torch', 'pandas', 'numpy', 'IPython') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"


def test_other_extension_arrays() -> None:
    sparse = pd.Series(pd.arrays.SparseArray([0.0, 0.0, 1.5, 0.0]))
    assert h(sparse) == h(pd.Series(pd.arrays.SparseArray([0.0, 0.0, 1.5, 0.0])))
    assert h(sparse) != h(pd.Series(pd.arrays.SparseArray([0.0, 1.5, 0.0, 0.0])))
    assert h(sparse) != h(pd.Series([0.0, 0.0, 1.5, 0.0]))  # the dtype differs
    intervals = pd.Series(pd.interval_range(0, 3))
    assert h(intervals) != h(pd.Series(pd.interval_range(0, 3, closed="left")))
    periods = pd.Series(pd.period_range("2024-01", periods=3, freq="M"))
    assert h(periods) != h(pd.Series(pd.period_range("2024-02", periods=3, freq="M")))


@pytest.mark.parametrize(
    "dtype",
    [
        pd.StringDtype("python"),
        pd.StringDtype("python", na_value=np.nan),
        object,
    ],
)
def test_python_string_columns(dtype: object) -> None:
    values = ["alpha", None, "", "beta", "x\x00y"]
    s = pd.Series(values, dtype=dtype)
    assert h(s) == h(pd.Series(values, dtype=dtype))
    assert h(s) != h(pd.Series(["alpha", "", "", "beta", "x\x00y"], dtype=dtype))
    assert h(s) != h(pd.Series(["alpha", None, "", "beta", "x\x00z"], dtype=dtype))
    assert h(s) != h(pd.Series(["alph", None, "a", "beta", "x\x00y"], dtype=dtype))
