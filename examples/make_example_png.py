"""Writes ``examples/input/example.png``, the input of ``workflows/image_pipeline.json``.

A 64x64 RGB image with red = 4x, green = 4y and blue = 8 * (x xor y) (mod 256). Rows use
each of PNG's five filters in turn, so readers are exercised on all of them. Standard
library only: ``python3 examples/make_example_png.py``.
"""
import os
import struct
import zlib

WIDTH = HEIGHT = 64


def pixel(x: int, y: int) -> tuple:
    return ((4 * x) % 256, (4 * y) % 256, (8 * (x ^ y)) % 256)


def paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filtered(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray()
    for i, value in enumerate(row):
        left = row[i - bpp] if i >= bpp else 0
        up = prev[i]
        upleft = prev[i - bpp] if i >= bpp else 0
        predictor = (0, left, up, (left + up) >> 1, paeth(left, up, upleft))[kind]
        out.append((value - predictor) & 0xFF)
    return bytes([kind]) + bytes(out)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def main() -> None:
    prev = bytes(WIDTH * 3)
    raw = b""
    for y in range(HEIGHT):
        row = bytes(v for x in range(WIDTH) for v in pixel(x, y))
        raw += filtered(y % 5, row, prev, 3)
        prev = row
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "input", "example.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(png)
    print(f"wrote {path} ({len(png)} bytes)")


if __name__ == "__main__":
    main()
