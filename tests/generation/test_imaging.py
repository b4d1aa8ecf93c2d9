from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile
from PIL.PngImagePlugin import PngInfo

from generation.images import imaging
from generation.images.imaging import ImageRejected, preview_image, process_image

SECRET = "Secret-location-42"


def _picture(size: tuple[int, int] = (160, 120), mode: str = "RGB") -> Image.Image:
    """Something with real content: a gradient in each channel, and noise."""
    red = Image.linear_gradient("L").resize(size)
    green = Image.linear_gradient("L").rotate(90).resize(size)
    blue = Image.effect_noise(size, 40)
    picture = Image.merge("RGB", (red, green, blue))
    if mode == "RGBA":
        picture.putalpha(Image.linear_gradient("L").resize(size))
    return picture


def _encode(image: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _is_close(colour: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    """Within JPEG's error of the expected colour."""
    return all(abs(got - want) < 40 for got, want in zip(colour, expected, strict=True))


def _png_chunks(data: bytes) -> list[bytes]:
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunks.append(data[position + 4 : position + 8])
        position += 12 + length
    return chunks


def _webp_chunks(data: bytes) -> list[bytes]:
    position, chunks = 12, []
    while position < len(data):
        kind = data[position : position + 4]
        (length,) = struct.unpack("<I", data[position + 4 : position + 8])
        chunks.append(kind)
        position += 8 + length + (length & 1)
    return chunks


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def _png_header_only(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few dozen bytes that claims width×height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = SECRET
    exif[ExifTags.Base.Software] = SECRET
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (35.0, 39.0, 29.0)
    return exif


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _webp_header_only(width: int, height: int) -> bytes:
    """The start of an extended WebP file that claims width×height pixels."""
    vp8x = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(vp8x))
        + b"WEBP"
        + b"VP8X"
        + struct.pack("<I", len(vp8x))
        + vp8x
    )


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def _icc_with_red_and_green_swapped() -> bytes:
    """A minimal ICC v2 RGB profile whose red primary is sRGB's green and the
    other way round: pure red under it is pure green in sRGB."""
    red, green, blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    text = b"Swapped primaries\0"
    description = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 78
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0233) + b"\0\0"  # gamma 2.2
    tags = [
        (b"desc", description),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(*green)),
        (b"gXYZ", _xyz(*red)),
        (b"bXYZ", _xyz(*blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", offset + len(body))
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + body


def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_each_accepted_format_becomes_a_png_a_webp_and_a_thumbnail(settings, image_format):
    settings.STUDIO_IMAGE_THUMBNAIL_SIZE = 200
    processed = process_image(_encode(_picture((800, 600)), image_format))

    assert (processed.width, processed.height) == (800, 600)
    png, webp, thumbnail = _open(processed.png), _open(processed.webp), _open(processed.thumbnail)
    assert (png.format, png.size, png.mode) == ("PNG", (800, 600), "RGB")
    assert (webp.format, webp.size) == ("WEBP", (800, 600))
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (200, 150))
    assert (processed.thumbnail_width, processed.thumbnail_height) == (200, 150)
    assert len(processed.webp) < len(processed.png)


def test_a_png_comes_back_with_the_same_pixels():
    picture = _picture((64, 48))
    processed = process_image(_encode(picture, "PNG"))
    assert _open(processed.png).tobytes() == picture.tobytes()


@pytest.mark.parametrize(
    ("image_format", "params"),
    [
        ("JPEG", {"exif": _exif_with_gps(), "icc_profile": _srgb_icc(), "xmp": SECRET.encode()}),
        ("WEBP", {"exif": _exif_with_gps(), "icc_profile": _srgb_icc(), "xmp": SECRET.encode()}),
        ("PNG", {"exif": _exif_with_gps(), "icc_profile": _srgb_icc()}),
    ],
)
def test_metadata_of_the_input_is_gone_from_every_output(image_format, params):
    params = dict(params)
    if image_format == "PNG":
        text = PngInfo()
        text.add_text("Comment", SECRET)
        text.add_text("XML:com.adobe.xmp", SECRET, zip=True)
        params["pnginfo"] = text
    data = _encode(_picture((500, 400)), image_format, **params)
    # The input really does carry what must not survive.
    source = _open(data)
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert "icc_profile" in source.info

    processed = process_image(data)

    assert set(_png_chunks(processed.png)) == {b"IHDR", b"IDAT", b"IEND"}
    for output in (processed.webp, processed.thumbnail):
        assert set(_webp_chunks(output)) <= {b"VP8 ", b"VP8L"}
    for output in (processed.png, processed.webp, processed.thumbnail):
        assert SECRET.encode() not in output
        image = _open(output)
        assert not image.getexif()
        assert not {"exif", "xmp", "icc_profile", "Comment", "XML:com.adobe.xmp"} & set(image.info)


def test_exif_orientation_is_applied_to_the_pixels():
    # Red on the left, blue on the right, stored sideways: orientation 6 means
    # "turn 90° clockwise to show", which brings the left side to the top.
    picture = Image.new("RGB", (80, 40), "red")
    picture.paste("blue", (40, 0, 80, 40))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    processed = process_image(_encode(picture, "JPEG", exif=exif, quality=95))

    assert (processed.width, processed.height) == (40, 80)
    upright = _open(processed.png)
    assert _is_close(upright.getpixel((20, 10)), (255, 0, 0))
    assert _is_close(upright.getpixel((20, 70)), (0, 0, 255))
    assert not upright.getexif()


@pytest.mark.parametrize("size", [(50_000, 50_000), (12_000, 12_000), (40_000, 1_001)])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_header_claiming_huge_dimensions_is_refused_before_decoding(monkeypatch, size):
    _no_decoding(monkeypatch)
    data = _png_header_only(*size)
    assert len(data) < 200

    with pytest.raises(ImageRejected) as refused:
        process_image(data)
    assert refused.value.code == "image_too_large"
    with pytest.raises(ImageRejected) as refused:
        preview_image(data)
    assert refused.value.code == "image_too_large"


def test_a_webp_claiming_huge_dimensions_is_refused_before_pillow_opens_it(monkeypatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow opened the file")

    monkeypatch.setattr(Image, "open", refuse)
    # 7000² is within Pillow's own limits, past ours.
    with pytest.raises(ImageRejected) as refused:
        process_image(_webp_header_only(7_000, 7_000))
    assert refused.value.code == "image_too_large"


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillows_bomb_warning_made_an_error_is_refused_too(monkeypatch):
    _no_decoding(monkeypatch)
    # 12000² is past Pillow's warning threshold and short of its error one.
    with pytest.raises(ImageRejected) as refused:
        process_image(_png_header_only(12_000, 12_000))
    assert refused.value.code == "image_too_large"


def test_a_real_image_over_the_pixel_setting_is_refused_without_decoding(settings, monkeypatch):
    settings.STUDIO_IMAGE_MAX_PIXELS = 100 * 100
    small_file = _encode(Image.new("RGB", (400, 300), "white"), "PNG")
    within_limit = _encode(Image.new("RGB", (100, 100), "white"), "PNG")
    assert process_image(within_limit).width == 100

    _no_decoding(monkeypatch)
    with pytest.raises(ImageRejected) as refused:
        process_image(small_file)
    assert refused.value.code == "image_too_large"
    assert "400 × 300" in refused.value.message


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (_encode(Image.new("P", (20, 20)), "GIF"), "unsupported_format"),
        (_encode(Image.new("RGB", (20, 20)), "BMP"), "unsupported_format"),
        (_encode(Image.new("RGB", (20, 20)), "TIFF"), "unsupported_format"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
            "unsupported_format",
        ),
        (b"An error occurred: quota exceeded", "unsupported_format"),
        (random.Random(7).randbytes(4096), "unsupported_format"),
        (_encode(_picture((300, 200)), "PNG")[:2000], "unreadable_image"),
        (_encode(_picture((300, 200)), "JPEG")[:1500], "unreadable_image"),
        (_encode(_picture((300, 200)), "WEBP")[:800], "unreadable_image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "unreadable_image"),
        (b"", "empty_image"),
    ],
    ids=[
        "gif",
        "bmp",
        "tiff",
        "svg",
        "text",
        "random-bytes",
        "truncated-png",
        "truncated-jpeg",
        "truncated-webp",
        "png-signature-only",
        "empty",
    ],
)
def test_files_that_are_not_whole_png_jpeg_or_webp_images_are_refused(data, code):
    with pytest.raises(ImageRejected) as refused:
        process_image(data)
    assert refused.value.code == code
    assert refused.value.message.startswith("The model service sent")
    with pytest.raises(ImageRejected) as refused:
        preview_image(data)
    assert refused.value.code == code


def test_a_png_with_a_damaged_checksum_is_refused():
    data = bytearray(_encode(_picture((64, 64)), "PNG"))
    data[40] ^= 0xFF  # inside the first IDAT chunk
    with pytest.raises(ImageRejected) as refused:
        process_image(bytes(data))
    assert refused.value.code == "unreadable_image"


def test_a_file_over_the_byte_limit_is_refused_unread(monkeypatch):
    monkeypatch.setattr(imaging, "MAX_INPUT_BYTES", 1000)
    with pytest.raises(ImageRejected) as refused:
        process_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000)
    assert refused.value.code == "file_too_large"


@pytest.mark.parametrize(
    ("size", "thumbnail"),
    [
        ((400, 200), (100, 50)),
        ((300, 600), (50, 100)),
        ((100, 100), (100, 100)),
        ((60, 30), (60, 30)),
        ((1000, 1), (100, 1)),
    ],
)
def test_thumbnails_have_the_configured_longer_side_and_are_never_enlarged(
    settings, size, thumbnail
):
    settings.STUDIO_IMAGE_THUMBNAIL_SIZE = 100
    processed = process_image(_encode(_picture(size), "PNG"))
    assert (processed.thumbnail_width, processed.thumbnail_height) == thumbnail
    assert _open(processed.thumbnail).size == thumbnail


def test_transparency_is_kept():
    processed = process_image(_encode(_picture((120, 80), mode="RGBA"), "PNG"))
    assert _open(processed.png).mode == "RGBA"
    assert _open(processed.webp).mode == "RGBA"
    assert _open(processed.thumbnail).mode == "RGBA"


def test_a_palette_image_with_a_transparent_colour_becomes_rgba():
    picture = Image.new("P", (40, 40), 0)
    picture.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    picture.paste(1, (20, 0, 40, 40))
    processed = process_image(_encode(picture, "PNG", transparency=0))
    png = _open(processed.png)
    assert png.mode == "RGBA"
    assert png.getpixel((5, 5))[3] == 0
    assert png.getpixel((30, 5)) == (0, 0, 255, 255)


def test_an_rgb_png_with_a_transparent_colour_becomes_rgba():
    picture = Image.new("RGB", (20, 20), (1, 2, 3))
    picture.paste((200, 100, 50), (10, 0, 20, 20))
    png = _open(process_image(_encode(picture, "PNG", transparency=(1, 2, 3))).png)
    assert png.getpixel((5, 5))[3] == 0
    assert png.getpixel((15, 5)) == (200, 100, 50, 255)


def test_colours_are_converted_to_srgb_before_the_profile_is_dropped():
    picture = Image.new("RGB", (40, 40), (255, 0, 0))
    data = _encode(picture, "PNG", icc_profile=_icc_with_red_and_green_swapped())
    png = _open(process_image(data).png)
    assert "icc_profile" not in png.info
    assert _is_close(png.getpixel((20, 20)), (0, 255, 0))


def test_an_unusable_colour_profile_is_dropped_and_the_pixels_kept():
    picture = Image.new("RGB", (40, 40), (255, 0, 0))
    png = _open(process_image(_encode(picture, "PNG", icc_profile=b"not a profile")).png)
    assert "icc_profile" not in png.info
    assert png.getpixel((20, 20)) == (255, 0, 0)


def test_cmyk_jpeg_becomes_rgb():
    processed = process_image(_encode(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG"))
    png = _open(processed.png)
    assert png.mode == "RGB"
    assert _is_close(png.getpixel((20, 20)), (255, 0, 0))


def test_sixteen_bit_greyscale_is_scaled_to_eight_bits_rather_than_clipped():
    picture = Image.new("I;16", (3, 1))
    for x, value in enumerate((65535, 32896, 257)):
        picture.putpixel((x, 0), value)
    png = _open(process_image(_encode(picture, "PNG")).png)
    assert png.mode == "RGB"
    assert [png.getpixel((x, 0)) for x in range(3)] == [(255,) * 3, (128,) * 3, (1,) * 3]


def test_preview_is_a_small_webp_without_metadata():
    data = _encode(_picture((1600, 900)), "JPEG", exif=_exif_with_gps(), quality=90)
    preview = preview_image(data, max_size=256)
    image = _open(preview)
    assert image.format == "WEBP"
    assert max(image.size) == 256
    assert image.size == (256, 144)
    assert SECRET.encode() not in preview
    assert set(_webp_chunks(preview)) <= {b"VP8 ", b"VP8L"}


def test_a_small_preview_is_not_enlarged():
    image = _open(preview_image(_encode(_picture((120, 90)), "PNG"), max_size=512))
    assert image.size == (120, 90)
