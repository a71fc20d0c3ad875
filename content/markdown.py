"""Markdown for everything members read: rendered with Python-Markdown, then sanitized with nh3.

The renderer is shared by content and the forum. Output is cached by a hash of the source
(so each revision is rendered once). Links get rel="noopener nofollow"; only http(s) and
mailto URLs survive; raw HTML in the source is kept only where the allow-list permits.
"""

import hashlib
import html as html_lib
import re
import threading
import xml.etree.ElementTree as etree
from collections.abc import Sequence
from dataclasses import dataclass

import markdown
import nh3
from django.core.cache import cache
from markdown.extensions import Extension
from markdown.extensions.toc import slugify_unicode
from markdown.inlinepatterns import InlineProcessor
from markdown.util import AtomicString

RENDERER_VERSION = "3"

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s", "del", "ins",
    "blockquote", "code", "pre", "ul", "ol", "li", "dl", "dt", "dd", "a", "img", "table", "thead", "tbody",
    "tr", "th", "td", "sup", "sub", "abbr", "span", "div", "figure", "figcaption", "kbd", "mark",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "th": {"align"},
    "td": {"align"},
    "h1": {"id"}, "h2": {"id"}, "h3": {"id"}, "h4": {"id"}, "h5": {"id"}, "h6": {"id"},
    "ol": {"start"},
    "sup": {"id"}, "li": {"id"},
}  # fmt: skip
ALLOWED_CLASSES = {"span": {"mention"}}
URL_SCHEMES = {"http", "https", "mailto"}
ID_PREFIX = "md-"
# @handle, as members.models.HANDLE_RE allows it; not inside words or e-mail addresses.
# ASCII-only guards, so "谢谢@alice" mentions (static/js/mentions.js uses the same rule).
MENTION_PATTERN = r"(?<![A-Za-z0-9_@/.])@([A-Za-z0-9][A-Za-z0-9_]{2,29})(?![A-Za-z0-9_@])"


class _MentionProcessor(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:  # type: ignore[override]  # markdown's stubs give InlineProcessor Pattern's one-argument signature
        el = etree.Element("span")
        el.set("class", "mention")
        el.text = AtomicString(f"@{m.group(1)}")  # not matched again inside **bold** etc.
        return el, m.start(0), m.end(0)


class MentionExtension(Extension):
    """Marks @handles (never inside code) so they stand out; who is notified is the forum's business."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.inlinePatterns.register(_MentionProcessor(MENTION_PATTERN, md), "mention", 65)


EXTENSIONS: list[str | Extension] = ["extra", "sane_lists", "toc", MentionExtension()]


def _slugify(value: str, separator: str) -> str:
    # Heading ids get a prefix so they can never clobber the page's own element ids.
    return ID_PREFIX + slugify_unicode(value, separator)


EXTENSION_CONFIGS = {"toc": {"permalink": False, "toc_depth": "2-3", "slugify": _slugify}}


@dataclass(frozen=True)
class Rendered:
    html: str
    toc: list[dict]  # [{"id", "name", "level"}] of h2/h3 headings

    @property
    def headings(self) -> int:
        return len(self.toc)


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener nofollow",
        allowed_classes=ALLOWED_CLASSES,
    )


def _flatten(tokens: list[dict]) -> list[dict]:
    out = []
    for token in tokens:
        name = html_lib.unescape(token["name"])  # plain text; templates escape it again
        out.append({"id": token["id"], "name": name, "level": token["level"]})
        out.extend(_flatten(token.get("children", [])))
    return out


CACHE_SECONDS = 60 * 60 * 24 * 30
_local = threading.local()


def _converter() -> markdown.Markdown:
    """This thread's Markdown instance, reset for each text: building one (the extensions and
    their processors) costs more than converting a forum post, so it is built once per thread."""
    md = getattr(_local, "md", None)
    if md is None:
        md = _local.md = markdown.Markdown(
            extensions=EXTENSIONS, extension_configs=EXTENSION_CONFIGS, output_format="html"
        )
    return md


def _key(source: str) -> str:
    return f"md:{RENDERER_VERSION}:{hashlib.sha256(source.encode()).hexdigest()}"


def _convert(source: str) -> tuple[str, list[dict]]:
    md = _converter()
    md.reset()
    try:
        html = sanitize(md.convert(source))
        # The toc extension sets toc_tokens on the Markdown instance it ran on.
        toc = [t for t in _flatten(md.toc_tokens) if 2 <= t["level"] <= 3]  # type: ignore[attr-defined]
    finally:
        md.reset()  # keep nothing of this text (footnotes, abbreviations) for the next one
    return html, toc


def render(source: str) -> Rendered:
    """Sanitized HTML and table of contents for Markdown `source` (cached per revision)."""
    key = _key(source)
    cached = cache.get(key)
    if cached is not None:
        return Rendered(*cached)
    html, toc = _convert(source)
    cache.set(key, (html, toc), CACHE_SECONDS)
    return Rendered(html, toc)


def render_many(sources: Sequence[str]) -> list[Rendered]:
    """`render` for each of `sources`, in order, with one cache round trip for all of them (and
    one more to store those not cached yet): a forum page's posts, an item's comments."""
    keys = [_key(source) for source in sources]
    found = cache.get_many(list(set(keys))) if keys else {}
    missing: dict[str, tuple[str, list[dict]]] = {}
    out = []
    for key, source in zip(keys, sources, strict=True):
        value = found.get(key) or missing.get(key)
        if value is None:
            value = missing[key] = _convert(source)
        out.append(Rendered(*value))
    if missing:
        cache.set_many(missing, CACHE_SECONDS)
    return out
