"""The runtime's CBOR codec: round trips, exact bytes, errors, extensions."""

from __future__ import annotations

import collections
import enum
import math
import struct

import pytest

from pyisolate_runtime import cbor
from pyisolate_runtime.cbor import CBORDecodeError, CBOREncodeError, Tagged, dumps, loads


def rt(x):
    return loads(dumps(x))


@pytest.mark.parametrize(
    "value",
    [
        0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53, 2**53 + 1, 2**63, 2**64 - 1,
        -1, -24, -25, -256, -257, -(2**32), -(2**63), -(2**64),
        2**64, 2**64 + 1, 2**100, -(2**64) - 1, -(2**100), 10**40,
    ],
)
def test_integers_round_trip_exactly(value):
    out = rt(value)
    assert out == value and type(out) is int


def test_integer_encodings_use_the_shortest_head_and_bignum_tags():
    assert dumps(0) == b"\x00"
    assert dumps(23) == b"\x17"
    assert dumps(24) == b"\x18\x18"
    assert dumps(-1) == b"\x20"
    assert dumps(1000) == b"\x19\x03\xe8"
    assert dumps(2**64 - 1) == b"\x1b" + b"\xff" * 8
    assert dumps(-(2**64)) == b"\x3b" + b"\xff" * 8
    assert dumps(2**64) == b"\xc2\x49\x01" + b"\x00" * 8
    assert dumps(-(2**64) - 1) == b"\xc3\x49\x01" + b"\x00" * 8


def test_floats_encode_as_float64_and_decode_from_every_width():
    assert dumps(1.5) == b"\xfb" + struct.pack(">d", 1.5)
    assert loads(b"\xf9\x3e\x00") == 1.5  # half
    assert loads(b"\xfa" + struct.pack(">f", 0.25)) == 0.25  # single
    assert loads(b"\xfb" + struct.pack(">d", 0.1)) == 0.1
    assert rt(float("inf")) == float("inf")
    assert rt(float("-inf")) == float("-inf")
    assert math.isnan(rt(float("nan")))
    assert math.isnan(loads(b"\xf9\x7e\x00"))
    assert type(rt(2.0)) is float and rt(-0.0) == 0.0 and math.copysign(1, rt(-0.0)) == -1


def test_strings_bytes_and_simple_values():
    assert rt("") == "" and rt("héllo ✓ 𝄞") == "héllo ✓ 𝄞"
    assert rt("x" * 70000) == "x" * 70000
    assert rt(b"") == b"" and rt(b"\x00\xff" * 100) == b"\x00\xff" * 100
    assert rt(bytearray(b"abc")) == b"abc"
    assert rt(memoryview(b"abcdef")[1:4]) == b"bcd"
    assert rt(True) is True and rt(False) is False and rt(None) is None
    assert loads(b"\xf7") is None  # undefined
    assert loads(b"\xf0") == cbor.Simple(16)


def test_tuples_and_lists_stay_distinct_through_nesting():
    value = {"a": [1, (2, 3), [(4,), ()]], "b": ((1, [2]),), "c": []}
    out = rt(value)
    assert out == value
    assert type(out["a"]) is list and type(out["a"][1]) is tuple
    assert type(out["a"][2][0]) is tuple and type(out["b"][0][1]) is list
    assert dumps((1,)) == b"\xd9\xa2\x1c\x81\x01"


def test_nested_maps_with_non_string_keys():
    value = {1: "one", "two": {b"k": [1.5, None]}, -5: {True: False}, (1, 2): "tuple key"}
    assert rt(value) == value
    assert loads(b"\xa1\x82\x01\x02\x03") == {(1, 2): 3}  # an array key becomes a tuple
    deep: list = []
    cur = deep
    for _ in range(200):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    assert rt(deep) == deep


def test_maps_with_non_scalar_keys_are_tagged_259_and_others_are_not():
    assert dumps({"a": 1, 2: 3}).hex() == "a2616101" + "0203"
    tagged = dumps({"a": 1, (1, 2): 3})
    assert tagged.startswith(b"\xd9\x01\x03\xa2")  # tag 259 around the map
    assert loads(tagged) == {"a": 1, (1, 2): 3}
    assert dumps({b"k": 1}).startswith(b"\xd9\x01\x03")
    assert rt({"outer": {(1,): {b"x": 2}}}) == {"outer": {(1,): {b"x": 2}}}
    with pytest.raises(CBORDecodeError, match="tag 259"):
        loads(b"\xd9\x01\x03\x80")


def test_raw_items_are_written_as_they_are():
    inner = dumps([1, "two", (3,)])
    assert dumps({"v": cbor.Raw(inner)}) == dumps({"v": [1, "two", (3,)]})


def test_too_deep_values_are_a_clear_encode_error():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(CBOREncodeError, match="nest at most about 500 levels"):
        dumps(deep)


def test_subclasses_of_builtin_types_encode_as_their_base():
    class Color(enum.IntEnum):
        RED = 3

    od = collections.OrderedDict([("x", 1)])
    assert rt(Color.RED) == 3 and type(rt(Color.RED)) is int
    assert rt(od) == {"x": 1}
    assert rt(collections.defaultdict(int, {"y": 2})) == {"y": 2}


def test_indefinite_length_items_decode():
    assert loads(b"\x9f\x01\x02\xff") == [1, 2]
    assert loads(b"\xbf\x61a\x01\xff") == {"a": 1}
    assert loads(b"\x5f\x42\x01\x02\x41\x03\xff") == b"\x01\x02\x03"
    assert loads(b"\x7f\x62ab\x61c\xff") == "abc"
    assert loads(b"\x9f\x9f\xff\xbf\xff\xff") == [[], {}]


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"", "end of input"),
        (b"\x18", "end of input"),
        (b"\x82\x01", "past the end"),
        (b"\x82\x01\x18", "end of input"),
        (b"\x63ab", "past the end"),
        (b"\x45abc", "past the end"),
        (b"\x1c", "reserved"),
        (b"\x01\x02", "extra data"),
        (b"\x62\xff\xfe", "UTF-8"),
        (b"\xff", "unexpected break"),
        (b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", "past the end"),
        (b"\xc2\x01", "bignum"),
        (b"\xd9\xa2\x1c\x01", "tuple"),
        (b"\x5f\x61a\xff", "wrong type"),
        (b"\xa1\xa0\x01", "cannot be a Python dict key"),
    ],
)
def test_malformed_input_raises_with_offset(data, fragment):
    with pytest.raises(CBORDecodeError) as info:
        loads(data)
    assert fragment in str(info.value)
    assert isinstance(info.value.offset, int) and 0 <= info.value.offset <= len(data)


def test_decode_error_reports_the_offset_of_the_bad_item():
    with pytest.raises(CBORDecodeError) as info:
        loads(b"\x83\x01\x02\x1c")
    assert info.value.offset == 3


def test_unencodable_objects_raise_a_clear_error():
    with pytest.raises(CBOREncodeError, match="cannot encode an object of type builtins.set"):
        dumps({1, 2})
    loop: list = []
    loop.append(loop)
    with pytest.raises(CBOREncodeError):
        dumps(loop)


def test_unknown_tags_decode_to_tagged_and_re_encode():
    data = b"\xd9\x03\xe8\x82\x01\x02"  # tag 1000 [1, 2]
    value = loads(data)
    assert value == Tagged(1000, [1, 2])
    assert dumps(value) == data


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


class Point3(Point):
    pass


class Opaque:
    pass


class Plain:
    pass


def test_registered_encoders_tags_and_predicates():
    cbor.register_encoder(Point, lambda p: (41990, [p.x, p.y]))
    cbor.register_tag(41990, lambda c: Point(*c))
    p = rt(Point(1, (2, 3)))
    assert isinstance(p, Point) and (p.x, p.y) == (1, (2, 3))
    q = rt([Point3(4, 5)])[0]  # a subclass goes through the isinstance rule
    assert isinstance(q, Point) and q.x == 4
    cbor.register_encoder_predicate(lambda o: type(o).__name__ == "Opaque", lambda o: (41991, "opaque"))
    assert loads(dumps({"o": Opaque()})) == {"o": Tagged(41991, "opaque")}
    # hooks given to loads win over registered tags
    assert loads(dumps(Point(1, 2)), {41990: lambda c: ("hooked", c)}) == ("hooked", [1, 2])


def test_registered_decoders_can_be_switched_off():
    cbor.register_tag(41993, lambda c: ("decoded", c))
    data = dumps([Tagged(41993, 1), (2,), 2**65])
    assert loads(data) == [("decoded", 1), (2,), 2**65]
    assert loads(data, registered=False) == [Tagged(41993, 1), (2,), 2**65]


def test_default_hook_is_tried_last_and_may_decline():
    def default(o):
        return (41992, "fn") if callable(o) else None

    assert loads(dumps([print], default)) == [Tagged(41992, "fn")]
    with pytest.raises(CBOREncodeError):
        dumps(Plain(), default)


def test_builtin_tags_cannot_be_replaced():
    with pytest.raises(ValueError):
        cbor.register_tag(41500, lambda c: c)


def test_a_call_message_round_trips():
    msg = {"t": "call", "id": 7, "s": "Svc", "m": "run", "a": [2**64 - 1, (1, "x"), b"\x00"], "k": {"seed": -(2**63)}}
    assert rt(msg) == msg


def test_whole_number_floats_are_marked_and_come_back_as_floats():
    from pyisolate_runtime import cbor

    assert cbor.dumps(1.0) == bytes.fromhex("d9a222fb3ff0000000000000")
    assert cbor.dumps(2.5) == bytes.fromhex("fb4004000000000000")
    # A JavaScript peer writes the mark around an integer.
    back = cbor.loads(bytes.fromhex("d9a22201"))
    assert back == 1.0 and type(back) is float
    assert [type(x) for x in cbor.loads(cbor.dumps([1.0, 1]))] == [float, int]
