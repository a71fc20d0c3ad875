"""What the thread page draws for each post, worked out in Python once per row (issue 15): the
avatar, the date and the addresses of the row's forms. The template then prints these values;
per row they cost a few attribute lookups instead of an {% include %}, a date filter and up to
five {% url %} tags. (The comments under an item are drawn whole in Python:
community/comments_html.py.)

An address is reversed once per page with a sentinel id, and each row's id put in its place
(members.addresses): the URL resolver is asked once, not once per row."""

from collections.abc import Sequence

from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.timezone import localtime
from django.utils.translation import gettext

from members.addresses import SENTINEL, Address
from members.avatars import avatar_html

from .models import Post, Thread, thread_slug
from .selectors import NotificationLine

POST_AVATAR = 28


def prepare_posts(posts: Sequence[Post], *, thread: Thread, viewer_id: int | None, page_number: int) -> None:
    """Set on each of `posts`, for community/thread.html: `avatar` (the author's, as
    partials/avatar.html draws it), `when` (created_at as the `date:"DATETIME_FORMAT"` filter
    gives it), whether it is the viewer's own (`own`: never for a visitor), may be voted on by
    them (`votable`: a member's, not their own) and is the `accepted` answer, the `quote_href`
    of its Quote link and the addresses `edit_url`, `flag_url`, `moderate_url`, `vote_url` and
    `accept_url`."""
    edit, flag, moderate = Address("community:edit"), Address("community:flag"), Address("community:moderate")
    vote, accept = Address("community:vote"), Address("community:accept", thread.pk)
    page = f"&page={page_number}" if page_number > 1 else ""
    for post in posts:
        pk = post.pk
        own = viewer_id is not None and viewer_id == post.author_id
        post.avatar = avatar_html(post.author, POST_AVATAR)  # type: ignore[attr-defined]
        post.when = date_format(localtime(post.created_at), "DATETIME_FORMAT")  # type: ignore[attr-defined]
        post.own = own  # type: ignore[attr-defined]
        post.votable = viewer_id is not None and not own  # type: ignore[attr-defined]
        post.accepted = thread.accepted_answer_id == pk  # type: ignore[attr-defined]
        post.quote_href = SafeString(f"?quote={pk}{page}#latest")  # type: ignore[attr-defined]  # digits only
        post.edit_url = edit.of(pk)  # type: ignore[attr-defined]
        post.flag_url = flag.of(pk)  # type: ignore[attr-defined]
        post.moderate_url = moderate.of(pk)  # type: ignore[attr-defined]
        post.vote_url = vote.of(pk)  # type: ignore[attr-defined]
        post.accept_url = accept.of(pk)  # type: ignore[attr-defined]


class ThreadAddress:
    """Thread.get_absolute_url for many threads: the address reversed once with a sentinel id
    and slug, then each thread's put in their place (its slug is ASCII, as slugify gives it:
    nothing to quote)."""

    _SLUG = "s3ntinel"

    def __init__(self) -> None:
        url = reverse("community:thread", args=[SENTINEL, self._SLUG])
        self._head, _, self._tail = url.rpartition(f"{SENTINEL}-{self._SLUG}")

    def of(self, thread: Thread) -> str:
        return self.at(thread.pk, thread_slug(thread.title))

    def at(self, pk: int, slug: str) -> str:
        """The address of the thread `pk` whose title's slug (thread_slug) is `slug`."""
        return f"{self._head}{pk}-{slug}{self._tail}"


# The texts of community/_notification_text.html, by kind: the msgids its {% blocktranslate %}
# tags look up (the same entries of the catalogue).
_THREAD_TEXTS = {
    "reply": "%(who)s replied in “%(title)s”",
    "mention": "%(who)s mentioned you in “%(title)s”",
    "accepted": "%(who)s accepted your answer in “%(title)s”",
    "like": "%(who)s liked your post in “%(title)s”",
}
_LEVEL_TEXT = "You reached the level %(level)s"
_EVENT_SOON_TEXT = "“%(event)s” starts %(when)s"
_EVENT_SEAT_TEXT = "A seat opened up: you are going to “%(event)s”"


def _translated(msgid: str, values: dict[str, str]) -> str:
    """What {% blocktranslate %} prints: the translation with the (escaped) values put in, or the
    English text when the translation does not take them."""
    try:
        return gettext(msgid) % values
    except (KeyError, ValueError):
        return msgid % values


def notification_text(line: NotificationLine) -> str:
    """community/_notification_text.html's output for `line` (HTML, its values escaped)."""
    kind = line.kind
    if kind in _THREAD_TEXTS:
        who = line.actor.public_name if line.actor is not None else ""
        return _translated(
            _THREAD_TEXTS[kind],
            {
                "who": conditional_escape(who or gettext("Someone")),
                "title": conditional_escape(line.thread_title),
            },
        )
    if kind == "level_up":
        return _translated(_LEVEL_TEXT, {"level": conditional_escape(line.level.name if line.level else "")})
    if kind == "event_soon":
        when = date_format(localtime(line.event_starts_at), "DATETIME_FORMAT") if line.event_starts_at else ""
        return _translated(
            _EVENT_SOON_TEXT,
            {"event": conditional_escape(line.event_title), "when": conditional_escape(when)},
        )
    if kind == "event_seat":
        return _translated(_EVENT_SEAT_TEXT, {"event": conditional_escape(line.event_title)})
    return ""


def notification_lines_html(lines: Sequence[NotificationLine]) -> SafeString:
    """The rows of community/notifications.html's list as its loop drew them (each an <a> with
    the text of community/_notification_text.html and the time since), worked out in Python: the
    loop's include, {% blocktranslate %} and filters cost more than the page's query. Addresses
    as Notification.get_absolute_url gives them, a topic's reversed once per page."""
    threads = ThreadAddress()
    slugs: dict[str, str] = {}
    points_url = ""
    out = []
    for line in lines:
        if line.thread_id is not None:
            slug = slugs.get(line.thread_title)
            if slug is None:
                slug = slugs[line.thread_title] = thread_slug(line.thread_title)
            anchor = f"#post-{line.post_id}" if line.post_id else ""
            url = f"{threads.at(line.thread_id, slug)}{anchor}"
        elif line.event_id is not None:
            url = reverse("community:event", args=[line.event_slug])
        elif line.level is not None:
            points_url = points_url or reverse("points:overview")
            url = points_url
        else:
            url = reverse("community:index")
        bold = "" if line.read_at else " fw-semibold"
        ago = conditional_escape(timesince(line.created_at)) if line.created_at else ""
        out.append(
            f'\n      <a class="list-group-item list-group-item-action{bold}" href="{conditional_escape(url)}">'
            f"\n        {notification_text(line)}\n"
            f'\n        <div class="small text-body-secondary fw-normal">{ago}</div>\n      </a>\n      '
        )
    return SafeString("".join(out))
