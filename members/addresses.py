"""Addresses of one view for many rows, reversed once: a page that links each of its rows (posts,
comments, topics, CRM members) asks the URL resolver once, with a sentinel id, and puts each row's
id in its place (issue 15: a `{% url %}` or `reverse` per row was a measurable share of those
pages)."""

from __future__ import annotations

from django.urls import reverse

SENTINEL = 987654321  # stands for a row's id while an address is reversed once


class Address:
    """The address of the view `name` for any id: reversed once (on first use, so in the
    request's language and script prefix), then the id put in place of the sentinel. Make one
    per page, not per process."""

    def __init__(self, name: str, *leading: int) -> None:
        self._name, self._leading = name, leading
        self._head: str | None = None
        self._tail = ""

    def of(self, pk: int) -> str:
        if self._head is None:
            url = reverse(self._name, args=[*self._leading, SENTINEL])
            self._head, _, self._tail = url.rpartition(str(SENTINEL))
        return f"{self._head}{pk}{self._tail}"
