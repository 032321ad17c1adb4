"""Which Vowpal Wabbit options the VW learner passes on: an allow-list, for users and for files.

VW options can read and write files (``-i``, ``-f``, ``--readable_model``, ``--invert_hash``,
``-p``, ``--cache_file``...), and VW takes options from two places Cartwise does not control:
a learner's ``extra_args`` (which a model file carries in its learner header) and the option
string inside a saved VW model, which VW merges into its own options when it loads the model.
Both are therefore checked against allow-lists of learning and exploration options, with typed
values, before VW sees them:

* :func:`parse_extra_args`: the options a user may add (:data:`EXTRA_OPTIONS`); options that
  have a learner parameter are refused with the parameter's name.
* :func:`check_vw_model`: the header of a saved VW model; its option string may hold the
  options the learner sets itself (:data:`OWN_OPTIONS`) and the extra ones, nothing else, and
  the fields VW turns into further options (model id, n-grams, skips) must be empty.
"""

from __future__ import annotations

import re
import shlex
import struct

__all__ = ["EXTRA_OPTIONS", "OWN_OPTIONS", "check_vw_model", "parse_extra_args"]

_FLAG, _NUMBER, _INTEGER, _NAMESPACES, _WORD = "flag", "number", "integer", "namespaces", "word"
_VALUE_PATTERNS = {
    _NUMBER: re.compile(
        r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
    ),  # non-negative: '-' starts an option
    _INTEGER: re.compile(r"\d{1,20}"),
    _NAMESPACES: re.compile(r"[A-Za-z0-9_]{1,32}"),
    _WORD: re.compile(r"[A-Za-z_]{1,32}"),
}

#: Options a user may add with ``extra_args``, and the kind of value each takes.
EXTRA_OPTIONS: dict[str, str] = {
    # gradient descent
    "--noconstant": _FLAG, "--sgd": _FLAG, "--adaptive": _FLAG, "--normalized": _FLAG,
    "--invariant": _FLAG, "--l1": _NUMBER, "--initial_t": _NUMBER,
    # features
    "--ignore": _NAMESPACES, "--ignore_linear": _NAMESPACES, "--keep": _NAMESPACES,
    # exploration details
    "--first_only": _FLAG, "--nounif": _FLAG, "--psi": _NUMBER, "--elim": _FLAG,
    "--mellowness": _NUMBER, "--greedify": _FLAG, "--rnd_alpha": _NUMBER,
    "--rnd_invlambda": _NUMBER, "--cb_min_cost": _NUMBER, "--cb_max_cost": _NUMBER,
}  # fmt: skip

#: Options the learner sets from its parameters (or VW adds for them), as VW saves them.
OWN_OPTIONS: dict[str, str] = {
    "--cb_explore_adf": _FLAG, "--cb_adf": _FLAG, "--csoaa_ldf": _WORD, "--csoaa_rank": _FLAG,
    "--cb_type": _WORD, "--learning_rate": _NUMBER, "--power_t": _NUMBER, "--l2": _NUMBER,
    "--random_seed": _INTEGER, "--interactions": _NAMESPACES, "--quadratic": _NAMESPACES,
    "--cubic": _NAMESPACES, "--epsilon": _NUMBER, "--squarecb": _FLAG, "--gamma_scale": _NUMBER,
    "--gamma_exponent": _NUMBER, "--bag": _INTEGER, "--cover": _INTEGER, "--rnd": _INTEGER,
    "--softmax": _FLAG, "--lambda": _NUMBER,
}  # fmt: skip

# options with a learner parameter: extra_args must not set them (VW refuses duplicates)
_PARAMETERS = {
    "--epsilon": "epsilon", "--squarecb": "exploration", "--softmax": "exploration",
    "--gamma_scale": "gamma_scale", "--gamma_exponent": "gamma_exponent", "--bag": "bag_size",
    "--cover": "cover_size", "--rnd": "rnd_size", "--lambda": "softmax_lambda",
    "-l": "learning_rate", "--learning_rate": "learning_rate", "--power_t": "power_t",
    "--l2": "l2", "--cb_type": "cb_type", "-q": "interactions", "--quadratic": "interactions",
    "--cubic": "interactions", "--interactions": "interactions", "-b": "bit_precision",
    "--bit_precision": "bit_precision", "--random_seed": "seed",
}  # fmt: skip

_MAX_OPTIONS_BYTES = 4096
_VW_VERSION = re.compile(rb"9\.\d{1,4}\.\d{1,4}\x00")
_OPTION_CHARS = re.compile(rb"[A-Za-z0-9_.+\- ]*")


def parse_extra_args(extra_args: str) -> list[str]:
    """Check ``extra_args`` (shell syntax) against :data:`EXTRA_OPTIONS`; return VW's arguments.

    Accepts ``--opt value`` and ``--opt=value``; short options are read as ``-x[value]``. The
    result is normalised (``["--opt", "value", ...]``), so VW sees exactly what was checked.
    Raises ValueError naming the option that is not allowed or the value that is wrong.
    """
    if not isinstance(extra_args, str):
        raise ValueError(f"extra_args == {extra_args!r}, must be a string")
    try:
        tokens = shlex.split(extra_args)
    except ValueError as exc:
        raise ValueError(f"extra_args == {extra_args!r} cannot be split: {exc}") from None
    try:
        return _parse(tokens, EXTRA_OPTIONS, name_parameters=True)
    except _Refused as exc:
        raise ValueError(f"extra_args == {extra_args!r}, {exc}") from None


def check_vw_model(blob: bytes, bit_precision: int) -> list[str]:
    """Check the header of a saved VW model before VW reads it; return its saved options.

    Raises ValueError if the header is damaged, is not from VW 9, has a model id, n-grams or
    skips, a bit precision other than ``bit_precision``, or an option outside
    :data:`OWN_OPTIONS` and :data:`EXTRA_OPTIONS`.
    """
    reader = _Reader(blob)
    version = reader.text(64)
    if not _VW_VERSION.fullmatch(version):
        raise ValueError(f"VW model version {version[:20]!r}, must be 9.x")
    if reader.text(64) != b"\x00":
        raise ValueError("VW model has a model id, must have none")
    if reader.take(1) != b"m":
        raise ValueError("VW model header has no model marker")
    reader.take(8)  # min and max label
    bits, lda, n_ngrams, n_skips = (reader.u32() for _ in range(4))
    if bits != bit_precision:
        raise ValueError(
            f"VW model has {bits} bits, the learner's bit_precision is {bit_precision}"
        )
    if (lda, n_ngrams, n_skips) != (0, 0, 0):
        raise ValueError(
            f"VW model has lda/ngram/skip fields {(lda, n_ngrams, n_skips)}, must be zero"
        )
    options = reader.text(_MAX_OPTIONS_BYTES)
    if not options.endswith(b"\x00") or not _OPTION_CHARS.fullmatch(options[:-1]):
        raise ValueError(
            "VW model options hold characters other than letters, digits, '_.+-' and spaces"
        )
    tokens = options[:-1].decode("ascii").split()
    try:
        return _parse(tokens, {**OWN_OPTIONS, **EXTRA_OPTIONS})
    except _Refused as exc:
        raise ValueError(
            f"VW model options {options[:-1].decode('ascii')[:200]!r}: {exc}"
        ) from None


class _Refused(Exception):
    """An option or value outside the allow-list (the caller adds the context)."""


def _parse(tokens: list[str], allowed: dict[str, str], name_parameters: bool = False) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token.startswith("--"):
            name, eq, attached = token.partition("=")
            value = attached if eq else None
        elif token.startswith("-") and len(token) > 1:
            name, value = token[:2], token[2:] or None
        else:
            raise _Refused(f"{token!r} is not an option")
        kind = allowed.get(name)
        if kind is None:
            if name_parameters and name in _PARAMETERS:
                raise _Refused(
                    f"must not set {name!r}: use the learner's {_PARAMETERS[name]!r} parameter"
                )
            raise _Refused(
                f"must not set {name!r} "
                f"(not an allowed VW option; allowed: {', '.join(sorted(allowed))})"
            )
        out.append(name)
        if kind == _FLAG:
            if value is not None:
                raise _Refused(f"{name!r} takes no value, got {value!r}")
            continue
        if value is None:
            if i == len(tokens):
                raise _Refused(f"{name!r} needs a value")
            value = tokens[i]
            i += 1
        if not _VALUE_PATTERNS[kind].fullmatch(value):
            wanted = "non-negative number" if kind == _NUMBER else kind
            raise _Refused(f"{name} == {value!r}, must be a {wanted}")
        out.append(value)
    return out


class _Reader:
    """Little-endian fields of a VW model header, refusing reads past the end."""

    def __init__(self, blob: bytes) -> None:
        self._blob, self._pos = blob, 0

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._blob):
            raise ValueError(f"VW model header is truncated ({len(self._blob)} bytes)")
        out = self._blob[self._pos : self._pos + n]
        self._pos += n
        return out

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def text(self, limit: int) -> bytes:
        n = self.u32()
        if not 0 < n <= limit:
            raise ValueError(f"VW model header field of {n} bytes, must be 1 to {limit}")
        return self.take(n)
