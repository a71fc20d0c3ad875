"""Validation and normalisation of uploaded avatars.

An upload is only trusted after Pillow has decoded it: the file is checked for
size, real image type and pixel count, then re-encoded as a square WebP. The
re-encode drops metadata (EXIF location) and anything smuggled after the image.
"""

from io import BytesIO
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    from .models import User

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
MAX_PIXELS = 40_000_000  # refuse decompression bombs well before Pillow's own limit
SIDE = 256


def process_avatar(upload) -> ContentFile:
    """Return a normalised WebP of `upload`, or raise ValidationError saying what is wrong."""
    max_bytes = settings.AVATAR_MAX_BYTES
    if upload.size > max_bytes:
        raise ValidationError(
            _("The image is %(size)s; the limit is %(limit)s."),
            code="too_big",
            params={"size": filesizeformat(upload.size), "limit": filesizeformat(max_bytes)},
        )
    not_an_image = ValidationError(
        _("This file is not an image we can read. Upload a JPEG, PNG, WebP or GIF."),
        code="not_image",
    )
    try:
        upload.seek(0)
        with Image.open(upload) as probe:
            fmt = probe.format
            width, height = probe.size
            probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise not_an_image from None
    if fmt not in ALLOWED_FORMATS:
        raise ValidationError(
            _("%(format)s images are not accepted. Upload a JPEG, PNG, WebP or GIF."),
            code="bad_type",
            params={"format": fmt},
        )
    if width * height > MAX_PIXELS:
        raise ValidationError(_("The image has too many pixels."), code="too_many_pixels")
    try:
        upload.seek(0)
        with Image.open(upload) as opened:
            image = ImageOps.exif_transpose(opened)
            image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
            image = ImageOps.fit(image, (SIDE, SIDE), Image.Resampling.LANCZOS)
            out = BytesIO()
            image.save(out, format="WEBP", quality=85, method=4)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise not_an_image from None
    return ContentFile(out.getvalue(), name="avatar.webp")


def avatar_html(member: "User", size: int = 32) -> SafeString:
    """partials/avatar.html for `member` at `size` pixels, formatted in Python: the same markup
    (with the file's closing newline, which {% include %} printed),
    for lists that draw one avatar per row (forum posts, comments), where an {% include %} per
    row cost more than the rest of the row."""
    if member.avatar:
        return format_html(
            '<img src="{}" alt="" width="{}" height="{}" class="avatar rounded-circle">\n',
            member.avatar.url,
            size,
            size,
        )
    return format_html(
        '<span class="avatar avatar-initial avatar-{} rounded-circle" aria-hidden="true">{}</span>\n',
        size,
        member.avatar_initial,
    )
