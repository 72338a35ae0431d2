"""Content fingerprints of data: a fast xxh3-128 hash plus what describes its shape.

:func:`fingerprint` handles NumPy arrays, pandas DataFrames/Series/Indexes and torch
tensors; :func:`fingerprint_file` handles files and directories. Hashes are
``"xxh3_128:<32 hex>"``. Only the bytes that make up the content are hashed, so a hash
does not depend on memory layout (a transposed copy, a chunked Arrow column, a tensor on
another device), but it does depend on dtype, shape, labels and names.

NumPy, pandas and torch are never imported here: an object can only be one of their types
if the user's code already imported the library, so ``sys.modules`` is consulted instead.
That keeps ``import nbtrack`` cheap and torch an optional dependency.
"""

from __future__ import annotations

import functools
import os
import stat
import struct
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import xxhash

from nbtrack.model import Fingerprint

__all__ = ["HASH_PREFIX", "MAX_DIR_FILES", "clear_file_cache", "fingerprint", "fingerprint_file"]

#: Prefix of every hash this module makes.
HASH_PREFIX = "xxh3_128:"
#: Files are read in chunks of this many bytes.
FILE_CHUNK = 8 << 20
#: A directory with more files than this is refused (ValueError) rather than hashed.
MAX_DIR_FILES = 10_000
#: Non-contiguous arrays are copied to C order at most this many bytes at a time, so
#: hashing a strided view of a huge array never doubles memory.
COPY_CHUNK = 64 << 20
#: Device tensors are brought to the host this many bytes at a time, for the same reason.
DEVICE_CHUNK = 256 << 20
#: Object (string) values are encoded this many at a time: it bounds the temporary text,
#: and blocks of a few hundred KiB stay in cache (1M-item blocks measured ~1.7x slower).
OBJECT_BLOCK = 1 << 16
#: DataFrames wider than this list only the first columns in ``meta`` (the hash covers all).
MAX_META_COLUMNS = 1_000
#: Directory entries never part of a data set: VCS and editor/kernel debris.
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints"})
#: A file modified less than this long before it was hashed is not cached: a write in the
#: same timestamp tick as our read could otherwise go unnoticed (git's "racy" problem).
RACY_WINDOW_NS = 2_000_000_000
#: Entries kept in the per-process file hash cache.
FILE_CACHE_SIZE = 16_384

_U64 = struct.Struct("<Q")
# Separates strings in the fast text encoding; any string containing it switches that block
# to an explicit length-prefixed encoding, so the encoding stays unambiguous.
_SEP = "\x00"


class _Digest:
    """A running xxh3-128 hasher that frames metadata and counts the data bytes it hashed."""

    __slots__ = ("_h", "size")

    def __init__(self) -> None:
        self._h = xxhash.xxh3_128()
        self.size = 0

    def text(self, value: str) -> None:
        # Length-prefixed so that header fields can never run into each other or the data.
        raw = value.encode("utf-8", "surrogatepass")
        self._h.update(_U64.pack(len(raw)))
        self._h.update(raw)

    def length(self, n: int) -> None:
        self._h.update(_U64.pack(n))

    def data(self, buf: Any, nbytes: int) -> None:
        """Hash a 1-D byte buffer (bytes, memoryview, uint8 ndarray) without copying it."""
        self._h.update(buf)
        self.size += nbytes

    def segment(self, buf: Any, nbytes: int) -> None:
        self.length(nbytes)
        self.data(buf, nbytes)

    def hexdigest(self) -> str:
        return HASH_PREFIX + self._h.hexdigest()


# --------------------------------------------------------------------------- in-memory data


def fingerprint(obj: object, name: str) -> Fingerprint | None:
    """Fingerprint a NumPy array, pandas DataFrame/Series/Index or torch tensor.

    Returns ``None`` for any other type. Raises whatever the object raises when its data is
    read (a broken buffer, a tensor on the ``meta`` device, ...); callers that must not fail
    catch and report it, as :func:`nbtrack.capture.inputs.cell_inputs` does.
    """
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return _fingerprint_ndarray(obj, name)
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(obj, pd.DataFrame):
            return _fingerprint_dataframe(obj, name)
        if isinstance(obj, pd.Series):
            return _fingerprint_series(obj, name)
        if isinstance(obj, pd.Index):
            return _fingerprint_index(obj, name)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        return _fingerprint_tensor(obj, name)
    return None


def _numpy() -> Any:
    # numpy is a hard dependency and is certainly loaded when we get here with pandas or an
    # array; importing lazily keeps it out of `import nbtrack`.
    import numpy

    return numpy


def _fingerprint_ndarray(arr: Any, name: str) -> Fingerprint:
    d = _Digest()
    d.text("ndarray")
    _update_ndarray(d, arr)
    ma = sys.modules.get("numpy.ma")  # loaded whenever a masked array exists
    if ma is not None and isinstance(arr, ma.MaskedArray):
        # The data under a mask is meaningless, but which elements are masked is content.
        d.text("mask")
        _update_ndarray(d, ma.getmaskarray(arr))
    meta = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    return Fingerprint(name=name, kind="ndarray", hash=d.hexdigest(), size=d.size, meta=meta)


def _dtype_key(dtype: Any) -> str:
    # dtype.str is exact ("<f4", "<M8[ns]", "<U5") except for structured dtypes, whose
    # field layout only `descr` spells out.
    return str(dtype.descr) if dtype.fields else str(dtype.str)


def _update_ndarray(d: _Digest, arr: Any) -> None:
    np = _numpy()
    if type(arr) is not np.ndarray:
        # Subclasses (masked arrays, matrices, memmaps) override view/reshape; their data
        # is the base array's.
        arr = arr.view(np.ndarray)
    d.text(_dtype_key(arr.dtype))
    d.text(repr(tuple(int(n) for n in arr.shape)))
    if arr.dtype.hasobject:
        # Object arrays hold pointers; their content is the objects, encoded as text.
        _update_objects(d, arr.ravel(), None)
        return
    d.length(int(arr.nbytes))
    for chunk in _c_order_chunks(arr):
        # reshape(-1) and view() of a C-contiguous array are views: no copy is made.
        flat = chunk.reshape(-1).view(np.uint8)
        d.data(flat, int(flat.nbytes))


def _c_order_chunks(arr: Any) -> Iterator[Any]:
    """The array's C-order bytes as C-contiguous pieces; a copy only if it isn't contiguous."""
    if arr.flags.c_contiguous:
        yield arr
        return
    np = _numpy()
    if arr.ndim == 0 or arr.nbytes <= COPY_CHUNK:
        yield np.ascontiguousarray(arr)
        return
    rows = arr.shape[0]
    row_bytes = arr.nbytes // rows
    if row_bytes > COPY_CHUNK:
        for i in range(rows):
            yield from _c_order_chunks(arr[i])
        return
    step = max(1, COPY_CHUNK // row_bytes)
    for start in range(0, rows, step):
        yield np.ascontiguousarray(arr[start : start + step])


def _update_objects(d: _Digest, flat: Any, missing: Any) -> None:
    """Hash a 1-D object array's elements; ``missing`` (bool array) marks elements to skip."""
    np = _numpy()
    d.text(f"objects:{len(flat)}")
    if missing is not None and bool(missing.any()):
        positions = np.flatnonzero(missing).astype(np.int64)
        d.text("missing")
        d.segment(positions, int(positions.nbytes))
        flat = flat[~missing]
    for start in range(0, len(flat), OBJECT_BLOCK):
        _update_object_block(d, flat[start : start + OBJECT_BLOCK].tolist())


def _update_object_items(d: _Digest, items: list[Any]) -> None:
    """Hash a list of Python objects exactly as an object array of them would be."""
    d.text(f"objects:{len(items)}")
    for start in range(0, len(items), OBJECT_BLOCK):
        _update_object_block(d, items[start : start + OBJECT_BLOCK])


def _update_object_block(d: _Digest, items: list[Any]) -> None:
    try:
        # Joining doubles as the type check: it raises TypeError on any non-string.
        joined = _SEP.join(items)
    except TypeError:
        _update_mixed_block(d, items)
        return
    np = _numpy()
    encoded = joined.encode("utf-8", "surrogatepass")
    # NUL bytes in UTF-8 are exactly NUL characters; NumPy counts them ~10x faster than
    # str.count.
    separators = int(np.count_nonzero(np.frombuffer(encoded, dtype=np.uint8) == 0))
    if separators == max(len(items) - 1, 0):
        # No string contains the separator, so splitting on it recovers the items exactly.
        d.text("s")
    else:
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
        d.text("l")
        d.segment(lengths, int(lengths.nbytes))
    d.segment(encoded, len(encoded))


def _update_mixed_block(d: _Digest, items: list[Any]) -> None:
    # Non-strings become tagged text; their positions are hashed too, so the string "1" and
    # the int 1 can't collide. Slower (a Python loop) but only for genuinely mixed columns.
    np = _numpy()
    positions: list[int] = []
    texts: list[str] = []
    for i, item in enumerate(items):
        if type(item) is str:
            texts.append(item)
        else:
            positions.append(i)
            texts.append(_object_text(item))
    pos = np.asarray(positions, dtype=np.int64)
    d.text("m")
    d.segment(pos, int(pos.nbytes))
    _update_object_block(d, texts)


def _object_text(item: Any) -> str:
    kind = type(item)
    label = f"{kind.__module__}.{kind.__qualname__}"
    # Arrays and tensors inside cells: repr() elides their middle, so use their own hash.
    inner = fingerprint(item, "") if not isinstance(item, int | float | bytes) else None
    if inner is not None:
        return f"{label}#{inner.hash}"
    return f"{label}:{item!r}"


def _fingerprint_dataframe(df: Any, name: str) -> Fingerprint:
    d = _Digest()
    d.text("dataframe")
    rows, ncols = (int(n) for n in df.shape)
    d.text(f"{rows}x{ncols}")
    d.text("columns")
    _update_index(d, df.columns)
    d.text("index")
    _update_index(d, df.index)
    dtypes = list(df.dtypes)
    for i in range(ncols):
        # iloc by position: works with duplicate labels and returns a view of the column.
        column = df.iloc[:, i]
        d.text(str(dtypes[i]))
        _update_pandas_values(d, column.array)
    labels = [str(c) for c in df.columns[:MAX_META_COLUMNS]]
    distinct = {str(t) for t in dtypes}
    meta: dict[str, Any] = {
        "shape": [rows, ncols],
        "dtype": distinct.pop() if len(distinct) == 1 else "mixed",
        "rows": rows,
        "columns": labels,
        "schema": {label: str(t) for label, t in zip(labels, dtypes, strict=False)},
        "index": type(df.index).__name__,
    }
    if ncols > MAX_META_COLUMNS:
        meta["columns_truncated"] = True
    return Fingerprint(name=name, kind="dataframe", hash=d.hexdigest(), size=d.size, meta=meta)


def _fingerprint_series(series: Any, name: str) -> Fingerprint:
    d = _Digest()
    d.text("series")
    d.text(repr(series.name))
    d.text(str(series.dtype))
    d.text("index")
    _update_index(d, series.index)
    _update_pandas_values(d, series.array)
    meta = {
        "shape": [len(series)],
        "dtype": str(series.dtype),
        "rows": len(series),
        "series_name": None if series.name is None else str(series.name),
    }
    return Fingerprint(name=name, kind="series", hash=d.hexdigest(), size=d.size, meta=meta)


def _fingerprint_index(index: Any, name: str) -> Fingerprint:
    d = _Digest()
    d.text("index")
    _update_index(d, index)
    meta = {"shape": [len(index)], "dtype": str(index.dtype), "index": type(index).__name__}
    return Fingerprint(name=name, kind="index", hash=d.hexdigest(), size=d.size, meta=meta)


def _update_index(d: _Digest, index: Any) -> None:
    pd = sys.modules["pandas"]
    d.text(repr(list(index.names)))
    if isinstance(index, pd.MultiIndex):
        d.text(f"multi:{index.nlevels}")
        for level, codes in zip(index.levels, index.codes, strict=True):
            _update_index(d, level)
            _update_ndarray(d, _numpy().asarray(codes))
        return
    d.text(str(index.dtype))
    # Labels go through a sub-digest so that a RangeIndex's can be memoised and still equal
    # the same labels materialised as an int64 Index (after a filter and concat, say).
    if isinstance(index, pd.RangeIndex):
        digest, nbytes = _range_digest(index.start, index.stop, index.step)
    else:
        sub = _Digest()
        _update_pandas_values(sub, index.array)
        digest, nbytes = sub.hexdigest(), sub.size
    d.text(digest)
    d.size += nbytes


@functools.lru_cache(maxsize=64)
def _range_digest(start: int, stop: int, step: int) -> tuple[str, int]:
    """The labels digest of ``RangeIndex(start, stop, step)``: that of its int64 array."""
    np = _numpy()
    n = len(range(start, stop, step))
    d = _Digest()
    d.text(_dtype_key(np.dtype(np.int64)))
    d.text(repr((n,)))
    d.length(n * 8)
    # Generate the labels a block at a time into one reused buffer: a fresh 80 MB arange
    # for 10M rows costs more in page faults than hashing it.
    block = max(1, min(n, 1 << 20))
    base = np.arange(block, dtype=np.int64) * step
    buf = np.empty(block, dtype=np.int64)
    for first in range(0, n, block):
        count = min(block, n - first)
        np.add(base[:count], start + first * step, out=buf[:count])
        d.data(buf[:count].view(np.uint8), count * 8)
    return d.hexdigest(), d.size


def _update_pandas_values(d: _Digest, values: Any) -> None:
    """Hash a column's values: a NumPy array or one of pandas' extension arrays."""
    np = _numpy()
    pd = sys.modules["pandas"]
    if isinstance(values, np.ndarray):
        _update_ndarray(d, values)
        return
    plain = getattr(pd.arrays, "NumpyExtensionArray", None) or pd.arrays.PandasArray
    if isinstance(values, plain):
        # A plain NumPy column: hash exactly as its array, so Index(int64) == RangeIndex.
        _update_ndarray(d, values.to_numpy(copy=False))
        return
    d.text(f"ext:{values.dtype}")
    if isinstance(values, pd.Categorical):
        # Codes plus categories: far smaller than the values and exactly as informative.
        d.text(f"ordered:{bool(values.ordered)}")
        _update_index(d, values.categories)
        _update_ndarray(d, values.codes)
        return
    backing = getattr(values, "_ndarray", None)
    if isinstance(backing, np.ndarray):
        # NumPy-backed extension arrays (plain columns, datetimes with a timezone, periods,
        # python-storage strings) hand over their array without a copy. `_ndarray` is
        # private but stable since pandas 1.x; everything else falls through to a slower path.
        if backing.dtype.hasobject and isinstance(values.dtype, pd.StringDtype):
            # Missing strings are NaN or pd.NA here; hash where they are, then the strings.
            d.text(repr(tuple(backing.shape)))
            _update_objects(d, backing.ravel(), np.asarray(values.isna()))
        else:
            _update_ndarray(d, backing)
        return
    data = getattr(values, "_data", None)
    mask = getattr(values, "_mask", None)
    if isinstance(data, np.ndarray) and isinstance(mask, np.ndarray):
        # Nullable Int64/Float64/boolean: values under the mask are arbitrary, so zero them.
        if mask.any():
            data = data.copy()
            data[mask] = 0
        _update_ndarray(d, data)
        _update_ndarray(d, mask)
        return
    if hasattr(values, "__arrow_array__") and "pyarrow" in sys.modules:
        _update_arrow(d, values.__arrow_array__())
        return
    # Sparse, interval and third-party arrays: their NumPy form (dense numbers or objects).
    _update_ndarray(d, np.asarray(values))


def _update_arrow(d: _Digest, chunked: Any) -> None:
    """Hash a pyarrow ChunkedArray from its buffers; independent of how it is chunked."""
    pa = sys.modules["pyarrow"]
    np = _numpy()
    typ = chunked.type
    d.text(f"arrow:{typ}:{len(chunked)}")
    types = pa.types
    is_text = types.is_string(typ) or types.is_binary(typ)
    is_large_text = types.is_large_string(typ) or types.is_large_binary(typ)
    width = getattr(typ, "bit_width", 0) if types.is_primitive(typ) else 0
    if not (is_text or is_large_text or (width and width % 8 == 0)):
        # Nested, dictionary, boolean, decimal...: rare in data frames; go through Python.
        _update_object_items(d, chunked.to_pylist())
        return
    # One sub-hasher per stream, so that chunk boundaries never show in the result.
    streams = {"nulls": _Digest(), "ends": _Digest(), "values": _Digest()}
    start = consumed = 0
    for chunk in chunked.chunks:
        n = len(chunk)
        if chunk.null_count:
            nulls = np.flatnonzero(np.asarray(chunk.is_null().to_numpy(zero_copy_only=False)))
            positions = nulls.astype(np.int64) + start
            streams["nulls"].data(positions, int(positions.nbytes))
            if is_text or is_large_text:
                # Null slots may span arbitrary bytes in the data buffer; make them empty.
                chunk = chunk.fill_null(
                    b"" if types.is_binary(typ) or types.is_large_binary(typ) else ""
                )
        buffers = chunk.buffers()
        if is_text or is_large_text:
            if n:
                offset_type = np.int64 if is_large_text else np.int32
                offsets = np.frombuffer(buffers[1], dtype=offset_type)[
                    chunk.offset : chunk.offset + n + 1
                ]
                first, last = int(offsets[0]), int(offsets[-1])
                # The strings' end offsets as if all chunks were one array: the buffer itself
                # (no copy) in the common case of one large_string chunk starting at zero.
                ends = offsets[1:]
                if offset_type is not np.int64 or first != consumed:
                    ends = ends.astype(np.int64) + (consumed - first)
                streams["ends"].data(ends, int(ends.nbytes))
                if last > first and buffers[2] is not None:
                    streams["values"].data(memoryview(buffers[2])[first:last], last - first)
                consumed += last - first
        elif n:
            item = width // 8
            raw = np.frombuffer(buffers[1], dtype=np.uint8)[
                chunk.offset * item : (chunk.offset + n) * item
            ]
            if chunk.null_count:
                # Slots under a null are arbitrary bytes; zero them in a copy.
                valid = np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False))
                raw = (raw.reshape(n, item) * valid[:, None].astype(np.uint8)).reshape(-1)
            streams["values"].data(raw, int(raw.nbytes))
        start += n
    for label, stream in streams.items():
        d.text(f"{label}:{stream.hexdigest()}")
        d.size += stream.size


def _fingerprint_tensor(tensor: Any, name: str) -> Fingerprint:
    torch = sys.modules["torch"]
    dtype = str(tensor.dtype).removeprefix("torch.")
    meta: dict[str, Any] = {
        "shape": [int(n) for n in tensor.shape],
        "dtype": dtype,
        "device": str(tensor.device),
        "requires_grad": bool(tensor.requires_grad),
    }
    d = _Digest()
    d.text("tensor")
    d.text(dtype)
    d.text(repr(tuple(meta["shape"])))
    t = tensor.detach()
    if t.layout == torch.sparse_coo:
        meta["layout"] = "sparse_coo"
        t = t.coalesce()
        d.text("sparse_coo")
        _update_dense_tensor(d, t.indices())
        _update_dense_tensor(d, t.values())
    else:
        if t.layout != torch.strided:
            meta["layout"] = str(t.layout).removeprefix("torch.")
            t = t.to_dense()
        if t.is_quantized:
            # The integers alone don't say what they mean; the quantisation parameters do.
            d.text(str(t.qscheme()))
            if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                d.text(f"{t.q_scale()!r}:{t.q_zero_point()}")
            else:
                _update_dense_tensor(d, t.q_per_channel_scales())
                _update_dense_tensor(d, t.q_per_channel_zero_points())
            t = t.int_repr()
        _update_dense_tensor(d, t)
    return Fingerprint(name=name, kind="tensor", hash=d.hexdigest(), size=d.size, meta=meta)


def _update_dense_tensor(d: _Digest, t: Any) -> None:
    torch = sys.modules["torch"]
    # Conjugate/negative bits are lazy flags; materialise them so the bytes mean the values.
    t = t.resolve_conj().resolve_neg().contiguous()
    # A byte view works for every dtype (bfloat16, float8, bool, complex), which NumPy can't
    # all represent; for a contiguous CPU tensor nothing here copies.
    raw = t.reshape(-1).view(torch.uint8)
    d.text(f"bytes:{raw.numel()}")
    if raw.device.type == "cpu":
        arr = raw.numpy()
        d.data(arr, int(arr.nbytes))
        return
    total = raw.numel()
    for start in range(0, total, DEVICE_CHUNK):
        arr = raw[start : start + DEVICE_CHUNK].cpu().numpy()
        d.data(arr, int(arr.nbytes))


# --------------------------------------------------------------------------- files

_file_cache: OrderedDict[tuple[str, int, int, int, int, int], str] = OrderedDict()
_file_cache_lock = threading.Lock()


def clear_file_cache() -> None:
    """Forget every cached file hash (the next fingerprint of each file reads it again)."""
    with _file_cache_lock:
        _file_cache.clear()


def fingerprint_file(path: str | os.PathLike[str], name: str | None = None) -> Fingerprint:
    """Fingerprint a file (kind ``"file"``) or a directory (kind ``"dir"``) by content.

    A file's hash is the xxh3-128 of its bytes (the same digest the store uses as a content
    address). A directory's hash covers the sorted relative paths of its files and each
    file's hash; ``.git``, ``__pycache__`` and ``.ipynb_checkpoints`` are skipped, symlinked
    directories are not followed. Unchanged files (same size, mtime, ctime, inode) are not
    read again within a process. Raises ``FileNotFoundError`` for a missing path,
    ``ValueError`` for a directory of more than :data:`MAX_DIR_FILES` files or a path that is
    neither a regular file nor a directory (a FIFO would block forever).
    """
    label = os.fspath(path) if name is None else name
    full = os.path.abspath(os.fspath(path))
    st = os.stat(full)
    if stat.S_ISDIR(st.st_mode):
        return _fingerprint_dir(full, label, st)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{full} is neither a regular file nor a directory")
    digest = _file_digest(full, st)
    meta = {"path": full, "size": st.st_size, "mtime": st.st_mtime}
    return Fingerprint(
        name=label, kind="file", hash=HASH_PREFIX + digest, size=st.st_size, meta=meta
    )


def _file_digest(full: str, st: os.stat_result) -> str:
    key = (full, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    with _file_cache_lock:
        cached = _file_cache.get(key)
        if cached is not None:
            _file_cache.move_to_end(key)
            return cached
    digest = _hash_stream(full)
    after = os.stat(full)
    unchanged = (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino) == key[1:5]
    if unchanged and time.time_ns() - st.st_mtime_ns > RACY_WINDOW_NS:
        with _file_cache_lock:
            _file_cache[key] = digest
            while len(_file_cache) > FILE_CACHE_SIZE:
                _file_cache.popitem(last=False)
    return digest


def _hash_stream(full: str) -> str:
    """The xxh3-128 hex digest of a file's bytes, read in :data:`FILE_CHUNK` pieces."""
    h = xxhash.xxh3_128()
    buf = bytearray(FILE_CHUNK)
    view = memoryview(buf)
    with open(full, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(view)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


def _raise(exc: OSError) -> None:
    # An unreadable subfolder must fail loudly, not silently drop out of the hash.
    raise exc


def _fingerprint_dir(root: str, label: str, st: os.stat_result) -> Fingerprint:
    files: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        dirnames[:] = sorted(n for n in dirnames if n not in SKIP_DIRS)
        for filename in filenames:
            full = os.path.join(dirpath, filename)
            if not os.path.isfile(full):
                continue  # sockets, FIFOs, broken links
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            files.append((rel, full))
            if len(files) > MAX_DIR_FILES:
                raise ValueError(
                    f"{root} holds more than {MAX_DIR_FILES} files; fingerprint "
                    "a narrower folder or the files the code reads"
                )
    files.sort()
    d = _Digest()
    d.text(f"dir:{len(files)}")
    total = 0
    latest = st.st_mtime
    for rel, full in files:
        fst = os.stat(full)
        d.text(rel)
        d.text(_file_digest(full, fst))
        total += fst.st_size
        latest = max(latest, fst.st_mtime)
    meta = {"path": root, "files": len(files), "size": total, "mtime": latest}
    return Fingerprint(name=label, kind="dir", hash=d.hexdigest(), size=total, meta=meta)
