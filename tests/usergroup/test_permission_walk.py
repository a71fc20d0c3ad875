"""Every URL pattern of the site, walked as every kind of user.

The patterns come from the root URLconf itself (includes, namespaces, language prefixes, the
admin's and allauth's), so a new URL fails `test_every_url_pattern_has_expectations` until it
is added to a table below with what each role must get. The walk fills each pattern with real
objects of a small world (a free tier and two paid tiers, their members, staff, gated articles,
videos, courses and lessons, forum areas open and gated, topics, posts, comments, events,
notifications, points, recommendations, CRM rows, signed tokens), GETs it as each role and
compares the answer with the table: the status, where a redirect goes, and what a page must
show. On every page, whatever its pattern, no text a role may not read appears (the gated
bodies, titles of gated topics, other members' email addresses and private notes): a private
page reached by a side road fails as surely as the front door left open. No role may ever get
a 500. A POST without a CSRF token is refused on every pattern but the listed exemptions.

Failures are collected and reported together, one line per (pattern, case, role).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from allauth.account.utils import user_pk_to_url_str
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import LocalePrefixPattern
from django.utils import timezone

from analytics import crm, imports
from analytics.models import Acquisition, Broadcast, Conversion, ScoreWeights
from analytics.services import build_member_profiles
from community.models import (
    RSVP,
    Category,
    Comment,
    Event,
    Flag,
    Notification,
    Post,
    Suspension,
    Thread,
)
from content.models import Attachment, Content, ContentView
from content.models import Tag as ContentTag
from content.services import feed_token_for
from members import audit, data_export
from members.mail import unsubscribe_token
from members.models import (
    AccountDeletionSettings,
    BillingCustomer,
    BillingSettings,
    Interval,
    LocalCheckout,
    MembershipEvent,
    Payment,
    PromotionCode,
    Provider,
    WebhookEvent,
)
from points import services as points_services
from points.models import Level, LevelUp, RedemptionItem
from recommend.experiments import follow_url
from recommend.models import Algorithm, Experiment, Impression, ItemControl, RecommendSettings, Variant
from recommend.services import build_neighbours
from tests.factories import (
    ContentFactory,
    LessonFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
    free_tier,
)

pytestmark = pytest.mark.django_db

# --- Roles ----------------------------------------------------------------------------------

# lapsed: a patron whose cancelled membership ended yesterday, before the nightly job marked it
# expired; the access policy must treat them as a free member at once.
ROLES = ("anonymous", "free", "lapsed", "supporter", "patron", "moderator", "staff")
MEMBERS = ("free", "lapsed", "supporter", "patron")
STAFF_ROLES = ("moderator", "staff")  # moderator: is_staff without permissions; staff: the creator
STAFF = 1_000  # the access policy lets staff read everything
RANK = {
    "anonymous": -1,
    "free": 0,
    "lapsed": 0,
    "supporter": 10,
    "patron": 20,
    "moderator": STAFF,
    "staff": STAFF,
}

LOGIN = "/accounts/login/?next="
ADMIN_LOGIN = "/admin/login/?next="
UPGRADE_PROMPT = 'data-testid="upgrade-prompt"'

# --- Texts only some roles may read ----------------------------------------------------------
# Each is planted once in the world; the walk checks every response body of every role.

S_MEMBERS_ARTICLE = "walksecret-members-article-body"
S_SUPPORTER_ARTICLE = "walksecret-supporter-article-body"
S_SUPPORTER_FILE = "walksecret-supporter-attachment-bytes"
S_PATRON_VIDEO_BODY = "walksecret-patron-video-body"
S_PATRON_VIDEO_FILE = "walksecret-patron-video-bytes"
S_SUPPORTER_COURSE = "walksecret-supporter-course-body"
S_SUPPORTER_LESSON = "walksecret-supporter-lesson-body"
S_SUPPORTER_LESSON_FILE = "walksecret-supporter-lesson-bytes"
S_SUPPORTER_COMMENT = "walksecret-supporter-comment"
S_DRAFT = "walksecret-draft-body"
S_MEMBERS_AREA = "walksecret-members-area-name"
S_MEMBERS_TOPIC = "walksecret-members-topic-title"
S_MEMBERS_POST = "walksecret-members-post"
S_SUPPORTER_AREA = "walksecret-supporter-area-name"
S_SUPPORTER_TOPIC = "walksecret-supporter-topic-title"
S_SUPPORTER_POST = "walksecret-supporter-post"
S_SUPPORTER_REPLY = "walksecret-supporter-reply"
S_HIDDEN_POST = "walksecret-hidden-post"
S_PENDING_POST = "walksecret-post-awaiting-approval"
S_HIDDEN_COMMENT = "walksecret-hidden-comment"
S_SHY_NAME = "walksecret-shy-member-name"  # hidden from leaderboards, never posts
S_FLAG_NOTE = "walksecret-flag-note"
S_PATRON_EVENT = "walksecret-patron-event-description"
S_PATRON_ADDRESS = "walksecret-patron-event-address"
S_CRM_NOTE = "walksecret-crm-note"
S_FREE_SHIPPING = "walksecret-free-shipping-address"

PUBLIC_BODY = "walkpublic-article-body"
PREVIEW_LESSON = "walkpublic-preview-lesson"
SEARCH_WORD = "walkword"  # in every post body, so forum search meets every topic


def _readers(needed: int) -> frozenset[str]:
    return frozenset(role for role in ROLES if RANK[role] >= needed)


SECRETS: dict[str, frozenset[str]] = {
    **dict.fromkeys([S_MEMBERS_ARTICLE, S_MEMBERS_AREA, S_MEMBERS_TOPIC, S_MEMBERS_POST], _readers(0)),
    **dict.fromkeys(
        [
            S_SUPPORTER_ARTICLE,
            S_SUPPORTER_FILE,
            S_SUPPORTER_COURSE,
            S_SUPPORTER_LESSON,
            S_SUPPORTER_LESSON_FILE,
            S_SUPPORTER_COMMENT,
            S_SUPPORTER_AREA,
            S_SUPPORTER_TOPIC,
            S_SUPPORTER_POST,
            S_SUPPORTER_REPLY,
        ],
        _readers(10),
    ),
    **dict.fromkeys(
        [S_PATRON_VIDEO_BODY, S_PATRON_VIDEO_FILE, S_PATRON_EVENT, S_PATRON_ADDRESS], _readers(20)
    ),
    **dict.fromkeys(
        [S_DRAFT, S_HIDDEN_POST, S_HIDDEN_COMMENT, S_FLAG_NOTE, S_CRM_NOTE, S_SHY_NAME], _readers(STAFF)
    ),
    S_PENDING_POST: frozenset({"free", *STAFF_ROLES}),  # its author's and the moderators'
    # Private to one member (and to the creator's pages).
    S_FREE_SHIPPING: frozenset({"free", *STAFF_ROLES}),
    "walk-free@example.com": frozenset({"free", *STAFF_ROLES}),
    "walk-supporter@example.com": frozenset({"supporter", *STAFF_ROLES}),
    "walk-patron@example.com": frozenset({"patron", *STAFF_ROLES}),
    "walk-lapsed@example.com": frozenset({"lapsed", *STAFF_ROLES}),
}


# --- Expectations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class E:
    """What one role must get: the status, a redirect's target (prefix, or a function of the
    world), texts the body must hold."""

    status: int
    to: str | Callable[[Any], str] = ""
    shows: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    expect: dict[str, E]
    kwargs: Callable[[Any], dict[str, Any]] = lambda w: {}
    query: str = ""
    label: str = ""
    # Whose rights the secret check applies to, when the URL itself is the credential
    # (a private feed, an unsubscribe link): then every role gets that member's page.
    reader: str | None = None
    # Pages that are public by design must show nothing above this role's rights (the public feeds).
    reader_cap: str | None = None
    # The GET signs out whoever is signed in, by design (an email confirmation link of another
    # account); the walk signs them in again.
    signs_out: bool = False


def every(expect: E) -> dict[str, E]:
    return dict.fromkeys(ROLES, expect)


def signed_in(expect: E, **overrides: E) -> dict[str, E]:
    """login_required: visitors go to the login page."""
    return {"anonymous": E(302, to=LOGIN), **dict.fromkeys(ROLES[1:], expect), **overrides}


def returning(value: dict[str, Any]) -> Callable[[SimpleNamespace], dict[str, Any]]:
    """A case's kwargs that need nothing from the world (a lambda would need a default argument
    to hold a loop variable)."""
    return lambda _world: value


def staff_member(expect: E) -> dict[str, E]:
    """staff_member_required (and the admin's own views): everyone else to the admin's login."""
    return {
        **dict.fromkeys(("anonymous", *MEMBERS), E(302, to=ADMIN_LOGIN)),
        **dict.fromkeys(STAFF_ROLES, expect),
    }


def creator(expect: E, *, moderator: E | None = None) -> dict[str, E]:
    """analytics' creator_required: visitors to the login page, members and staff without the
    permission to view members (the moderator) 403."""
    return {
        "anonymous": E(302, to=LOGIN),
        **dict.fromkeys(MEMBERS, E(403)),
        "moderator": moderator or E(403),
        "staff": expect,
    }


def gate(needed: str, yes: E, no: E) -> dict[str, E]:
    """The access policy: roles at `needed` or above (staff always) get `yes`."""
    return {role: yes if RANK[role] >= RANK[needed] else no for role in ROLES}


def locked() -> E:
    """The item's page with the upgrade prompt instead of the body (the body's absence is
    checked on every page by the secret check)."""
    return E(200, shows=(UPGRADE_PROMPT,))


def reads(*texts: str) -> E:
    return E(200, shows=texts)


POST_ONLY_MEMBER = signed_in(E(405))  # @login_required + @require_POST
POST_ONLY_STAFF = staff_member(E(405))  # @staff_member_required + @require_POST
POST_ONLY_CREATOR = creator(E(405))  # @creator_required + @require_POST
GONE = every(E(404))


def slug(attr: str, key: str = "slug") -> Callable[[Any], dict[str, Any]]:
    return lambda w: {key: getattr(w, attr).slug}


def pk(attr: str, key: str = "pk") -> Callable[[Any], dict[str, Any]]:
    return lambda w: {key: getattr(w, attr).pk}


def lesson_of(course: str, lesson: str) -> Callable[[Any], dict[str, Any]]:
    return lambda w: {"slug": getattr(w, course).slug, "lesson_slug": getattr(w, lesson).slug}


def thread_kwargs(attr: str) -> Callable[[Any], dict[str, Any]]:
    return lambda w: {"pk": getattr(w, attr).pk, "slug": "topic"}


# The table: every named pattern outside the admin's model pages (which follow from
# ADMIN_MODELS below), with one or more cases, each with what every role must get. A new URL:
# read its view, add its cases here (objects it needs go into build_world), run this file.
PAGES: dict[str, list[Case]] = {
    "home": [Case(every(E(200)))],
    "welcome": [Case(signed_in(E(200)))],
    "privacy_policy": [Case(every(E(200)))],
    # --- allauth ---
    "account_login": [Case({"anonymous": E(200), **dict.fromkeys(ROLES[1:], E(302, to="/"))})],
    "account_logout": [Case(signed_in(E(200), anonymous=E(302, to="/")))],  # GET asks to confirm
    "account_inactive": [Case(every(E(200)))],
    "account_signup": [Case({"anonymous": E(200), **dict.fromkeys(ROLES[1:], E(302, to="/"))})],
    "account_reauthenticate": [Case(signed_in(E(200)))],
    "account_email": [Case(signed_in(E(200)))],
    "account_email_verification_sent": [Case(every(E(200)))],
    "account_change_password": [Case(signed_in(E(200)))],
    "account_set_password": [Case(signed_in(E(302, to="/accounts/password/change/")))],
    "account_reset_password": [Case(every(E(200)))],
    # No code login is pending: back to the login page, or home when signed in.
    "account_confirm_login_code": [Case(signed_in(E(302, to="/"), anonymous=E(302, to="/accounts/login/")))],
    "account_confirm_email": [
        # The link of another account signs out whoever is signed in (allauth), then asks to confirm.
        Case(every(E(200)), kwargs=lambda w: {"key": w.confirm_key}, label="valid key", signs_out=True),
        # allauth answers a bad key with its page (200) saying so; only its AJAX answer is a 400.
        Case(
            every(E(200, shows=("This email confirmation link expired or is invalid",))),
            kwargs=lambda w: {"key": "not-a-key"},
            label="bad key",
        ),
    ],
    # The same path, answered by members.views.ConfirmEmailView (allauth's page, and its POST
    # also signs a new account in): the same answers.
    "account_confirm_email_and_sign_in": [
        Case(every(E(200)), kwargs=lambda w: {"key": w.confirm_key}, label="valid key", signs_out=True),
        Case(
            every(E(200, shows=("This email confirmation link expired or is invalid",))),
            kwargs=lambda w: {"key": "not-a-key"},
            label="bad key",
        ),
    ],
    "account_reset_password_from_key": [
        Case(
            every(E(302, to="/accounts/password/reset/key/")),
            kwargs=lambda w: {"uidb36": user_pk_to_url_str(w.newcomer), "key": w.reset_key},
            label="valid key",
        ),
        Case(
            every(E(200, shows=("Bad Token",))),
            kwargs=lambda w: {"uidb36": user_pk_to_url_str(w.newcomer), "key": "1-not-a-key"},
            label="bad key",
        ),
    ],
    "account_reset_password_from_key_done": [Case(every(E(200)))],
    "account_reset_password_done": [Case(every(E(200)))],
    # --- allauth's two-factor pages ---
    "mfa_index": [Case(signed_in(E(200)))],
    # No sign-in is waiting for a second factor: back to the login page, or home.
    "mfa_authenticate": [Case(signed_in(E(302, to="/"), anonymous=E(302, to="/accounts/login/")))],
    # Asking for the second factor again makes sense only to those who have one (staff, here);
    # members without one are asked for their password instead.
    "mfa_reauthenticate": [
        Case(signed_in(E(302, to="/accounts/reauthenticate/"), moderator=E(200), staff=E(200)))
    ],
    # Adding or removing a factor, or new recovery codes, first asks who you are again (a
    # session signed in a while ago; the walk's sessions have no recent sign-in).
    "mfa_activate_totp": [Case(signed_in(E(302, to="/accounts/reauthenticate/?next=")))],
    "mfa_deactivate_totp": [
        Case(
            signed_in(
                E(404),
                moderator=E(302, to="/accounts/reauthenticate/?next="),
                staff=E(302, to="/accounts/reauthenticate/?next="),
            )
        )
    ],
    "mfa_view_recovery_codes": [Case(signed_in(E(404)))],  # nobody in the world has recovery codes
    "mfa_generate_recovery_codes": [Case(signed_in(E(302, to="/accounts/reauthenticate/?next=")))],
    "mfa_download_recovery_codes": [Case(signed_in(E(404)))],
    # --- members ---
    "members:profile": [Case(signed_in(E(200)))],
    "members:set_language": [Case(every(E(405)))],
    "members:privacy": [Case(signed_in(E(200)))],
    "members:request_export": [Case(POST_ONLY_MEMBER)],
    "members:download_export": [
        # The archive is its member's alone: anyone else (staff too) gets the 404 of a missing id.
        Case(
            signed_in(E(404), free=E(200)), kwargs=lambda w: {"export_id": w.data_export.pk}, label="free's"
        ),
        Case(
            signed_in(E(404)),
            kwargs=lambda w: {"export_id": "00000000-0000-0000-0000-000000000000"},
            label="missing",
        ),
    ],
    "members:delete_account": [Case(signed_in(E(200)))],
    "members:unsubscribe": [
        Case(every(E(200)), kwargs=lambda w: {"token": w.unsubscribe_token}, reader="free", label="valid"),
        Case(every(E(400)), kwargs=lambda w: {"token": "not-a-token"}, label="bad token"),
    ],
    # --- billing ---
    "billing:pricing": [Case(every(E(200)))],
    "billing:membership": [Case(signed_in(E(200)))],
    "billing:checkout": [Case(POST_ONLY_MEMBER)],
    "billing:checkout_done": [Case(signed_in(E(302, to="/billing/")))],
    "billing:local_checkout": [
        # Only its owner sees a checkout; anyone else (staff too) gets a 404.
        Case(
            signed_in(E(404), supporter=E(200)),
            kwargs=lambda w: {"checkout_id": w.checkout.pk},
            label="the supporter's checkout",
        )
    ],
    # The cancel page is for a paid membership that still renews; anyone else goes to their own.
    "billing:cancel": [Case(signed_in(E(302, to="/billing/"), supporter=E(200), patron=E(200)))],
    "billing:resume": [Case(POST_ONLY_MEMBER)],
    "billing:change": [
        Case(signed_in(E(302, to="/pricing/")), label="no plan asked"),
        # The preview is the paying member's own; without a paid membership there is none.
        Case(
            signed_in(
                E(302, to="/pricing/"),
                supporter=E(200, shows=("Confirm and pay",)),
                patron=E(302, to="/billing/"),  # already on it
                lapsed=E(302, to="/billing/"),
            ),
            query="tier=patron&interval=month",
            label="an upgrade",
        ),
    ],
    "billing:cancel_change": [Case(POST_ONLY_MEMBER)],
    "billing:portal": [Case(POST_ONLY_MEMBER)],
    "billing:stripe_webhook": [Case(every(E(405)))],
    # --- content ---
    "content:library": [
        Case(every(E(200)), label="newest"),
        Case(every(E(200)), query=f"q={SEARCH_WORD}", label="search"),
        Case(every(E(200)), query="kind=video", label="videos"),
    ],
    "content:mine": [Case(signed_in(E(200)))],
    "content:interests": [Case(signed_in(E(200)))],
    "content:rotate_feed": [Case(POST_ONLY_MEMBER)],
    "content:beacon": [Case(every(E(405)))],
    "content:preview": [Case(POST_ONLY_STAFF)],
    "content:feed_rss": [Case(every(E(200, shows=(PUBLIC_BODY,))), reader_cap="anonymous")],
    "content:feed_atom": [Case(every(E(200, shows=(PUBLIC_BODY,))), reader_cap="anonymous")],
    "content:feed_private": [
        # The secret URL is the credential: whoever holds it reads the supporter's feed.
        Case(
            every(E(200, shows=(S_SUPPORTER_ARTICLE,))),
            kwargs=lambda w: {"token": w.feed_token},
            reader="supporter",
            label="the supporter's token",
        ),
        Case(GONE, kwargs=lambda w: {"token": "not-a-token"}, label="bad token"),
    ],
    "content:attachment": [
        Case(
            gate("supporter", reads(S_SUPPORTER_FILE), E(404)),
            kwargs=pk("attachment"),
            label="supporter item",
        )
    ],
    "content:detail": [
        Case(every(reads(PUBLIC_BODY)), kwargs=slug("article_public"), label="public article"),
        Case(
            gate("free", reads(S_MEMBERS_ARTICLE), locked()), kwargs=slug("article_members"), label="members"
        ),
        Case(
            gate("supporter", reads(S_SUPPORTER_ARTICLE), locked()),
            kwargs=slug("article_supporter"),
            label="supporter article",
        ),
        Case(
            gate("patron", reads(S_PATRON_VIDEO_BODY), locked()),
            kwargs=slug("video_patron"),
            label="patron video",
        ),
        Case(
            gate("supporter", reads(S_SUPPORTER_COURSE), locked()),
            kwargs=slug("course_supporter"),
            label="supporter course",
        ),
        # A draft is a preview for staff and does not exist for anyone else.
        Case(gate("moderator", reads(S_DRAFT), E(404)), kwargs=slug("draft"), label="draft"),
    ],
    "content:video": [
        Case(
            gate("patron", reads(S_PATRON_VIDEO_FILE), E(404)),
            kwargs=slug("video_patron"),
            label="patron video",
        ),
        Case(GONE, kwargs=slug("article_public"), label="item without a video"),
    ],
    "content:like": [Case(POST_ONLY_MEMBER, kwargs=slug("article_public"))],
    "content:bookmark": [Case(POST_ONLY_MEMBER, kwargs=slug("article_public"))],
    "content:lesson": [
        Case(
            every(reads(PREVIEW_LESSON)),
            kwargs=lesson_of("course_supporter", "lesson_preview"),
            label="free preview lesson",
        ),
        Case(
            gate("supporter", reads(S_SUPPORTER_LESSON), locked()),
            kwargs=lesson_of("course_supporter", "lesson_locked"),
            label="supporter lesson",
        ),
    ],
    "content:lesson_video": [
        Case(
            gate("supporter", reads(S_SUPPORTER_LESSON_FILE), E(404)),
            kwargs=lesson_of("course_supporter", "lesson_locked"),
            label="supporter lesson",
        )
    ],
    "content:complete_lesson": [
        Case(POST_ONLY_MEMBER, kwargs=lesson_of("course_supporter", "lesson_locked"))
    ],
    # --- points ---
    "points:overview": [Case(signed_in(E(200)))],
    "points:leaderboard": [
        Case(every(E(200)), label="this week"),
        Case(every(E(200)), query="period=all", label="all time"),
    ],
    "points:redeem": [Case(POST_ONLY_MEMBER, kwargs=pk("redemption_item", "item_id"))],
    "points:privacy": [Case(POST_ONLY_MEMBER)],
    "points:dismiss": [Case(POST_ONLY_MEMBER, kwargs=pk("level_up", "notice_id"))],
    # --- community ---
    "community:index": [Case(every(E(200)))],
    "community:search": [Case(every(E(200)), query=f"q={SEARCH_WORD}")],
    "community:category": [
        Case(every(E(200)), kwargs=slug("area_public"), label="public area"),
        Case(gate("free", reads(S_MEMBERS_TOPIC), E(404)), kwargs=slug("area_members"), label="members area"),
        Case(
            gate("supporter", reads(S_SUPPORTER_TOPIC), E(404)),
            kwargs=slug("area_supporter"),
            label="supporter area",
        ),
    ],
    "community:new_thread": [
        Case(signed_in(E(200)), kwargs=slug("area_public"), label="public area"),
        Case(signed_in(E(200)), kwargs=slug("area_members"), label="members area"),
        Case(
            signed_in(E(200), free=E(404), lapsed=E(404)),  # an area you may not read looks missing
            kwargs=slug("area_supporter"),
            label="supporter area",
        ),
        Case(
            signed_in(E(200), free=E(403), lapsed=E(403)),  # readable by all, supporters and up may post
            kwargs=slug("area_announcements"),
            label="announcements",
        ),
    ],
    "community:thread_short": [
        Case(every(E(200)), kwargs=pk("thread_public"), label="public topic"),
        Case(gate("free", reads(S_MEMBERS_POST), E(404)), kwargs=pk("thread_members"), label="members topic"),
        Case(
            gate("supporter", reads(S_SUPPORTER_POST, S_SUPPORTER_REPLY), E(404)),
            kwargs=pk("thread_supporter"),
            label="supporter topic",
        ),
        Case(GONE, kwargs=pk("thread_hidden"), label="hidden topic"),
    ],
    "community:thread": [
        Case(every(E(200)), kwargs=thread_kwargs("thread_public"), label="public topic"),
        # ?quote= fills the reply box with a post: never one from a topic the reader may not read.
        Case(
            every(E(200)),
            kwargs=thread_kwargs("thread_public"),
            query="quote={supporter_post}",
            label="quoting a supporter post",
        ),
        Case(
            gate("supporter", reads(S_SUPPORTER_POST), E(404)),
            kwargs=thread_kwargs("thread_supporter"),
            label="supporter topic",
        ),
        Case(GONE, kwargs=thread_kwargs("thread_hidden"), label="hidden topic"),
    ],
    "community:reply": [Case(POST_ONLY_MEMBER, kwargs=pk("thread_public"))],
    "community:accept": [
        Case(POST_ONLY_MEMBER, kwargs=lambda w: {"pk": w.thread_public.pk, "post_id": w.reply_public.pk})
    ],
    "community:vote": [Case(POST_ONLY_MEMBER, kwargs=pk("reply_public", "post_id"))],
    "community:edit": [
        # Your own post: the form. Someone else's: 403 (moderators may edit any).
        Case(
            signed_in(E(403), free=E(200), moderator=E(200), staff=E(200)),
            kwargs=pk("opening_public", "post_id"),
            label="the free member's post",
        ),
        Case(
            {
                "anonymous": E(302, to=LOGIN),
                "free": E(404),
                "lapsed": E(404),
                "supporter": E(200),
                "patron": E(403),
                "moderator": E(200),
                "staff": E(200),
            },
            kwargs=pk("opening_supporter", "post_id"),
            label="the supporter's post in the supporter area",
        ),
        Case(signed_in(E(404)), kwargs=pk("post_hidden", "post_id"), label="hidden post"),
    ],
    "community:flag": [Case(POST_ONLY_MEMBER, kwargs=pk("reply_public", "post_id"))],
    "community:moderate": [Case(POST_ONLY_STAFF, kwargs=pk("reply_public", "post_id"))],
    "community:moderation": [Case(staff_member(reads(S_FLAG_NOTE)))],
    "community:notifications": [Case(signed_in(E(200)))],
    "community:comment": [Case(POST_ONLY_MEMBER, kwargs=pk("article_supporter", "content_id"))],
    "community:hide_comment": [Case(POST_ONLY_STAFF, kwargs=pk("comment_supporter", "comment_id"))],
    "community:flag_comment": [Case(POST_ONLY_MEMBER, kwargs=pk("comment_supporter", "comment_id"))],
    "community:moderate_comment": [Case(POST_ONLY_STAFF, kwargs=pk("comment_supporter", "comment_id"))],
    "community:mention_suggestions": [
        Case(signed_in(E(200)), label="anywhere"),
        Case(signed_in(E(200)), query="category=walk-public-area", label="public area"),
        Case(
            signed_in(E(200), free=E(404), lapsed=E(404)),
            query="category=walk-supporter-area",
            label="supporter area",
        ),
    ],
    "community:events": [Case(every(E(200)))],
    "community:event": [
        Case(every(E(200)), kwargs=slug("event_public"), label="open event"),
        Case(
            gate("patron", reads(S_PATRON_EVENT, S_PATRON_ADDRESS), E(200)),
            kwargs=slug("event_patron"),
            label="patron event",
        ),
    ],
    "community:rsvp": [Case(POST_ONLY_MEMBER, kwargs=slug("event_patron"))],
    "community:event_ics": [
        Case(every(E(200)), kwargs=slug("event_public"), label="open event"),
        Case(
            gate("patron", reads(S_PATRON_ADDRESS), E(200)), kwargs=slug("event_patron"), label="patron event"
        ),
    ],
    "community:follow": [Case(POST_ONLY_MEMBER, kwargs=pk("thread_public"))],
    # --- recommend ---
    "recommend:not_interested": [Case(POST_ONLY_MEMBER, kwargs=pk("article_supporter"))],
    "recommend:not_interested_in_pick": [Case(POST_ONLY_MEMBER)],
    "recommend:follow": [
        # The target comes from the signed impression; the item page applies the access policy.
        Case(
            signed_in(E(302, to="/library/walk-supporter-article/")),
            kwargs=lambda w: {"token": w.follow_token},
            label="the supporter's impression",
        ),
        Case(signed_in(E(404)), kwargs=lambda w: {"token": "not-a-token"}, label="bad token"),
    ],
    # --- the creator's insights (analytics) ---
    # creator_required asks for is_staff alone (staff are the creator here, as in
    # tests/analytics/test_crm.py): a staff account without permissions reads them too. Only
    # the import, which creates accounts, asks for a permission.
    "analytics:dashboard": [Case(creator(E(200)))],
    "analytics:members": [Case(creator(E(200)))],
    "analytics:export": [Case(creator(reads("walk-free@example.com")))],
    "analytics:email": [Case(creator(E(200)))],
    "analytics:member": [Case(creator(reads(S_CRM_NOTE)), kwargs=pk("free"), label="the free member")],
    "analytics:add_tag": [Case(POST_ONLY_CREATOR, kwargs=pk("free"))],
    "analytics:remove_tag": [
        Case(POST_ONLY_CREATOR, kwargs=lambda w: {"pk": w.free.pk, "tag_id": w.crm_tag.pk})
    ],
    "analytics:add_note": [Case(POST_ONLY_CREATOR, kwargs=pk("free"))],
    "analytics:delete_note": [
        Case(POST_ONLY_CREATOR, kwargs=lambda w: {"pk": w.free.pk, "note_id": w.crm_note.pk})
    ],
    "analytics:save_segment": [Case(POST_ONLY_CREATOR)],
    "analytics:segment": [
        Case(creator(E(302, to="/admin/insights/crm/?")), kwargs=pk("segment", "segment_id"))
    ],
    "analytics:delete_segment": [Case(POST_ONLY_CREATOR, kwargs=pk("segment", "segment_id"))],
    # The import creates accounts: it needs the permission to add members, not just is_staff.
    "analytics:crm_import": [Case(creator(E(200), moderator=E(403)))],
    "analytics:crm_import_report": [
        Case(
            creator(E(200), moderator=E(403)),
            kwargs=lambda w: {"token": w.import_token},
            label="staff's upload",
        ),
        Case(
            creator(E(302, to="/admin/insights/crm/import/"), moderator=E(403)),
            kwargs=lambda w: {"token": "not-a-token"},
            label="bad token",
        ),
    ],
    "analytics:crm_import_confirm": [
        Case(creator(E(405), moderator=E(403)), kwargs=lambda w: {"token": w.import_token})
    ],
    "analytics:crm_import_discard": [
        Case(creator(E(405), moderator=E(403)), kwargs=lambda w: {"token": w.import_token})
    ],
    "analytics:crm_import_errors": [
        Case(
            creator(E(200), moderator=E(403)),
            kwargs=lambda w: {"token": w.import_token},
            label="staff's upload",
        ),
        Case(
            creator(E(302, to="/admin/insights/crm/import/"), moderator=E(403)),
            kwargs=lambda w: {"token": "not-a-token"},
            label="bad token",
        ),
    ],
    # --- the admin site's own pages ---
    "admin:index": [Case(staff_member(E(200)))],
    # The admin's login form is allauth's (with its second factor and rate limits): visitors
    # go there, members signed in are refused, staff go on to the admin.
    "admin:login": [
        Case(
            {
                "anonymous": E(302, to=LOGIN),
                **dict.fromkeys(MEMBERS, E(403)),
                **dict.fromkeys(STAFF_ROLES, E(302, to="/admin/")),
            }
        )
    ],
    # POST only; anyone but staff is sent to the admin's index (and from there to its login).
    "admin:logout": [
        Case(
            {
                **dict.fromkeys(("anonymous", *MEMBERS), E(302, to="/admin/")),
                **dict.fromkeys(STAFF_ROLES, E(405)),
            }
        )
    ],
    "admin:password_change": [Case(staff_member(E(200)))],
    "admin:password_change_done": [Case(staff_member(E(200)))],
    "admin:autocomplete": [
        Case(staff_member(E(403)), label="without parameters"),
        # The pinned item's picker lists library items (drafts too): for those who may view them.
        Case(
            staff_member(reads("Walk draft")) | {"moderator": E(403)},
            query="app_label=recommend&model_name=itemcontrol&field_name=item&term=walk",
            label="item picker",
        ),
    ],
    "admin:jsi18n": [Case(staff_member(E(200)))],
    "admin:view_on_site": [
        Case(
            staff_member(E(302, to="/library/walk-supporter-article/")),
            kwargs=lambda w: {
                "content_type_id": ContentType.objects.get_for_model(Content).pk,
                "object_id": w.article_supporter.pk,
            },
        )
    ],
    "admin:app_list": [
        Case(
            staff_member(E(200)) | {"moderator": E(404)},
            kwargs=returning({"app_label": app}),
            label=app,
        )
        for app in sorted({model._meta.app_label for model in admin.site._registry})
    ],
    # --- the admin's own views beyond a model's five pages ---
    "admin:members_membership_grant": [Case(staff_member(E(200)) | {"moderator": E(403)})],
    "admin:points_adjust": [Case(staff_member(E(200)) | {"moderator": E(403)})],
    "admin:points_pointsaccount_adjust": [
        Case(
            staff_member(E(200)) | {"moderator": E(403)},
            kwargs=lambda w: {"object_id": admin_object_pk(w, "points.pointsaccount")},
        )
    ],
    "admin:recommend_experiment_start": [Case(staff_member(E(405)), kwargs=pk("experiment"))],
    "admin:recommend_experiment_stop": [Case(staff_member(E(405)), kwargs=pk("experiment"))],
    "admin:recommend_experiment_promote": [
        Case(staff_member(E(405)), kwargs=lambda w: {"pk": w.experiment.pk, "variant_id": w.variant.pk})
    ],
    "admin:analytics_scoreweights_reset": [Case(staff_member(E(302, to="/admin/analytics/scoreweights/")))],
    "admin:auth_user_password_change": [
        Case(staff_member(E(200)) | {"moderator": E(403)}, kwargs=lambda w: {"id": w.free.pk})
    ],
    # --- files ---
    "public_media": [
        Case(every(E(200)), kwargs=lambda w: {"folder": "avatars", "name": w.avatar_name}, label="avatar"),
        Case(GONE, kwargs=lambda w: {"folder": "avatars", "name": "0" * 32 + ".png"}, label="missing"),
    ],
}

# Patterns without a name, by their route. The admin's catch-all answers any other address
# under /admin/ (after the login check).
UNNAMED: dict[str, list[Case]] = {
    "admin:admin/(?P<url>.*)$": [Case(staff_member(E(404)), kwargs=lambda w: {"url": "no-such-page/"})],
}

# Addresses a middleware answers before the URLconf (so they are no patterns): the probes of
# usergroup.health. Each must be listed here; they take GET and HEAD only.
MIDDLEWARE_PATHS: dict[str, list[Case]] = {
    "/healthz": [Case(every(E(200, shows=("ok",))))],
    "/readyz": [Case(every(E(200, shows=('"status": "ok"',))))],
}

# The admin's model pages, generated for every registered model from this table: what the
# creator (a superuser) gets on each page when the model admin forbids a page. Every other
# page gives the creator 200, a staff member without permissions 403, members and visitors a
# redirect to the admin's login. A model registered in the admin but missing here fails.
ALL_ALLOWED: dict[str, int] = {}
ADMIN_MODELS: dict[str, dict[str, int]] = {
    "auth.group": ALL_ALLOWED,
    "sites.site": ALL_ALLOWED,
    "account.emailaddress": ALL_ALLOWED,
    "members.user": ALL_ALLOWED,
    "mfa.authenticator": ALL_ALLOWED,
    "members.auditevent": {"add": 403, "delete": 403},  # the audit log is append-only
    # One row of deletion rules: the list goes straight to it; never added twice nor deleted.
    "members.accountdeletionsettings": {"changelist": 302, "add": 403, "delete": 403},
    "members.dataexport": {"add": 403},  # members ask for their archive; staff may delete one
    "members.tier": ALL_ALLOWED,
    "members.membership": {"add": 403},  # memberships come from checkouts or grants
    "members.payment": {"add": 403},  # financial records: read only (change is the view page)
    "members.webhookevent": {"add": 403},
    "members.membershipevent": {"add": 403, "delete": 403},  # written by the billing state machine
    # One row of billing rules, like the deletion rules.
    "members.billingsettings": {"changelist": 302, "add": 403, "delete": 403},
    "members.promotioncode": ALL_ALLOWED,
    "members.billingcustomer": {"add": 403},
    "points.pointsrule": {"delete": 403},  # cached by every process: disable instead
    "points.privilege": ALL_ALLOWED,
    "points.level": {"delete": 403},
    "points.ledgerentry": {"add": 403, "delete": 403},  # append-only ledger
    "points.pointsaccount": {"add": 403, "delete": 403},
    "points.redemptionitem": ALL_ALLOWED,
    "points.redemption": {"add": 403},
    "content.tag": ALL_ALLOWED,
    "content.content": ALL_ALLOWED,
    "content.contentview": {"add": 403},
    "community.category": ALL_ALLOWED,
    "community.thread": ALL_ALLOWED,
    "community.flag": ALL_ALLOWED,
    "community.suspension": ALL_ALLOWED,
    "community.event": ALL_ALLOWED,
    "community.rsvp": ALL_ALLOWED,
    # One row of weights: the list goes straight to it; it can be neither added nor deleted.
    # (The single-row admins redirect from their list before any permission check, so a staff
    # member without permissions gets that redirect, then a 403 on the page itself.)
    "analytics.scoreweights": {"changelist": 302, "add": 403, "delete": 403},
    "analytics.personarun": {"add": 403},
    "analytics.persona": {"add": 403},
    "analytics.tag": ALL_ALLOWED,
    "analytics.segment": ALL_ALLOWED,
    "analytics.broadcast": {"add": 403},
    "analytics.acquisition": {"add": 403},
    "analytics.conversion": {"add": 403},
    "recommend.neighbourbuild": {"add": 403},  # written by the nightly build; old ones may be deleted
    "recommend.recommendsettings": {
        "changelist": 302,
        "add": 403,
        "delete": 403,
    },  # one row, like the weights
    "recommend.itemcontrol": ALL_ALLOWED,
    "recommend.experiment": ALL_ALLOWED,
    "recommend.impression": {"add": 403, "delete": 403},
    "recommend.evaluationrun": {"add": 403, "delete": 403},
}
ADMIN_PAGES = ("changelist", "add", "change", "delete", "history")

# Patterns that accept a POST without a CSRF token, and what that POST gets (from a signed-in
# member). Everything else must refuse it with the CSRF failure page.
CSRF_EXEMPT: dict[str, tuple[int, str]] = {
    "billing:stripe_webhook": (400, "Stripe signs its webhooks; it sends no CSRF token"),
    "members:unsubscribe": (
        200,
        "the signed token is the credential; mail clients POST one-click (RFC 8058)",
    ),
}

# Patterns the walk does not request, each with its reason. Keep it short.
EXEMPT: dict[str, str] = {}


# --- The URLconf ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    key: str  # "namespace:name", or "namespace:route" for a pattern without a name
    name: str  # what reverse() takes ("" without a name)
    route: str


def url_patterns(
    resolver: URLResolver | None = None, prefix: str = "", namespace: str = ""
) -> Iterator[Pattern]:
    """Every endpoint of the URLconf, through includes, namespaces and language prefixes."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry.pattern, LocalePrefixPattern):
            route = prefix + "<language>/"
        else:
            route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace or "") if part)
            yield from url_patterns(entry, route, inner)
        else:
            assert isinstance(entry, URLPattern)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or ""
            key = name or (f"{namespace}:{route}" if namespace else route)
            yield Pattern(key=key, name=name, route=route)


def admin_model_patterns() -> dict[str, tuple[str, str]]:
    """The keys of the admin's standard model pages: key -> (model label, page)."""
    pages = {}
    for model in admin.site._registry:
        label, info = model._meta.label_lower, (model._meta.app_label, model._meta.model_name)
        for page in ADMIN_PAGES:
            pages["admin:{}_{}_{}".format(*info, page)] = (label, page)
        pages[f"admin:admin/{info[0]}/{info[1]}/<path:object_id>/"] = (label, "object")
    return pages


# --- The world -----------------------------------------------------------------------------


def build_world(tmp_path, settings) -> SimpleNamespace:
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.MEDIA_ROOT = tmp_path / "media"
    w = SimpleNamespace()
    now = timezone.now()

    # Tiers and people.
    w.free_tier = free_tier()
    w.supporter_tier = TierFactory(name="Supporter", slug="supporter", rank=10, monthly_price=Decimal("5.00"))
    w.patron_tier = TierFactory(name="Patron", slug="patron", rank=20, monthly_price=Decimal("15.00"))
    w.free = UserFactory(email="walk-free@example.com", handle="walk_free", display_name="Free Walker")
    w.supporter = MembershipFactory(
        tier=w.supporter_tier,
        user=UserFactory(email="walk-supporter@example.com", handle="walk_supporter", display_name="Sue"),
    ).user
    w.patron = MembershipFactory(
        tier=w.patron_tier,
        user=UserFactory(email="walk-patron@example.com", handle="walk_patron", display_name="Pat"),
    ).user
    w.lapsed = MembershipFactory(
        tier=w.patron_tier,
        user=UserFactory(email="walk-lapsed@example.com", handle="walk_lapsed", display_name="Lee"),
        cancel_at_period_end=True,
        current_period_start=now - timedelta(days=31),
        current_period_end=now - timedelta(days=1),
    ).user
    w.moderator = UserFactory(is_staff=True, display_name="Mo")
    w.staff = UserFactory(is_staff=True, is_superuser=True, display_name="The Creator")
    for user in (w.free, w.lapsed, w.supporter, w.patron):  # old enough to post without approval
        type(user).objects.filter(pk=user.pk).update(date_joined=now - timedelta(days=60))
    w.newcomer = UserFactory(verified_email=False)  # signed up, email not confirmed yet
    address = EmailAddress.objects.create(
        user=w.newcomer, email=w.newcomer.email, verified=False, primary=True
    )
    w.confirm_key = EmailConfirmationHMAC(address).key
    w.reset_key = default_token_generator.make_token(w.newcomer)

    # The library.
    w.article_public = ContentFactory(slug="walk-public", title="Walk public", body=PUBLIC_BODY)
    w.article_members = ContentFactory(
        slug="walk-members-article",
        title="Walk members",
        body=f"{S_MEMBERS_ARTICLE} {SEARCH_WORD}",
        min_tier=w.free_tier,
    )
    w.article_supporter = ContentFactory(
        slug="walk-supporter-article",
        title="Walk supporter",
        body=f"{S_SUPPORTER_ARTICLE} {SEARCH_WORD}",
        min_tier=w.supporter_tier,
    )
    w.attachment = Attachment(content=w.article_supporter, title="Workbook")
    w.attachment.file.save("workbook.pdf", ContentFile(S_SUPPORTER_FILE.encode()), save=True)
    w.video_patron = ContentFactory(
        slug="walk-patron-video",
        title="Walk patron video",
        kind=Content.Kind.VIDEO,
        body=f"{S_PATRON_VIDEO_BODY} {SEARCH_WORD}",
        min_tier=w.patron_tier,
    )
    w.video_patron.video_file.save("talk.mp4", ContentFile(S_PATRON_VIDEO_FILE.encode()), save=True)
    w.course_supporter = ContentFactory(
        slug="walk-course",
        title="Walk course",
        kind=Content.Kind.COURSE,
        body=f"{S_SUPPORTER_COURSE} {SEARCH_WORD}",
        min_tier=w.supporter_tier,
    )
    w.lesson_preview = LessonFactory(
        course=w.course_supporter, slug="intro", position=0, is_preview=True, body=PREVIEW_LESSON
    )
    w.lesson_locked = LessonFactory(
        course=w.course_supporter, slug="deep", position=1, body=S_SUPPORTER_LESSON
    )
    w.lesson_locked.video_file.save("lesson.mp4", ContentFile(S_SUPPORTER_LESSON_FILE.encode()), save=True)
    w.draft = ContentFactory(
        slug="walk-draft",
        title="Walk draft",
        body=f"{S_DRAFT} {SEARCH_WORD}",
        status=Content.Status.DRAFT,
        publish_at=None,
    )
    tag = ContentTag.objects.create(name="Walking", slug="walking")
    w.article_public.tags.add(tag)
    Comment.objects.create(content=w.article_public, author=w.free, body=f"Nice {SEARCH_WORD}")
    Comment.objects.create(content=w.article_public, author=w.patron, body=S_HIDDEN_COMMENT, hidden=True)
    w.comment_supporter = Comment.objects.create(
        content=w.article_supporter, author=w.supporter, body=S_SUPPORTER_COMMENT
    )

    # The forum.
    w.area_public = Category.objects.create(name="Walk public area", slug="walk-public-area")
    w.area_members = Category.objects.create(
        name=S_MEMBERS_AREA, slug="walk-members-area", read_tier=w.free_tier, description=S_MEMBERS_AREA
    )
    w.area_supporter = Category.objects.create(
        name=S_SUPPORTER_AREA, slug="walk-supporter-area", read_tier=w.supporter_tier
    )
    w.area_announcements = Category.objects.create(
        name="Walk announcements", slug="walk-announcements", post_tier=w.supporter_tier
    )

    def topic(area, author, title, body, *, kind=Thread.Kind.DISCUSSION, hidden=False):
        thread = Thread.objects.create(category=area, author=author, title=title, kind=kind, hidden=hidden)
        opening = Post.objects.create(thread=thread, author=author, body=body, is_opening=True)
        return thread, opening

    w.thread_public, w.opening_public = topic(
        w.area_public, w.free, "Walk question", f"How do I {SEARCH_WORD}?", kind=Thread.Kind.QUESTION
    )
    w.reply_public = Post.objects.create(
        thread=w.thread_public, author=w.supporter, body=f"Like this {SEARCH_WORD}"
    )
    w.thread_members, _ = topic(w.area_members, w.free, S_MEMBERS_TOPIC, f"{S_MEMBERS_POST} {SEARCH_WORD}")
    w.thread_supporter, w.opening_supporter = topic(
        w.area_supporter, w.supporter, S_SUPPORTER_TOPIC, f"{S_SUPPORTER_POST} {SEARCH_WORD}"
    )
    w.reply_supporter = Post.objects.create(
        thread=w.thread_supporter, author=w.patron, body=f"{S_SUPPORTER_REPLY} {SEARCH_WORD}"
    )
    w.thread_hidden, w.post_hidden = topic(
        w.area_public, w.free, "Walk hidden topic", f"{S_HIDDEN_POST} {SEARCH_WORD}", hidden=True
    )
    Post.objects.filter(pk=w.post_hidden.pk).update(hidden=True)
    Post.objects.create(
        thread=w.thread_public, author=w.free, body=f"{S_PENDING_POST} {SEARCH_WORD}", approved=False
    )
    Flag.objects.create(post=w.reply_public, reporter=w.free, reason=Flag.Reason.RUDE, note=S_FLAG_NOTE)
    troll = UserFactory()
    Suspension.objects.create(member=troll, until=now + timedelta(days=3), reason="Spam", by=w.staff)

    # Events.
    w.event_public = Event.objects.create(
        title="Walk open session",
        slug="walk-open-session",
        summary="Everyone welcome.",
        description="Open to all.",
        starts_at=now + timedelta(days=2),
        ends_at=now + timedelta(days=2, hours=1),
        join_url="https://meet.example.com/open",
    )
    w.event_patron = Event.objects.create(
        title="Walk patron dinner",
        slug="walk-patron-dinner",
        summary="For patrons.",
        description=S_PATRON_EVENT,
        starts_at=now + timedelta(days=3),
        ends_at=now + timedelta(days=3, hours=2),
        online=False,
        address=S_PATRON_ADDRESS,
        min_tier=w.patron_tier,
    )
    RSVP.objects.create(event=w.event_patron, member=w.patron, status=RSVP.Status.GOING)

    # Notifications, some about things the recipient may no longer read: the bell filters them.
    for member in (w.free, w.lapsed, w.supporter, w.patron):
        Notification.objects.create(
            recipient=member, kind=Notification.Kind.REPLY, actor=w.patron, thread=w.thread_supporter,
            post=w.reply_supporter,
        )  # fmt: skip
        Notification.objects.create(recipient=member, kind=Notification.Kind.EVENT_SEAT, event=w.event_patron)
        Notification.objects.create(recipient=member, kind=Notification.Kind.REPLY, thread=w.thread_members)

    # Points.
    points_services.adjust_points(member=w.free, points=500, reason="Welcome walk", actor=w.staff)
    shy = UserFactory(display_name=S_SHY_NAME, handle="walk_shy")
    points_services.adjust_points(member=shy, points=5_000, reason="Top of every board", actor=w.staff)
    points_services.set_leaderboard_visibility(member=shy, visible=False)
    w.redemption_item = RedemptionItem.objects.create(
        name="Walk mug", kind=RedemptionItem.Kind.MERCHANDISE, cost=10
    )
    points_services.redeem(member=w.free, item_id=w.redemption_item.pk, shipping_address=S_FREE_SHIPPING)
    first_level = Level.objects.order_by("threshold").first()
    assert first_level is not None  # the default levels
    w.level_up = LevelUp.objects.filter(member=w.free).first() or LevelUp.objects.create(
        member=w.free, level=first_level
    )

    # Billing.
    membership = w.supporter.memberships.get()
    Payment.objects.create(
        user=w.supporter, membership=membership, provider=Provider.LOCAL, provider_invoice_id="lin_walk",
        status=Payment.Status.PAID, amount=Decimal("5.00"), currency="USD",
    )  # fmt: skip
    BillingCustomer.objects.create(user=w.supporter, provider=Provider.LOCAL, customer_id="lcus_walk")
    MembershipEvent.objects.create(
        membership=w.lapsed.memberships.get(), kind=MembershipEvent.Kind.CANCEL_SCHEDULED, reason="other"
    )
    BillingSettings.current()
    WebhookEvent.objects.create(
        provider=Provider.STRIPE, event_id="evt_walk", type="invoice.paid", payload="{}",
        status=WebhookEvent.Status.FAILED, error="Walk failure",
    )  # fmt: skip
    PromotionCode.objects.create(code="WALK10", percent_off=10)
    w.checkout = LocalCheckout.objects.create(
        user=w.supporter, tier=w.patron_tier, interval=Interval.MONTH, amount=Decimal("15.00"), currency="USD"
    )

    # Tokens carried by URLs.
    w.unsubscribe_token = unsubscribe_token(w.free)
    w.feed_token = feed_token_for(member=w.supporter).token

    # A crowd reading the library, so profiles, recommendations and evaluations have data.
    crowd = [UserFactory(analytics_consent=True, personalisation_consent=True) for _ in range(12)]
    items = [w.article_public, w.article_members, w.article_supporter, w.video_patron, w.course_supporter]
    items += [ContentFactory(title=f"Walk crowd {n}") for n in range(4)]
    ContentView.objects.bulk_create(
        ContentView(user=member, content=item, started_at=now - timedelta(hours=n + 1))
        for m, member in enumerate(crowd)
        for n, item in enumerate(items[m % 3 :: 2])
    )
    build_member_profiles()
    build_neighbours()
    call_command("evaluate_recommendations", stdout=StringIO())

    # Recommendations: the supporter was shown the supporter article in an experiment.
    w.experiment = Experiment.objects.create(name="Walk test", key="walk-test")
    w.variant = Variant.objects.create(experiment=w.experiment, name="control", algorithm=Algorithm.ITEM_CF)
    Variant.objects.create(experiment=w.experiment, name="b", algorithm=Algorithm.CONTENT)
    impression = Impression.objects.create(
        member=w.supporter, variant=w.variant, list=Impression.List.HOME, position=0, item=w.article_supporter
    )
    w.follow_token = follow_url(impression).rstrip("/").rsplit("/", 1)[-1]
    ItemControl.objects.create(item=w.article_public, mode=ItemControl.Mode.PIN)
    RecommendSettings.current()

    # The creator's CRM.
    w.crm_tag = crm.add_tag(member=w.free, name="walk-vip", by=w.staff).tag
    w.crm_note = crm.add_note(member=w.free, body=S_CRM_NOTE, by=w.staff)
    w.segment = crm.save_segment(name="Walk segment", query={}, by=w.staff)
    Broadcast.objects.create(subject="Walk news", body="Hello", sent_by=w.staff, status=Broadcast.Status.SENT)
    Acquisition.objects.create(member=w.free, source="walk")
    Conversion.objects.create(key=f"signup:{w.free.pk}", member=w.free, kind=Conversion.Kind.SIGNUP, at=now)
    ScoreWeights.objects.create()
    stored = imports.stash_upload(
        data=b"email,name\nwalk-new@example.com,New Walker\nnot-an-email,Broken\n",
        filename="walk.csv",
        owner=w.staff,
        previewed={},
    )
    w.import_token = stored.token
    Group.objects.create(name="Walk moderators")
    audit.record(actor=w.staff, action="walk.check", target=w.free)
    if not AccountDeletionSettings.objects.exists():
        AccountDeletionSettings.objects.create()
    w.data_export = data_export.request_export(member=w.free)
    data_export.build_export(export_id=w.data_export.pk)

    # A public upload.
    w.avatar_name = "a" * 32 + ".png"
    (settings.MEDIA_ROOT / "avatars").mkdir(parents=True)
    (settings.MEDIA_ROOT / "avatars" / w.avatar_name).write_bytes(b"\x89PNG\r\n\x1a\n")

    # One real object for each model in the admin.
    w.admin_objects = {}
    for model in admin.site._registry:
        obj = (
            w.free
            if model._meta.label_lower == "members.user"
            else model._default_manager.order_by("pk").first()
        )
        w.admin_objects[model._meta.label_lower] = obj
    return w


def clients(world: SimpleNamespace, **client_kwargs: Any) -> dict[str, Client]:
    result = {}
    for role in ROLES:
        client = Client(**client_kwargs)
        if role != "anonymous":
            client.force_login(getattr(world, role))
        result[role] = client
    return result


# --- The cases of each pattern -------------------------------------------------------------


def admin_object_pk(world: SimpleNamespace, label: str) -> int:
    obj = world.admin_objects[label]
    if obj is None:
        raise LookupError(f"the world has no {label} for the admin's pages: add one to build_world")
    return obj.pk


def admin_cases(label: str, page: str) -> list[Case]:
    if page == "object":  # /admin/<app>/<model>/<pk>/ redirects to the change page
        expect = staff_member(E(302, to=lambda w: change_url(w, label)))
        return [Case(expect, kwargs=lambda w: {"object_id": admin_object_pk(w, label)})]
    status = ADMIN_MODELS[label].get(page, 200)
    target = (lambda w: change_url(w, label)) if status == 302 else ""
    expect = staff_member(E(status, to=target)) | {"moderator": E(403 if status != 302 else 302, to=target)}
    if page in ("change", "delete", "history"):
        return [Case(expect, kwargs=lambda w: {"object_id": admin_object_pk(w, label)})]
    return [Case(expect)]


def change_url(world: SimpleNamespace, label: str) -> str:
    app, model = label.split(".")
    return reverse(f"admin:{app}_{model}_change", args=[admin_object_pk(world, label)])


def cases_for(pattern: Pattern, admin_pages: dict[str, tuple[str, str]]) -> list[Case] | None:
    if pattern.key in admin_pages:
        label, page = admin_pages[pattern.key]
        return admin_cases(label, page) if label in ADMIN_MODELS else None
    if pattern.name:
        return PAGES.get(pattern.key)
    return UNNAMED.get(pattern.key)


def url_of(pattern: Pattern, case: Case, world: SimpleNamespace) -> str:
    kwargs = case.kwargs(world)
    query = case.query.format(supporter_post=world.opening_supporter.pk)
    if pattern.name:
        url = reverse(pattern.name, kwargs=kwargs)
    elif pattern.key in UNNAMED:
        url = "/" + pattern.route.split("(?P")[0] + kwargs["url"]
    else:  # the admin's /<app>/<model>/<pk>/
        url = "/" + pattern.route.replace("<path:object_id>", str(kwargs["object_id"]))
    return f"{url}?{query}" if query else url


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


# --- Tests ---------------------------------------------------------------------------------


def test_every_url_pattern_has_expectations():
    """A new URL fails here until the table says what every role gets from it."""
    patterns = list(url_patterns())
    admin_pages = admin_model_patterns()
    keys = [p.key for p in patterns]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    missing = [p.key for p in patterns if p.key not in EXEMPT and cases_for(p, admin_pages) is None]
    unregistered = sorted({label for label, _page in admin_pages.values()} - set(ADMIN_MODELS))
    stale = sorted((set(PAGES) | set(UNNAMED) | set(EXEMPT) | set(CSRF_EXEMPT)) - set(keys))
    stale_admin = sorted(set(ADMIN_MODELS) - {label for label, _page in admin_pages.values()})
    incomplete = [
        f"{key} [{case.label}]"
        for key, cases in (PAGES | UNNAMED).items()
        for case in cases
        if set(case.expect) != set(ROLES)
    ]
    problems = [f"pattern without expectations: {key}" for key in missing]
    problems += [f"case without an expectation for every role: {name}" for name in incomplete]
    problems += [f"admin model not in ADMIN_MODELS: {label}" for label in unregistered]
    problems += [f"two patterns share the key {key}" for key in duplicates]
    problems += [f"table entry for a pattern that no longer exists: {key}" for key in stale + stale_admin]
    from usergroup.health import ENDPOINTS

    problems += [
        f"probe not in MIDDLEWARE_PATHS: {p}" for p in sorted(set(ENDPOINTS) - set(MIDDLEWARE_PATHS))
    ]
    problems += [
        f"MIDDLEWARE_PATHS has {p}, which nothing answers"
        for p in sorted(set(MIDDLEWARE_PATHS) - set(ENDPOINTS))
    ]
    assert not problems, "\n".join(problems)
    assert len(patterns) > 300  # the walk sees the admin's and allauth's patterns too


def _check(response, expect: E, role: str, reader: str, world: SimpleNamespace, path: str) -> list[str]:
    problems = []
    if response.status_code != expect.status:
        where = f" → {response.get('Location')}" if response.has_header("Location") else ""
        problems.append(f"status {response.status_code}{where}, expected {expect.status}")
        return problems
    if expect.to:
        target = expect.to(world) if callable(expect.to) else expect.to
        location = response.get("Location", "")
        if location.startswith(("http://", "https://")) and target.startswith("/"):
            location = "/" + location.split("/", 3)[-1]  # an absolute URL to this site
        if not location.startswith(target):
            problems.append(f"redirects to {response.get('Location')!r}, expected {target!r}…")
    body = body_of(response) if response.status_code == 200 else ""
    for text in expect.shows:
        if text not in body:
            problems.append(f"does not show {text!r}")
    # The address the page was asked for may be echoed back (a topic's slug, a login link).
    body = body.replace(path, "").replace(quote(path), "")
    leaked = [secret for secret, readers in SECRETS.items() if reader not in readers and secret in body]
    if leaked:
        problems.append(f"shows what {reader} may not read: {', '.join(leaked)}")
    return problems


def test_walk_every_pattern_as_every_role(tmp_path, settings):
    world = build_world(tmp_path, settings)
    by_role = clients(world)
    admin_pages = admin_model_patterns()
    failures: list[str] = []
    walked = 0
    targets = [(p, cases_for(p, admin_pages)) for p in url_patterns()]
    targets += [(Pattern(key=path, name="", route=path), cases) for path, cases in MIDDLEWARE_PATHS.items()]
    for pattern, cases in targets:
        if cases is None:
            if pattern.key not in EXEMPT:
                failures.append(
                    f"{pattern.key}: no expectations (see test_every_url_pattern_has_expectations)"
                )
            continue
        for case in cases:
            try:
                path = pattern.route if pattern.key in MIDDLEWARE_PATHS else url_of(pattern, case, world)
            except Exception as exc:  # a pattern the world cannot fill
                failures.append(f"{pattern.key} [{case.label}]: cannot fill: {exc!r}")
                continue
            for role in ROLES:
                reader = case.reader or role
                if case.reader_cap and RANK[case.reader_cap] < RANK[reader]:
                    reader = case.reader_cap
                try:
                    response = by_role[role].get(path)
                except Exception as exc:
                    frame = traceback.extract_tb(exc.__traceback__)[-1]
                    failures.append(
                        f"{pattern.key} [{case.label}] as {role}: 500 {type(exc).__name__}: {exc} "
                        f"({frame.filename}:{frame.lineno}) GET {path}"
                    )
                    continue
                walked += 1
                if role != "anonymous" and "_auth_user_id" not in by_role[role].session:
                    if not case.signs_out:
                        failures.append(
                            f"{pattern.key} [{case.label}] as {role}: GET {path} ended the session"
                        )
                    by_role[role].force_login(getattr(world, role))
                for problem in _check(response, case.expect[role], role, reader, world, path.split("?")[0]):
                    failures.append(f"{pattern.key} [{case.label}] as {role}: {problem} (GET {path})")
    assert not failures, f"{len(failures)} of {walked} requests went wrong:\n" + "\n".join(failures)


def test_post_without_csrf_token_is_refused_everywhere(tmp_path, settings):
    """A signed-in member's browser can be made to POST anywhere by another site: every
    pattern refuses a POST without the CSRF token, except the listed exemptions."""
    world = build_world(tmp_path, settings)
    member = Client(enforce_csrf_checks=True)
    member.force_login(world.staff)  # the most privileged session a forged POST could ride on
    admin_pages = admin_model_patterns()
    failures = []
    for pattern in url_patterns():
        cases = cases_for(pattern, admin_pages)
        if not cases:
            continue
        path = url_of(pattern, cases[0], world)
        response = member.post(path, {"action": "hide", "body": "x"})
        refused = response.status_code == 403 and "403_csrf.html" in [t.name for t in response.templates]
        if pattern.key in CSRF_EXEMPT:
            status, _reason = CSRF_EXEMPT[pattern.key]
            if refused or response.status_code != status:
                failures.append(f"{pattern.key}: exempt POST gave {response.status_code}, expected {status}")
        elif not refused:
            failures.append(
                f"{pattern.key}: POST without CSRF token gave {response.status_code} (POST {path})"
            )
    for path in MIDDLEWARE_PATHS:  # the probes change nothing and take no POST at all
        if (status := member.post(path).status_code) != 405:
            failures.append(f"{path}: POST gave {status}, expected 405")
    assert not failures, "\n".join(failures)
