"""The CBOR encoder (see :mod:`pyisolate_runtime.cbor` for what it speaks).

Built-in types are looked up by exact type in ``_ENC``; anything else goes through
:func:`_enc_other`: the registered encoders (exact type, ``isinstance``, predicates), then
subclasses of the built-in types, then the caller's ``default``.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

from .cbor_base import CBOREncodeError, EncodeFn, Raw, Simple, Tagged, isinstance_encoders, predicate_encoders, exact_encoders

__all__ = ["MAX_DEPTH", "dumps", "encode_into"]

MAX_DEPTH = 500
"""How deep lists and dicts may nest in a value that crosses: the encoders refuse deeper
values with a clear error (Python: Python's recursion limit comes first beyond it), and the
decoders of both sides accept at least this much."""

_pack_B = struct.Struct(">BB").pack
_pack_H = struct.Struct(">BH").pack
_pack_I = struct.Struct(">BI").pack
_pack_Q = struct.Struct(">BQ").pack
_pack_d = struct.Struct(">Bd").pack

_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
# One-byte heads for small arguments, per major type.
_SMALL = [[bytes([(mt << 5) | i]) for i in range(24)] for mt in range(8)]


def _head(mt: int, n: int) -> bytes:
    if n < 24:
        return _SMALL[mt][n]
    ib = mt << 5
    if n < 0x100:
        return _pack_B(ib | 24, n)
    if n < 0x10000:
        return _pack_H(ib | 25, n)
    if n < 0x1_0000_0000:
        return _pack_I(ib | 26, n)
    return _pack_Q(ib | 27, n)


def _enc_int(obj: int, out: bytearray, default: Any) -> None:
    if obj >= 0:
        if obj < 24:
            out += _SMALL[0][obj]
        elif obj <= _U64_MAX:
            out += _head(0, obj)
        else:
            raw = obj.to_bytes((obj.bit_length() + 7) // 8, "big")
            out += b"\xc2"
            out += _head(2, len(raw))
            out += raw
    else:
        n = -1 - obj
        if n < 24:
            out += _SMALL[1][n]
        elif n <= _U64_MAX:
            out += _head(1, n)
        else:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            out += b"\xc3"
            out += _head(2, len(raw))
            out += raw


def _enc_float(obj: float, out: bytearray, default: Any) -> None:
    if obj.is_integer():
        # A whole-number float (1.0) is marked, so that a JavaScript peer, which has one
        # number type, sends it back as a float and not as the int 1.
        out += b"\xd9\xa2\x22"  # tag 41506
    out += _pack_d(0xFB, obj)


def _enc_str(obj: str, out: bytearray, default: Any) -> None:
    raw = obj.encode("utf-8", "surrogatepass")
    n = len(raw)
    out += _SMALL[3][n] if n < 24 else _head(3, n)
    out += raw


def _enc_bytes(obj: Any, out: bytearray, default: Any) -> None:
    n = obj.nbytes if type(obj) is memoryview else len(obj)
    out += _SMALL[2][n] if n < 24 else _head(2, n)
    out += obj


def _enc_list(obj: list, out: bytearray, default: Any) -> None:
    n = len(obj)
    out += _SMALL[4][n] if n < 24 else _head(4, n)
    enc = _ENC
    for item in obj:
        fn = enc.get(type(item))
        if fn is None:
            _enc_other(item, out, default)
        else:
            fn(item, out, default)


def _enc_tuple(obj: tuple, out: bytearray, default: Any) -> None:
    out += b"\xd9\xa2\x1c"  # tag 41500
    _enc_list(obj, out, default)  # type: ignore[arg-type]


# Encodings of short strings seen before (map keys, message kinds, service names).
_STR_CACHE: dict[str, bytes] = {}
_STR_CACHE_MAX = 4096


def _short_str(obj: str) -> bytes:
    raw = obj.encode("utf-8", "surrogatepass")
    n = len(raw)
    b = (_SMALL[3][n] if n < 24 else _head(3, n)) + raw
    if len(_STR_CACHE) < _STR_CACHE_MAX:
        _STR_CACHE[obj] = b
    return b


# Key types a JavaScript peer can hold as object property names (as their text form).
_SCALAR_KEYS = frozenset((str, int, float, bool, type(None)))
_TAG_MAP_HEAD = b"\xd9\x01\x03"  # tag 259


def _enc_dict(obj: dict, out: bytearray, default: Any) -> None:
    n = len(obj)
    head_at = len(out)
    tagged = False
    out += _SMALL[5][n] if n < 24 else _head(5, n)
    enc = _ENC
    cache = _STR_CACHE
    for k, v in obj.items():
        tk = type(k)
        if tk is str and len(k) <= 24:
            b = cache.get(k)
            out += _short_str(k) if b is None else b
        else:
            if not tagged and tk not in _SCALAR_KEYS:
                # A tuple, bytes or other non-scalar key: tag the map (259) so that a JS peer
                # decodes a Map and keeps the key instead of failing on it.
                out[head_at:head_at] = _TAG_MAP_HEAD
                tagged = True
            fn = enc.get(tk)
            if fn is None:
                _enc_other(k, out, default)
            else:
                fn(k, out, default)
        tv = type(v)
        if tv is str and len(v) <= 24:
            b = cache.get(v)
            out += _short_str(v) if b is None else b
        elif tv is int and 0 <= v < 24:
            out.append(v)
        else:
            fn = enc.get(tv)
            if fn is None:
                _enc_other(v, out, default)
            else:
                fn(v, out, default)


def _enc_bool(obj: bool, out: bytearray, default: Any) -> None:
    out.append(0xF5 if obj else 0xF4)


def _enc_none(obj: None, out: bytearray, default: Any) -> None:
    out.append(0xF6)


def _enc_raw(obj: Raw, out: bytearray, default: Any) -> None:
    out += obj.data


def _enc_tagged(obj: Tagged, out: bytearray, default: Any) -> None:
    out += _head(6, obj.tag)
    _enc_any(obj.value, out, default)


def _enc_simple(obj: Simple, out: bytearray, default: Any) -> None:
    n = int(obj)
    if n < 24:
        out.append(0xE0 | n)
    else:
        out += bytes((0xF8, n))


def _enc_extension(fn: EncodeFn, obj: Any, out: bytearray, default: Any) -> None:
    tag, content = fn(obj)
    out += _head(6, tag)
    _enc_any(content, out, default)


def _enc_any(obj: Any, out: bytearray, default: Any) -> None:
    fn = _ENC.get(type(obj))
    if fn is None:
        _enc_other(obj, out, default)
    else:
        fn(obj, out, default)


def _enc_other(obj: Any, out: bytearray, default: Any) -> None:
    ext = exact_encoders.get(type(obj))
    if ext is not None:
        _enc_extension(ext, obj, out, default)
        return
    for t, ext in isinstance_encoders:
        if isinstance(obj, t):
            _enc_extension(ext, obj, out, default)
            return
    for pred, ext in predicate_encoders:
        if pred(obj):
            _enc_extension(ext, obj, out, default)
            return
    # Subclasses of the built-in types (IntEnum, OrderedDict, str subclasses, …).
    if isinstance(obj, bool):
        _enc_bool(obj, out, default)
    elif isinstance(obj, int):
        _enc_int(int(obj), out, default)
    elif isinstance(obj, float):
        _enc_float(float(obj), out, default)
    elif isinstance(obj, str):
        _enc_str(str(obj), out, default)
    elif isinstance(obj, (bytes, bytearray)):
        _enc_bytes(bytes(obj), out, default)
    elif isinstance(obj, tuple):
        _enc_tuple(obj, out, default)
    elif isinstance(obj, list):
        _enc_list(obj, out, default)
    elif isinstance(obj, dict):
        _enc_dict(obj, out, default)
    else:
        if default is not None:
            r = default(obj)
            if r is not None:
                out += _head(6, r[0])
                _enc_any(r[1], out, default)
                return
        raise CBOREncodeError(
            f"cannot encode an object of type {type(obj).__module__}.{type(obj).__qualname__} "
            "as CBOR; pass plain data (numbers, strings, bytes, lists, tuples, dicts) or "
            "register an encoder with pyisolate_runtime.cbor.register_encoder"
        )


_ENC: dict[type, Callable[[Any, bytearray, Any], None]] = {
    int: _enc_int,
    float: _enc_float,
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: _enc_bytes,
    memoryview: _enc_bytes,
    list: _enc_list,
    tuple: _enc_tuple,
    dict: _enc_dict,
    bool: _enc_bool,
    type(None): _enc_none,
    Tagged: _enc_tagged,
    Simple: _enc_simple,
    Raw: _enc_raw,
}


def dumps(obj: Any, default: EncodeFn | None = None) -> bytes:
    """Encode ``obj`` as one CBOR data item.

    ``default``, when given, is tried last for objects no built-in rule or registered
    encoder handles; like a registered encoder it returns ``(tag, content)``, or ``None``
    to decline. Raises
    :class:`CBOREncodeError` for objects that cannot be encoded.
    """
    out = bytearray()
    fn = _ENC.get(type(obj))
    try:
        if fn is None:
            _enc_other(obj, out, default)
        else:
            fn(obj, out, default)
    except RecursionError:
        raise CBOREncodeError(
            "cannot encode a self-referencing or too deeply nested value (lists and dicts may nest "
            f"at most about {MAX_DEPTH} levels); flatten it or pass it as a tensor"
        ) from None
    return bytes(out)


def encode_into(obj: Any, out: bytearray, default: EncodeFn | None = None) -> None:
    """Append the encoding of ``obj`` to ``out`` (see :func:`dumps`)."""
    _enc_any(obj, out, default)
