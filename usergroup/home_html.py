"""The member's home page sections drawn in Python: "Continue where you left off", "Recommended for
you", "New in the forum areas you read", "Your points" and "Your next events", the same HTML as
the templates they replace (home/_continue.html, recommend/home_section.html, home/_forum.html,
home/_points.html, home/_events.html, now kept in tests/usergroup/before/ only), character for
character: tests/usergroup/test_home_html.py renders both ways and compares them.

Through the template engine these were about two thirds of the page's render (variable lookups,
filters, includes, a `{% url %}` per row), 15-20% of the page's CPU (issue 15). Here each address
is reversed once per process (a topic's once per page), and each string is translated with the templates' own msgids, so the
translations apply as before.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from html import escape  # django.utils.html.escape without its check for lazy strings: none here

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma, naturaltime
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.formats import date_format, localize
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.timezone import get_current_timezone_name, localtime
from django.utils.translation import gettext, ngettext

from community.models import Thread
from community.rendering import ThreadAddress
from community.selectors import NextEvents
from content.models import Content
from content.selectors import ContinueReading
from members.models import User
from points.selectors import LevelProgress
from recommend.selectors import Recommendation

_EMPTY = SafeString("")


@dataclass(frozen=True)
class HomeSections:
    """The drawn sections for home.html (empty where the page does not show them)."""

    reading: SafeString = _EMPTY
    recommendations: SafeString = _EMPTY
    forum: SafeString = _EMPTY
    points: SafeString = _EMPTY
    events: SafeString = _EMPTY


def draw_home_sections(
    request: HttpRequest,
    *,
    member: User,
    reading: ContinueReading,
    recommendations: list[Recommendation],
    forum: list[Thread],
    events: NextEvents,
    points: LevelProgress,
) -> HomeSections:
    """The sections home.html shows for `member`: those with something in them, and always the
    points and the events. In the active language and time zone."""
    return HomeSections(
        reading=draw_continue(reading) if reading else _EMPTY,
        recommendations=(
            draw_recommendations(request, member=member, picks=recommendations) if recommendations else _EMPTY
        ),
        forum=draw_forum(forum) if forum else _EMPTY,
        points=draw_points(points),
        events=draw_events(events),
    )


@functools.lru_cache(maxsize=64)
def _pieces(name: str, parts: int, script_prefix: str, urlconf: str) -> tuple[str, ...]:
    """The address of `name` around its `parts` slugs, reversed once per process and URL
    configuration with sentinels (as usergroup.templatetags.layout keeps the navigation's)."""
    sentinels = [f"s3ntinel{n}x" for n in range(parts)]
    rest = reverse(name, args=sentinels, urlconf=urlconf)
    pieces = []
    for sentinel in sentinels:
        before, _, rest = rest.partition(sentinel)
        pieces.append(before)
    return (*pieces, rest)


def _address(name: str, *slugs: str) -> str:
    """`{% url name *slugs %}`, escaped as the tag gives it. Slugs are ASCII, as the URLs' slug
    converter takes them: nothing to quote."""
    pieces = _pieces(name, len(slugs), get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    return escape("".join(piece + slug for piece, slug in zip(pieces, slugs, strict=False)) + pieces[-1])


def _number(value: object) -> str:
    """`{{ value }}` for a number: localized as the template prints it (an int as it is unless
    thousands are grouped)."""
    if type(value) is int and not settings.USE_THOUSAND_SEPARATOR:
        return str(value)
    return escape(str(localize(value)))


def _truncated(text: str, length: int) -> str:
    """`{{ text|truncatechars:length }}`: Truncator.chars, which gives a text short enough
    NFC-normalized (combining characters count for nothing); asked only for a longer one."""
    normalized = unicodedata.normalize("NFC", text)
    return normalized if len(normalized) <= length else Truncator(text).chars(length)


def _kinds() -> Callable[[Content], str]:
    """`{{ item.get_kind_display }}`, the kinds' names looked up once in this language."""
    names = {value: escape(str(label)) for value, label in Content.Kind.choices}
    return lambda item: names.get(item.kind) or escape(item.kind)


def _widthratio(value: int, maximum: int) -> str:
    """`{% widthratio value maximum 100 %}`."""
    try:
        return str(round(float(value) / float(maximum) * 100))
    except ZeroDivisionError:
        return "0"


def draw_continue(reading: ContinueReading) -> SafeString:
    """home/_continue.html."""
    # Translated here, not inside the f-strings below, which makemessages does not read.
    t_continue_where_you_left_off = gettext("Continue where you left off")
    kind_of = _kinds()
    # Each row's words, translated once.
    next_lesson, lessons_done = gettext("Next lesson: %(title)s"), gettext("%(done)s of %(total)s lessons")
    progress_in, opened = gettext("Progress in %(title)s"), gettext("opened %(when)s")
    parts = [
        '\n<section class="mb-4" aria-labelledby="continue-title" data-testid="continue">\n'
        f'  <h2 id="continue-title" class="h5 mb-3">{t_continue_where_you_left_off}</h2>\n'
        '  <ul class="list-group shadow-sm">\n    '
    ]
    for course in reading.courses:
        title = escape(course.title)
        done, total = course.done, course.total  # type: ignore[attr-defined]
        percent = _widthratio(done, total)
        lesson = course.next_lesson  # type: ignore[attr-defined]
        next_link = ""
        if lesson:
            label = next_lesson % {"title": escape(lesson.title)}
            next_link = (
                f'<a class="small" href="{_address("content:lesson", course.slug, lesson.slug)}">{label}</a>'
            )
        lessons = lessons_done % {"done": _number(done), "total": _number(total)}
        progress = progress_in % {"title": title}
        parts.append(
            '\n    <li class="list-group-item" data-testid="continue-course">\n'
            '      <div class="d-flex flex-wrap justify-content-between align-items-baseline gap-2">\n'
            f'        <a class="fw-semibold min-w-0" href="{_address("content:detail", course.slug)}">{title}</a>\n'
            f'        <span class="small text-body-secondary">{lessons}</span>\n'
            "      </div>\n      \n"
            f'      <div class="progress my-2" role="progressbar" aria-label="{progress}" aria-valuenow="{percent}" '
            'aria-valuemin="0" aria-valuemax="100"><svg class="progress-fill" aria-hidden="true" focusable="false">'
            f'<rect width="{percent}%" height="100%"/></svg></div>\n'
            f"      {next_link}\n"
            "    </li>\n    "
        )
    parts.append("\n    ")
    for item in reading.items:
        when = escape(naturaltime(item.last_seen_at))  # type: ignore[attr-defined]
        parts.append(
            '\n    <li class="list-group-item d-flex flex-wrap align-items-baseline gap-2" data-testid="continue-item">\n'
            f'      <span class="badge kind-badge">{kind_of(item)}</span>\n'
            f'      <a class="fw-semibold min-w-0" href="{_address("content:detail", item.slug)}">{escape(item.title)}</a>\n'
            '      <span class="small text-body-secondary ms-auto">'
            f"{opened % {'when': when}}</span>\n"
            "    </li>\n    "
        )
    parts.append("\n  </ul>\n</section>\n")
    return mark_safe("".join(parts))  # every value above is escaped


def draw_recommendations(request: HttpRequest, *, member: User, picks: list[Recommendation]) -> SafeString:
    """recommend/templates/recommend/home_section.html, for `member` (their consent) and the page
    `request` (its path and the CSRF token)."""
    # Translated here, not inside the f-strings below, which makemessages does not read.
    t_recommended_for_you = gettext("Recommended for you")
    not_interested = gettext("Not interested")
    parts = [
        '\n<section class="mb-4" aria-labelledby="recommended-title" data-testid="recommended">\n'
        f'  <h2 id="recommended-title" class="h5 mb-3">{t_recommended_for_you}</h2>\n  \n  '
    ]
    if not member.personalisation_consent:
        # Without the consent, picks come from the topics the member chose, else what is popular.
        profile_url = _address("members:profile")
        if picks and picks[0].reason == "interest":
            message = gettext(
                'From the topics you picked. <a href="%(profile_url)s">Allow personalised recommendations</a> '
                "to get picks based on what you read."
            )
        else:
            message = gettext(
                'Popular with members. <a href="%(profile_url)s">Allow personalised recommendations</a> '
                "to get picks based on what you read."
            )
        parts.append(
            "\n    \n    \n"
            f'    <p class="small text-body-secondary">{message % {"profile_url": profile_url}}</p>\n  '
        )
    token = escape(get_token(request))
    parts.append(
        "\n  \n"
        f'  <form method="post" action="{_address("recommend:not_interested_in_pick")}">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
        f'<input type="hidden" name="next" value="{escape(request.path)}">\n'
        '  <div class="row g-3">\n    '
    )
    kind_of = _kinds()
    pricing = ""
    # Each pick's words, translated once.
    tier_members, locked_word = gettext("%(tier)s members"), gettext("Locked:")
    upgrade_to, because_you_read = (
        gettext("Upgrade to %(tier)s to read it"),
        gettext("Because you read “%(title)s”"),
    )
    reasons = {
        "pinned": gettext("Picked by the creator"),
        "interest": gettext("Matches your interests"),
        "popular": gettext("Popular with members"),
    }
    for pick in picks:
        item = pick.item
        title = escape(item.title)
        lock, locked_mark, upgrade = "", "", ""
        if pick.locked:
            tier = item.min_tier
            tier_name = escape(tier.name) if tier is not None else ""
            lock = f' · <span class="lock">{tier_members % {"tier": tier_name}}</span>'
            locked_mark = (
                f'<span aria-hidden="true">🔒</span> <span class="visually-hidden">{locked_word}</span> '
            )
            pricing = pricing or _address("billing:pricing")
            upgrade = f'<a href="{pricing}">{upgrade_to % {"tier": tier_name}}</a><br>'
        summary = ""
        if item.summary:
            summary = (
                '<p class="small text-body-secondary mb-2 text-break">'
                f"{escape(_truncated(item.summary, 120))}</p>"
            )
        if pick.because:
            reason = because_you_read % {"title": escape(pick.because.title)}
        else:
            reason = reasons.get(pick.reason, reasons["popular"])  # "history" without its item: popular
        parts.append(
            '\n      <div class="col-12 col-md-6 col-xl-4">\n'
            f'        <article class="card h-100 shadow-sm{" recommendation-locked" if pick.locked else ""}" '
            f'data-reason="{escape(pick.reason)}">\n'
            '          <div class="card-body d-flex flex-column">\n'
            '            <p class="small text-body-secondary mb-1">'
            f'<span class="text-uppercase">{kind_of(item)}</span>{lock}</p>\n'
            f'            <h3 class="h6 card-title text-break">{locked_mark}<a href="{escape(pick.url)}">{title}</a></h3>\n'
            f"            {summary}\n"
            '            <p class="small mb-2 mt-auto text-break">\n'
            f"              {upgrade}\n"
            f"              {reason}\n"
            "            </p>\n"
            f'            <div><button type="submit" name="item" value="{_number(item.pk)}" '
            f'class="btn btn-link btn-sm p-0 text-body-secondary">{not_interested}'
            f'<span class="visually-hidden"> {title}</span></button></div>\n'
            "          </div>\n"
            "        </article>\n"
            "      </div>\n    "
        )
    parts.append("\n  </div>\n  </form>\n</section>\n")
    return mark_safe("".join(parts))  # every value above is escaped


def draw_forum(threads: list[Thread]) -> SafeString:
    """home/_forum.html."""
    # Translated here, not inside the f-strings below, which makemessages does not read.
    t_new = gettext("new")
    t_new_replies = gettext("new replies")
    t_new_in_the_forum_areas_you_read = gettext("New in the forum areas you read")
    t_all_forum_areas = gettext("All forum areas")
    thread_url = ThreadAddress()
    new = f'<span class="badge text-bg-primary">{t_new}</span>'
    new_replies = f'<span class="badge text-bg-info">{t_new_replies}</span>'
    active_when = gettext("active %(when)s")
    parts = [
        '\n<section class="mb-4" aria-labelledby="forum-title" data-testid="forum">\n'
        f'  <h2 id="forum-title" class="h5 mb-3">{t_new_in_the_forum_areas_you_read}</h2>\n'
        '  <ul class="list-group shadow-sm">\n    '
    ]
    for thread in threads:
        area = thread.category
        count = thread.reply_count
        replies = ngettext("%(n)s reply", "%(n)s replies", count) % {"n": _number(count)}
        active = active_when % {"when": escape(naturaltime(thread.last_activity_at))}
        badge = new if thread.last_read is None else new_replies  # type: ignore[attr-defined]
        parts.append(
            '\n    <li class="list-group-item" data-testid="forum-thread">\n'
            f'      <a class="fw-semibold" href="{escape(thread_url.of(thread))}">{escape(thread.title)}</a>\n'
            f"      {badge}\n"
            '      <div class="small text-body-secondary d-flex flex-wrap align-items-center gap-1 mt-1">\n'
            '        <svg class="category-dot" viewBox="0 0 2 2" aria-hidden="true" focusable="false">'
            f'<circle cx="1" cy="1" r="1" fill="{escape(area.colour)}"/></svg>\n'
            f'        <a class="text-reset" href="{_address("community:category", area.slug)}">{escape(area.name)}</a>\n'
            '        <span aria-hidden="true">·</span>\n'
            f"        <span>{replies}</span>\n"
            '        <span aria-hidden="true">·</span>\n'
            f"        <span>{active}</span>\n"
            "      </div>\n"
            "    </li>\n    "
        )
    parts.append(
        "\n  </ul>\n"
        f'  <a class="d-inline-block small mt-2" href="{_address("community:index")}">'
        f"{t_all_forum_areas}</a>\n"
        "</section>\n"
    )
    return mark_safe("".join(parts))  # every value above is escaped


def draw_events(events: NextEvents) -> SafeString:
    """home/_events.html, in the active time zone."""
    # Translated here, not inside the f-strings below, which makemessages does not read.
    t_all_events = gettext("All events")
    t_your_next_events = gettext("Your next events")
    t_you_have_not_signed_up_for_any_event_yet = gettext(
        "You have not signed up for any event yet. Coming up:"
    )
    t_going = gettext("going")
    t_on_the_wait_list = gettext("on the wait list")
    t_nothing_scheduled_yet = gettext("Nothing scheduled yet.")
    all_events = f'<a href="{_address("community:events")}">{t_all_events}</a>'
    parts = [
        '\n<section class="mb-4" aria-labelledby="events-title" data-testid="events">\n'
        f'  <h2 id="events-title" class="h5 mb-3">{t_your_next_events}</h2>\n  '
    ]
    if events:
        note = ""
        if not events.going:
            note = (
                f'<p class="small text-body-secondary mb-2">{t_you_have_not_signed_up_for_any_event_yet}</p>'
            )
        parts.append(f'\n    {note}\n    <ul class="list-group shadow-sm">\n      ')
        going = f'<span class="badge text-bg-success">{t_going}</span>'
        waiting = f'<span class="badge text-bg-warning">{t_on_the_wait_list}</span>'
        for event in events.events:
            starts = localtime(event.starts_at)
            status = event.my_status
            badge = ""
            if status == "going":
                badge = going
            elif status == "waitlist":
                badge = waiting
            parts.append(
                '\n      <li class="list-group-item" data-testid="home-event">\n'
                f'        <div class="small text-body-secondary"><time datetime="{escape(date_format(starts, "c"))}">'
                f"{escape(date_format(starts, 'DATETIME_FORMAT'))}</time></div>\n"
                f'        <a class="fw-semibold" href="{_address("community:event", event.slug)}">{escape(event.title)}</a>\n'
                f"        {badge}\n"
                "      </li>\n      "
            )
        zone = gettext("Times in your time zone (%(zone)s).") % {"zone": escape(get_current_timezone_name())}
        parts.append(
            f'\n    </ul>\n    <p class="small text-body-secondary mt-2 mb-0">{zone} {all_events}</p>\n  '
        )
    else:
        parts.append(
            f'\n    <p class="small text-body-secondary mb-0">{t_nothing_scheduled_yet} {all_events}</p>\n  '
        )
    parts.append("\n</section>\n")
    return mark_safe("".join(parts))  # every value above is escaped


def draw_points(points: LevelProgress) -> SafeString:
    """home/_points.html."""
    # Translated here, not inside the f-strings below, which makemessages does not read.
    t_progress_to_the_next_level = gettext("Progress to the next level")
    t_you_reached_the_top_level = gettext("You reached the top level.")
    t_your_points = gettext("Your points")
    t_balance = gettext("Balance")
    t_level = gettext("Level")
    t_see_your_points = gettext("See your points")
    level = points.level
    shown = f"{escape(level.badge)} {escape(level.name)}" if level else gettext("No level yet")
    if points.next_level:
        percent = _number(points.percent)
        to_next = gettext("%(n)s more points to reach %(level)s") % {
            "n": escape(intcomma(points.to_next)),
            "level": escape(points.next_level.name),
        }
        way = (
            '\n      <div class="progress mb-1" role="progressbar" '
            f'aria-label="{t_progress_to_the_next_level}" aria-valuenow="{percent}" '
            'aria-valuemin="0" aria-valuemax="100"><svg class="progress-fill" aria-hidden="true" focusable="false">'
            f'<rect width="{percent}%" height="100%"/></svg></div>\n'
            f'      <div class="small text-body-secondary" data-testid="home-next-level">{to_next}</div>\n    '
        )
    else:
        way = f'\n      <div class="small text-body-secondary">{t_you_reached_the_top_level}</div>\n    '
    html = (
        '\n<section class="mb-4" aria-labelledby="points-title" data-testid="points">\n'
        f'  <h2 id="points-title" class="h5 mb-3">{t_your_points}</h2>\n'
        '  <div class="card shadow-sm"><div class="card-body">\n'
        '    <div class="d-flex flex-wrap justify-content-between gap-3 mb-2">\n'
        "      <div>\n"
        f'        <div class="small text-body-secondary">{t_balance}</div>\n'
        f'        <div class="h4 fw-bold mb-0" data-testid="home-balance">{escape(intcomma(points.balance))}</div>\n'
        "      </div>\n"
        '      <div class="text-end min-w-0">\n'
        f'        <div class="small text-body-secondary">{t_level}</div>\n'
        f'        <div class="fw-semibold" data-testid="home-level">{shown}</div>\n'
        "      </div>\n"
        "    </div>\n    "
        f"{way}\n"
        f'    <a class="d-inline-block small mt-2" href="{_address("points:overview")}">'
        f"{t_see_your_points}</a>\n"
        "  </div></div>\n"
        "</section>\n"
    )
    return mark_safe(html)  # every value above is escaped
