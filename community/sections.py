"""Sections community adds to lower apps' pages through their registries (content.slots)."""

from django.http import HttpRequest
from django.template.loader import render_to_string

from content.markdown import render as render_markdown
from content.models import Content

from .selectors import comments_for


def comments_section(request: HttpRequest, item: Content) -> str:
    """The comments under a library item (content.slots `Place.DISCUSSION`): no comments listed
    for readers without access to the item."""
    comments = comments_for(item, request.user)
    for comment in comments:
        comment.html = render_markdown(comment.body).html
        for reply in comment.replies.all():
            reply.html = render_markdown(reply.body).html
    return render_to_string("community/_comments.html", {"comments": comments, "item": item}, request=request)
