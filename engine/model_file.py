r"""Model files: atomic writes with a checksum, and loads that refuse damaged or hostile files.

Layout (format 2): one header line ``CARTWISE-MODEL 2 <sha256 hex> <length>\n`` followed by an
``.npz`` archive of ``<length>`` bytes. The checksum covers the header with its checksum field
left out (``CARTWISE-MODEL 2 <length>\n``) and then the archive, so a change to any byte of the
file is detected. Format 1 (the same header with a checksum of the archive alone) is still read.

Writes go to a temporary file in the same directory, are fsync'ed, then renamed over the target,
so a crash leaves either the old file or the new one, never a mix.

Reads trust nothing in the file: the archive is parsed here rather than by ``np.load`` so that
members must be stored uncompressed (no decompression, so no deflate bomb), every array's header
must declare a plain numeric, boolean or string dtype and exactly as many bytes as the member
holds (nothing is allocated on the word of a declared shape), and the JSON metadata must match
the schema the engine writes. A file larger than :data:`MAX_FILE_BYTES` is refused unread. Every
failure raises :class:`ModelFileError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import struct
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "MAX_FILE_BYTES",
    "ModelFileError",
    "check_meta",
    "decode_model",
    "encode_model",
    "load_arrays",
    "read_model",
    "write_model",
]

MAGIC = b"CARTWISE-MODEL"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_FILE_BYTES = 1 << 30  #: larger files are refused before being read
MAX_MEMBERS = 4096  #: arrays in one archive
_MAX_DIRECTORY_BYTES = 1 << 20  # the archive's central directory (about 70 bytes per array)
_MAX_NDIM = 32
_DTYPE_KINDS = "biufU"  # bool, integers, floats, unicode strings
_HEADER_LINE = re.compile(rb"CARTWISE-MODEL (\d{1,3}) ([0-9a-f]{64}) (\d{1,19})")
_META_KEY = "__meta__"


class ModelFileError(ValueError):
    """A model file is missing, truncated, corrupted, hostile or of an unknown format."""


def encode_model(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> tuple[bytes, str]:
    """The bytes of a model file holding ``arrays`` plus JSON-able ``meta``, and its checksum.

    The same arrays and metadata always give the same bytes (a model stored in a database row
    is this; :func:`write_model` writes it to a file).
    """
    buffer = io.BytesIO()
    members: dict[str, Any] = {
        _META_KEY: np.frombuffer(json.dumps(dict(meta)).encode(), dtype=np.uint8),
        **arrays,
    }
    # the reader refuses object arrays, so the writer refuses to pickle them
    np.savez(buffer, allow_pickle=False, **members)
    body = buffer.getvalue()
    digest = _checksum(FORMAT_VERSION, len(body), body)
    header = b"%s %d %s %d\n" % (MAGIC, FORMAT_VERSION, digest.encode(), len(body))
    return header + body, digest


def write_model(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> str:
    """Atomically write ``arrays`` plus JSON-able ``meta``; return the checksum (sha256 hex)."""
    data, digest = encode_model(arrays, meta)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
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

    ``meta`` has been checked against the engine's schema (see :func:`check_meta`). Raises
    :class:`ModelFileError` naming the path and what is wrong.
    """
    name = repr(str(path))
    return decode_model(_read_capped(path, name), name)


def decode_model(
    data: bytes | memoryview, name: str = "<bytes>"
) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """Verify and decode the bytes of a model file (e.g. a database row).

    ``name`` is used in errors. Returns ``(arrays, meta, checksum)``; raises
    :class:`ModelFileError`.
    """
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"model file {name} is more than the {MAX_FILE_BYTES} bytes allowed")
    data = bytes(data)
    newline = data.find(b"\n", 0, 128)
    header = _HEADER_LINE.fullmatch(data[:newline]) if newline > 0 else None
    if header is None:
        raise ModelFileError(f"model file {name} is not a Cartwise model (bad header)")
    version, digest, length = int(header[1]), header[2].decode(), int(header[3])
    if version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"model file {name} has format version {version}, "
            f"expected one of {list(READABLE_VERSIONS)}"
        )
    body = memoryview(data)[newline + 1 :]
    if len(body) < length:
        raise ModelFileError(f"model file {name} is truncated: {len(body)} of {length} bytes")
    if len(body) > length:
        raise ModelFileError(
            f"model file {name} is corrupted: {len(body)} bytes after the header, "
            f"which declares {length}"
        )
    if _checksum(version, length, body) != digest:
        raise ModelFileError(f"model file {name} is corrupted: checksum mismatch")
    try:
        arrays = load_arrays(body)
        meta = _decode_json(arrays.pop(_META_KEY, None), _META_KEY)
        check_meta(meta)
    except ValueError as exc:
        raise ModelFileError(f"model file {name} cannot be decoded: {exc}") from None
    return arrays, meta, digest


def load_arrays(data: bytes | memoryview) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed ``.npz`` archive (as written by ``np.savez``), parsed safely.

    Raises ValueError if the archive is damaged, has a compressed, encrypted or duplicate member,
    or an array whose header declares an object/structured dtype or a size other than the bytes
    the member holds. Memory use is bounded by a small multiple of ``len(data)``.
    """
    _check_directory(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:  # zipfile raises many types on damaged input
        raise ValueError(f"not an npz archive ({type(exc).__name__}: {exc})") from None
    if len(members) > MAX_MEMBERS:
        raise ValueError(f"archive has {len(members)} members, at most {MAX_MEMBERS} are allowed")
    declared = 0
    for info in members:
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(
                f"member {info.filename!r} is compressed (method {info.compress_type}), "
                "must be stored"
            )
        if info.flag_bits & 0x1:
            raise ValueError(f"member {info.filename!r} is encrypted")
        if info.file_size != info.compress_size:
            raise ValueError(
                f"member {info.filename!r} declares {info.file_size} bytes "
                f"but stores {info.compress_size}"
            )
        declared += info.file_size
    if declared > len(data):
        raise ValueError(f"members declare {declared} bytes, the archive has {len(data)}")
    arrays: dict[str, np.ndarray] = {}
    for info in members:
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if not key:
            raise ValueError(f"member {info.filename!r} is not an .npy array")
        if key in arrays:
            raise ValueError(f"member {info.filename!r} appears twice")
        try:
            raw = archive.read(info)
        except Exception as exc:  # bad CRC, short data, bad local header
            raise ValueError(
                f"member {info.filename!r} cannot be read ({type(exc).__name__}: {exc})"
            ) from None
        arrays[key] = _parse_npy(raw, key)
    return arrays


def check_meta(meta: Any) -> None:
    """Check the engine's metadata: the keys it reads, with the types and ranges it needs.

    Raises ValueError naming the first key that is missing or wrong. Unknown keys are allowed.
    """
    if not isinstance(meta, dict):
        raise ValueError(f"metadata is a {type(meta).__name__}, must be an object")
    for key in ("learner_class", "learner_name"):
        _check(
            meta,
            key,
            isinstance(meta.get(key), str) and 0 < len(meta[key]) <= 200,
            "a non-empty string",
        )
    for key in ("action_names", "feature_names"):
        names = meta.get(key)
        _check(
            meta,
            key,
            isinstance(names, list) and all(isinstance(n, str) for n in names),
            "a list of strings",
        )
    _check(
        meta,
        "n_updates",
        _is_int(meta.get("n_updates")) and meta["n_updates"] >= 0,
        "an integer >= 0",
    )
    _check(meta, "rng_state", _is_pcg64_state(meta.get("rng_state")), "a PCG64 bit-generator state")
    if "rng_pending_uniforms" in meta:
        pending = meta["rng_pending_uniforms"]
        _check(
            meta,
            "rng_pending_uniforms",
            isinstance(pending, list) and all(_is_real(u) and 0.0 <= u < 1.0 for u in pending),
            "a list of numbers in [0, 1)",
        )
    if "saved_at" in meta:
        _check(
            meta,
            "saved_at",
            _is_real(meta["saved_at"]) and math.isfinite(meta["saved_at"]),
            "a finite number",
        )
    if meta.get("propensity_floor") is not None:
        floor = meta["propensity_floor"]
        _check(
            meta,
            "propensity_floor",
            _is_real(floor) and 0.0 < floor <= 1.0,
            "None or a number in (0, 1]",
        )
    if "reward_per_value" in meta:
        _check(meta, "reward_per_value", isinstance(meta["reward_per_value"], bool), "a bool")


# ---------------------------------------------------------------------- helpers
def _checksum(version: int, length: int, body: bytes | memoryview) -> str:
    digest = hashlib.sha256()
    if version >= 2:  # the header, less its checksum field, is covered too
        digest.update(b"%s %d %d\n" % (MAGIC, version, length))
    digest.update(body)
    return digest.hexdigest()


def _read_capped(path: str | os.PathLike[str], name: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise ModelFileError(
                    f"model file {name} is {size} bytes, more than the {MAX_FILE_BYTES} allowed"
                )
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ModelFileError(f"model file {name} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"model file {name} is more than the {MAX_FILE_BYTES} bytes allowed")
    return data


def _check_directory(data: bytes | memoryview) -> None:
    """Bound the central directory before ``zipfile`` builds an object for each entry.

    Tiny entries would otherwise cost far more memory than the file's size.
    """
    start = max(
        0, len(data) - 22 - 0xFFFF
    )  # the end record (22 bytes) may be followed by a comment
    tail = bytes(data[start:])
    at = tail.rfind(b"PK\x05\x06", 0, len(tail) - 18)  # a whole 22-byte record must fit
    if at < 0:
        raise ValueError("not an npz archive (no end-of-directory record)")
    entries, size = struct.unpack_from("<HI", tail, at + 10)
    if start + at >= 20 and bytes(data[start + at - 20 : start + at - 16]) == b"PK\x06\x07":
        raise ValueError("archive has a zip64 end record; model archives are smaller than 4 GiB")
    if entries > MAX_MEMBERS or size > _MAX_DIRECTORY_BYTES:
        raise ValueError(
            f"archive directory declares {entries} members in {size} bytes, "
            f"at most {MAX_MEMBERS} members in {_MAX_DIRECTORY_BYTES} bytes are allowed"
        )


def _parse_npy(raw: bytes, key: str) -> np.ndarray:
    """One ``.npy`` member: header checked against the bytes present before anything is built."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"format version {version} is not supported")
    except Exception as exc:  # numpy raises ValueError, but a hostile header may raise others
        raise ValueError(f"array {key!r} has a bad header ({type(exc).__name__}: {exc})") from None
    if (
        dtype.kind not in _DTYPE_KINDS
        or dtype.hasobject
        or dtype.fields is not None
        or dtype.subdtype is not None
        or dtype.itemsize == 0
    ):
        raise ValueError(
            f"array {key!r} has dtype {dtype.str!r}, must be a plain bool, number or string dtype"
        )
    if len(shape) > _MAX_NDIM or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(
            f"array {key!r} has shape {shape!r}, must be at most {_MAX_NDIM} sizes >= 0"
        )
    count = math.prod(shape)
    present = len(raw) - stream.tell()
    if count * dtype.itemsize != present:
        raise ValueError(
            f"array {key!r} declares shape {shape} of {dtype.str} "
            f"({count * dtype.itemsize} bytes), "
            f"the member holds {present}"
        )
    flat = np.frombuffer(raw, dtype=dtype, count=count, offset=stream.tell())
    return flat.reshape(shape, order="F" if fortran_order else "C").copy(order="K")


def _decode_json(encoded: np.ndarray | None, key: str) -> Any:
    if encoded is None or encoded.dtype != np.uint8 or encoded.ndim != 1:
        raise ValueError(f"array {key!r} is missing or not 1-d uint8")
    try:
        return json.loads(encoded.tobytes().decode("utf-8"))
    except (
        ValueError,
        RecursionError,
    ) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"array {key!r} is not JSON ({type(exc).__name__}: {exc})") from None


def _check(meta: dict[str, Any], key: str, ok: bool, must: str) -> None:
    if not ok:
        found = repr(meta[key])[:80] if key in meta else "missing"
        raise ValueError(f"metadata {key} == {found}, must be {must}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_pcg64_state(state: Any) -> bool:
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        return False
    try:
        # an untrusted dict on purpose: numpy's setter is the check
        np.random.PCG64().state = state  # type: ignore[assignment]
    except Exception:  # numpy raises TypeError, ValueError, KeyError or OverflowError on bad states
        return False
    return True
