"""Stored HTML of Markdown texts, written in bulk (see content.markdown for when it is used).

Two shapes: rows that keep their HTML in their own `body_html` and `body_html_key` columns
(forum posts and comments: `restamp`), and items, whose rendered body sits in a table beside
theirs (`write_rendered_bodies`). Both write only what is stale (never written, written before
the body changed by a path that does not render, or by another renderer or sanitiser
configuration) and use nothing but the models' managers, so the migrations that fill the
columns call them with their historical models.
"""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Model

from .markdown import convert, source_key, stored_html

READ_CHUNK = 2000
WRITE_BATCH = 500


def _chunks(rows: Any, fields: tuple[str, ...]) -> Iterable[list[tuple[Any, ...]]]:
    """`rows` (a queryset) as lists of `fields` tuples in primary key order, READ_CHUNK at a
    time, so that a table of any size is never held in memory at once."""
    last = None
    rows = rows.order_by("pk")
    while True:
        page = rows if last is None else rows.filter(pk__gt=last)
        chunk = list(page.values_list("pk", *fields)[:READ_CHUNK])
        if not chunk:
            return
        last = chunk[-1][0]
        yield chunk


def restamp(model: type[Model], *, pks: Iterable[int] | None = None) -> int:
    """Render and store `body_html` and `body_html_key` of the rows of `model` whose key does
    not match their body (all rows, or those of `pks`). Returns how many were written."""
    rows = model._default_manager.all()
    if pks is not None:
        rows = rows.filter(pk__in=list(pks))
    written = 0
    for chunk in _chunks(rows, ("body", "body_html_key")):
        stale = [model(pk=pk, **stored_html(body)) for pk, body, key in chunk if key != source_key(body)]
        if stale:
            with transaction.atomic():
                model._default_manager.bulk_update(
                    stale, ["body_html", "body_html_key"], batch_size=WRITE_BATCH
                )
            written += len(stale)
    return written


def write_rendered_bodies(
    *, content_model: type[Model], rendered_model: type[Model], pks: Iterable[int] | None = None
) -> int:
    """Render and store the bodies of the items (all, or those of `pks`) whose stored body is
    missing or does not match their body. Returns how many were written."""
    items = content_model._default_manager.all()
    if pks is not None:
        items = items.filter(pk__in=list(pks))
    written = 0
    for chunk in _chunks(items, ("body", "rendered_body__source_key")):
        stale = []
        for pk, body, key in chunk:
            if key != source_key(body):
                rendered = convert(body)
                stale.append(
                    rendered_model(
                        content_id=pk, source_key=source_key(body), html=rendered.html, toc=rendered.toc
                    )
                )
        if stale:
            with transaction.atomic():
                rendered_model._default_manager.bulk_create(
                    stale,
                    batch_size=WRITE_BATCH,
                    update_conflicts=True,
                    unique_fields=["content"],
                    update_fields=["source_key", "html", "toc"],
                )
            written += len(stale)
    return written
