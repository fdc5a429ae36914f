"""IDX files (the MNIST format): a strict reader, a writer, atomic writes.

An IDX file is a 4-byte magic number, then one big-endian uint32 per
dimension, then the array in row-major order, big-endian::

    0x00 0x00 TYPE NDIM | dim_0 ... dim_{NDIM-1} | data

TYPE 0x08 is uint8 (MNIST images use magic 0x00000803: uint8, 3 dims; labels
0x00000801: uint8, 1 dim). A file may be gzip-compressed; that is recognised
by the gzip magic bytes ``1f 8b``, not by the file name.

The reader never returns a silently short array: a bad magic number, wrong
dimensions, a truncated file, trailing bytes or a damaged gzip stream (bad
CRC, cut short) raise ``ValueError`` naming the file and what was wrong.
"""
import gzip
import zlib
from pathlib import Path

import numpy as np

from minicnn.utils.files import write_bytes_atomic

GZIP_MAGIC = b"\x1f\x8b"

# IDX type byte -> dtype as stored (big-endian).
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}


def _describe(type_code, ndim):
    dt = IDX_DTYPES.get(type_code)
    kind = dt.newbyteorder("=").name if dt is not None else f"unknown type 0x{type_code:02x}"
    return f"{kind}, {ndim} dim{'s' if ndim != 1 else ''}"


def _type_code(dtype):
    native = dtype.newbyteorder("=")
    if native not in _TYPE_CODES:
        allowed = ", ".join(dt.newbyteorder("=").name for dt in IDX_DTYPES.values())
        raise ValueError(f"IDX cannot store dtype {dtype}; expected one of {allowed}")
    return _TYPE_CODES[native]


def gunzip(raw, name="<bytes>"):
    """Decompress gzip bytes strictly: CRC and length checked, nothing ignored.

    Several concatenated gzip members are allowed (that is valid gzip); any
    other bytes after the last member, a stream cut short or a failed check
    raise ``ValueError`` mentioning ``name``.
    """
    parts = []
    while True:
        decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            parts.append(decomp.decompress(raw))
        except zlib.error as e:
            raise ValueError(f"{name}: corrupted gzip data ({e})") from None
        if not decomp.eof:
            raise ValueError(f"{name}: gzip stream is truncated (ends before its CRC/length trailer)")
        raw = decomp.unused_data
        if not raw:
            return b"".join(parts)
        if raw[:2] != GZIP_MAGIC:
            raise ValueError(f"{name}: {len(raw)} trailing bytes after the gzip stream")


def parse_idx(data, name="<bytes>", *, dtype=None, shape=None):
    """Decode the bytes of an uncompressed IDX file into a native-endian array.

    Parameters
    ----------
    data : bytes
    name : str
        Used in error messages (normally the file path).
    dtype : dtype-like, optional
        Required element type (e.g. ``np.uint8``); checked against the type byte.
    shape : tuple of (int or None), optional
        Required shape; ``None`` entries accept any size. Its length fixes the
        number of dimensions.

    Returns
    -------
    numpy.ndarray, writeable, native byte order, shape as stored in the file.
    """
    if len(data) < 4:
        raise ValueError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    zero, type_code, ndim = data[:2], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero != b"\x00\x00" or type_code not in IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{name}: not an IDX file: magic 0x{magic:08x} should be 0x0000TTNN with a known "
            f"type TT (one of {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}) and NN >= 1 dims"
        )
    if dtype is not None or shape is not None:
        want_code = type_code if dtype is None else _type_code(np.dtype(dtype))
        want_ndim = len(shape) if shape is not None else ndim
        if (want_code, want_ndim) != (type_code, ndim):
            want = (want_code << 8) | want_ndim
            raise ValueError(
                f"{name}: expected IDX magic 0x{want:08x} ({_describe(want_code, want_ndim)}), "
                f"got 0x{magic:08x} ({_describe(type_code, ndim)})"
            )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated header: {ndim} dims need {header} bytes, file has {len(data)}")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if shape is not None and any(s is not None and s != d for s, d in zip(shape, dims)):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {dims}")
    stored = IDX_DTYPES[type_code]
    need = int(np.prod(dims, dtype=object)) * stored.itemsize
    have = len(data) - header
    if have < need:
        raise ValueError(f"{name}: truncated: shape {dims} needs {need} data bytes, file has {have}")
    if have > need:
        raise ValueError(f"{name}: {have - need} trailing bytes after the {need} data bytes of shape {dims}")
    array = np.frombuffer(data, dtype=stored, count=need // stored.itemsize, offset=header)
    return array.reshape(dims).astype(stored.newbyteorder("="))  # copy: writeable, native order


def read_idx(path, *, dtype=None, shape=None):
    """Read an IDX file, raw or gzip-compressed (detected by its magic bytes).

    See ``parse_idx`` for ``dtype`` and ``shape``; every error names ``path``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read IDX file ({e.strerror or e})") from None
    if raw[:2] == GZIP_MAGIC:
        raw = gunzip(raw, str(path))
    return parse_idx(raw, str(path), dtype=dtype, shape=shape)


def idx_bytes(array):
    """The uncompressed IDX encoding of ``array`` (dtype one of ``IDX_DTYPES``)."""
    array = np.asarray(array)
    code = _type_code(array.dtype)
    if not 1 <= array.ndim <= 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX needs 1 to 255 dims, each below 2**32; got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path, array, *, compress=None, compresslevel=6):
    """Write ``array`` as an IDX file, atomically.

    ``compress=None`` gzips when the name ends in ``.gz``. The gzip header
    carries no time stamp, so the same array always gives the same file.
    """
    path = Path(path)
    data = idx_bytes(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, compresslevel=compresslevel, mtime=0)
    write_bytes_atomic(path, data)
    return path
