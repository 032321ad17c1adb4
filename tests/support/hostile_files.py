"""Building blocks for hostile model files: take a saved file apart, change it, and seal it again
with a valid checksum (the engine's SHA-256, VW's own header hash), or build raw zip archives
(a deflate bomb, members whose headers lie)."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from engine.model_file import MAGIC, load_arrays, write_model


# ---------------------------------------------------------------------- engine files
def split_file(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and metadata of a (valid) model file."""
    data = Path(path).read_bytes()
    arrays = load_arrays(data[data.index(b"\n") + 1 :])
    meta = json.loads(arrays.pop("__meta__").tobytes())
    return arrays, meta


def seal_body(path: Path, body: bytes, version: int = 2) -> Path:
    """Write ``body`` under a header with a correct checksum of format ``version``."""
    digest = hashlib.sha256()
    if version >= 2:
        digest.update(b"%s %d %d\n" % (MAGIC, version, len(body)))
    digest.update(body)
    Path(path).write_bytes(
        b"%s %d %s %d\n" % (MAGIC, version, digest.hexdigest().encode(), len(body)) + body
    )
    return Path(path)


def split_learner(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    """The state arrays and the JSON header of the serialised learner inside ``arrays``."""
    inner = load_arrays(arrays["learner"].tobytes())
    return inner, json.loads(inner.pop("__header__").tobytes())


def join_learner(inner: dict[str, np.ndarray], header: object) -> np.ndarray:
    buffer = io.BytesIO()
    np.savez(buffer, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **inner)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def reseal(path: Path, arrays: dict[str, np.ndarray], meta: object) -> Path:
    """Write ``arrays`` and ``meta`` as a model file with a valid checksum (any ``meta`` object)."""
    if isinstance(meta, dict):
        write_model(path, arrays, meta)
        return Path(path)
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return seal_body(path, buffer.getvalue())


# ---------------------------------------------------------------------- raw archives
def npy_bytes(header: dict, payload: bytes) -> bytes:
    """An .npy member whose header says ``header`` (it may lie) followed by ``payload``."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + payload


def raw_npy_header(text: str, payload: bytes = b"") -> bytes:
    """An .npy member with a literal header text (for headers numpy would refuse to write)."""
    body = text.encode("latin1")
    pad = 64 - (10 + len(body) + 1) % 64
    body += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body + payload


def zip_archive(members: list[tuple[str, bytes, int, int, int]], flags: int = 0) -> bytes:
    """A zip of ``(name, stored_data, method, crc32, uncompressed_size)`` members, built by hand
    so that sizes, methods and CRCs can be anything."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        encoded = name.encode()
        offset = len(out)
        out += (
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                20,
                flags,
                method,
                0,
                0x21,
                crc,
                len(data),
                size,
                len(encoded),
                0,
            )
            + encoded
            + data
        )
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                flags,
                method,
                0,
                0x21,
                crc,
                len(data),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
    start = len(out)
    out += central
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0
    )
    return bytes(out)


def stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, 0, zlib.crc32(data), len(data)


# A deflated .npy member that inflates to 4095 MiB of zeros (plus its 128-byte header) in about
# 4 MB; its CRC-32 was computed once with zlib.crc32 over the inflated bytes.
BOMB_MIB = 4095
BOMB_CRC = 0x081F4A46
BOMB_SIZE = 128 + (BOMB_MIB << 20)


def deflate_bomb() -> tuple[str, bytes, int, int, int]:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (BOMB_MIB << 20,)}
    )
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header.getvalue()) + compressor.flush(zlib.Z_FULL_FLUSH)
    # after a full flush the compressor starts afresh, so every 1 MiB block of zeros compresses
    # alike
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = head + block * BOMB_MIB + compressor.flush()
    return "learner.npy", stream, zipfile.ZIP_DEFLATED, BOMB_CRC, BOMB_SIZE


# ---------------------------------------------------------------------- VW model headers
def _murmur3_32(data: bytes, seed: int) -> int:
    """MurmurHash3 (x86, 32-bit), VW's ``uniform_hash``."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    n = len(data) // 4
    for (k,) in struct.iter_unpack("<I", data[: 4 * n]):
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail, k = data[4 * n :], 0
    for i in reversed(range(len(tail))):
        k ^= tail[i] << (8 * i)
    if tail:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


def rewrite_vw_header(blob: bytes, *, model_id: bytes = b"", options_suffix: str = "") -> bytes:
    """A VW 9 model with its id replaced and ``options_suffix`` appended to its saved options,
    with VW's chained header checksum recomputed so that VW itself accepts the result."""
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        pos += n
        return blob[pos - n : pos]

    version = take(struct.unpack("<I", take(4))[0])
    take(struct.unpack("<I", blob[pos : pos + 4])[0] + 4)  # old id
    fixed = [
        take(1),
        take(4),
        take(4),
        take(4),
        take(4),
        take(4),
        take(4),
    ]  # m, min, max, bits, lda, ngram, skip
    options = take(struct.unpack("<I", take(4))[0])
    take(8)  # old checksum (length-prefixed)
    new_id = model_id + b"\x00"
    new_options = options[:-1] + options_suffix.encode() + b"\x00"
    hashed = [
        struct.pack("<I", len(new_id)),
        new_id,
        *fixed,
        struct.pack("<I", len(new_options)),
        new_options,
    ]
    digest = 0
    for chunk in hashed:
        digest = _murmur3_32(chunk, digest)
    return (
        struct.pack("<I", len(version))
        + version
        + b"".join(hashed)
        + struct.pack("<II", 4, digest)
        + blob[pos:]
    )
