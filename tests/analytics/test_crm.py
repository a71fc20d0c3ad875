"""The creator's CRM: directory filters and sorting, member page, tags, notes, segments, CSV
export and broadcasts to a segment."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.models import (
    Acquisition,
    Broadcast,
    BroadcastDelivery,
    MemberNote,
    MemberProfile,
    MemberTag,
    Persona,
    PersonaRun,
    Segment,
    Tag,
)
from analytics.selectors import SORTS, member_status
from content.models import ContentView
from members.models import MembershipEvent, MembershipStatus, Payment, Provider
from points.models import PointsAccount
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

DIRECTORY = "/admin/insights/crm/"


@pytest.fixture
def creator(db):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True, email="creator@example.com"))
    return client


def _emails(response) -> list[str]:
    return [row.email for row in response.context["rows"]]


@pytest.fixture
def community():
    now = timezone.now()
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    ann = UserFactory(
        email="ann@example.com", display_name="Ann Lee", handle="annlee", analytics_consent=True
    )
    bob = UserFactory(email="bob@example.com", display_name="Bob", handle="bobby", analytics_consent=True)
    cat = UserFactory(
        email="cat@example.com", display_name="=HYPERLINK(1)", handle="cat", analytics_consent=False
    )
    dan = UserFactory(email="dan@example.com", display_name="Dan", handle="dan", analytics_consent=True)
    MembershipFactory(user=ann, tier=gold)
    MembershipFactory(
        user=dan, tier=gold, status=MembershipStatus.EXPIRED, provider_subscription_id="lsub_old"
    )
    Payment.objects.create(
        user=ann, provider=Provider.LOCAL, provider_invoice_id="in_a1", status=Payment.Status.PAID,
        amount=Decimal("20.00"), currency="USD",
    )  # fmt: skip
    Payment.objects.create(
        user=ann, provider=Provider.LOCAL, provider_invoice_id="in_a2", status=Payment.Status.REFUNDED,
        amount=Decimal("20.00"), currency="USD",
    )  # fmt: skip
    Payment.objects.create(
        user=dan, provider=Provider.LOCAL, provider_invoice_id="in_d1", status=Payment.Status.PAID,
        amount=Decimal("5.00"), currency="USD",
    )  # fmt: skip
    ann.last_seen_at = now - timedelta(days=2)
    bob.last_seen_at = now - timedelta(days=60)
    for member in (ann, bob):
        member.save()
    run = PersonaRun.objects.create(as_of=date.today(), status=PersonaRun.Status.DONE)
    p_course = Persona.objects.create(
        run=run, key=7, description_en="finishes courses", description_zh="学完课程", centroid={}
    )
    p_rare = Persona.objects.create(
        run=run, key=9, description_en="rarely visits", description_zh="很少来", centroid={}
    )
    MemberProfile.objects.create(
        run=run, member=ann, score=82, persona=p_course, churn_risk=0.1, at_risk_loyal=True,
        contributions={"views": 50.0, "posts": 32.0},
    )  # fmt: skip
    MemberProfile.objects.create(
        run=run, member=bob, score=55, persona=p_rare, churn_risk=None, high_potential=True,
        contributions={"views": 55.0},
    )  # fmt: skip
    MemberProfile.objects.create(
        run=run, member=dan, score=12, persona=p_rare, churn_risk=0.7, contributions={}
    )
    vip = Tag.objects.create(name="VIP")
    MemberTag.objects.create(member=bob, tag=vip)
    return {"ann": ann, "bob": bob, "cat": cat, "dan": dan, "gold": gold, "vip": vip, "run": run}


@pytest.mark.parametrize(
    "path",
    [DIRECTORY, DIRECTORY + "export.csv", DIRECTORY + "email/", DIRECTORY + "members/1/"],
)
def test_crm_is_for_staff_only(client, path):
    assert client.get(path).status_code == 302 and "/accounts/login/" in client.get(path)["Location"]
    client.force_login(UserFactory())
    assert client.get(path).status_code == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["dan@example.com", "cat@example.com", "bob@example.com", "ann@example.com"]),
        ("?q=ANN", ["ann@example.com"]),
        ("?q=@bob", ["bob@example.com"]),
        ("?tier=gold", ["ann@example.com"]),
        ("?status=active", ["ann@example.com"]),
        ("?status=free", ["cat@example.com", "bob@example.com"]),
        ("?status=lapsed", ["dan@example.com"]),
        ("?persona=9&sort=score", ["bob@example.com", "dan@example.com"]),
        ("?score_min=50&score_max=90&sort=-score", ["bob@example.com", "ann@example.com"]),
        ("?churn_min=50", ["dan@example.com"]),
        ("?seen=within-7", ["ann@example.com"]),
        ("?seen=not-30", ["bob@example.com"]),
        ("?seen=never", ["dan@example.com", "cat@example.com"]),
        ("?consent=no", ["cat@example.com"]),
        ("?flag=high_potential", ["bob@example.com"]),
        ("?flag=at_risk_loyal", ["ann@example.com"]),
        ("?sort=score", ["ann@example.com", "bob@example.com", "dan@example.com", "cat@example.com"]),
        ("?sort=ltv", ["ann@example.com", "dan@example.com", "cat@example.com", "bob@example.com"]),
        ("?sort=churn", ["dan@example.com", "ann@example.com", "cat@example.com", "bob@example.com"]),
    ],
)
def test_directory_filters_and_sorts(creator, community, query, expected):
    response = creator.get(DIRECTORY + query)
    assert response.status_code == 200
    assert _emails(response) == expected


def test_directory_filters_by_tag_and_excludes_staff(creator, community):
    response = creator.get(f"{DIRECTORY}?tag={community['vip'].pk}")
    assert _emails(response) == ["bob@example.com"]
    assert "creator@example.com" not in _emails(creator.get(DIRECTORY))


@pytest.mark.parametrize(
    "query",
    [
        "?score_min=abc",
        "?score_min=80&score_max=20",
        "?tier=nope",
        "?sort=password",
        "?persona=x",
        "?churn_min=150",
    ],
)
def test_bad_filters_are_a_400_with_a_message(creator, community, query):
    response = creator.get(DIRECTORY + query)
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()


def test_directory_query_count_does_not_grow_with_members(creator, community, django_assert_max_num_queries):
    creator.get(DIRECTORY)  # the first request of the day also awards the daily visit
    UserFactory()  # the kept list (count and ids) read again, as it is after the 30 below
    with django_assert_max_num_queries(
        16
    ) as small:  # incl. the second factor and the admin menu's three singleton settings
        creator.get(DIRECTORY)
    for _ in range(30):
        member = UserFactory(analytics_consent=True)
        MembershipFactory(user=member, tier=community["gold"])
        MemberTag.objects.create(member=member, tag=community["vip"])
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = creator.get(DIRECTORY)
    assert len(response.context["rows"]) == 35


def test_directory_pages(creator, community):
    for _ in range(55):
        UserFactory()
    first = creator.get(DIRECTORY + "?sort=email")
    assert first.context["page"].paginator.count == 59 and len(first.context["rows"]) == 50
    second = creator.get(DIRECTORY + "?sort=email&page=2")
    assert len(second.context["rows"]) == 9
    assert not set(_emails(first)) & set(_emails(second))
    assert creator.get(DIRECTORY + "?page=999").status_code == 200


def test_export_streams_the_filtered_list_as_safe_csv(creator, community):
    response = creator.get(DIRECTORY + "export.csv?sort=email")
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert [r["email"] for r in rows] == [
        "ann@example.com",
        "bob@example.com",
        "cat@example.com",
        "dan@example.com",
    ]
    ann, bob, cat = rows[0], rows[1], rows[2]
    assert (ann["tier"], ann["status"], ann["score"], ann["persona"], ann["lifetime_value"]) == (
        "Gold", "active", "82.0", "finishes courses", "20.00",
    )  # fmt: skip
    assert bob["tags"] == "VIP" and bob["churn_risk"] == ""
    assert cat["display_name"] == "'=HYPERLINK(1)"  # a formula is never live in a spreadsheet
    assert cat["score"] == "" and cat["analytics_consent"] == "no"

    only = creator.get(DIRECTORY + "export.csv?flag=high_potential")
    lines = b"".join(only.streaming_content).decode().strip().splitlines()
    assert len(lines) == 2 and "bob@example.com" in lines[1]
    assert creator.get(DIRECTORY + "export.csv?score_min=x").status_code == 400


def test_member_page_shows_value_profile_source_and_timeline(creator, community):
    ann = community["ann"]
    item = ContentFactory(title="Deep work guide")
    Acquisition.objects.create(member=ann, source="newsletter", medium="email", signup_content=item)
    ContentView.objects.create(user=ann, content=item, dwell_seconds=300)
    MemberNote.objects.create(member=ann, body="Asked about a team plan.")
    response = creator.get(reverse("analytics:member", args=[ann.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "20.00 USD" in html  # refunds are not lifetime value
    assert "newsletter" in html and "Deep work guide" in html
    assert "Asked about a team plan." in html
    assert "finishes courses" in html and "at-risk loyal fan" in html
    kinds = [entry.kind for entry in response.context["timeline"]]
    assert {"payment", "view", "note"} <= set(kinds)
    labels = [label for label, _value in response.context["contributions"]]
    assert labels[0] == "views"


def test_member_page_hides_profile_and_source_without_consent(creator, community):
    cat = community["cat"]
    Acquisition.objects.create(member=cat, source="secret-campaign")
    html = creator.get(reverse("analytics:member", args=[cat.pk])).content.decode()
    assert "not given analytics consent" in html
    assert "secret-campaign" not in html
    assert creator.get(reverse("analytics:member", args=[999999])).status_code == 404


def test_tags_and_notes(creator, community):
    bob = community["bob"]
    url = reverse("analytics:add_tag", args=[bob.pk])
    creator.post(url, {"name": "  podcast   guest "})
    creator.post(url, {"name": "vip"})  # the existing tag, whatever its case
    assert sorted(MemberTag.objects.filter(member=bob).values_list("tag__name", flat=True)) == [
        "VIP",
        "podcast guest",
    ]
    assert creator.post(url, {"name": "x" * 51}).status_code == 302
    assert Tag.objects.count() == 2
    creator.post(reverse("analytics:remove_tag", args=[bob.pk, community["vip"].pk]))
    assert list(MemberTag.objects.filter(member=bob).values_list("tag__name", flat=True)) == ["podcast guest"]

    creator.post(reverse("analytics:add_note", args=[bob.pk]), {"body": "Met at the meetup."})
    creator.post(reverse("analytics:add_note", args=[bob.pk]), {"body": "   "})
    note = MemberNote.objects.get(member=bob)
    assert note.author.email == "creator@example.com"
    creator.post(reverse("analytics:delete_note", args=[community["ann"].pk, note.pk]))  # not ann's note
    assert MemberNote.objects.filter(pk=note.pk).exists()
    creator.post(reverse("analytics:delete_note", args=[bob.pk, note.pk]))
    assert not MemberNote.objects.exists()
    assert creator.get(reverse("analytics:add_note", args=[bob.pk])).status_code == 405


def test_state_changes_need_a_csrf_token(community):
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert (
        client.post(reverse("analytics:add_tag", args=[community["bob"].pk]), {"name": "x"}).status_code
        == 403
    )
    assert client.post(reverse("analytics:save_segment"), {"name": "x"}).status_code == 403
    assert not Segment.objects.exists()


def test_segments_are_saved_opened_replaced_and_deleted(creator, community):
    creator.post(
        reverse("analytics:save_segment"),
        {"name": "Upsell", "flag": "high_potential", "sort": "score", "page": "3"},
    )
    segment = Segment.objects.get()
    assert segment.query == {"flag": "high_potential", "sort": "score"}
    opened = creator.get(reverse("analytics:segment", args=[segment.pk]), follow=True)
    assert _emails(opened) == ["bob@example.com"]

    creator.post(reverse("analytics:save_segment"), {"name": "upsell", "tier": "gold"})
    assert Segment.objects.get().query == {"tier": "gold"}

    creator.post(reverse("analytics:save_segment"), {"name": "Bad", "score_min": "abc"})
    creator.post(reverse("analytics:save_segment"), {"name": "", "tier": "gold"})
    assert Segment.objects.count() == 1

    creator.post(reverse("analytics:delete_segment", args=[segment.pk]))
    assert not Segment.objects.exists()
    assert creator.post(reverse("analytics:delete_segment", args=[segment.pk])).status_code == 404


def test_broadcast_reaches_only_opted_in_members_of_the_segment_once(creator, community, committing):
    ann, bob, dan = community["ann"], community["bob"], community["dan"]
    for member in (ann, dan):
        member.announcements_email = True
        member.save()
    client = committing(creator)
    page = client.get(reverse("analytics:email") + "?seen=within-7")
    assert (page.context["matched"], page.context["reachable"]) == (1, 1)

    response = client.post(
        reverse("analytics:email") + "?score_min=10",
        {"subject": "New course", "body": "**Hello** <script>x</script>"},
    )
    assert response.status_code == 302
    broadcast = Broadcast.objects.get()
    assert (broadcast.status, broadcast.matched, broadcast.sent, broadcast.skipped) == ("sent", 3, 2, 1)
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.com", "dan@example.com"]
    message = mail.outbox[0]
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/members/unsubscribe/" in message.extra_headers["List-Unsubscribe"]
    html = message.alternatives[0][0]
    assert "<strong>Hello</strong>" in html and "<script>" not in html
    assert bob.email not in [m.to[0] for m in mail.outbox]

    from analytics.crm import send_broadcast

    Broadcast.objects.filter(pk=broadcast.pk).update(status=Broadcast.Status.SENDING)
    send_broadcast(broadcast_id=broadcast.pk)  # a retried task
    assert len(mail.outbox) == 2 and BroadcastDelivery.objects.count() == 2


def test_broadcast_form_validates(creator, community):
    response = creator.post(reverse("analytics:email"), {"subject": "", "body": ""})
    assert response.status_code == 400 and not Broadcast.objects.exists()
    assert creator.get(reverse("analytics:email") + "?score_min=x").status_code == 400


def test_membership_events_appear_in_the_timeline(creator, community):
    membership = community["ann"].memberships.get()
    MembershipEvent.objects.create(membership=membership, kind=MembershipEvent.Kind.STARTED)
    response = creator.get(reverse("analytics:member", args=[community["ann"].pk]))
    assert any(e.kind == "membership" and e.text == "started" for e in response.context["timeline"])


def test_every_sort_choice_has_an_order():
    from analytics.forms import SORT_CHOICES
    from analytics.selectors import SORTS

    assert {key for key, _label in SORT_CHOICES} == set(SORTS)


def test_a_broadcast_that_cannot_reach_the_mail_server_retries_then_ends_failed(
    creator, community, monkeypatch
):
    from celery.exceptions import Retry

    from analytics.tasks import send_broadcast

    community["ann"].announcements_email = True
    community["ann"].save()
    creator.post(
        reverse("analytics:email") + "?q=ann", {"subject": "Hi", "body": "Hello"}
    )  # not committed: not sent
    broadcast = Broadcast.objects.get()

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr("analytics.crm.send_to_member", refuse)
    with pytest.raises(Retry):
        send_broadcast.apply(args=[broadcast.pk], retries=0, throw=True)
    broadcast.refresh_from_db()
    assert broadcast.status == "sending"
    with pytest.raises(ConnectionRefusedError):
        send_broadcast.apply(args=[broadcast.pk], retries=send_broadcast.max_retries, throw=True)
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.sent) == ("failed", 0)
    assert "mail server down" in broadcast.error


def test_export_leaves_out_the_source_of_members_without_consent(creator, community):
    Acquisition.objects.create(member=community["cat"], source="secret-campaign")
    Acquisition.objects.create(member=community["ann"], source="newsletter")
    body = b"".join(creator.get(DIRECTORY + "export.csv").streaming_content).decode()
    assert "newsletter" in body and "secret-campaign" not in body


def test_staff_need_the_permission_to_view_members():
    """A moderator (staff, no permissions) reads no member's email, payments or notes; staff
    given "view user" do."""
    from django.contrib.auth.models import Permission

    moderator = UserFactory(is_staff=True)
    client = Client()
    client.force_login(moderator)
    for url in (DIRECTORY, reverse("analytics:dashboard"), reverse("analytics:export")):
        assert client.get(url).status_code == 403, url
    moderator.user_permissions.add(
        Permission.objects.get(codename="view_user", content_type__app_label="members")
    )
    moderator = type(moderator).objects.get(pk=moderator.pk)  # permissions are cached per instance
    client.force_login(moderator)
    assert client.get(DIRECTORY).status_code == 200


def _exported(creator, query: str = "") -> list[dict[str, str]]:
    response = creator.get(DIRECTORY + "export.csv" + query)
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode().lstrip("\ufeff"))))


@pytest.mark.parametrize("sort", sorted(SORTS))
def test_the_directory_lists_members_in_the_order_of_the_export(creator, community, sort):
    # The directory lists a page's ids with only the columns its sort needs; the export computes
    # every column: the same order either way (ties broken the same way, newest id first).
    PointsAccount.objects.create(member=community["ann"], balance=40, lifetime=40)
    PointsAccount.objects.create(member=community["cat"], balance=7, lifetime=7)
    listed = _emails(creator.get(f"{DIRECTORY}?sort={sort}"))
    assert listed == [row["email"] for row in _exported(creator, f"?sort={sort}")]
    assert len(listed) == 4


@pytest.mark.parametrize(
    "query",
    ["?persona=9", "?status=lapsed", "?tier=gold", "?score_min=50&seen=not-30", "?flag=at_risk_loyal"],
)
def test_a_filtered_page_lists_what_the_filtered_export_holds(creator, community, query):
    assert _emails(creator.get(DIRECTORY + query)) == [row["email"] for row in _exported(creator, query)]


def test_a_page_shows_what_the_export_holds(creator, community):
    PointsAccount.objects.create(member=community["ann"], balance=1234, lifetime=1234)
    rows = {member.email: member for member in creator.get(DIRECTORY).context["rows"]}
    for row in _exported(creator):
        member = rows[row["email"]]
        status = member_status(live_status=member.live_status, ever_member=member.ever_member)
        shown = (
            member.tier_name or "", status, "" if member.score is None else str(round(member.score, 1)),
            member.persona.label if member.persona else "", "" if member.churn is None else str(round(member.churn, 3)),
            str(member.balance or 0), f"{member.ltv:.2f}",
        )  # fmt: skip
        assert shown == (
            row["tier"], row["status"], row["score"], row["persona"], row["churn_risk"], row["points"],
            row["lifetime_value"],
        )  # fmt: skip
    assert rows["ann@example.com"].balance == 1234 and rows["dan@example.com"].ever_member


@pytest.mark.parametrize(
    ("page", "shown"), [("2", 2), ("abc", 1), ("0", 2), ("-1", 2), ("99", 2), ("1.5", 1)]
)
def test_a_page_number_is_read_as_the_paginator_reads_it(creator, community, page, shown):
    for _ in range(50):
        UserFactory()
    response = creator.get(f"{DIRECTORY}?page={page}")
    assert response.status_code == 200 and response.context["page"].number == shown
    assert len(response.context["rows"]) == (50 if shown == 1 else 4)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_rows_columns_compiled_once_are_what_the_orm_reads(community, language):
    """On PostgreSQL the rows' statement is compiled once per run and language and run with the
    page's ids as one array: the same members with the same values as the ORM's own query."""
    from django.db import connection
    from django.utils import translation

    from analytics import selectors

    PointsAccount.objects.update_or_create(member=community["ann"], defaults={"balance": 42, "lifetime": 50})
    ids = [m.pk for m in (community["dan"], community["ann"], community["bob"], community["cat"])]
    names = (
        "email", "display_name", "handle", "deleted_at", "date_joined", "analytics_consent", "last_seen_at",
        "last_login", "tier_name", "live_status", "any_membership", "score", "churn", "persona_id",
        "high_potential", "at_risk_loyal", "balance", "seen", "ltv",
    )  # fmt: skip
    if connection.vendor == "postgresql":
        names += ("tag_names",)
    selectors._page_columns_built.clear()
    with translation.override(language):
        for run in (community["run"], None):
            orm = {m.pk: m for m in selectors._page_columns(run).filter(pk__in=ids)}
            for _twice in range(2):  # compiled, then from the kept statement
                got = {m.pk: m for m in selectors.page_columns(ids, run)}
                assert set(got) == set(orm) == set(ids)
                for pk, member in got.items():
                    assert {n: getattr(member, n) for n in names} == {n: getattr(orm[pk], n) for n in names}
                    assert member.public_name == orm[pk].public_name
            assert list(selectors.page_columns([], run)) == []
    assert {m.pk for m in selectors.page_columns(ids[:1], community["run"])} == set(ids[:1])
