"""IDX reader/writer: round trips, every kind of damage, atomic writes."""
import gzip
import os
import re
import tracemalloc
import zlib

import numpy as np
import pytest

from minicnn.data.idx import gunzip, idx_bytes, parse_idx, read_idx, write_bytes_atomic, write_idx
from minicnn.utils import files

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def _sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 100).astype(dtype)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7, 5, 3), (11,), (2, 3, 4, 5), (0, 28, 28)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path, dtype, shape, suffix):
    a = _sample(dtype, shape)
    path = write_idx(tmp_path / f"a{suffix}", a)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == shape
    np.testing.assert_array_equal(a, b)
    assert b.flags.writeable and b.dtype.isnative


def test_header_layout_matches_mnist_magic():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(images)
    assert data[:4] == bytes.fromhex("00000803")
    assert data[4:16] == bytes.fromhex("00000002 00000003 00000004")
    assert data[16:] == images.tobytes()
    assert idx_bytes(np.zeros(5, np.uint8))[:8] == bytes.fromhex("00000801 00000005")
    # multi-byte types are big-endian on disk
    assert idx_bytes(np.array([1], np.int32))[-4:] == b"\x00\x00\x00\x01"


def test_detects_gzip_by_content_not_name(tmp_path):
    a = _sample(np.uint8, (4, 4))
    raw_named_gz = tmp_path / "raw.gz"
    raw_named_gz.write_bytes(idx_bytes(a))
    gz_named_plain = tmp_path / "plain-ubyte"
    gz_named_plain.write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(raw_named_gz), a)
    np.testing.assert_array_equal(read_idx(gz_named_plain), a)


def test_write_is_reproducible(tmp_path):
    a = _sample(np.uint8, (3, 9))
    write_idx(tmp_path / "one.gz", a)
    write_idx(tmp_path / "two.gz", a)
    assert (tmp_path / "one.gz").read_bytes() == (tmp_path / "two.gz").read_bytes()


def test_expected_dtype_and_shape_are_checked():
    data = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    assert parse_idx(data, "f", dtype=np.uint8, shape=(None, 28, 28)).shape == (3, 28, 28)
    with pytest.raises(ValueError, match=r"f: expected IDX magic 0x00000801 \(uint8, 1 dim\), "
                                         r"got 0x00000803 \(uint8, 3 dims\)"):
        parse_idx(data, "f", dtype=np.uint8, shape=(None,))
    with pytest.raises(ValueError, match=r"expected IDX magic 0x00000d03 \(float32"):
        parse_idx(data, "f", dtype=np.float32)
    with pytest.raises(ValueError, match=r"f: expected shape \(any, 28, 27\), got \(3, 28, 28\)"):
        parse_idx(data, "f", shape=(None, 28, 27))


def _write(tmp_path, name, data, compress):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


GOOD = idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
DAMAGE = {
    "zero bytes": (b"", r"too short for an IDX header \(0 bytes\)"),
    "bad magic": (b"\x12\x34" + GOOD[2:], r"not an IDX file: magic 0x12340803"),
    "unknown type": (GOOD[:2] + b"\x0a" + GOOD[3:], r"not an IDX file: magic 0x00000a03"),
    "zero dims": (GOOD[:3] + b"\x00" + GOOD[4:], r"not an IDX file: magic 0x00000800"),
    "header cut": (GOOD[:10], r"truncated header: 3 dims need 16 bytes, file has 10"),
    "data cut": (GOOD[:-1], r"truncated: shape \(3, 4, 5\) needs 60 data bytes, file has 59"),
    "wrong dims": (GOOD[:4] + (4).to_bytes(4, "big") + GOOD[8:],
                   r"truncated: shape \(4, 4, 5\) needs 80 data bytes, file has 60"),
    "trailing bytes": (GOOD + b"\x00\x00", r"2 trailing bytes after the 60 data bytes of shape \(3, 4, 5\)"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_idx_is_refused_naming_the_file(tmp_path, case, compress):
    data, message = DAMAGE[case]
    path = _write(tmp_path, "damaged-idx3-ubyte.gz", data, compress)
    with pytest.raises(ValueError, match=rf"damaged-idx3-ubyte\.gz: {message}"):
        read_idx(path)


def test_shape_checked_when_dims_are_consistent_but_wrong(tmp_path):
    path = _write(tmp_path, "labels.gz", idx_bytes(np.zeros(59999, np.uint8)), True)
    with pytest.raises(ValueError, match=r"labels\.gz: expected shape \(60000\), got \(59999,\)"):
        read_idx(path, dtype=np.uint8, shape=(60000,))


def test_damaged_gzip_is_refused(tmp_path):
    good = gzip.compress(GOOD)
    bad_crc = bytearray(good)
    bad_crc[-8] ^= 0xFF  # the CRC32 in the trailer
    bad_size = bytearray(good)
    bad_size[-1] ^= 0x01  # the length (ISIZE) in the trailer
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # inside the deflate stream
    cases = {
        "bad_crc.gz": (bytes(bad_crc), r"corrupted gzip data \(.*incorrect data check"),
        "bad_size.gz": (bytes(bad_size), r"corrupted gzip data \(.*incorrect length check"),
        "flipped.gz": (bytes(flipped), r"corrupted gzip data|gzip stream is truncated"),
        "cut.gz": (good[:-3], r"gzip stream is truncated"),
        "header_only.gz": (good[:10], r"gzip stream is truncated"),
        "trailing.gz": (good + b"junk", r"4 trailing bytes after the gzip stream"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=rf"{name}: {message}"):
            read_idx(tmp_path / name)


def test_concatenated_gzip_members_are_valid_gzip():
    assert gunzip(gzip.compress(GOOD[:7]) + gzip.compress(GOOD[7:])) == GOOD


def test_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"nothere\.gz: cannot read IDX file"):
        read_idx(tmp_path / "nothere.gz")


@pytest.mark.parametrize("array, message", [
    (np.zeros(3, np.int64), r"IDX cannot store dtype int64; expected one of uint8, int8"),
    (np.zeros(3, bool), r"IDX cannot store dtype bool"),
    (np.float32(1.0), r"IDX needs 1 to 255 dims, each below 2\*\*32; got shape \(\)"),
])
def test_write_refuses_what_idx_cannot_hold(tmp_path, array, message):
    with pytest.raises(ValueError, match=message):
        write_idx(tmp_path / "x.gz", array)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_leaves_only_the_target(tmp_path):
    write_idx(tmp_path / "a.gz", np.ones(4, np.uint8))
    write_bytes_atomic(tmp_path / "b.bin", b"hello")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gz", "b.bin"]
    assert (tmp_path / "b.bin").read_bytes() == b"hello"


@pytest.mark.parametrize("fail_in, error", [("replace", OSError), ("fsync", KeyboardInterrupt)])
def test_interrupted_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch, fail_in, error):
    target = tmp_path / "labels.gz"
    write_idx(target, np.arange(5, dtype=np.uint8))
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise error("simulated failure")

    monkeypatch.setattr(files.os, fail_in, boom)
    with pytest.raises(error, match="simulated failure"):
        write_idx(target, np.arange(50, dtype=np.uint8))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["labels.gz"]
    assert target.read_bytes() == before
    np.testing.assert_array_equal(read_idx(target), np.arange(5, dtype=np.uint8))


def test_written_file_gets_the_usual_permissions(tmp_path):
    path = write_idx(tmp_path / "a.gz", np.ones(2, np.uint8))
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# -- hostile files: refused before they cost memory ---------------------------------------------

def _gzip_of_zeros(header, megabytes):
    """A gzip member: ``header`` then ``megabytes`` MiB of zeros, built piece by piece (small on disk)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [comp.compress(header)]
    zeros = bytes(1 << 20)
    parts += [comp.compress(zeros) for _ in range(megabytes)]
    return b"".join(parts) + comp.flush()


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            fn()
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


def test_gzip_inflating_past_its_header_stops_early(tmp_path):
    # Header says 1000x28x28 (784 kB); the stream inflates to 64 MiB more.
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(_gzip_of_zeros(idx_bytes(np.zeros((1000, 28, 28), np.uint8)), 64))
    assert path.stat().st_size < 200_000
    peak, message = _peak_bytes(lambda: read_idx(path, dtype=np.uint8, shape=(None, 28, 28)))
    assert re.search(r"bomb-idx3-ubyte\.gz: at least \d+ trailing bytes after the 784000 data bytes", message)
    assert peak < 8 << 20, peak


def test_header_declaring_more_than_allowed_is_refused_before_reading(tmp_path):
    header = bytes([0, 0, 0x08, 2]) + (100_000).to_bytes(4, "big") * 2   # 10 GB declared
    path = tmp_path / "huge.gz"
    path.write_bytes(_gzip_of_zeros(header, 64))
    peak, message = _peak_bytes(lambda: read_idx(path))
    assert re.search(r"huge\.gz: header declares shape \(100000, 100000\) \(10000000000 bytes", message)
    assert peak < 8 << 20, peak
    with pytest.raises(ValueError, match=r"more than the 1000 bytes allowed"):
        read_idx(tmp_path / "huge.gz", max_bytes=1000)


def test_gunzip_refuses_output_beyond_its_limit():
    with pytest.raises(ValueError, match=r"x: inflates to more than 1000000 bytes"):
        gunzip(_gzip_of_zeros(b"", 2), "x", max_bytes=1_000_000)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_symlink_to_a_device_is_refused_without_reading(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    link = tmp_path / "train-images-idx3-ubyte.gz"
    link.symlink_to(device)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: expected a regular IDX file, got a device"):
        read_idx(link)


def test_fifo_and_directory_are_refused_without_opening(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "labels.gz"
    os.mkfifo(fifo)   # open() would block: nobody writes to it
    with pytest.raises(ValueError, match=r"labels\.gz: expected a regular IDX file, got a FIFO"):
        read_idx(fifo)
    with pytest.raises(ValueError, match=r"expected a regular IDX file, got a directory"):
        read_idx(tmp_path)
