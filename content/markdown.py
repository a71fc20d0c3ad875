"""Markdown for everything members read: rendered with Python-Markdown, then sanitized with nh3.

The renderer is shared by content and the forum. Links get rel="noopener nofollow"; only
http(s) and mailto URLs survive; raw HTML in the source is kept only where the allow-list
permits.

Forum posts, comments and item bodies keep their HTML beside their Markdown, written when the
text is (`stored_html`, `html_of`): a page then neither converts nor asks the cache. Stored HTML
carries the key it was rendered from (`source_key`: the renderer's stamp and a digest of the
source) and is used only while that key still matches the text: a body changed by any path
(a bulk update, an erasure) or a new renderer or sanitiser configuration (RENDER_STAMP, which
hashes the allow-lists, the extensions and the libraries' versions) makes it stale, and a stale
row is rendered as before, through the cache, until the nightly job or
`manage.py refresh_stored_html` writes it again. Text without stored HTML is cached by its key
(each revision converted once).
"""

import hashlib
import html as html_lib
import importlib.metadata
import json
import re
import threading
import xml.etree.ElementTree as etree
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

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
LINK_REL = "noopener nofollow"


def _fingerprint() -> str:
    """A digest of everything the output depends on besides the source and this module's code
    (for which RENDERER_VERSION is bumped by hand): the allow-lists, the extensions and their
    settings, and the versions of Python-Markdown and nh3."""

    def named(value: object) -> object:
        if callable(value) or isinstance(value, Extension):
            return f"{type(value).__module__}.{getattr(value, '__qualname__', type(value).__qualname__)}"
        if isinstance(value, set | frozenset):
            return sorted(value)
        return value

    config = {
        "markdown": markdown.__version__,
        "nh3": importlib.metadata.version("nh3"),
        "extensions": [named(e) for e in EXTENSIONS],
        "extension_configs": {k: {o: named(v) for o, v in c.items()} for k, c in EXTENSION_CONFIGS.items()},
        "tags": sorted(ALLOWED_TAGS),
        "attributes": {tag: sorted(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        "classes": {tag: sorted(names) for tag, names in ALLOWED_CLASSES.items()},
        "schemes": sorted(URL_SCHEMES),
        "rel": LINK_REL,
        "mention": MENTION_PATTERN,
    }
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=named).encode()).hexdigest()[:8]


# Part of every stored key and cache key: a new renderer or sanitiser configuration retires them all.
RENDER_STAMP = f"{RENDERER_VERSION}.{_fingerprint()}"


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
        link_rel=LINK_REL,
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


def source_key(source: str) -> str:
    """What HTML rendered from `source` now is keyed by: the renderer's stamp and the source's
    digest (128 bits). Stored HTML whose key differs is stale."""
    return f"{RENDER_STAMP}:{hashlib.sha256(source.encode()).hexdigest()[:32]}"


def _key(source: str) -> str:
    return f"md:{source_key(source)}"


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


def convert(source: str) -> Rendered:
    """`render` without the cache: for HTML about to be stored."""
    return Rendered(*_convert(source))


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


class StoresHtml(Protocol):
    """A row that keeps its Markdown's HTML beside it (forum posts, comments)."""

    body: str
    body_html: str
    body_html_key: str


def stored_html(source: str) -> dict[str, str]:
    """The stored columns for `source`: `body_html` and `body_html_key`, to write with the body."""
    return {"body_html": convert(source).html, "body_html_key": source_key(source)}


def fill_stored_html(rows: Iterable[StoresHtml]) -> None:
    """Set the stored columns of unsaved rows about to be written in bulk (the demo's), each
    distinct text converted once."""
    done: dict[str, dict[str, str]] = {}
    for row in rows:
        fields = done.get(row.body)
        if fields is None:
            fields = done[row.body] = stored_html(row.body)
        row.body_html, row.body_html_key = fields["body_html"], fields["body_html_key"]


def html_of(rows: Sequence[StoresHtml]) -> list[str]:
    """Each row's sanitized HTML, in order: as stored while its key matches its body (no cache,
    no conversion), else rendered as `render_many` does (one cache round trip for all of them)."""
    out = [row.body_html if row.body_html_key == source_key(row.body) else None for row in rows]
    stale = [i for i, html in enumerate(out) if html is None]
    if stale:
        for i, rendered in zip(stale, render_many([rows[i].body for i in stale]), strict=True):
            out[i] = rendered.html
    return [html or "" for html in out]
