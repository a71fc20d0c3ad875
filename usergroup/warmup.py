"""What a web process does once when it starts, before its first request (usergroup.wsgi).

Each gunicorn worker compiles a template the first time a page uses it (Django's cached loader
then keeps it for the life of the process), fills the URL resolver's reverse tables once per
language and reads each language's message catalogue on first use. Left to the first requests,
that work falls on the first visitor of each page in each worker: the creator's dashboard cost
about 78 ms of CPU on a worker's first visit against 9 ms after, most of it compiling the admin's
templates; the CRM list about 100 ms more than later. With three workers, those first visits are
a sizeable share of a rarely opened page's requests. Doing it here, once per worker at start,
costs about a second of start-up and a few megabytes per process.

On with `WARM_WORKER` (the default when DEBUG is off); the development server reloads code and
templates as they change, so it is left alone there.

It also loads Babel's locale data for each language (the first price a worker formats in a
language read it: several milliseconds, on a visitor's time).

Last, it moves everything the process holds by then (modules, settings, compiled templates, URL
tables, catalogues: about 350,000 objects) out of the garbage collector's sight with
`gc.freeze()`, after one collection. They live as long as the process, and Python's full
collection, which runs every so often as requests leave objects behind, walked all of them each
time: about 175 ms on the load test's machine, a pause that fell on whichever request was being
served (the load test's p99 of 150-350 ms on pages whose p95 was 30-40 ms). Frozen, they are not
walked; what requests create is collected as before. (Python's documentation advises the same
for processes forked from a loaded parent.)
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.forms.renderers import EngineMixin, get_default_renderer
from django.template import Engine, TemplateDoesNotExist, TemplateSyntaxError, engines
from django.template.backends.django import DjangoTemplates
from django.template.loaders.base import Loader
from django.urls import URLResolver, get_resolver
from django.utils import translation

from members.money import format_money

logger = logging.getLogger(__name__)

TEMPLATE_SUFFIXES = (".html", ".txt", ".xml")


def warm_worker() -> None:
    """Compile every template the site's loaders can find, and load each language's URL tables
    and catalogue, so a worker's first visitors wait for none of it."""
    started = time.perf_counter()
    backends = [engines["django"]]
    renderer = get_default_renderer()
    if isinstance(renderer, EngineMixin):  # the forms' widgets: an engine of their own
        backends.append(renderer.engine)
    compiled = sum(compile_templates(b.engine) for b in backends if isinstance(b, DjangoTemplates))
    for code, _name in settings.LANGUAGES:
        with translation.override(code):  # loads the catalogue; the resolvers key their tables by language
            _fill_reverse_tables(get_resolver())
            format_money(Decimal("1"), "USD")  # loads Babel's data for the language's locale
    frozen = freeze_what_lasts()
    logger.info(
        "worker warmed: %d templates compiled, %d objects frozen, in %.0f ms",
        compiled,
        frozen,
        (time.perf_counter() - started) * 1000,
    )


def freeze_what_lasts() -> int:
    """Collect the garbage the start-up left, then freeze what remains (gc.freeze): the
    process's lasting objects, which full collections then leave alone. Returns how many are
    frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _fill_reverse_tables(resolver: URLResolver) -> None:
    """Fill the reverse tables of `resolver` and of every resolver included in it (a namespace's,
    such as the admin's, fills its own on the first reverse of one of its names)."""
    resolver.reverse_dict  # noqa: B018 - filled on first read, for the active language
    resolver.namespace_dict  # noqa: B018
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            _fill_reverse_tables(pattern)


def compile_templates(engine: Engine) -> int:
    """Compile (and so keep, with the cached loader) each template of the Django engine, the first
    found for each name as a page would get it. Returns how many compiled; one that does not
    (a third-party template for a feature this site leaves off) is skipped, as no page uses it."""
    compiled = 0
    for name in sorted(set(_template_names(engine.template_loaders))):
        try:
            engine.get_template(name)
        except (TemplateDoesNotExist, TemplateSyntaxError) as exc:
            logger.debug("template %s not compiled at start: %s", name, exc)
        else:
            compiled += 1
    return compiled


def _template_names(loaders: list[Loader]) -> Iterator[str]:
    for loader in loaders:
        inner = getattr(loader, "loaders", None)  # the cached loader wraps the others
        if inner is not None:
            yield from _template_names(inner)
            continue
        get_dirs = getattr(loader, "get_dirs", None)
        for directory in get_dirs() if get_dirs is not None else ():
            root = Path(directory)
            if root.is_dir():
                for path in root.rglob("*"):
                    if path.suffix in TEMPLATE_SUFFIXES and path.is_file():
                        yield path.relative_to(root).as_posix()
