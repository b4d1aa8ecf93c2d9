"""The offline demo image model: no key, no network, deterministic.

It paints an abstract picture with Pillow (a soft gradient in a palette chosen
from the prompt, blurred and translucent shapes over it, a caption card with
the template's title or the start of the prompt) and marks every image with a
label that it is a demo and not AI-generated. The same request always gives
the same bytes on the same machine (the fonts installed are part of the
picture). Each image takes about STUDIO_DEMO_IMAGE_SECONDS and sends two
partial previews on the way, a coarse one and a sharper one, so that the page
behaves as it does with a real model.

To exercise the safety-filter path offline: a prompt containing "[filtered]"
(any case) makes the demo withhold every second image, starting with the
first, giving a reason for each in `ImageResult.filtered`; when every image is
withheld (a request for one image) it raises ProviderError("content_filter").
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from generation.providers.base import ProviderError
from generation.providers.images import (
    MAX_IMAGES_PER_REQUEST,
    ImagePreview,
    ImageProvider,
    ImageRequest,
    ImageResult,
    PreviewCallback,
)

MODEL = "studio-demo-image"
FILTER_WORD = "[filtered]"

# Near one megapixel in multiples of 32, as image models draw them.
SIZES = {
    "1:1": (1024, 1024),
    "4:3": (1152, 864),
    "3:4": (864, 1152),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
}

LABELS = {
    "ja": "デモモデル（AI生成ではありません）",
    "en": "DEMO MODEL — not AI-generated",
}
_ASCII_LABEL = "DEMO MODEL - not AI-generated"

# The two partial previews of each image: (reduced by, shown at, blur radius).
_PREVIEW_STAGES = ((16, 256, 6.0), (4, 512, 1.5))

# Soft palettes, light to dark; one is chosen from the prompt.
_PALETTES = (
    ("#fde2d4", "#f7b2b7", "#c3a6dd", "#7f8fd8"),  # dawn
    ("#d8f3ec", "#8fd3d0", "#4a9cc2", "#25557f"),  # lagoon
    ("#eef3e2", "#bcd4a8", "#6f9c72", "#35573f"),  # forest
    ("#fff4cf", "#ffd38a", "#f2a46b", "#c8624c"),  # citrus
    ("#f3d9c8", "#c98f8f", "#7c5c8a", "#2f2c4a"),  # dusk
    ("#fff0f3", "#ffc8d6", "#f28daa", "#96506e"),  # sakura
    ("#f3eefe", "#d4c4f5", "#9d8ce0", "#5a4aa6"),  # lavender
    ("#e4f1fb", "#a9cdea", "#5f8fc7", "#2c3f7a"),  # sky
)

# Where the font files are usually found, by the names Pillow can look up in
# the system font directories; the first that loads is used.
_LATIN_FONTS = {
    "bold": ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf", "arialbd.ttf"),
    "regular": ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "arial.ttf"),
}
_JAPANESE_FONTS = {
    "bold": (
        "NotoSansCJK-Bold.ttc",
        "NotoSansJP-Bold.otf",
        "NotoSansJP-Bold.ttf",
        "ipaexg.ttf",
        "YuGothB.ttc",
        "ヒラギノ角ゴシック W6.ttc",
    ),
    "regular": (
        "NotoSansCJK-Regular.ttc",
        "NotoSansJP-Regular.otf",
        "NotoSansJP-Regular.ttf",
        "ipaexg.ttf",
        "ipagp.ttf",
        "TakaoPGothic.ttf",
        "VL-PGothic-Regular.ttf",
        "fonts-japanese-gothic.ttf",
        "YuGothM.ttc",
        "ヒラギノ角ゴシック W3.ttc",
        "msgothic.ttc",
    ),
}


class DemoImageProvider(ImageProvider):
    name = "demo"
    label = _("Demo model (offline)")

    def model_for(self, tier: str) -> str:
        return MODEL

    def generate(self, request: ImageRequest, *, on_preview: PreviewCallback) -> ImageResult:
        if request.aspect_ratio not in SIZES:
            raise ProviderError(
                "bad_request",
                gettext("The demo model cannot draw images in the shape %(ratio)s.")
                % {"ratio": request.aspect_ratio},
            )
        if not 1 <= request.count <= MAX_IMAGES_PER_REQUEST:
            raise ProviderError(
                "bad_request",
                gettext("The demo model draws between 1 and %(limit)s images at a time.")
                % {"limit": MAX_IMAGES_PER_REQUEST},
            )
        seconds = settings.STUDIO_DEMO_IMAGE_SECONDS
        withholds = FILTER_WORD in request.prompt.lower()
        images: list[bytes] = []
        filtered: list[str] = []
        for index in range(request.count):
            started = time.monotonic()
            if withholds and index % 2 == 0:
                _sleep_until(started + seconds)
                filtered.append(
                    gettext("The demo model withholds images whose prompt says [filtered].")
                )
                continue
            picture = draw_demo_image(request, index)
            for step, stage in enumerate(_PREVIEW_STAGES, start=1):
                _sleep_until(started + seconds * step / 3)
                on_preview(ImagePreview(index, step, _partial(picture, *stage)))
            png = io.BytesIO()
            picture.save(png, "PNG", compress_level=1)
            _sleep_until(started + seconds)
            images.append(png.getvalue())
        if not images:
            raise ProviderError(
                "content_filter",
                gettext(
                    "The demo model withheld the image because the prompt contains "
                    "“[filtered]”. Remove that word to get an image."
                ),
            )
        return ImageResult(images=images, model=MODEL, filtered=filtered)


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def _partial(picture: Image.Image, divisor: int, longer_side: int, blur: float) -> bytes:
    """What a diffusion model shows part-way: the final picture, coarse and blurred."""
    width, height = picture.size
    coarse = picture.reduce(divisor)
    scale = longer_side / max(width, height)
    shown = coarse.resize((round(width * scale), round(height * scale)), Image.Resampling.BICUBIC)
    shown = shown.filter(ImageFilter.GaussianBlur(blur))
    buffer = io.BytesIO()
    shown.save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class _Scene:
    rng: random.Random
    palette: tuple[tuple[int, int, int], ...]
    size: tuple[int, int]


def draw_demo_image(request: ImageRequest, index: int) -> Image.Image:
    """Image `index` of the request as an RGB picture; the same request and index
    always give the same picture."""
    seed = hashlib.sha256(
        "\x00".join(
            (request.prompt, request.negative_prompt, request.aspect_ratio, str(index))
        ).encode()
    ).digest()
    # The palette follows the prompt alone, so that the images of one request
    # belong together; the composition differs from image to image.
    prompt_hash = hashlib.sha256(request.prompt.encode()).digest()
    palette = _PALETTES[prompt_hash[0] % len(_PALETTES)]
    scene = _Scene(
        rng=random.Random(seed),
        palette=tuple(_rgb(colour) for colour in palette),
        size=SIZES[request.aspect_ratio],
    )
    picture = _gradient(scene)
    picture.alpha_composite(_glow_layer(scene))
    _draw_waves(picture, scene)
    picture.alpha_composite(_bubble_layer(scene))
    _draw_caption(picture, request, index)
    return picture.convert("RGB")


def _rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def _gradient(scene: _Scene) -> Image.Image:
    """A mesh gradient: a few colour poles blended by distance on a small grid,
    enlarged smoothly (a small grid is cheap and has no banding once blurred)."""
    rng = scene.rng
    width, height = scene.size
    grid_w, grid_h = (
        max(2, round(48 * width / max(scene.size))),
        max(2, round(48 * height / max(scene.size))),
    )
    poles = [(rng.random(), rng.random(), colour) for colour in scene.palette]
    # The lightest colour twice: the pictures stay airy rather than muddy.
    poles.append((rng.random(), rng.random(), scene.palette[0]))
    grid = Image.new("RGB", (grid_w, grid_h))
    pixels = []
    for y in range(grid_h):
        for x in range(grid_w):
            u, v = x / (grid_w - 1), y / (grid_h - 1)
            weighted = [
                (1 / ((u - px) ** 2 + (v - py) ** 2 + 0.02) ** 1.6, colour)
                for px, py, colour in poles
            ]
            total = sum(weight for weight, _colour in weighted)
            pixels.append(
                tuple(
                    round(sum(weight * colour[channel] for weight, colour in weighted) / total)
                    for channel in range(3)
                )
            )
    grid.putdata(pixels)
    smooth = grid.resize((width // 4, height // 4), Image.Resampling.BICUBIC)
    smooth = smooth.filter(ImageFilter.GaussianBlur(6))
    return smooth.resize((width, height), Image.Resampling.BICUBIC).convert("RGBA")


def _glow_layer(scene: _Scene) -> Image.Image:
    """Large, heavily blurred discs: light through a window, out of focus. Drawn
    at a quarter of the size, since blur hides the difference and costs less."""
    rng = scene.rng
    width, height = scene.size[0] // 4, scene.size[1] // 4
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _disc in range(rng.randint(3, 5)):
        radius = rng.uniform(0.18, 0.38) * max(width, height)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        colour = scene.palette[rng.choice((0, 1, 1, 2, 3))]
        draw.ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius),
            fill=(*colour, rng.randint(90, 150)),
        )
    layer = _blur(layer, max(width, height) / 18)
    return layer.resize(scene.size, Image.Resampling.BICUBIC)


def _blur(layer: Image.Image, radius: float) -> Image.Image:
    """Blur with premultiplied alpha: blurring plain RGBA mixes in the black of
    the transparent pixels and leaves a grey halo around every shape."""
    return layer.convert("RGBa").filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")


def _draw_waves(picture: Image.Image, scene: _Scene) -> None:
    """Two or three translucent hills across the lower part. Each is a mask
    drawn at twice the size and reduced, since ImageDraw does not antialias."""
    rng = scene.rng
    width, height = scene.size[0] * 2, scene.size[1] * 2
    for number in range(rng.randint(2, 3)):
        base = height * (0.55 + 0.13 * number + rng.uniform(-0.04, 0.04))
        amplitude = height * rng.uniform(0.03, 0.08)
        length = width * rng.uniform(0.6, 1.3)
        phase = rng.uniform(0, math.tau)
        colour = scene.palette[min(3, number + 1)] if number else (255, 255, 255)
        points = [
            (x, base + amplitude * math.sin(phase + math.tau * x / length))
            for x in range(0, width + 16, 16)
        ]
        mask = Image.new("L", (width, height))
        ImageDraw.Draw(mask).polygon([*points, (width, height), (0, height)], fill=70 + 25 * number)
        picture.paste((*colour, 255), mask=mask.reduce(2))


def _bubble_layer(scene: _Scene) -> Image.Image:
    """Small sharp circles and rings in front, for depth against the blur."""
    rng = scene.rng
    width, height = scene.size
    # Drawn at twice the size and reduced: ImageDraw does not antialias. The
    # transparent pixels are white too, so that averaging leaves no grey fringe.
    layer = Image.new("RGBA", (width * 2, height * 2), (255, 255, 255, 0))
    draw = ImageDraw.Draw(layer)
    unit = min(width, height) * 2
    for _bubble in range(rng.randint(7, 12)):
        radius = unit * rng.uniform(0.008, 0.05)
        cx, cy = rng.uniform(0, width * 2), rng.uniform(0, height * 1.5)
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        if rng.random() < 0.4:
            draw.ellipse(box, outline=(255, 255, 255, 150), width=max(2, round(unit / 400)))
        else:
            draw.ellipse(box, fill=(255, 255, 255, rng.randint(45, 110)))
    return layer.reduce(2)


def _draw_caption(picture: Image.Image, request: ImageRequest, index: int) -> None:
    """The label at the top and a caption card at the bottom."""
    width, height = picture.size
    unit = min(width, height)
    margin = round(unit * 0.045)
    japanese = request.language.startswith("ja")
    overlay = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)

    label_font = _font("bold", round(unit * 0.022), japanese)
    label = demo_label(request.language)
    padding = round(unit * 0.014)
    left, top, right, bottom = draw.textbbox((0, 0), label, font=label_font)
    box = (
        margin,
        margin,
        margin + right - left + 2 * padding,
        margin + bottom - top + 2 * padding,
    )
    draw.rounded_rectangle(box, radius=(box[3] - box[1]) // 2, fill=(20, 24, 32, 190))
    draw.text(
        (margin + padding - left, margin + padding - top), label, font=label_font, fill="white"
    )
    if request.count > 1:
        counter = f"{index + 1} / {request.count}"
        left, top, right, bottom = draw.textbbox((0, 0), counter, font=label_font)
        counter_box = (
            width - margin - (right - left) - 2 * padding,
            margin,
            width - margin,
            box[3],
        )
        draw.rounded_rectangle(counter_box, radius=(box[3] - box[1]) // 2, fill=(20, 24, 32, 190))
        draw.text(
            (counter_box[0] + padding - left, margin + padding - top),
            counter,
            font=label_font,
            fill="white",
        )

    title_font = _font("bold", round(unit * 0.045), japanese)
    body_font = _font("regular", round(unit * 0.026), japanese)
    text_width = width - 2 * margin - 2 * round(unit * 0.035)
    title, body = _caption_lines(request, title_font, body_font)
    title = _fit(title, title_font, text_width)
    body = _fit(body, body_font, text_width) if body else ""
    inner = round(unit * 0.035)
    title_height = _line_height(title_font)
    body_height = _line_height(body_font) if body else 0
    gap = round(unit * 0.012) if body else 0
    card_height = inner * 2 + title_height + gap + body_height
    card = (margin, height - margin - card_height, width - margin, height - margin)
    draw.rounded_rectangle(card, radius=round(unit * 0.03), fill=(255, 255, 255, 205))
    draw.text((card[0] + inner, card[1] + inner), title, font=title_font, fill=(28, 32, 40))
    if body:
        draw.text(
            (card[0] + inner, card[1] + inner + title_height + gap),
            body,
            font=body_font,
            fill=(84, 92, 104),
        )
    picture.alpha_composite(overlay)


def demo_label(language: str) -> str:
    """The label drawn on every demo image: in Japanese for Japanese requests
    when a Japanese font is installed, otherwise in English, plain ASCII when
    the font has no em dash. Never a character the font would draw as a box."""
    japanese = language.startswith("ja")
    font = _font("bold", 24, japanese)
    if japanese and _renders(font, LABELS["ja"]):
        return LABELS["ja"]
    return LABELS["en"] if _renders(font, LABELS["en"]) else _ASCII_LABEL


def _caption_lines(
    request: ImageRequest, title_font: ImageFont.FreeTypeFont, body_font: ImageFont.FreeTypeFont
) -> tuple[str, str]:
    """The template's title over the start of the prompt, keeping only text the
    fonts can draw (without a Japanese font, Japanese would come out as boxes)."""
    title = " ".join(request.template_title.split())
    prompt = " ".join(request.prompt.split())
    if title and not _renders(title_font, title):
        title = ""
    if prompt and not _renders(body_font, prompt[:80]):
        prompt = ""
    if title:
        return title, prompt
    if prompt:
        return prompt, ""
    japanese = request.language.startswith("ja") and _renders(title_font, "デモ画像")
    return ("デモ画像" if japanese else "Demo image"), ""


def _fit(text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    """`text` cut (with an ellipsis) to fit in `width` pixels on one line."""
    if font.getlength(text) <= width:
        return text
    ellipsis = "…" if _renders(font, "…") else "..."
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(text[:middle].rstrip() + ellipsis) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ellipsis


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


@cache
def _font(weight: str, size: int, japanese: bool) -> ImageFont.FreeTypeFont:
    """A font that can draw the label and caption; a Japanese one for Japanese
    requests when one is installed, else a Latin one, else Pillow's own."""
    names = [*_JAPANESE_FONTS[weight], *_found_japanese_fonts()] if japanese else []
    names += _LATIN_FONTS[weight]
    for name in names:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


@cache
def _found_japanese_fonts() -> tuple[str, ...]:
    """Font files fontconfig says cover Japanese, for systems whose fonts have
    names we do not know."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return ()
    try:
        listing = subprocess.run(
            [fc_list, ":lang=ja", "file"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    files = (line.strip().removesuffix(":") for line in listing.splitlines())
    return tuple(sorted(file for file in files if file))


def _renders(font: ImageFont.FreeTypeFont, text: str) -> bool:
    """Whether `font` has a glyph for every character of `text` (a missing glyph
    draws as the font's "not defined" box)."""
    return all(ch.isspace() or _has_glyph(font, ch) for ch in set(text))


@cache
def _missing_glyph(font: ImageFont.FreeTypeFont) -> bytes:
    return _glyph(font, "\U0010fffd")


@cache
def _has_glyph(font: ImageFont.FreeTypeFont, ch: str) -> bool:
    return _glyph(font, ch) != _missing_glyph(font)


def _glyph(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    size = round(font.size * 2)
    canvas = Image.new("L", (size, size))
    ImageDraw.Draw(canvas).text((0, 0), ch, font=font, fill=255)
    return canvas.tobytes()
