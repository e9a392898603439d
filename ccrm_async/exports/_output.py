"""The command line's ``--out`` file: checked before anything is asked of the
API, and never an unrelated file replaced.

The export file is CCRM's bytes, kept byte for byte, so it cannot carry a mark
of its own. Instead each file the command writes gets a *sidecar*,
``PATH.ccrm-export.json`` (mode 0600), recording the kind, the size and the
SHA-256 of the bytes written. An existing ``PATH`` counts as an earlier output
of ``export`` only when its sidecar exists, reads as one, and its size and
SHA-256 match the file as it is now: a user's file is never claimed (it would
need the very bytes of an earlier export), nor is an export someone edited
since. Only such a file is replaced, and only with ``--overwrite``; the new
file is renamed over it once it is complete, so a failed run leaves the old one.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

import orjson

from ._job import ExportResult

__all__ = ["SIDECAR_SUFFIX", "OutputRefused", "check_output", "record_output", "sidecar_path"]

SIDECAR_SUFFIX = ".ccrm-export.json"
_SIDECAR_MAX = 4096  # bytes: a sidecar is one small JSON object


class OutputRefused(ValueError):
    """``--out`` cannot be written, or names a file the command did not write.
    The message names the path."""


def sidecar_path(path: Path) -> Path:
    """Where the record of *path*'s export is kept."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def check_output(path: Path, *, overwrite: bool) -> Path:
    """*path* made absolute, once it is known that the export may be saved there.

    Raises :class:`OutputRefused` when its directory is missing or not
    writable, when it is a directory, or when it exists and is not an earlier
    output of ``export`` (or is one, without *overwrite*).
    """
    path = Path(path).expanduser().absolute()
    directory = path.parent
    if not directory.is_dir():
        raise OutputRefused(f"no such directory: {directory} (for --out {path})")
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".ccrm-export-probe-")
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
        raise OutputRefused(f"cannot write in {directory} ({reason}) (for --out {path})") from None
    os.close(fd)
    os.unlink(probe)
    if path.is_dir():
        raise OutputRefused(f"{path} is a directory; --out needs a file name")
    if not path.exists() and not path.is_symlink():
        return path
    if not _written_by_export(path):
        raise OutputRefused(
            f"{path} exists and is not the output of an earlier export (no matching "
            f"{sidecar_path(path).name}); it is left untouched: remove it or choose another --out"
        )
    if not overwrite:
        raise OutputRefused(
            f"{path} exists (an earlier export); pass --overwrite to replace it, "
            "or choose another --out"
        )
    return path


def record_output(result: ExportResult) -> Path:
    """Write the sidecar of a finished export (atomically, mode 0600)."""
    sidecar = sidecar_path(result.path)
    body = orjson.dumps(
        {
            "command": "export",
            "kind": result.kind,
            "job_id": result.job_id,
            "size": result.size,
            "sha256": result.sha256,
        }
    )
    fd, tmp = tempfile.mkstemp(dir=sidecar.parent, prefix=".ccrm-export-sidecar-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, sidecar)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sidecar


def _written_by_export(path: Path) -> bool:
    """Whether *path* is, byte for byte, what its sidecar says export wrote."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(sidecar_path(path), "rb") as f:
            record = orjson.loads(f.read(_SIDECAR_MAX))
    except (OSError, orjson.JSONDecodeError):
        return False
    if not isinstance(record, dict) or record.get("command") != "export":
        return False
    size, sha256 = record.get("size"), record.get("sha256")
    if not isinstance(size, int) or not isinstance(sha256, str):
        return False
    try:
        if path.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == sha256
