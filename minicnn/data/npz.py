"""Reading ``.npz`` archives from users without trusting what they claim.

An ``.npz`` is a zip of ``.npy`` members. Deflate can squeeze gigabytes of
zeros into a few megabytes, and a ``.npy`` header may declare any shape, so
``np.load`` on a hostile file can exhaust memory. ``NpzReader`` refuses such a
file before it decompresses the data: it checks the zip's declared sizes
(``ZipInfo.file_size``, which ``zipfile`` also enforces while inflating) and
every member's ``.npy`` header (dtype, shape) against a byte budget, refuses
object arrays (they would need pickle) and anything that is not a regular
file (a FIFO would block ``open()``). Every error is a ``ValueError`` naming
the file.
"""
import zipfile
import zlib

import numpy as np

from minicnn.utils.files import check_regular_file

MAX_BYTES = 2 << 30   # 2 GiB: no minicnn checkpoint comes near it
_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, NotImplementedError)


class NpzReader:
    """Open ``path`` and check every member's declared size; read arrays one at a time.

    Parameters
    ----------
    path : str or Path
    max_bytes : int, most bytes all arrays together may declare

    Attributes
    ----------
    shapes : dict name -> shape, and ``dtypes`` : dict name -> dtype, from the
        ``.npy`` headers, in archive order (names without ``.npy``).

    Use as a context manager; ``read(name)`` returns one array, ``stream(name,
    sink)`` hands its bytes to ``sink`` a block at a time without holding the
    array.  Inflating never yields more than a member's declared size
    (``zipfile`` stops there and checks the CRC), so what is read is what the
    headers declared.
    """

    def __init__(self, path, max_bytes=MAX_BYTES):
        self.path = path
        check_regular_file(path, "npz archive")
        with open(path, "rb") as fh:
            magic = fh.read(6)
        if magic == b"\x93NUMPY":
            raise ValueError(f"{path}: expected an .npz archive (several named arrays), got a single .npy array")
        if not magic.startswith(b"PK"):
            raise ValueError(f"{path}: expected an .npz archive (a zip of .npy arrays, as np.savez writes), "
                             f"but it is not a zip file (it starts with {magic!r})")
        try:
            self._zip = zipfile.ZipFile(path)
        except _ERRORS as e:
            raise ValueError(f"{path}: not a readable npz archive: {type(e).__name__}: {e}") from None
        try:
            self._scan(max_bytes)
        except BaseException:
            self._zip.close()
            raise

    def _scan(self, max_bytes):
        infos = [i for i in self._zip.infolist() if not i.is_dir()]
        declared = sum(i.file_size for i in infos)
        if declared > max_bytes:
            raise ValueError(f"{self.path}: its members declare {declared} bytes uncompressed, more than the "
                             f"{max_bytes} allowed; refusing to decompress it")
        self._infos, self.shapes, self.dtypes, self._header_len, self._fortran = {}, {}, {}, {}, {}
        total = 0
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            try:
                with self._zip.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = read_header(member)
                    header_len = member.tell()
            except _ERRORS as e:
                raise ValueError(f"{self.path}: member {info.filename!r} is not a readable .npy array: "
                                 f"{type(e).__name__}: {e}") from None
            if dtype.hasobject:
                raise ValueError(f"{self.path}: array {name!r} holds Python objects (dtype {dtype}), which "
                                 f"would need pickle; expected plain numbers or strings")
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if nbytes != info.file_size - header_len:
                raise ValueError(f"{self.path}: array {name!r} declares shape {shape} {dtype} ({nbytes} bytes) "
                                 f"but its member holds {info.file_size - header_len} bytes")
            total += nbytes
            if total > max_bytes:
                raise ValueError(f"{self.path}: its arrays declare more than the {max_bytes} bytes allowed "
                                 f"(array {name!r} alone has shape {shape}); refusing to read it")
            self._infos[name], self.shapes[name], self.dtypes[name] = info, tuple(shape), dtype
            self._header_len[name], self._fortran[name] = header_len, fortran

    def read(self, name):
        """The array ``name``, decompressed (its size was checked when the archive was opened)."""
        try:
            with self._zip.open(self._infos[name]) as member:
                return np.lib.format.read_array(member, allow_pickle=False)
        except _ERRORS as e:
            raise ValueError(f"{self.path}: array {name!r} is damaged (corrupted, truncated or modified): "
                             f"{type(e).__name__}: {e}") from None

    def stream(self, name, sink, block=1 << 20):
        """Call ``sink(bytes)`` on the array's data in C order, ``block`` bytes at a time (the whole array
        at once only for a Fortran-ordered one); memory stays at one block."""
        if self._fortran[name]:
            sink(np.ascontiguousarray(self.read(name)).tobytes())
            return
        try:
            with self._zip.open(self._infos[name]) as member:
                member.read(self._header_len[name])
                left = self._infos[name].file_size - self._header_len[name]
                while left:
                    chunk = member.read(min(block, left))
                    if not chunk:
                        raise EOFError(f"{left} bytes missing")
                    sink(chunk)
                    left -= len(chunk)
        except _ERRORS as e:
            raise ValueError(f"{self.path}: array {name!r} is damaged (corrupted, truncated or modified): "
                             f"{type(e).__name__}: {e}") from None

    def read_all(self):
        return {name: self.read(name) for name in self.shapes}

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
