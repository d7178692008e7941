"""CBOR (RFC 8949) encoder and decoder, standard library only.

The runtime carries its own codec so that it never imports a package (``cbor2``,
``msgpack``) whose version could conflict with what a node pack pins.

What it speaks:

* integers of any size: major types 0/1 up to 64 bits, tags 2/3 (bignums) beyond;
* floats (encoded as float64; half, single and double decoded);
* ``bytes`` / ``bytearray`` / ``memoryview`` (byte strings), ``str``, ``list``, ``dict``
  (any key that encodes; a dict with a key that is not text, a number, a bool or None is
  wrapped in tag 259, so that a JavaScript peer keeps its keys), ``bool``, ``None``;
  ``undefined`` decodes to ``None``;
* :class:`Raw`: bytes encoded already, written as they are;
* ``tuple`` as tag 41500 around an array (lists and tuples stay distinct);
* indefinite-length strings, arrays and maps on decode.

Extension points: :func:`register_encoder` (by exact type, then by ``isinstance``),
:func:`register_encoder_predicate` (so that, say, torch tensors are recognised without
importing torch) and :func:`register_tag`. Unknown tags decode to :class:`Tagged`.
Malformed input raises :class:`CBORDecodeError` carrying the byte offset.

This module is the codec's API, the name packs and tools import; the codec itself is
``protocol/cbor_base.py`` (types, errors, registries), ``protocol/cbor_encode.py`` and
``protocol/cbor_decode.py``.
"""

from __future__ import annotations

from .protocol.cbor_base import (
    TAG_FLOAT,
    TAG_MAP,
    TAG_TUPLE,
    CBORDecodeError,
    CBOREncodeError,
    DecodeFn,
    EncodeFn,
    Raw,
    Simple,
    Tagged,
    register_encoder,
    register_encoder_predicate,
    register_tag,
)
from .protocol.cbor_decode import loads, loads_all
from .protocol.cbor_encode import dumps, encode_into

__all__ = [
    "CBORDecodeError",
    "CBOREncodeError",
    "Raw",
    "Simple",
    "Tagged",
    "TAG_FLOAT",
    "TAG_MAP",
    "TAG_TUPLE",
    "dumps",
    "encode_into",
    "loads",
    "register_encoder",
    "register_encoder_predicate",
    "register_tag",
]
