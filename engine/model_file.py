"""Model files: atomic writes with a checksum, and loads that refuse damaged files.

Layout: one header line ``CARTWISE-MODEL 1 <sha256 hex> <length>\\n`` followed by an ``.npz``
archive (numpy arrays only: ``np.load(..., allow_pickle=False)``, so loading never runs code).
Writes go to a temporary file in the same directory, are fsync'ed, then renamed over the target,
so a crash leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

MAGIC = b"CARTWISE-MODEL"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file is missing, truncated, corrupted or of an unknown format."""


def write_model(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str:
    """Atomically write ``arrays`` plus JSON-able ``meta``; return the checksum (sha256 hex)."""
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(json.dumps(dict(meta)).encode(), dtype=np.uint8), **arrays)
    body = buffer.getvalue()
    digest = hashlib.sha256(body).hexdigest()
    header = b"%s %d %s %d\n" % (MAGIC, FORMAT_VERSION, digest.encode(), len(body))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(header)
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return digest


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """Read and verify a model file; return ``(arrays, meta, checksum)``.

    Raises :class:`ModelFileError` naming the path and what is wrong.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelFileError(f"model file {str(path)!r} cannot be read: {exc.strerror}") from None
    newline = data.find(b"\n", 0, 200)
    parts = data[:newline].split(b" ") if newline > 0 else []
    if len(parts) != 4 or parts[0] != MAGIC:
        raise ModelFileError(f"model file {str(path)!r} is not a Cartwise model (bad header)")
    if parts[1] != str(FORMAT_VERSION).encode():
        raise ModelFileError(f"model file {str(path)!r} has format version {parts[1].decode()!r}, expected {FORMAT_VERSION}")
    digest, length = parts[2].decode(), int(parts[3])
    body = data[newline + 1:]
    if len(body) != length:
        raise ModelFileError(f"model file {str(path)!r} is truncated: {len(body)} of {length} bytes")
    if hashlib.sha256(body).hexdigest() != digest:
        raise ModelFileError(f"model file {str(path)!r} is corrupted: checksum mismatch")
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except (ValueError, KeyError, OSError) as exc:
        raise ModelFileError(f"model file {str(path)!r} cannot be decoded: {exc}") from None
    return arrays, meta, digest
