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
import io
import zlib
from pathlib import Path

import numpy as np

from minicnn.utils.files import check_regular_file, write_bytes_atomic

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


CHUNK = 1 << 20                 # bytes decoded at a time
MAX_BYTES = 2 << 30             # 2 GiB: read_idx refuses headers that declare more data than this


def decoded_chunks(f, name="<bytes>", chunk=CHUNK):
    """Yield the content of the binary file object ``f`` in pieces of at most ``chunk`` bytes.

    Gzip data (recognised by its magic bytes) is inflated strictly, one piece
    at a time, so the caller can stop as soon as it has seen enough: several
    concatenated members are allowed; other bytes after the last member, a
    stream cut short or a failed CRC/length check raise ``ValueError``
    mentioning ``name``.
    """
    data = f.read(chunk)
    if data[:2] != GZIP_MAGIC:
        while data:
            yield data
            data = f.read(chunk)
        return
    while True:                                          # one gzip member per pass
        decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while not decomp.eof:
            if not data:
                data = f.read(chunk)
                if not data:
                    raise ValueError(f"{name}: gzip stream is truncated (ends before its CRC/length trailer)")
            try:
                out = decomp.decompress(data, chunk)
            except zlib.error as e:
                raise ValueError(f"{name}: corrupted gzip data ({e})") from None
            data = decomp.unconsumed_tail
            if out:
                yield out
        data = decomp.unused_data + (b"" if decomp.unused_data[:2] == GZIP_MAGIC else f.read(chunk))
        if not data:
            return
        if data[:2] != GZIP_MAGIC:
            rest = len(data) + sum(len(b) for b in iter(lambda: f.read(chunk), b""))
            raise ValueError(f"{name}: {rest} trailing bytes after the gzip stream")


def gunzip(raw, name="<bytes>", max_bytes=MAX_BYTES):
    """Decompress gzip bytes strictly: CRC and length checked, nothing ignored.

    Several concatenated gzip members are allowed (that is valid gzip); any
    other bytes after the last member, a stream cut short, a failed check or
    more than ``max_bytes`` of output raise ``ValueError`` mentioning ``name``.
    """
    parts, size = [], 0
    for part in decoded_chunks(io.BytesIO(raw), name):
        size += len(part)
        if size > max_bytes:
            raise ValueError(f"{name}: inflates to more than {max_bytes} bytes; refusing to decompress further")
        parts.append(part)
    return b"".join(parts)


def _header(data, name, dtype, shape):
    """Check the magic number and dims at the start of ``data``; return (stored dtype, dims, header length).

    Returns None when ``data`` is too short to hold the whole header.
    """
    if len(data) < 4:
        return None
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
        return None
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if shape is not None and any(s is not None and s != d for s, d in zip(shape, dims)):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {dims}")
    return IDX_DTYPES[type_code], dims, header


def _decode(data, name, stored, dims, header, have, complete):
    """The array after the header; ``have`` data bytes were seen (all of them when ``complete``)."""
    need = int(np.prod(dims, dtype=object)) * stored.itemsize
    if have < need:
        raise ValueError(f"{name}: truncated: shape {dims} needs {need} data bytes, file has {have}")
    if have > need:
        extra = f"{have - need}" if complete else f"at least {have - need}"
        raise ValueError(f"{name}: {extra} trailing bytes after the {need} data bytes of shape {dims}")
    array = np.frombuffer(data, dtype=stored, count=need // stored.itemsize, offset=header)
    return array.reshape(dims).astype(stored.newbyteorder("="))  # copy: writeable, native order


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
    parsed = _header(data, name, dtype, shape)
    if parsed is None and len(data) < 4:
        raise ValueError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    if parsed is None:
        ndim = data[3]
        raise ValueError(f"{name}: truncated header: {ndim} dims need {4 + 4 * ndim} bytes, file has {len(data)}")
    stored, dims, header = parsed
    return _decode(data, name, stored, dims, header, len(data) - header, complete=True)


def load_idx(f, name="<bytes>", *, dtype=None, shape=None, max_bytes=MAX_BYTES):
    """Read an IDX file from the binary file object ``f``, raw or gzip, with memory bounded by its header.

    The header is checked first (against ``dtype`` and ``shape`` when given,
    and its declared size against ``max_bytes``); then at most the declared
    number of bytes, plus one piece to detect trailing data, is decoded. A
    file that inflates to far more than its header says is refused without
    inflating the rest.
    """
    buf, parsed, limit = bytearray(), None, None
    chunks = decoded_chunks(f, name)
    complete = False
    while True:
        part = next(chunks, None)
        if part is None:
            complete = True
            break
        buf += part
        if parsed is None:
            parsed = _header(bytes(buf[:1024]), name, dtype, shape)
            if parsed is not None:
                stored, dims, header = parsed
                need = int(np.prod(dims, dtype=object)) * stored.itemsize
                if need > max_bytes:
                    raise ValueError(f"{name}: header declares shape {dims} ({need} bytes of data), more than the "
                                     f"{max_bytes} bytes allowed; refusing to read it")
                limit = header + need
        if limit is not None and len(buf) > limit + CHUNK:
            break                                        # more than the header allows: stop inflating here
    if parsed is None:
        return parse_idx(bytes(buf), name, dtype=dtype, shape=shape)   # raises: header incomplete
    stored, dims, header = parsed
    return _decode(bytes(buf), name, stored, dims, header, len(buf) - header, complete)


def read_idx(path, *, dtype=None, shape=None, max_bytes=MAX_BYTES):
    """Read an IDX file, raw or gzip-compressed (detected by its magic bytes).

    See ``parse_idx`` for ``dtype`` and ``shape`` and ``load_idx`` for
    ``max_bytes``; every error names ``path``. Anything but a regular file
    (a FIFO, a device such as ``/dev/zero``, a directory) is refused before
    it is opened.
    """
    path = Path(path)
    try:
        check_regular_file(path, "IDX file")
        with open(path, "rb") as f:
            return load_idx(f, str(path), dtype=dtype, shape=shape, max_bytes=max_bytes)
    except OSError as e:
        raise ValueError(f"{path}: cannot read IDX file ({e.strerror or e})") from None


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
