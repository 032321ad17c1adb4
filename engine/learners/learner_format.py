"""The byte format of a serialised :class:`~engine.learners.base.Learner`.

An uncompressed ``.npz`` archive: the learner's state arrays plus one member, ``__header__``,
holding a JSON header (format, class, names, reward scale, parameters, meta, update count).
Reading trusts nothing: :func:`engine.model_file.load_arrays` parses the archive (bounded
memory, no pickle) and the header is checked field by field.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.model_file import load_arrays

__all__ = ["FORMAT", "check_header", "pack_learner", "unpack_learner"]

FORMAT = "cartwise-learner/1"
_HEADER_KEY = "__header__"


def pack_learner(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    """The archive of ``header`` (JSON-able) and the state ``arrays``."""
    if _HEADER_KEY in arrays:
        raise RuntimeError(f"state array name {_HEADER_KEY!r} is reserved")
    encoded = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    # the reader refuses object arrays, so the writer refuses to pickle them
    np.savez(buffer, allow_pickle=False, **{_HEADER_KEY: encoded}, **arrays)
    return buffer.getvalue()


def unpack_learner(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The checked header and the state arrays of an archive; ValueError if it is not one."""
    try:
        arrays = load_arrays(data)
        header = json.loads(arrays.pop(_HEADER_KEY).tobytes().decode("utf-8"))
    except Exception as exc:  # any parsing failure means "not our format"
        raise ValueError(f"data ({len(data)} bytes) is not a serialised Learner: {exc}") from None
    check_header(header)
    return header, arrays


def check_header(header: Any) -> str:
    """Check the fields of a serialised learner's header; return its class name."""
    if not isinstance(header, dict):
        raise ValueError(f"learner header is a {type(header).__name__}, must be an object")
    expected: dict[str, tuple[type, ...]] = {
        "format": (str,),
        "class": (str,),
        "action_names": (list,),
        "feature_names": (list,),
        "reward_scale": (int, float),
        "params": (dict,),
        "meta": (dict,),
        "n_updates": (int,),
    }
    for key, types in expected.items():
        if key not in header:
            raise ValueError(f"learner header has no {key!r}")
        value = header[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(
                f"learner header {key} == {repr(value)[:80]}, "
                f"must be {' or '.join(t.__name__ for t in types)}"
            )
    if header["format"] != FORMAT:
        raise ValueError(f"format == {header['format']!r}, must be {FORMAT!r}")
    if header["n_updates"] < 0:
        raise ValueError(f"learner header n_updates == {header['n_updates']}, must be >= 0")
    for key in header["params"]:
        if key in ("action_names", "feature_names", "reward_scale"):
            raise ValueError(f"learner header params has key {key!r}")
    return header["class"]
