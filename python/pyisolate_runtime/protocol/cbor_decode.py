"""The CBOR decoder (see :mod:`pyisolate_runtime.cbor` for what it speaks).

Malformed input raises :class:`~.cbor_base.CBORDecodeError` carrying the byte offset.
"""

from __future__ import annotations

import struct
from typing import Any, Iterable

from .cbor_base import TAG_FLOAT, TAG_MAP, TAG_TUPLE, CBORDecodeError, DecodeFn, Simple, Tagged, tag_decoders

__all__ = ["loads", "loads_all"]

_unpack_H = struct.Struct(">H").unpack_from
_unpack_I = struct.Struct(">I").unpack_from
_unpack_Q = struct.Struct(">Q").unpack_from
_unpack_e = struct.Struct(">e").unpack_from
_unpack_f = struct.Struct(">f").unpack_from
_unpack_d = struct.Struct(">d").unpack_from

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
    if tag == TAG_MAP:
        if type(content) is not dict:
            raise _fail("tag 259 (map) must wrap a map", start)
        return content
    fn = None
    if hooks is not None:
        fn = hooks.get(tag)
        if fn is None and type(hooks) is _NoRegistry:
            return Tagged(tag, content)
    if fn is None:
        fn = tag_decoders.get(tag)
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
