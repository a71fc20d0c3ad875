"""Sections community adds to lower apps' pages through their registries (content.slots)."""

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.functional import SimpleLazyObject

from content.markdown import html_of
from content.models import Content

from .rendering import prepare_comments
from .selectors import comments_for


def comments_section(request: HttpRequest, item: Content) -> str:
    """The comments under a library item (content.slots `Place.DISCUSSION`): no comments listed
    for readers without access to the item."""
    comments = comments_for(item, request.user)
    every = [c for comment in comments for c in (comment, *comment.shown_replies)]
    for comment, html in zip(every, html_of(every), strict=True):
        # For the template only: the stored HTML checked against the body (or rendered afresh).
        setattr(comment, "html", html)  # noqa: B010
    prepare_comments(comments)  # each row's avatar, age and addresses, once
    # Not through the request's context processors (the page around ran them already): the
    # template needs the reader, the request and the CSRF token, given as the processors do.
    context = {
        "comments": comments,
        "item": item,
        "user": request.user,
        "request": request,
        "csrf_token": SimpleLazyObject(lambda: get_token(request)),
    }
    return render_to_string("community/_comments.html", context)
