"""The QR code of a TOTP enrollment as a PNG: qrcode lays out the modules, and the
PNG is written here with zlib. qrcode's own pure-Python PNG image (through pypng)
cost two thirds of an enrollment's QR (37 of 55 ms on a slow 2-core VM, against
0.7 ms for this writer), in a worker that an IVR's status request may be
waiting for. The pixels are the same (tests/unit/identity/test_qr.py)."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence

BOX = 10  # pixels per module, qrcode's default
BORDER = 4  # modules of quiet zone, the minimum the standard asks for

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def qr_png(text: str) -> bytes:
    import qrcode

    code = qrcode.QRCode(box_size=BOX, border=BORDER)
    code.add_data(text)
    code.make(fit=True)
    return png_1bit(code.get_matrix(), BOX)


def qr_png_base64(text: str) -> str:
    return base64.b64encode(qr_png(text)).decode()


def png_1bit(matrix: Sequence[Sequence[bool]], box: int) -> bytes:
    """A black-on-white 1-bit greyscale PNG of ``matrix`` (True = dark), ``box``
    pixels per cell, no interlacing (PNG spec, sections 5 and 11)."""
    width = len(matrix[0]) * box
    pad = -width % 8
    scanlines = []
    for row in matrix:
        bits = "".join(("0" if dark else "1") * box for dark in row) + "0" * pad
        # Filter type 0 (none) leads every scanline.
        scanlines.append((b"\0" + int(bits, 2).to_bytes((width + pad) // 8, "big")) * box)
    header = struct.pack(">IIBBBBB", width, len(matrix) * box, 1, 0, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(scanlines), 9))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
