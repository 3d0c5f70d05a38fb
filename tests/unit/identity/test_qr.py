"""The enrollment's QR PNG: a valid PNG with exactly the pixels of qrcode's own image."""

from __future__ import annotations

import base64
import io
import zlib

import png  # pypng, which qrcode[png] brings
import pytest
import qrcode
from qrcode.image.pure import PyPNGImage

from services.identity.adapters.qr import BORDER, BOX, png_1bit, qr_png, qr_png_base64

URIS = [
    "otpauth://totp/Switchboard:c-1?secret=JBSWY3DPEHPK3PXP&issuer=Switchboard",
    "otpauth://totp/Acme%20Bank:p-25f054cbf1084d2b80137a6aab12a78a"
    "?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme%20Bank",
    "x",
]


def pixels(data: bytes) -> tuple[int, int, list[list[int]]]:
    width, height, rows, _ = png.Reader(bytes=data).read()
    return width, height, [list(row) for row in rows]


@pytest.mark.parametrize("uri", URIS)
def test_the_png_has_exactly_the_pixels_of_qrcodes_own_image(uri: str) -> None:
    theirs = io.BytesIO()
    qrcode.make(uri, image_factory=PyPNGImage, box_size=BOX, border=BORDER).save(theirs)
    assert pixels(qr_png(uri)) == pixels(theirs.getvalue())


def test_a_small_matrix_pixel_by_pixel() -> None:
    matrix = [[True, False, True], [False, True, False]]  # 3 x 2 cells
    width, height, rows = pixels(png_1bit(matrix, 3))
    assert (width, height) == (9, 6)
    assert rows[0] == [0, 0, 0, 1, 1, 1, 0, 0, 0]  # dark is black (0)
    assert rows[2] == rows[0] and rows[3] == [1, 1, 1, 0, 0, 0, 1, 1, 1]
    assert rows[5] == rows[3]


def test_every_chunk_checksum_and_the_signature_are_right() -> None:
    data = qr_png(URIS[0])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, kinds = 8, []
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        crc = int.from_bytes(data[at + 8 + length : at + 12 + length], "big")
        assert crc == zlib.crc32(kind + body)
        kinds.append(kind)
        at += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def test_base64_is_the_png() -> None:
    assert base64.b64decode(qr_png_base64(URIS[0])) == qr_png(URIS[0])
