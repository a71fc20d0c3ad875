"""Sections community adds to lower apps' pages through their registries (content.slots)."""

from django.http import HttpRequest

from content.markdown import html_of
from content.models import Content

from .comments_html import draw_comments
from .selectors import comments_for


def comments_section(request: HttpRequest, item: Content) -> str:
    """The comments under a library item (content.slots `Place.DISCUSSION`): no comments listed
    for readers without access to the item."""
    comments = comments_for(item, request.user)
    every = [c for comment in comments for c in (comment, *comment.shown_replies)]
    for comment, html in zip(every, html_of(every), strict=True):
        # For the drawing only: the stored HTML checked against the body (or rendered afresh).
        setattr(comment, "html", html)  # noqa: B010
    return draw_comments(comments=comments, item=item, user=request.user, request=request)
