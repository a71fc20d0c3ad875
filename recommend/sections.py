"""Sections recommend adds to lower apps' pages through their registries (see content.slots and
community.slots)."""

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.text import Truncator

from community.models import Thread
from content.models import Content
from members.access import can_access
from members.models import User

from .end_html import draw_after_item, draw_suggested_topics
from .models import Impression
from .selectors import also_read, around_item, next_up, recommendations_for
from .topics import suggested_topics

DIGEST_PICKS = 3
DIGEST_SUMMARY_CHARS = 140


def after_item_section(request: HttpRequest, item: Content) -> str:
    """The end of an item (or of a course's last lesson): "Next up", the one thing to read now,
    then "Members who read this also read" without it."""
    around = around_item(item=item, member=request.user)
    upcoming = next_up(item=item, member=request.user, around=around)
    others = [
        other
        for other in also_read(item=item, member=request.user, n=5, around=around)
        if upcoming is None or other != upcoming.item
    ]
    if upcoming is None and not others:
        return ""
    return draw_after_item(item=item, upcoming=upcoming, others=others[:4])


def suggested_topics_section(request: HttpRequest, thread: Thread) -> str:
    topics = suggested_topics(thread=thread, member=request.user)
    if not topics:
        return ""
    return draw_suggested_topics(topics=topics, user=request.user)


@dataclass(frozen=True)
class DigestPick:
    title: str
    summary: str  # the public teaser, on one line and cut short; never the body
    url: str  # absolute: the email is read outside the site
    because: str  # the title of the item that led here, or ""


def digest_picks_section(member: User) -> str:
    """The weekly digest's "Picked for you": up to three items from the member's list.

    recommendations_for already keeps to items the member may open; each pick (and the item
    named as its reason) is checked again with the access policy, because an email, once sent,
    cannot be taken back. Cost per member: the queries of one recommendations_for call plus at
    most one tier lookup per pick."""
    picks: list[DigestPick] = []
    for recommendation in recommendations_for(member=member, n=DIGEST_PICKS, surface=Impression.List.DIGEST):
        item = recommendation.item
        if not can_access(member, item):
            continue
        because = recommendation.because
        picks.append(
            DigestPick(
                title=item.title,
                summary=Truncator(" ".join(item.summary.split())).chars(DIGEST_SUMMARY_CHARS),
                url=f"{settings.SITE_URL}{recommendation.url}",
                because=because.title if because is not None and can_access(member, because) else "",
            )
        )
    if not picks:
        return ""
    return render_to_string("recommend/digest_picks.txt", {"picks": picks})
