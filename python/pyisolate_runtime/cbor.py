"""CBOR (RFC 8949) encoder and decoder, standard library only.

The runtime carries its own codec so that it never imports a package (``cbor2``,
``msgpack``) whose version could conflict with what a node pack pins.

What it speaks:

* integers of any size: major types 0/1 up to 64 bits, tags 2/3 (bignums) beyond;
* floats (encoded as float64; half, single and double decoded);
* ``bytes`` / ``bytearray`` / ``memoryview`` (byte strings), ``str``, ``list``, ``dict``
  (any key that encodes), ``bool``, ``None``; ``undefined`` decodes to ``None``;
* ``tuple`` as tag 41500 around an array (lists and tuples stay distinct);
* indefinite-length strings, arrays and maps on decode.

Extension points: :func:`register_encoder` (by exact type, then by ``isinstance``),
:func:`register_encoder_predicate` (so that, say, torch tensors are recognised without
importing torch) and :func:`register_tag`. Unknown tags decode to :class:`Tagged`.
Malformed input raises :class:`CBORDecodeError` carrying the byte offset.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterable

__all__ = [
    "CBORDecodeError",
    "CBOREncodeError",
    "Simple",
    "Tagged",
    "TAG_FLOAT",
    "TAG_TUPLE",
    "dumps",
    "encode_into",
    "loads",
    "register_encoder",
    "register_encoder_predicate",
    "register_tag",
]

TAG_TUPLE = 41500
"""Our tag for a Python tuple (content: an array)."""

TAG_FLOAT = 41506
"""Our tag for a whole-number float (content: a float, or an integer a JavaScript peer wrote)."""

EncodeFn = Callable[[Any], "tuple[int, Any]"]
"""An encoder extension: object → ``(tag, content)``; the content is encoded in turn."""
DecodeFn = Callable[[Any], Any]
"""A tag extension: decoded content → object."""


class CBORDecodeError(ValueError):
    """The input is not well-formed CBOR (or uses something this codec refuses)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.offset = offset


class CBOREncodeError(TypeError):
    """An object has no CBOR encoding (no built-in rule and no registered encoder)."""


class Tagged:
    """A tagged item whose tag has no registered decoder."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: int, value: Any) -> None:
        self.tag = tag
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tagged) and other.tag == self.tag and other.value == self.value

    def __hash__(self) -> int:
        return hash((self.tag, repr(self.value)))

    def __repr__(self) -> str:
        return f"Tagged({self.tag}, {self.value!r})"


class Simple(int):
    """A CBOR simple value other than false/true/null/undefined."""

    def __repr__(self) -> str:
        return f"Simple({int(self)})"


# --------------------------------------------------------------------------- registries

_exact: dict[type, EncodeFn] = {}
_by_isinstance: list[tuple[type, EncodeFn]] = []
_by_predicate: list[tuple[Callable[[Any], bool], EncodeFn]] = []
_tags: dict[int, DecodeFn] = {}


def register_encoder(pytype: type, fn: EncodeFn) -> None:
    """Encode instances of ``pytype`` (exact type first, subclasses through ``isinstance``)
    as ``fn(obj) -> (tag, content)``. A later registration for the same type replaces the
    earlier one."""
    _exact[pytype] = fn
    for i, (t, _) in enumerate(_by_isinstance):
        if t is pytype:
            _by_isinstance[i] = (pytype, fn)
            break
    else:
        _by_isinstance.append((pytype, fn))


def register_encoder_predicate(pred: Callable[[Any], bool], fn: EncodeFn) -> None:
    """Encode objects for which ``pred(obj)`` is true as ``fn(obj) -> (tag, content)``.
    Predicates are tried after exact types and ``isinstance`` rules, in registration order;
    they let a module recognise types it does not want to import (``torch.Tensor``)."""
    _by_predicate.append((pred, fn))


def register_tag(tag: int, fn: DecodeFn) -> None:
    """Decode items tagged ``tag`` as ``fn(content)``, where ``content`` is already decoded."""
    if tag in (2, 3, TAG_TUPLE, TAG_FLOAT):
        raise ValueError(f"tag {tag} is built into the codec and cannot be replaced")
    _tags[tag] = fn


# --------------------------------------------------------------------------- encoding

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


def _enc_dict(obj: dict, out: bytearray, default: Any) -> None:
    n = len(obj)
    out += _SMALL[5][n] if n < 24 else _head(5, n)
    enc = _ENC
    cache = _STR_CACHE
    for k, v in obj.items():
        tk = type(k)
        if tk is str and len(k) <= 24:
            b = cache.get(k)
            out += _short_str(k) if b is None else b
        else:
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
    ext = _exact.get(type(obj))
    if ext is not None:
        _enc_extension(ext, obj, out, default)
        return
    for t, ext in _by_isinstance:
        if isinstance(obj, t):
            _enc_extension(ext, obj, out, default)
            return
    for pred, ext in _by_predicate:
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
        raise CBOREncodeError("cannot encode a self-referencing or too deeply nested value") from None
    return bytes(out)


def encode_into(obj: Any, out: bytearray, default: EncodeFn | None = None) -> None:
    """Append the encoding of ``obj`` to ``out`` (see :func:`dumps`)."""
    _enc_any(obj, out, default)


# --------------------------------------------------------------------------- decoding

_unpack_H = struct.Struct(">H").unpack_from
_unpack_I = struct.Struct(">I").unpack_from
_unpack_Q = struct.Struct(">Q").unpack_from
_unpack_e = struct.Struct(">e").unpack_from
_unpack_f = struct.Struct(">f").unpack_from
_unpack_d = struct.Struct(">d").unpack_from

_BREAK = object()


def _fail(msg: str, offset: int) -> CBORDecodeError:
    return CBORDecodeError(msg, offset)


def _decode(data: bytes, pos: int, hooks: dict[int, DecodeFn] | None) -> tuple[Any, int]:
    start = pos
    ib = data[pos]
    pos += 1
    mt = ib >> 5
    ai = ib & 31
    if ai < 24:
        arg = ai
    elif ai == 24:
        arg = data[pos]
        pos += 1
    elif ai == 25:
        arg = _unpack_H(data, pos)[0]
        pos += 2
    elif ai == 26:
        arg = _unpack_I(data, pos)[0]
        pos += 4
    elif ai == 27:
        arg = _unpack_Q(data, pos)[0]
        pos += 8
    elif ai == 31:
        return _decode_indefinite(data, pos, mt, start, hooks)
    else:
        raise _fail(f"reserved additional information {ai}", start)

    if mt == 0:
        return arg, pos
    if mt == 3:
        end = pos + arg
        if end > len(data):
            raise _fail("text string runs past the end of the input", start)
        try:
            return data[pos:end].decode("utf-8"), end
        except UnicodeDecodeError:
            raise _fail("text string is not valid UTF-8", start) from None
    # Arrays and maps decode small unsigned integers and short text strings inline: they
    # are most of what a call message holds, and a call per item costs more than the item.
    if mt == 4:
        n = len(data)
        if arg > n - pos:
            raise _fail(f"array of {arg} items runs past the end of the input", start)
        items = []
        append = items.append
        for _ in range(arg):
            ib = data[pos]
            if ib < 0x18:
                append(ib)
                pos += 1
            elif 0x60 <= ib < 0x78:
                end = pos + ib - 0x5F
                if end > n:
                    raise _fail("text string runs past the end of the input", pos)
                try:
                    append(data[pos + 1 : end].decode("utf-8"))
                except UnicodeDecodeError:
                    raise _fail("text string is not valid UTF-8", pos) from None
                pos = end
            else:
                v, pos = _decode(data, pos, hooks)
                append(v)
        return items, pos
    if mt == 5:
        n = len(data)
        if arg > (n - pos) // 2:
            raise _fail(f"map of {arg} pairs runs past the end of the input", start)
        m: dict[Any, Any] = {}
        for _ in range(arg):
            kpos = pos
            ib = data[pos]
            if 0x60 <= ib < 0x78:
                end = pos + ib - 0x5F
                if end > n:
                    raise _fail("text string runs past the end of the input", pos)
                try:
                    k = data[pos + 1 : end].decode("utf-8")
                except UnicodeDecodeError:
                    raise _fail("text string is not valid UTF-8", pos) from None
                pos = end
            else:
                k, pos = _decode(data, pos, hooks)
            ib = data[pos]
            if ib < 0x18:
                v = ib
                pos += 1
            elif 0x60 <= ib < 0x78:
                end = pos + ib - 0x5F
                if end > n:
                    raise _fail("text string runs past the end of the input", pos)
                try:
                    v = data[pos + 1 : end].decode("utf-8")
                except UnicodeDecodeError:
                    raise _fail("text string is not valid UTF-8", pos) from None
                pos = end
            else:
                v, pos = _decode(data, pos, hooks)
            try:
                m[k] = v
            except TypeError:
                m[_hashable_key(k, kpos)] = v
        return m, pos
    if mt == 1:
        return -1 - arg, pos
    if mt == 2:
        end = pos + arg
        if end > len(data):
            raise _fail("byte string runs past the end of the input", start)
        return bytes(data[pos:end]), end
    if mt == 6:
        content, pos = _decode(data, pos, hooks)
        return _apply_tag(arg, content, start, hooks), pos
    # mt == 7
    if ai < 24 or ai == 24:
        if arg == 20:
            return False, pos
        if arg == 21:
            return True, pos
        if arg == 22 or arg == 23:
            return None, pos
        if ai == 24 and arg < 32:
            raise _fail(f"simple value {arg} uses the two-byte form", start)
        return Simple(arg), pos
    if ai == 25:
        return _unpack_e(data, pos - 2)[0], pos
    if ai == 26:
        return _unpack_f(data, pos - 4)[0], pos
    return _unpack_d(data, pos - 8)[0], pos


def _apply_tag(tag: int, content: Any, start: int, hooks: dict[int, DecodeFn] | None) -> Any:
    if tag == TAG_FLOAT:
        if type(content) not in (int, float):
            raise _fail("tag 41506 (float) must wrap a number", start)
        return float(content)
    if tag == TAG_TUPLE:
        if type(content) is not list:
            raise _fail("tag 41500 (tuple) must wrap an array", start)
        return tuple(content)
    if tag == 2 or tag == 3:
        if type(content) is not bytes:
            raise _fail(f"tag {tag} (bignum) must wrap a byte string", start)
        n = int.from_bytes(content, "big")
        return n if tag == 2 else -1 - n
    fn = None
    if hooks is not None:
        fn = hooks.get(tag)
        if fn is None and type(hooks) is _NoRegistry:
            return Tagged(tag, content)
    if fn is None:
        fn = _tags.get(tag)
    if fn is None:
        return Tagged(tag, content)
    return fn(content)


def _hashable_key(k: Any, offset: int) -> Any:
    """An array used as a map key becomes a tuple (recursively); other unhashable keys fail."""
    if isinstance(k, list):
        k = tuple(_hashable_key(x, offset) if isinstance(x, list) else x for x in k)
    try:
        hash(k)
    except TypeError:
        raise _fail(f"map key of type {type(k).__name__} cannot be a Python dict key", offset) from None
    return k


def _decode_indefinite(
    data: bytes, pos: int, mt: int, start: int, hooks: dict[int, DecodeFn] | None
) -> tuple[Any, int]:
    if mt == 2 or mt == 3:
        chunks = []
        while True:
            if data[pos] == 0xFF:
                pos += 1
                break
            if data[pos] >> 5 != mt or data[pos] & 31 == 31:
                raise _fail("chunk of an indefinite-length string has the wrong type", pos)
            chunk, pos = _decode(data, pos, hooks)
            chunks.append(chunk)
        return (b"".join(chunks) if mt == 2 else "".join(chunks)), pos
    if mt == 4:
        items = []
        while True:
            if data[pos] == 0xFF:
                return items, pos + 1
            v, pos = _decode(data, pos, hooks)
            items.append(v)
    if mt == 5:
        m: dict[Any, Any] = {}
        while True:
            if data[pos] == 0xFF:
                return m, pos + 1
            kpos = pos
            k, pos = _decode(data, pos, hooks)
            if data[pos] == 0xFF:
                raise _fail("indefinite-length map ends after a key", pos)
            v, pos = _decode(data, pos, hooks)
            try:
                m[k] = v
            except TypeError:
                m[_hashable_key(k, kpos)] = v
    if mt == 7:
        raise _fail("unexpected break", start)
    raise _fail(f"major type {mt} cannot have indefinite length", start)


class _NoRegistry(dict):
    """Hooks that also switch off the registered tag decoders."""


def loads(
    data: bytes | bytearray | memoryview,
    tag_hooks: dict[int, DecodeFn] | None = None,
    *,
    registered: bool = True,
) -> Any:
    """Decode exactly one CBOR data item from ``data``.

    ``tag_hooks`` maps tags to decoders consulted before the registered ones (a connection
    uses it for what only it can build, such as callback proxies). With
    ``registered=False`` the registered decoders are skipped too: every tag but the
    built-in ones decodes to :class:`Tagged`. Raises :class:`CBORDecodeError` on
    malformed, truncated or trailing input; a tag decoder's own error propagates.
    """
    if type(data) is memoryview:
        data = bytes(data)
    if not registered:
        tag_hooks = _NoRegistry(tag_hooks or {})
    try:
        value, pos = _decode(data, 0, tag_hooks)
    except CBORDecodeError:
        raise
    except (IndexError, struct.error):
        raise CBORDecodeError("unexpected end of input", len(data)) from None
    except RecursionError:
        raise CBORDecodeError("items nested too deeply", 0) from None
    if pos != len(data):
        raise CBORDecodeError(f"{len(data) - pos} bytes of extra data after the item", pos)
    return value


def loads_all(data: bytes) -> Iterable[Any]:
    """Decode a sequence of concatenated CBOR items (RFC 8742)."""
    pos = 0
    n = len(data)
    while pos < n:
        try:
            value, pos = _decode(data, pos, None)
        except (IndexError, struct.error):
            raise CBORDecodeError("unexpected end of input", n) from None
        yield value
