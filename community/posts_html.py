"""The posts of a thread page drawn in Python: the same HTML as the loop of community/thread.html
it replaces (the template as it was is kept in tests/community/before/), character for
character: tests/community/test_page_markup.py draws the page both ways for staff, the topic's
author, a member, the author of a post waiting for approval and a visitor, in English and
Chinese, and compares them.

Through the template engine the loop was about a third of the thread page's CPU (issue 15: the
thread page near 4× the minimal page under load). A post's moderation tools, shown to staff only,
are still drawn by a template (community/_post_staff_tools.html): they hold the area list and
the suspend form, and staff are few. The messages are the template's msgids, so their
translations apply as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape  # django.utils.html.escape without its check for lazy strings: none here

from django.template import Context, Engine
from django.utils.formats import localize
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from members.drawing import translated

from .models import Category, Post, Thread
from .templatetags.forum import csrf_input_html, flag_form_html

STAFF_TOOLS = "community/_post_staff_tools.html"


def draw_posts(
    *,
    posts: Sequence[Post],
    thread: Thread,
    signed_in: bool,
    staff: bool,
    can_reply: bool,
    can_accept: bool,
    csrf_token: object,
    thread_url: str,
    move_targets: Sequence[Category],
) -> SafeString:
    """The posts of one page of `thread`, each prepared by community.rendering.prepare_posts and
    with its checked `html`, for a reader who is `signed_in` (or `staff`), may reply and may
    accept an answer. In the active language."""
    csrf = csrf_input_html(csrf_token)
    # Translated here, not inside the f-strings below, which makemessages does not read.
    t_edited, t_waiting = translated(gettext("edited")), translated(gettext("Waiting for approval"))
    t_accepted, t_quote = translated(gettext("Accepted answer")), translated(gettext("Quote"))
    t_edit, t_vote_up = translated(gettext("Edit")), translated(gettext("Vote up"))
    t_score, t_vote_down = translated(gettext("Score")), translated(gettext("Vote down"))
    t_accept = translated(gettext("Accept this answer"))
    edited, waiting = (
        f'<span class="fst-italic">{t_edited}</span>',
        f'<span class="badge text-bg-warning">{t_waiting}</span>',
    )
    accepted_badge = f'<span class="badge text-bg-success ms-auto">✓ {t_accepted}</span>'
    staff_tools = Engine.get_default().get_template(STAFF_TOOLS) if staff else None
    parts = []
    last = len(posts) - 1
    for index, post in enumerate(posts):
        accepted = post.accepted  # type: ignore[attr-defined]
        parts.append(
            f'\n<article class="card shadow-sm mb-3 forum-post{" border-success accepted" if accepted else ""}" '
            f'id="post-{post.pk}"{" data-latest" if index == last else ""}>\n'
            '  <div class="card-body">\n'
            '    <div class="d-flex flex-wrap align-items-center gap-2 mb-2 small text-body-secondary">\n'
            f"      {post.avatar}\n"  # type: ignore[attr-defined]
            f'      <strong class="text-body">{escape(post.author.public_name)}</strong>\n'
            f"      <span>{escape(post.when)}</span>\n"  # type: ignore[attr-defined]
            f"      {edited if post.edited_at else ''}\n"
            f"      {'' if post.approved else waiting}\n"
            f"      {accepted_badge if accepted else ''}\n"
            "    </div>\n"
            f'    <div class="prose">{post.html}</div>\n    '  # type: ignore[attr-defined]
        )
        if signed_in:
            own = post.own  # type: ignore[attr-defined]
            quote = f'<a href="{post.quote_href}">{t_quote}</a>' if can_reply else ""  # type: ignore[attr-defined]
            edit = f'<a href="{escape(post.edit_url)}">{t_edit}</a>' if own or staff else ""  # type: ignore[attr-defined]
            flag = "" if own else flag_form_html(csrf_token=csrf_token, action=post.flag_url)  # type: ignore[attr-defined]
            tools = ""
            if staff_tools is not None:
                tools = staff_tools.render(Context({
                    "post": post, "csrf": csrf, "csrf_token": csrf_token, "thread": thread,
                    "thread_url": thread_url, "move_targets": move_targets,
                }))  # fmt: skip
            parts.append(
                '\n    <div class="d-flex flex-wrap gap-3 small mt-2 post-tools">\n'
                f"      {quote}\n      {edit}\n      {flag}\n      {tools}\n    </div>\n    "
            )
        parts.append("\n    ")
        if not post.is_opening:
            votable = post.votable  # type: ignore[attr-defined]
            parts.append('\n    <div class="d-flex align-items-center gap-2 mt-2">\n      ')
            vote_url = escape(post.vote_url)  # type: ignore[attr-defined]
            if votable:
                up = "btn-primary" if post.my_up else "btn-outline-secondary"  # type: ignore[attr-defined]
                parts.append(
                    f'\n        <form method="post" action="{vote_url}">{csrf}<input type="hidden" name="value" value="1">'
                    f'<button class="btn btn-sm {up}" type="submit" aria-label="{t_vote_up}">▲</button></form>\n      '
                )
            parts.append(
                f'\n      <span class="small fw-semibold" aria-label="{t_score}">{escape(str(localize(post.score)))}</span>\n      '
            )
            if votable:
                down = "btn-primary" if post.my_down else "btn-outline-secondary"  # type: ignore[attr-defined]
                parts.append(
                    f'\n        <form method="post" action="{vote_url}">{csrf}<input type="hidden" name="value" value="-1">'
                    f'<button class="btn btn-sm {down}" type="submit" aria-label="{t_vote_down}">▼</button></form>\n      '
                )
            parts.append("\n      ")
            if can_accept and not accepted:
                parts.append(
                    f'\n        <form method="post" action="{escape(post.accept_url)}" class="ms-auto">{csrf}'  # type: ignore[attr-defined]
                    f'<button class="btn btn-sm btn-outline-success" type="submit">{t_accept}</button></form>\n      '
                )
            parts.append("\n    </div>\n    ")
        parts.append("\n  </div>\n</article>\n")
    return mark_safe("".join(parts))  # every value above is escaped; the posts' HTML is checked
