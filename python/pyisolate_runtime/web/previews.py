"""Preview images as ComfyUI sends them: ``("JPEG" | "PNG", PIL image, max_size)`` tuples,
encoded here (in the process that made the image, which has PIL) before they cross to
the host as bytes."""
from __future__ import annotations

import io
from typing import Any, Optional, Tuple

__all__ = ["encode_preview"]


def encode_preview(preview: Any) -> Optional[Tuple[str, bytes]]:
    """``(format, encoded image)`` for a preview tuple (or for ``(format, bytes)``); None for None.

    The image is fitted into ``max_size`` × ``max_size`` when one is given, and saved as
    ComfyUI saves previews (quality 95, compress level 1).
    """
    if preview is None:
        return None
    if not isinstance(preview, (tuple, list)) or len(preview) < 2:
        raise TypeError(f"a preview is a (format, image, max_size) tuple, got {type(preview).__name__}")
    fmt = str(preview[0]).upper()
    image = preview[1]
    max_size = preview[2] if len(preview) > 2 else None
    if isinstance(image, (bytes, bytearray, memoryview)):
        return fmt, bytes(image)
    from PIL import Image, ImageOps

    if max_size is not None:
        resampling = Image.Resampling.BILINEAR if hasattr(Image, "Resampling") else Image.LANCZOS
        image = ImageOps.contain(image, (max_size, max_size), resampling)
    out = io.BytesIO()
    image.save(out, format=fmt, quality=95, compress_level=1)
    return fmt, out.getvalue()
