from django import template

from content.markdown import render as render_markdown

from ..comments import comments_for

register = template.Library()


@register.inclusion_tag("community/_comments.html", takes_context=True)
def comments(context, item):
    """{% comments item %}: the comment section of a library item, empty for readers without access."""
    request = context["request"]
    items = comments_for(item, request.user)
    for comment in items:
        comment.html = render_markdown(comment.body).html
        for reply in comment.replies.all():
            reply.html = render_markdown(reply.body).html
    return {
        "comments": items,
        "item": item,
        "request": request,
        "user": request.user,
        "csrf_token": context.get("csrf_token"),
    }
