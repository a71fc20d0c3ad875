"""Points as members and the creator see them, and the wiring from other apps."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from content import services as content_services
from members.models import Payment
from points import rules, services
from points.models import Action, LedgerEntry, Level, LevelUp, PointsAccount, RedemptionItem
from tests.factories import ContentFactory, LessonFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"


def test_first_request_of_the_day_pays_the_daily_visit_once(client):
    member = UserFactory()
    client.force_login(member)
    client.get("/")
    client.get("/")
    client.get(reverse("content:library"))
    assert LedgerEntry.objects.filter(member=member, action=Action.DAILY_VISIT).count() == 1


def test_reading_and_finishing_a_course_earn_points():
    member = UserFactory()
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(member)
    item = ContentFactory()
    served = client.get(item.get_absolute_url()).content.decode()
    assert not LedgerEntry.objects.filter(member=member, action=Action.CONTENT_VIEW).exists()
    send_beacon(client, served)  # the page says it was read: the view is paid
    send_beacon(client, client.get(item.get_absolute_url()).content.decode())  # the same item pays once
    course = ContentFactory(kind="course", slug="c")
    lessons = [LessonFactory(course=course, slug=f"l{i}", position=i) for i in range(2)]
    for lesson in lessons:
        client.post(reverse("content:complete_lesson", args=["c", lesson.slug]))
    actions = sorted(LedgerEntry.objects.filter(member=member).values_list("action", flat=True))
    assert actions == ["content_view", "course_complete", "daily_visit", "lesson_complete", "lesson_complete"]
    assert PointsAccount.objects.get(member=member).balance == 5 + 2 + 10 + 10 + 50
    view_entry = LedgerEntry.objects.get(member=member, action="content_view")
    assert view_entry.link == item.get_absolute_url()


def send_beacon(client: Client, served: str) -> None:
    """What static/js/beacon.js sends as the reader leaves the page `served`."""
    token = re.search(r'data-beacon-token="([^"]+)"', served)
    assert token is not None
    response = client.post(reverse("content:beacon"), {"token": token.group(1), "dwell": 30, "scroll": 50})
    assert response.status_code == 204


def test_points_are_not_awarded_to_visitors_or_for_locked_lessons():
    visitor = Client(HTTP_USER_AGENT=BROWSER)
    send_beacon(visitor, visitor.get(ContentFactory().get_absolute_url()).content.decode())
    assert not LedgerEntry.objects.exists()


def test_serving_an_item_pays_nothing_until_its_beacon_and_a_lesson_beacon_pays_no_view():
    """A prefetch or a link preview is served the page but sends no beacon: no points. A
    lesson's beacon pays no content view (lessons pay when completed)."""
    member = UserFactory()
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(member)
    client.get(ContentFactory().get_absolute_url())
    course = ContentFactory(kind="course", slug="c")
    lesson = LessonFactory(course=course, slug="l", position=0)
    send_beacon(client, client.get(reverse("content:lesson", args=["c", lesson.slug])).content.decode())
    assert not LedgerEntry.objects.filter(member=member).exclude(action=Action.DAILY_VISIT).exists()


def test_renewals_earn_points_once():
    membership = MembershipFactory()
    Payment.objects.create(
        user=membership.user,
        membership=membership,
        provider="local",
        provider_invoice_id="in_1",
        status="paid",
        amount=Decimal("12.00"),
        currency="USD",
        billing_reason="subscription_cycle",
    )
    Payment.objects.create(
        user=membership.user,
        membership=membership,
        provider="local",
        provider_invoice_id="in_0",
        status="paid",
        amount=Decimal("12.00"),
        currency="USD",
        billing_reason="subscription_create",
    )
    assert services.award_renewals() == 1
    assert services.award_renewals() == 0
    assert LedgerEntry.objects.get(action="renewal").points == 30


def test_overview_shows_balance_level_rules_history_and_catalogue(client):
    member = UserFactory()
    client.force_login(member)
    services.adjust_points(member=member, points=120, reason="Welcome gift", actor=None)
    RedemptionItem.objects.create(name="Sticker pack", kind="merchandise", cost=100)
    html = client.get(reverse("points:overview")).content.decode()
    balance = PointsAccount.objects.get(member=member).balance  # 120 plus today's visit
    assert balance == 125 and f'data-testid="balance">{balance}<' in html
    assert "Regular" in html  # 100 lifetime points, from the default levels
    assert "Welcome gift" in html and "Sticker pack" in html
    assert "Content view" in html and "+2" in html  # how to earn


def test_overview_history_labels_each_action_and_reads_a_fixed_number_of_queries(
    client, django_assert_num_queries
):
    member = UserFactory()
    client.force_login(member)
    client.get(reverse("points:overview"))  # the day's visit counted, the header kept
    for n in range(30):
        services.adjust_points(member=member, points=n + 1, reason=f"gift {n}", actor=None)
    client.get(reverse("points:overview"))
    # session, user, account, membership rank (no tier row: the ways to earn need the rank only),
    # privileges, history page (no count), redemptions, catalogue
    with django_assert_num_queries(8):
        html = client.get(reverse("points:overview")).content.decode()
    assert html.count("Manual adjustment") == 25 and "gift 29" in html and "gift 4" not in html
    older = client.get(reverse("points:overview") + "?page=2").content.decode()
    assert "Daily visit" in older and "gift 4" in older


def test_redeem_from_the_page(client):
    member = UserFactory()
    client.force_login(member)
    services.adjust_points(member=member, points=150, reason="gift", actor=None)
    item = RedemptionItem.objects.create(name="10% off", kind="coupon", cost=100, percent_off=10)
    response = client.post(reverse("points:redeem", args=[item.pk]), follow=True)
    assert "Your coupon code is PTS-" in response.content.decode()
    response = client.post(reverse("points:redeem", args=[item.pk]), follow=True)
    assert "You need 100 points; you have 55." in response.content.decode()  # 150 + 5 (visit) - 100
    assert client.post(reverse("points:redeem", args=[99999]), follow=True).status_code == 200
    assert client.get(reverse("points:redeem", args=[item.pk])).status_code == 405


def test_leaderboards_by_period_and_privacy(client):
    alice, bob, carol = (
        UserFactory(display_name="Alice"),
        UserFactory(display_name="Bob"),
        UserFactory(display_name="Carol"),
    )
    services.adjust_points(member=alice, points=50, reason="x", actor=None)
    services.adjust_points(member=bob, points=80, reason="x", actor=None)
    old = services.adjust_points(member=carol, points=500, reason="x", actor=None)
    LedgerEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    week = client.get(reverse("points:leaderboard") + "?period=week").content.decode()
    assert week.index("Bob") < week.index("Alice") and "Carol" not in week
    assert "Carol" in client.get(reverse("points:leaderboard") + "?period=all").content.decode()
    as_bob = Client()
    as_bob.force_login(bob)
    as_bob.post(reverse("points:privacy"), {})
    assert "Bob" not in client.get(reverse("points:leaderboard") + "?period=week").content.decode()
    assert "Bob" not in client.get(reverse("points:leaderboard") + "?period=all").content.decode()
    assert client.get(reverse("points:leaderboard") + "?period=<x>").status_code == 200


def test_level_up_banner_and_dismiss(client):
    member = UserFactory()
    client.force_login(member)
    services.adjust_points(member=member, points=100, reason="x", actor=None)
    html = client.get("/").content.decode()
    assert 'data-testid="level-up"' in html and "Regular" in html
    notice = LevelUp.objects.get(member=member, level__name="Regular")
    client.post(reverse("points:dismiss", args=[notice.pk]), {"next": "/"})
    assert 'data-testid="level-up"' not in client.get("/").content.decode()
    other = Client()
    other.force_login(UserFactory())
    other.post(
        reverse("points:dismiss", args=[LevelUp.objects.create(member=member, level=Level.objects.last()).pk])
    )
    assert LevelUp.objects.filter(member=member, seen=False).exists()  # not someone else's to dismiss


def test_admin_grant_and_deduct(admin_client):
    member = UserFactory(email="fan@example.com")
    url = reverse("admin:points_adjust")
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url, {"email": "fan@example.com", "points": "25", "reason": "Great question"}
    )
    assert response.status_code == 302
    entry = LedgerEntry.objects.get(member=member)
    assert entry.points == 25 and entry.actor.is_superuser
    response = admin_client.post(url, {"email": "fan@example.com", "points": "-100", "reason": "oops"})
    assert "only 25 points" in response.content.decode()
    response = admin_client.post(url, {"email": "nobody@example.com", "points": "5", "reason": "x"})
    assert "No member has this email address." in response.content.decode()
    for name in ("ledgerentry", "pointsrule", "level", "pointsaccount", "redemptionitem", "redemption"):
        assert admin_client.get(reverse(f"admin:points_{name}_changelist")).status_code == 200
    entry_url = reverse("admin:points_ledgerentry_change", args=[entry.pk])
    assert (
        admin_client.post(
            reverse("admin:points_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert admin_client.get(entry_url).status_code == 200  # viewable, not editable


def test_points_pages_need_login(client):
    assert client.get(reverse("points:overview")).status_code == 302
    assert client.post(reverse("points:privacy")).status_code == 302
    assert client.get(reverse("points:leaderboard")).status_code == 200


def test_beacons_of_many_views_of_an_item_pay_one_entry():
    member = UserFactory()
    item = ContentFactory()
    for _ in range(3):
        token = content_services.record_view(
            content=item, lesson=None, user=member, source="library", user_agent=BROWSER
        )
        assert token is not None
        for dwell in (5, 50):  # a page hidden and shown again sends its beacon again
            content_services.record_beacon(token=token, user=member, dwell=dwell, scroll=10, completed=False)
    assert LedgerEntry.objects.filter(member=member, action="content_view").count() == 1


# --- Leaderboard: ranks with ties, and your own place ------------------------------------------


def _signed_in_today(member) -> Client:
    """A client whose daily visit is already paid, so viewing the page changes no points."""
    client = Client()
    client.force_login(member)
    session = client.session
    session["points_daily_visit"] = rules.local_date(member=member)
    session.save()
    return client


def _board(points: list[int]) -> list:
    members = [UserFactory(display_name=f"Player {n:02d}") for n in range(len(points))]
    for member, amount in zip(members, points, strict=True):
        services.adjust_points(member=member, points=amount, reason="x", actor=None)
    return members


def _ranks(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-rank="(\d+)"', html)]


@pytest.mark.parametrize("period", ["week", "all"])
def test_leaderboard_ranks_share_ties_and_show_your_place_outside_the_top(period):
    # 24 members: two tie for 3rd, and the last four (40, 28, 28, 10) are outside the top 20.
    points = [100, 97, 94, 94, *range(90, 42, -3), 40, 28, 28, 10]
    members = _board(points)
    url = reverse("points:leaderboard") + f"?period={period}"
    html = _signed_in_today(members[0]).get(url).content.decode()
    assert _ranks(html)[:6] == [1, 2, 3, 3, 5, 6] and len(_ranks(html)) == 20
    assert "You are number 1, with 100 points." in html
    # Outside the top 20, tied with another member: both are 22nd (21 members have more).
    html = _signed_in_today(members[-2]).get(url).content.decode()
    board = html.split('data-testid="leaderboard"')[1].split("</ol>")[0]
    assert "Player 22" not in board and len(_ranks(board)) == 20
    assert "You are number 22, with 28 points." in html
    assert "You are number 24, with 10 points." in _signed_in_today(members[-1]).get(url).content.decode()


def test_your_place_costs_at_most_one_query_more_than_the_top():
    members = _board([100 - n for n in range(25)])
    url = reverse("points:leaderboard") + "?period=week"
    in_top, outside = _signed_in_today(members[0]), _signed_in_today(members[-1])
    in_top.get(url), outside.get(url)  # the first request of the hour writes last_seen
    with CaptureQueriesContext(connection) as top_queries:
        assert in_top.get(url).status_code == 200
    with CaptureQueriesContext(connection) as outside_queries:
        html = outside.get(url).content.decode()
    assert "You are number 25, with 76 points." in html
    assert len(outside_queries) <= len(top_queries) + 1


def test_your_place_when_hidden_or_without_points():
    members = _board([50, 40])
    newcomer = UserFactory()
    html = _signed_in_today(newcomer).get(reverse("points:leaderboard")).content.decode()
    assert "You have no points in this period yet." in html
    shy = _signed_in_today(members[1])
    shy.post(reverse("points:privacy"), {})
    html = shy.get(reverse("points:leaderboard")).content.decode()
    assert "You are hidden from leaderboards." in html and "You are number" not in html
    assert "You are number" not in Client().get(reverse("points:leaderboard")).content.decode()


@pytest.mark.parametrize(
    ("page", "shown", "newer", "older"),
    [
        ("", range(60, 35, -1), False, True),
        ("2", range(35, 10, -1), True, True),
        ("3", range(10, 0, -1), True, False),
        ("9", range(10, 0, -1), True, False),  # past the end: the last page
        ("0", range(10, 0, -1), True, False),  # as the Paginator: the last page
        ("x", range(60, 35, -1), False, True),  # not a number: the first
    ],
)
def test_the_history_pages_without_a_count(client, page, shown, newer, older):
    member = UserFactory()
    client.force_login(member)
    client.get(reverse("points:overview"))
    LedgerEntry.objects.filter(member=member).delete()
    for n in range(1, 61):
        services.adjust_points(member=member, points=n, reason=f"gift {n}.", actor=None)
    html = client.get(reverse("points:overview") + f"?page={page}").content.decode()
    assert [n for n in range(1, 61) if f"gift {n}." in html] == sorted(shown)
    assert (">Newer<" in html) is newer and (">Older<" in html) is older


def test_the_level_progress_reads_the_account_in_one_statement_and_the_level_from_the_rules():
    """The home page's and the points page's progress: no account yet is zero points; a level is
    taken from the rules snapshot, and one created since the snapshot is read on its own."""
    from points.selectors import level_progress_for

    member = UserFactory()
    progress = level_progress_for(member)
    assert (progress.balance, progress.lifetime, progress.level) == (0, 0, None)
    bronze = Level.objects.create(name="Bronze", threshold=10_010)
    silver = Level.objects.create(name="Silver", threshold=10_100)
    rules.forget_cached_levels()
    PointsAccount.objects.create(member=member, balance=40, lifetime=10_060, level=bronze)
    rules.levels()  # the snapshot holds Bronze and Silver
    with CaptureQueriesContext(connection) as captured:
        progress = level_progress_for(member)
    assert len(captured) == 1
    assert (progress.balance, progress.level, progress.next_level, progress.to_next) == (
        40,
        bronze,
        silver,
        40,
    )
    assert progress.percent == 55  # 50 of the 90 points from Bronze to Silver
    newer = Level.objects.create(name="Newer than the snapshot", threshold=10_050)
    PointsAccount.objects.filter(member=member).update(level=newer)
    assert level_progress_for(member).level == newer
