"""Read files out of a Debian package (``.deb``) with the standard library only; nothing in it is run.

A ``.deb`` is an ``ar`` archive: the 8 bytes ``!<arch>\\n``, then members, each
a 60-byte ASCII header (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, the
two bytes ```\\n``) followed by ``size`` bytes, padded to an even length. Its
members are ``debian-binary``, ``control.tar.*`` and ``data.tar.*``, the files
the package would install. ``read_deb_files`` parses the ``ar`` headers here
and leaves ``data.tar.xz`` (or .gz, .bz2, plain) to ``tarfile``, refusing any
member path that is absolute or climbs with ``..``, and bounding every size
before it reads.
"""
import io
import lzma
import posixpath
import tarfile
import zlib
from pathlib import Path

from minicnn.utils.files import check_regular_file

AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60
DATA_MEMBERS = {"data.tar.xz": "r:xz", "data.tar.gz": "r:gz", "data.tar.bz2": "r:bz2", "data.tar": "r:"}
MAX_DEB_BYTES = 512 << 20        # the package file itself
MAX_FILE_BYTES = 256 << 20       # any one file taken out of data.tar
MAX_TAR_BYTES = 1 << 30          # all members of data.tar together, as their headers declare


def ar_members(data, name="<deb>"):
    """``{member name: bytes}`` of an ``ar`` archive held in ``data``; ``ValueError`` naming ``name`` if malformed."""
    if data[:8] != AR_MAGIC:
        raise ValueError(f"{name}: not a Debian package: expected the ar magic {AR_MAGIC!r}, got {data[:8]!r}")
    members, pos = {}, 8
    while pos < len(data):
        header = data[pos:pos + AR_HEADER]
        if len(header) < AR_HEADER or header[58:60] != b"`\n":
            raise ValueError(f"{name}: damaged ar header at byte {pos}")
        member = header[:16].decode("ascii", "replace").rstrip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii"))
        except ValueError:
            raise ValueError(f"{name}: member {member!r} has a bad size field {header[48:58]!r}") from None
        start = pos + AR_HEADER
        if size < 0 or start + size > len(data):
            raise ValueError(f"{name}: member {member!r} declares {size} bytes, only {len(data) - start} left")
        members[member] = data[start:start + size]
        pos = start + size + (size & 1)
    return members


def safe_member_path(path, name="<deb>"):
    """``path`` of a tar member without its leading ``./``; ``ValueError`` if absolute or climbing with ``..``."""
    if path.startswith("/") or "\\" in path or ".." in path.split("/"):
        raise ValueError(f"{name}: refusing member with an unsafe path {path!r} (absolute, or climbing with '..')")
    clean = posixpath.normpath(path)                     # "./usr/share/x" -> "usr/share/x"
    return "" if clean == "." else clean


def read_deb_files(path, wanted, *, max_deb_bytes=MAX_DEB_BYTES, max_file_bytes=MAX_FILE_BYTES,
                   max_tar_bytes=MAX_TAR_BYTES):
    """The bytes of the files ``wanted`` (paths inside the package, e.g. ``usr/share/x``) of the ``.deb`` at ``path``.

    Every member of ``data.tar.*`` is checked for a safe path, the wanted ones
    must be regular files (no links), and sizes are bounded. Returns
    ``{wanted path: bytes}``; a wanted file that is not there raises ``ValueError``.
    """
    path = Path(path)
    size = check_regular_file(path, "Debian package").st_size
    if size > max_deb_bytes:
        raise ValueError(f"{path}: {size} bytes, more than the {max_deb_bytes} allowed for a package")
    members = ar_members(path.read_bytes(), str(path))
    data_name = next((m for m in DATA_MEMBERS if m in members), None)
    if data_name is None:
        raise ValueError(f"{path}: no data.tar member (found {', '.join(members) or 'none'}); "
                         f"expected one of {', '.join(DATA_MEMBERS)}")
    where = f"{path}!{data_name}"
    wanted, found, total = set(wanted), {}, 0
    try:
        with tarfile.open(fileobj=io.BytesIO(members[data_name]), mode=DATA_MEMBERS[data_name]) as tar:
            for info in tar:
                member = safe_member_path(info.name, where)
                total += max(info.size, 0)
                if total > max_tar_bytes:
                    raise ValueError(f"{where}: members declare more than {max_tar_bytes} bytes; refusing to read on")
                if member not in wanted:
                    continue
                if not info.isfile():
                    raise ValueError(f"{where}: {member} is not a regular file (a link or special file); refusing it")
                if info.size > max_file_bytes:
                    raise ValueError(f"{where}: {member} is {info.size} bytes, more than the {max_file_bytes} allowed")
                found[member] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as e:
        raise ValueError(f"{where}: damaged archive ({e})") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    return found
