"""Verification and conversion of the images that model services send back.

The bytes come from outside, so nothing about them is trusted: the format is
sniffed by Pillow but only PNG, JPEG and WebP are accepted; the pixel count is
checked against STUDIO_IMAGE_MAX_PIXELS from the header alone, before any
pixel is decoded (a few kilobytes of PNG can claim 50000×50000 pixels); and
the file is verified and then decoded in full, so that a truncated or damaged
file is refused here rather than shown broken later.

What is kept is the picture and nothing else. EXIF orientation is applied to
the pixels, colours are brought to sRGB when an ICC profile says otherwise,
and the outputs are encoded from a fresh image built from pixel data alone:
no EXIF (GPS, camera, software), XMP, ICC or PNG text chunk of the input
survives into what is stored or served.

`process_image` makes the stored set (a PNG, a WebP copy and a WebP
thumbnail); `preview_image` makes the small WebP shown while a model is still
drawing. Both raise `ImageRejected` with a code and a message the person can
read.
"""

from __future__ import annotations

import contextlib
import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

# Model services send a few megabytes at most; anything near this is not an
# image we asked for, and reading it would only cost memory.
MAX_INPUT_BYTES = 50 * 1024 * 1024

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")

# Speed over the last few percent of size (the budget is 150 ms for a
# 1024×1024 photograph on two cores). RLE keeps PNG's per-row filters, which
# are what compress photographs, and skips the slow string matching that buys
# little on them.
_PNG_OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_RLE}
# WebP method 0-6 trades encoding time for size. On a 1024×1024 photograph 0
# is ~3× faster than the default 4 for ~25% more bytes; 2 would save most of
# those on smooth pictures but is slower and larger than 0 on grainy ones. The
# thumbnail is small enough for 2 (2% over 4).
_WEBP_METHOD = 0
_THUMBNAIL_WEBP_METHOD = 2
_PREVIEW_WEBP_QUALITY = 70

# Errors Pillow's decoders raise on damaged data (SyntaxError is what the PNG
# plugin raises on a bad chunk or checksum).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
    zlib.error,
)

_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


class ImageRejected(Exception):
    """An image from a model service that will not be stored or shown."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    png: bytes
    webp: bytes
    thumbnail: bytes  # WebP
    width: int
    height: int
    thumbnail_width: int
    thumbnail_height: int


def process_image(data: bytes) -> ProcessedImage:
    """Verify an image from a model service and encode it as a metadata-free PNG,
    a WebP copy at STUDIO_IMAGE_WEBP_QUALITY, and a WebP thumbnail whose longer
    side is STUDIO_IMAGE_THUMBNAIL_SIZE (smaller images are not enlarged).

    Raises ImageRejected with one of the codes: empty_image, file_too_large,
    unsupported_format, unreadable_image, image_too_large.
    """
    image = _clean_pixels(_decode(data))
    # The PNG is the slowest output and the WebP encoders release the GIL: on
    # two cores, a second thread makes both WebPs while this one writes the
    # PNG. Pillow's save() writes options onto the image it encodes, hence the
    # copy. A pool per call, not per process, so forked Celery workers inherit
    # no threads.
    with ThreadPoolExecutor(max_workers=1) as pool:
        webps = pool.submit(
            _encode_webps,
            image.copy(),
            quality=settings.STUDIO_IMAGE_WEBP_QUALITY,
            thumbnail_size=settings.STUDIO_IMAGE_THUMBNAIL_SIZE,
        )
        png = _encode_png(image)
        webp, thumbnail, (thumbnail_width, thumbnail_height) = webps.result()
    return ProcessedImage(
        png=png,
        webp=webp,
        thumbnail=thumbnail,
        width=image.width,
        height=image.height,
        thumbnail_width=thumbnail_width,
        thumbnail_height=thumbnail_height,
    )


def _encode_webps(
    image: Image.Image, *, quality: int, thumbnail_size: int
) -> tuple[bytes, bytes, tuple[int, int]]:
    """The full-size WebP copy, the WebP thumbnail and the thumbnail's size."""
    webp = _encode_webp(image, quality, _WEBP_METHOD)
    thumbnail = _fit_within(image, thumbnail_size)
    return webp, _encode_webp(thumbnail, quality, _THUMBNAIL_WEBP_METHOD), thumbnail.size


def preview_image(data: bytes, *, max_size: int = 512) -> bytes:
    """A small WebP (longer side at most `max_size`) of a partial rendering,
    checked as strictly as a finished image and stripped of its metadata."""
    if max_size < 1:
        raise ValueError("max_size must be at least 1")
    image = _clean_pixels(_decode(data, draft_size=max_size))
    return _encode_webp(_fit_within(image, max_size), _PREVIEW_WEBP_QUALITY, 0)


def _decode(data: bytes, *, draft_size: int | None = None) -> Image.Image:
    """The first frame of `data`, fully decoded, after every check has passed."""
    if not data:
        raise ImageRejected("empty_image", _("The model service sent an empty image."))
    if len(data) > MAX_INPUT_BYTES:
        raise ImageRejected(
            "file_too_large",
            _("The model service sent an image file larger than %(limit)s MB.")
            % {"limit": MAX_INPUT_BYTES // (1024 * 1024)},
        )
    if (canvas := _webp_canvas_size(data)) is not None:
        # libwebp sets up the whole canvas when Pillow opens the file, so a
        # WebP's size is read from its header here, before Pillow sees it.
        _refuse_too_many_pixels(*canvas)
    image = _open(data)
    _refuse_too_many_pixels(*image.size)
    try:
        # verify() reads the whole file (PNG chunk checksums among others) and
        # leaves the image unusable, hence the second open.
        image.verify()
        image = _open(data)
        if draft_size is not None and image.format == "JPEG":
            # JPEG can decode at 1/2, 1/4 or 1/8 scale: previews skip most of the work.
            image.draft(None, (draft_size, draft_size))
        image.load()
    except ImageRejected:
        raise
    except _DECODE_ERRORS as exc:
        raise _unreadable() from exc
    return image


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses at twice its own MAX_IMAGE_PIXELS and only warns
        # between once and twice (an error only where warnings are made
        # errors); the check against our setting is what enforces the limit.
        raise _too_large() from exc
    except UnidentifiedImageError as exc:
        if data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
            raise _unreadable() from exc
        raise ImageRejected(
            "unsupported_format",
            _("The model service sent a file that is not a PNG, JPEG or WebP image."),
        ) from exc
    except _DECODE_ERRORS as exc:
        raise _unreadable() from exc


def _webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a WebP file's first chunk, or None when `data` is
    not a WebP file or its header is too damaged to tell (Pillow then refuses it)."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit width-1 and height-1
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy keyframe
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:  # lossless: 14-bit width-1, height-1
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _refuse_too_many_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise _unreadable()
    if width * height > settings.STUDIO_IMAGE_MAX_PIXELS:
        raise _too_large(width, height)


def _unreadable() -> ImageRejected:
    return ImageRejected(
        "unreadable_image", _("The model service sent an image that could not be read.")
    )


def _too_large(width: int | None = None, height: int | None = None) -> ImageRejected:
    if width is None or height is None:
        message = _("The model service sent an image too large to handle.")
    else:
        message = _(
            "The model service sent an image too large to handle (%(width)s × %(height)s pixels)."
        ) % {"width": width, "height": height}
    return ImageRejected("image_too_large", message)


def _clean_pixels(image: Image.Image) -> Image.Image:
    """The picture as the person should see it, in 8-bit sRGB (with alpha when it
    has any), as a new image that carries nothing but pixels."""
    _apply_exif_orientation(image)
    image = _to_srgb(image)
    image = _to_rgb_or_rgba(image)
    # A new image has an empty `info` and no EXIF, XMP or palette to carry over.
    fresh = Image.new(image.mode, image.size)
    fresh.paste(image)
    return fresh


def _apply_exif_orientation(image: Image.Image) -> None:
    # A damaged EXIF block must not cost the person the image: orientation is
    # the only thing read from it, and upright-as-stored is a fair fallback.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert the pixels from the image's ICC profile to sRGB, since the profile
    itself is dropped with the rest of the metadata. Most images are sRGB already."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if image.mode != "CMYK" and "srgb" in ImageCms.getProfileDescription(profile).lower():
            return image
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(
            image, profile, _srgb_profile(), outputMode=output_mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A profile littleCMS cannot use: the pixels as stored are the best guess.
        return image
    return converted if converted is not None else image


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA" or (image.mode == "RGB" and "transparency" not in image.info):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        image = _to_8bit_grey(image)
    has_alpha = "A" in image.mode or "a" in image.mode or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit) greyscale scaled to 8 bits; a plain conversion clips
    everything above 255 to white."""
    if image.mode != "I":
        image = image.convert("F" if image.mode == "F" else "I")
    highest = image.getextrema()[1]
    if isinstance(highest, (int, float)) and highest > 255:
        scale = 255 / max(65535, highest)
        image = image.point(lambda value: value * scale)
    return image.convert("L")


def _fit_within(image: Image.Image, size: int) -> Image.Image:
    """The image scaled so that its longer side is `size`; never enlarged."""
    width, height = image.size
    if max(width, height) <= size:
        return image
    if width >= height:
        target = (size, max(1, round(height * size / width)))
    else:
        target = (max(1, round(width * size / height)), size)
    # reducing_gap first shrinks by whole factors (cheap box filter), then
    # Lanczos does the rest: near-Lanczos quality at a fraction of the cost.
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **_PNG_OPTIONS)
    return buffer.getvalue()


def _encode_webp(image: Image.Image, quality: int, method: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=quality, method=method)
    return buffer.getvalue()
