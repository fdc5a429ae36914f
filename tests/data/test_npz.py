import os
import tracemalloc
import zipfile

import numpy as np
import pytest

from minicnn.data.npz import NpzReader


def deflate_bomb(path, name, shape, dtype=np.float32):
    """An .npz whose one member is an honest .npy of zeros of ``shape``, deflated (small on disk)."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros((), dtype))
    header["shape"] = shape
    zeros = bytes(1 << 20)
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open(name + ".npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            for start in range(0, nbytes, len(zeros)):
                member.write(zeros[:min(len(zeros), nbytes - start)])
    return path


def test_arrays_declaring_more_than_the_budget_are_refused_before_decompression(tmp_path):
    path = deflate_bomb(tmp_path / "bomb.npz", "0.W", (1 << 22, 1, 2, 2))   # 64 MiB of zeros, ~70 kB on disk
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb\.npz: its members declare 67108\d+ bytes uncompressed, more "
                                             r"than the 10000000 allowed"):
            NpzReader(path, max_bytes=10_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    with NpzReader(path) as npz:                        # within the default budget the shape is known unread
        assert npz.shapes == {"0.W": (1 << 22, 1, 2, 2)}


def test_npy_header_that_lies_about_its_size_is_refused(tmp_path):
    path = tmp_path / "liar.npz"
    np.savez(path, w=np.zeros(4))
    with zipfile.ZipFile(path) as z:
        data = z.read("w.npy")
    data = data.replace(b"(4,)", b"(9,)")   # the header now claims 9 float64, the member holds 4
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("w.npy", data)
    with pytest.raises(ValueError, match=r"liar\.npz: array 'w' declares shape \(9,\) float64 \(72 bytes\) but its "
                                         r"member holds 32 bytes"):
        NpzReader(path)


def test_special_files_are_refused_without_opening(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(ValueError, match=r"pipe\.npz: expected a regular npz archive, got a FIFO"):
        NpzReader(tmp_path / "pipe.npz")
    with pytest.raises(ValueError, match=r"got a directory"):
        NpzReader(tmp_path)
