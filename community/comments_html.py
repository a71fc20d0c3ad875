"""The comments under a library item drawn in Python: the same HTML as the template it replaces
(community/_comments.html, kept in tests/community/before/ only), character for character:
tests/community/test_page_markup.py draws both for staff, a comment's author, another member
and a visitor, in English and Chinese, and compares them.

Through the template engine this was about 0.75 ms of CPU on every item page a reader may open
(issue 15: the item page near 4× the minimal page under load); here a fraction of that. The
messages are the template's msgids, so their translations apply as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape  # django.utils.html.escape without its check for lazy strings: none here
from urllib.parse import quote

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.formats import localize
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext

from content.models import Content
from members.addresses import Address
from members.avatars import avatar_html
from members.drawing import translated
from members.models import User

from .models import Comment
from .templatetags.forum import csrf_input_html, flag_form_html

COMMENT_AVATAR = 24
REPLY_AVATAR = 20


class _Rows:
    """What every row of one drawing shares: the reader, the labels and the addresses."""

    def __init__(self, *, user: User | AnonymousUser, request: HttpRequest) -> None:
        self.user = user
        self.signed_in = user.is_authenticated
        self.staff = bool(getattr(user, "is_staff", False))
        self.hide, self.flag = Address("community:hide_comment"), Address("community:flag_comment")
        self.token = get_token(request) if self.signed_in else None  # masked once, for every form
        self.csrf = csrf_input_html(self.token)
        self.t_hide = translated(gettext("Hide"))

    def head(self, comment: Comment, size: int, indent: str) -> str:
        """A row's author line and its hide or flag form (`indent`: the form line's)."""
        ago = timesince(comment.created_at) if comment.created_at else ""
        if self.staff:
            tools = (
                f'<form method="post" action="{escape(self.hide.of(comment.pk))}" class="ms-auto">{self.csrf}'
                f'<button class="btn btn-link btn-sm p-0 text-danger">{self.t_hide}</button></form>'
            )
        elif self.signed_in and self.user.pk != comment.author_id:
            flag = flag_form_html(csrf_token=self.token, action=self.flag.of(comment.pk))
            tools = f'<span class="ms-auto">{flag}</span>'
        else:
            tools = ""
        return (
            '<div class="d-flex flex-wrap gap-2 align-items-center small text-body-secondary">'
            f'{avatar_html(comment.author, size)}<strong class="text-body">{escape(comment.author.public_name)}</strong> '
            f"{escape(ago)}\n{indent}{tools}</div>\n"
        )


def draw_comments(
    *, comments: Sequence[Comment], item: Content, user: User | AnonymousUser, request: HttpRequest
) -> SafeString:
    """community/_comments.html for `comments` (the item's shown comments, each with its
    `shown_replies` and every one with its checked `html`), read by `user`. In the active language."""
    rows = _Rows(user=user, request=request)
    n = len(comments)
    count = ngettext("%(n)s comment", "%(n)s comments", n) % {"n": escape(localize(n))}
    parts = ['\n<section class="mt-5 comments" id="comments">\n', f'  <h2 class="h5">{count}</h2>\n  ']
    comment_url = escape(reverse("community:comment", args=[item.pk]))
    if rows.signed_in:
        t_reply, t_your_reply = translated(gettext("Reply")), translated(gettext("Your reply"))
    for comment in comments:
        parts += [
            f'\n  <div class="mb-3" id="comment-{comment.pk}">\n    ',
            rows.head(comment, COMMENT_AVATAR, "      "),
            f'    <div class="prose small ms-4">{comment.html}</div>\n    ',  # type: ignore[attr-defined]
        ]
        for reply in comment.shown_replies:
            parts += [
                f'\n    <div class="ms-5 mb-2" id="comment-{reply.pk}">\n      ',
                rows.head(reply, REPLY_AVATAR, "        "),
                f'      <div class="prose small ms-4">{reply.html}</div>\n    </div>\n    ',  # type: ignore[attr-defined]
            ]
        parts.append("\n    ")
        if rows.signed_in:
            parts.append(
                f'\n    <details class="ms-4"><summary class="small text-body-secondary">{t_reply}</summary>\n'
                f'      <form method="post" action="{comment_url}" class="mt-2">{rows.csrf}'
                f'<input type="hidden" name="parent" value="{comment.pk}">\n'
                '        <textarea name="body" class="form-control form-control-sm mb-2" rows="2" maxlength="5000" '
                f'required aria-label="{t_your_reply}"></textarea>\n'
                f'        <button class="btn btn-sm btn-outline-primary" type="submit">{t_reply}</button></form></details>\n    '
            )
        parts.append("\n  </div>\n  ")
    parts.append("\n  ")
    if rows.signed_in:
        t_add, t_comment = translated(gettext("Add a comment")), translated(gettext("Comment"))
        parts.append(
            f'\n  <form method="post" action="{comment_url}" class="mt-3">{rows.csrf}\n'
            f'    <label class="form-label" for="new-comment">{t_add}</label>\n'
            '    <textarea id="new-comment" name="body" class="form-control mb-2" rows="3" maxlength="5000" required></textarea>\n'
            f'    <button class="btn btn-primary btn-sm" type="submit">{t_comment}</button>\n'
            "  </form>\n  "
        )
    else:
        login = escape(f"{reverse('account_login')}?next={quote(request.path, safe='/')}")
        t_log_in = translated(gettext("Log in to comment."))  # not in an f-string: makemessages reads it
        parts.append(f'<p class="small"><a href="{login}">{t_log_in}</a></p>')
    parts.append("\n</section>\n")
    return mark_safe("".join(parts))  # every value above is escaped; the comments' HTML is checked
