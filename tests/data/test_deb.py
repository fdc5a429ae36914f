"""The .deb reader on packages built here: ar headers parsed, files taken out of data.tar.xz, unsafe paths refused."""
import io
import tarfile

import pytest

from minicnn.data.deb import ar_members, read_deb_files, safe_member_path


def _tar_xz(files, links=()):
    """data.tar.xz bytes holding ``files`` ({path: bytes}) and symlinks ``links`` ((path, target), ...)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for path, target in links:
            info = tarfile.TarInfo(path)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def ar_archive(members):
    """An ar archive of ``members`` ({name: bytes}), written the way dpkg-deb writes one."""
    out = [b"!<arch>\n"]
    for name, data in members.items():
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def make_deb(path, files, links=()):
    path.write_bytes(ar_archive({"debian-binary": b"2.0\n", "control.tar.xz": _tar_xz({"./control": b"Package: x\n"}),
                                 "data.tar.xz": _tar_xz(files, links)}))
    return path


FILES = {"./usr/share/datasets/x/a.gz": b"odd length", "./usr/share/datasets/x/b.gz": b"even!!",
         "./usr/share/doc/x/README": b"not wanted"}


def test_reads_wanted_files_out_of_data_tar_xz(tmp_path):
    deb = make_deb(tmp_path / "x.deb", FILES)
    got = read_deb_files(deb, ["usr/share/datasets/x/a.gz", "usr/share/datasets/x/b.gz"])
    assert got == {"usr/share/datasets/x/a.gz": b"odd length", "usr/share/datasets/x/b.gz": b"even!!"}


def test_ar_members_in_order_with_odd_padding():
    data = ar_archive({"debian-binary": b"2.0\n", "one": b"abc", "two": b"de"})
    assert ar_members(data) == {"debian-binary": b"2.0\n", "one": b"abc", "two": b"de"}


@pytest.mark.parametrize("data, message", [
    (b"PK\x03\x04 a zip", r"not a Debian package: expected the ar magic"),
    (ar_archive({"one": b"abcdef"})[:-3], r"member 'one' declares 6 bytes, only 3 left"),
    (ar_archive({"one": b"ab"})[:-5] + b"XX" + ar_archive({"one": b"ab"})[-3:], r"damaged ar header at byte 8"),
    (ar_archive({"one": b"ab"}).replace(b"2         `", b"x         `"), r"member 'one' has a bad size field"),
])
def test_malformed_ar_is_refused(data, message):
    with pytest.raises(ValueError, match=message):
        ar_members(data, "bad.deb")


@pytest.mark.parametrize("path", ["../../etc/passwd", "./usr/../../x", "/etc/passwd", "usr\\..\\x"])
def test_malicious_member_path_is_refused(tmp_path, path):
    deb = make_deb(tmp_path / "evil.deb", {**FILES, path: b"payload"})
    with pytest.raises(ValueError, match=r"evil\.deb!data\.tar\.xz: refusing member with an unsafe path"):
        read_deb_files(deb, ["usr/share/datasets/x/a.gz"])
    assert not (tmp_path / "etc").exists() and not (tmp_path.parent / "x").exists()


def test_safe_paths_are_normalised():
    assert safe_member_path("./usr/share/x") == "usr/share/x" and safe_member_path("./") == ""
    assert safe_member_path("./usr/.hidden") == "usr/.hidden"


def test_a_wanted_file_that_is_a_link_or_missing_is_refused(tmp_path):
    deb = make_deb(tmp_path / "link.deb", FILES, links=[("./usr/share/datasets/x/c.gz", "/etc/passwd")])
    with pytest.raises(ValueError, match=r"usr/share/datasets/x/c\.gz is not a regular file"):
        read_deb_files(deb, ["usr/share/datasets/x/c.gz"])
    with pytest.raises(ValueError, match=r"missing usr/share/datasets/x/zzz\.gz"):
        read_deb_files(deb, ["usr/share/datasets/x/a.gz", "usr/share/datasets/x/zzz.gz"])


def test_sizes_are_bounded(tmp_path):
    deb = make_deb(tmp_path / "big.deb", FILES)
    with pytest.raises(ValueError, match=r"more than the 100 allowed for a package"):
        read_deb_files(deb, [], max_deb_bytes=100)
    with pytest.raises(ValueError, match=r"a\.gz is 10 bytes, more than the 9 allowed"):
        read_deb_files(deb, ["usr/share/datasets/x/a.gz"], max_file_bytes=9)
    with pytest.raises(ValueError, match=r"members declare more than 12 bytes"):
        read_deb_files(deb, ["usr/share/doc/x/README"], max_tar_bytes=12)


def test_package_without_data_tar_or_with_damaged_xz_is_refused(tmp_path):
    (tmp_path / "nodata.deb").write_bytes(ar_archive({"debian-binary": b"2.0\n"}))
    with pytest.raises(ValueError, match=r"no data\.tar member \(found debian-binary\)"):
        read_deb_files(tmp_path / "nodata.deb", [])
    xz = _tar_xz(FILES)
    (tmp_path / "cut.deb").write_bytes(ar_archive({"debian-binary": b"2.0\n", "data.tar.xz": xz[:len(xz) // 2]}))
    with pytest.raises(ValueError, match=r"cut\.deb!data\.tar\.xz: damaged archive"):
        read_deb_files(tmp_path / "cut.deb", ["usr/share/datasets/x/a.gz"])
