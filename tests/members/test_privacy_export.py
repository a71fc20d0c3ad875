""" "Download my data": what the archive holds (and never holds), who may fetch it, for how long,
the limits on asking, the scheduled purge, and that no table with a member in it is forgotten."""

import csv
import importlib.util
import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.apps import apps
from django.core import mail
from django.db.models import ForeignObjectRel
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.models import (
    Acquisition,
    ActiveDay,
    Broadcast,
    BroadcastDelivery,
    Conversion,
    MemberFeatures,
    MemberNote,
    MemberProfile,
    MemberTag,
    Persona,
    PersonaRun,
    Tag,
)
from analytics.services import _pack
from community import services as forum
from community.models import (
    RSVP,
    Category,
    Comment,
    Event,
    Flag,
    Notification,
    NotificationSettings,
    Suspension,
    ThreadRead,
    Vote,
)
from content.models import Bookmark, ContentView, LessonProgress, Like
from content.models import Tag as ContentTag
from content.services import feed_token_for, set_interests
from members import data_export
from members.consent import set_consent
from members.models import (
    AuditEvent,
    BillingCustomer,
    ConsentKind,
    DataExport,
    LocalCheckout,
    MembershipEvent,
    Payment,
    PlanChange,
    User,
)
from points import services as points
from points.models import Level, LevelUp, RedemptionItem
from recommend.models import Dismissal, Impression
from tests.factories import ContentFactory, LessonFactory, MembershipFactory, UserFactory, give_two_factor

pytestmark = pytest.mark.django_db


# --- Every table with a member in it is exported or deliberately left out ---------------------


def member_relations() -> set[str]:
    """ "app_label.Model.field" for every foreign key (hidden ones included) to the member model."""
    return {
        f"{rel.related_model._meta.app_label}.{rel.related_model.__name__}.{rel.field.name}"
        for rel in User._meta.get_fields(include_hidden=True)
        if isinstance(rel, ForeignObjectRel) and rel.is_relation and rel.auto_created and not rel.concrete
        and rel.related_model is not None
    }  # fmt: skip


def test_every_relation_to_the_member_is_exported_or_excluded_with_a_reason():
    covered = {relation for section in data_export.sections() for relation in section.covers}
    excluded = data_export.exclusions()
    relations = member_relations()
    forgotten = relations - covered - set(excluded)
    assert not forgotten, f"add a Section or an exclude() with the reason for: {sorted(forgotten)}"
    assert not covered & set(excluded), "a relation is both exported and excluded"
    stale = (covered | set(excluded)) - relations - {"members.User"}
    assert not stale, f"these are no relations to the member (renamed or removed?): {sorted(stale)}"
    assert all(len(reason) > 20 for reason in excluded.values())


def test_section_names_are_unique_paths():
    names = [section.name for section in data_export.sections()]
    assert len(names) == len(set(names))
    assert all(name.count("/") == 1 and name == name.lower() for name in names)


# --- A member with data in every app, and another member beside them --------------------------


def plant(member: User, other: User, staff: User, tag: str, other_tag: str) -> dict:
    """Data in every app for `member`, touching `other` where members meet (replies, votes,
    notifications). Every text carries its author's tag, so a test can tell whose words are whose."""
    item = ContentFactory(title=f"Creator item for {tag}")
    lesson = LessonFactory(title=f"Creator lesson for {tag}")
    set_consent(member=member, kind=ConsentKind.ANALYTICS, granted=True, source="settings", ip="203.0.113.7")
    set_consent(member=member, kind=ConsentKind.ANALYTICS, granted=False, source="settings")
    set_consent(member=member, kind=ConsentKind.MARKETING, granted=True, source="signup")
    give_two_factor(member)
    membership = MembershipFactory(user=member)
    MembershipEvent.objects.create(membership=membership, kind="started", to_status="active")
    Payment.objects.create(
        user=member, membership=membership, provider="local", provider_invoice_id=f"inv_{tag}", status="paid",
        amount=Decimal("12.50"), currency="USD",
    )  # fmt: skip
    BillingCustomer.objects.create(user=member, provider="stripe", customer_id=f"cus_{tag}")
    PlanChange.objects.create(
        key=f"key_{tag}", membership=membership, from_tier=membership.tier, from_interval="month",
        to_tier=membership.tier, to_interval="year", timing="now", effective_at=membership.created_at,
        currency="USD", status="applied",
    )  # fmt: skip
    LocalCheckout.objects.create(
        user=member, tier=membership.tier, interval="month", amount=Decimal("10"), currency="USD"
    )

    points.adjust_points(member=member, points=50, reason=f"Thanks {tag}", actor=None)
    prize = RedemptionItem.objects.create(name="Sticker", kind="merchandise", cost=5)
    points.redeem(member=member, item_id=prize.pk, shipping_address=f"1 Road of {tag}")
    first_level = Level.objects.order_by("threshold").first()
    assert first_level is not None  # the default levels
    LevelUp.objects.create(member=member, level=first_level)

    ContentView.objects.create(
        content=item,
        user=member,
        dwell_seconds=42,
        scroll_depth=80,
        started_at=timezone.now() - timedelta(days=2),
    )
    LessonProgress.objects.create(user=member, lesson=lesson)
    Like.objects.create(user=member, content=item)
    Bookmark.objects.create(user=member, content=item)
    set_interests(member=member, tags=[ContentTag.objects.create(name=f"topic {tag}", slug=f"topic-{tag}")])
    feed_token_for(member=member)

    area, _ = Category.objects.get_or_create(slug="open", defaults={"name": "Open"})
    own = forum.start_thread(
        member=member,
        category=area,
        kind="discussion",
        title=f"Topic by {tag}",
        body=f"Opening words of {tag}",
    )
    theirs = forum.start_thread(
        member=other,
        category=area,
        kind="question",
        title=f"Question of {other_tag}",
        body=f"Opening words of {other_tag}",
    )
    answer = forum.reply(member=member, thread=theirs, body=f"Reply words of {tag}")
    forum.edit_post(editor=member, post=answer, body=f"Edited reply words of {tag}")
    first_post = theirs.posts.first()
    assert first_post is not None
    Vote.objects.create(post=first_post, voter=member, value=1)
    Flag.objects.create(post=theirs.posts.first(), reporter=member, reason="spam", note=f"Flag note of {tag}")
    Suspension.objects.create(
        member=member, until=timezone.now() - timedelta(days=1), reason=f"Cool down {tag}", by=staff
    )
    ThreadRead.objects.create(thread=theirs, member=member)
    NotificationSettings.objects.create(member=member, email="instant")
    Notification.objects.create(
        recipient=member, actor=other, kind="reply", thread=own, post=own.posts.first()
    )
    event = Event.objects.create(
        title=f"Live session for {tag}", slug=f"live-{tag.lower()}", summary="Live", starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    RSVP.objects.create(event=event, member=member, status="going")
    Comment.objects.create(content=item, author=member, body=f"Comment words of {tag}")

    run, _ = PersonaRun.objects.get_or_create(
        as_of=timezone.localdate(), defaults={"status": PersonaRun.Status.DONE}
    )
    persona, _ = Persona.objects.get_or_create(
        run=run, key=0, defaults={"description_en": "Readers", "description_zh": "读者", "centroid": {}}
    )
    MemberProfile.objects.create(
        run=run, member=member, score=77.5, persona=persona, contributions={"views": 1.0}
    )
    Acquisition.objects.create(member=member, source=f"newsletter-{tag}", landing_path="/library/")
    Conversion.objects.create(key=f"signup:{member.pk}", member=member, kind="signup", at=timezone.now())
    MemberTag.objects.create(member=member, tag=Tag.objects.create(name=f"vip-{tag}"), added_by=staff)
    MemberNote.objects.create(member=member, author=staff, body=f"Creator note about {tag}")
    broadcast = Broadcast.objects.create(subject=f"News for {tag}", body="Hello")
    BroadcastDelivery.objects.create(broadcast=broadcast, member=member)
    ActiveDay.objects.create(member=member, day=timezone.localdate())

    Dismissal.objects.create(member=member, item=ContentFactory(title=f"Dismissed item for {tag}"))
    Impression.objects.create(member=member, list="home", position=1, item=item)
    Impression.objects.create(member=member, list="topics", position=2, thread=theirs)
    try:
        digest = apps.get_model("community", "WeeklyDigestSent")
    except LookupError:
        pass
    else:
        digest.objects.create(member=member, sent_at=timezone.now())
    member.refresh_from_db()
    return {"run": run, "thread": own, "their_thread": theirs, "answer": answer}


def features_for(run: PersonaRun, members: list[User]) -> None:
    ids = np.array(sorted(m.pk for m in members), dtype="<i8")
    values = np.arange(len(ids) * 2, dtype="<f8").reshape(len(ids), 2) + 1
    MemberFeatures.objects.create(
        run=run, first_member_id=int(ids[0]), last_member_id=int(ids[-1]), names=["views", "posts"],
        member_ids=_pack(ids), values=_pack(values),
    )  # fmt: skip


@pytest.fixture
def community(settings):
    settings.COMMUNITY_NEW_POSTS_PER_MINUTE = settings.COMMUNITY_POSTS_PER_MINUTE = 100
    staff = UserFactory(is_staff=True, email="creator@example.com")
    ann = UserFactory(
        email="ann.export@example.com", handle="ann_exports", display_name="Ann Exporter", bio="Ann's bio"
    )
    bob = UserFactory(email="bob.private@example.com", handle="bob_private", display_name="Bob Privateperson")
    ann_data = plant(ann, bob, staff, "ANNTAG", "BOBTAG")
    plant(bob, ann, staff, "BOBTAG", "ANNTAG")
    features_for(ann_data["run"], [ann, bob])
    if importlib.util.find_spec("content.history") is not None:
        from content.history import roll_up_views  # the per-member view sums

        roll_up_views()
    return {"ann": ann, "bob": bob, "staff": staff, **ann_data}


def read_zip(content: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def test_the_archive_holds_the_members_data_from_every_app_and_none_of_anothers(community):
    ann, bob = community["ann"], community["bob"]
    DataExport.objects.create(member=ann, status="expired", requested_at=timezone.now() - timedelta(days=30))
    files = read_zip(data_export.build_archive(ann))
    assert {"README.txt", "data.json"} <= set(files)
    data = json.loads(files["data.json"])
    assert data["member_id"] == ann.pk
    sections = data["sections"]
    assert set(sections) == {section.name for section in data_export.sections()}
    # Every section has something for a member with data everywhere.
    assert all(sections[name] for name in sections), [name for name, rows in sections.items() if not rows]

    profile = sections["account/profile"]
    assert (profile["email"], profile["handle"], profile["bio"]) == (ann.email, "ann_exports", "Ann's bio")
    assert profile["consents"]["marketing"]["granted"] is True
    assert [(e["kind"], e["granted"], e["source"]) for e in sections["account/consent_history"]] == [
        ("analytics", True, "settings"), ("analytics", False, "settings"), ("marketing", True, "signup"),
    ]  # fmt: skip
    assert sections["account/consent_history"][0]["ip"] == "203.0.113.7"
    assert sections["account/two_factor"][0]["type"] == "totp"
    assert sections["billing/payments"][0]["provider_invoice_id"] == "inv_ANNTAG"
    assert sections["billing/payments"][0]["amount"] == "12.50"
    assert sections["billing/customers"] == [
        {
            "provider": "stripe",
            "customer_id": "cus_ANNTAG",
            "created_at": sections["billing/customers"][0]["created_at"],
        }
    ]
    ledger = [e["points"] for e in sections["points/ledger"]]
    assert {50, -5} <= set(ledger) and sections["points/account"]["balance"] == sum(ledger)
    assert any(e["reason"] == "Thanks ANNTAG" for e in sections["points/ledger"])
    assert sections["points/redemptions"][0]["shipping_address"] == "1 Road of ANNTAG"
    assert sections["content/views"][0] == {
        **sections["content/views"][0],
        "item": "Creator item for ANNTAG",
        "dwell_seconds": 42,
    }
    assert sections["community/threads"][0]["title"] == "Topic by ANNTAG"
    texts = [post["text"] for post in sections["community/posts"]]
    assert sorted(texts) == [
        "Edited reply words of ANNTAG",
        "Opening words of ANNTAG",
        "Opening words of ANNTAG",
    ]
    assert sections["community/post_revisions"][0]["body"] == "Reply words of ANNTAG"
    assert sections["community/comments"][0]["text"] == "Comment words of ANNTAG"
    assert sections["community/flags"][0]["note"] == "Flag note of ANNTAG"
    assert sections["community/notifications"][0]["kind"] == "reply"
    assert "actor" not in sections["community/notifications"][0]
    assert sections["analytics/profiles"][0]["score"] == 77.5
    assert sections["analytics/features"]["features"] == {"views": 1.0, "posts": 2.0}
    assert sections["analytics/crm_notes"][0]["body"] == "Creator note about ANNTAG"
    assert sections["analytics/acquisition"]["source"] == "newsletter-ANNTAG"
    assert sections["recommendations/dismissed"][0]["item"] == "Dismissed item for ANNTAG"
    assert {i["list"] for i in sections["recommendations/shown"]} == {"home", "topics"}

    # Tables as CSV too, readable back with the same rows.
    with_rows = [name for name, rows in sections.items() if isinstance(rows, list) and rows]
    assert {f"csv/{name}.csv" for name in with_rows} == {name for name in files if name.startswith("csv/")}
    posts = list(csv.DictReader(io.StringIO(files["csv/community/posts.csv"])))
    assert [row["text"] for row in posts] == texts
    assert "community/posts" in files["README.txt"] and "ANNTAG" not in files["README.txt"]

    # Nothing of Bob's: not his address, handle, name, nor any of his words, even where Ann
    # replied to his topic, voted on his post or got a notification he caused.
    everything = "\n".join(files.values())
    for secret in (bob.email, bob.handle, bob.display_name, "BOBTAG"):
        assert secret not in everything, secret
    assert "ANNTAG" in everything and ann.email in everything


def test_csv_cells_that_look_like_formulas_are_defused_but_json_keeps_the_text(community):
    ann = community["ann"]
    Comment.objects.filter(author=ann).update(body='=HYPERLINK("http://evil")')
    files = read_zip(data_export.build_archive(ann))
    assert (
        json.loads(files["data.json"])["sections"]["community/comments"][0]["text"]
        == '=HYPERLINK("http://evil")'
    )
    row = next(csv.DictReader(io.StringIO(files["csv/community/comments.csv"])))
    assert row["text"] == '\'=HYPERLINK("http://evil")'


# --- Asking for it, getting it, and who may download it ----------------------------------------


@pytest.fixture
def ann_client(community):
    client = Client()
    client.force_login(community["ann"])
    return client


def ask(client, on_commit):
    with on_commit():
        return client.post(reverse("members:request_export"), follow=True)


def download_url_from(message) -> str:
    return next(word for word in message.body.split() if "/members/privacy/export/" in word)


def test_a_member_asks_gets_an_email_and_downloads_the_zip(community, ann_client, on_commit, settings):
    settings.SITE_URL = "http://testserver"
    page = ask(ann_client, on_commit)
    assert "preparing a copy of your data" in page.content.decode()
    export = DataExport.objects.get(member=community["ann"])
    assert export.status == DataExport.Status.READY and export.requested_by is None
    assert export.expires_at - export.finished_at == timedelta(days=settings.DATA_EXPORT_EXPIRY_DAYS)

    [message] = mail.outbox
    assert message.to == [community["ann"].email]
    url = download_url_from(message)
    assert url.startswith("http://testserver/members/privacy/export/")
    response = ann_client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"] and ".zip" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    files = read_zip(b"".join(response.streaming_content))
    assert "Opening words of ANNTAG" in files["data.json"]
    export.refresh_from_db()
    assert export.downloaded_at is not None

    settings_page = ann_client.get(reverse("members:privacy")).content.decode()
    assert "Download the ZIP" in settings_page and str(export.pk) in settings_page


def test_only_the_member_may_download_not_another_member_staff_or_a_visitor(community, ann_client, on_commit):
    ask(ann_client, on_commit)
    export = DataExport.objects.get(member=community["ann"])
    url = reverse("members:download_export", args=[export.pk])

    visitor = Client().get(url)
    assert visitor.status_code == 302 and reverse("account_login") in visitor["Location"]
    for who in (community["bob"], community["staff"], UserFactory(is_staff=True, is_superuser=True)):
        client = Client()
        client.force_login(who)
        response = client.get(url)
        assert response.status_code == 404, who
        assert b"PK" not in response.content[:2]
    # An id that does not exist looks the same as someone else's.
    other = Client()
    other.force_login(community["bob"])
    assert (
        other.get(
            reverse("members:download_export", args=["00000000-0000-0000-0000-000000000000"])
        ).status_code
        == 404
    )


def test_asking_needs_a_signed_in_member_a_post_and_the_csrf_token(community):
    url = reverse("members:request_export")
    assert Client().post(url).status_code == 302
    client = Client(enforce_csrf_checks=True)
    client.force_login(community["ann"])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403
    assert not DataExport.objects.exists()


def test_one_export_at_a_time_and_a_daily_limit(community, ann_client, on_commit, settings):
    settings.DATA_EXPORTS_PER_DAY = 2
    ann = community["ann"]
    data_export.request_export(member=ann)  # queued, not yet built (no commit in this block)
    page = ask(ann_client, on_commit).content.decode()
    assert "already being prepared" in page
    assert DataExport.objects.filter(member=ann).count() == 1

    data_export.build_export(export_id=DataExport.objects.get(member=ann).pk)
    ask(ann_client, on_commit)
    assert DataExport.objects.filter(member=ann, status="ready").count() == 2
    page = ask(ann_client, on_commit).content.decode()
    assert "2 times a day" in page
    assert DataExport.objects.filter(member=ann).count() == 2
    # Another member is not held back by Ann's exports.
    data_export.request_export(member=community["bob"])


def test_a_staff_request_is_audited_and_still_only_the_member_can_download(community, on_commit):
    staff = UserFactory(is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(staff)
    with on_commit():
        response = admin.post(
            reverse("admin:members_user_changelist"),
            {"action": "request_data_export", "_selected_action": [community["ann"].pk]},
        )
    assert response.status_code == 302
    export = DataExport.objects.get(member=community["ann"])
    assert export.requested_by == staff and export.status == "ready"
    event = AuditEvent.objects.get(action="member.data_export")
    assert event.actor == staff and event.target_id == str(community["ann"].pk)
    assert mail.outbox[-1].to == [community["ann"].email]
    assert admin.get(reverse("members:download_export", args=[export.pk])).status_code == 404
    # The admin lists exports without ever offering the archive.
    page = admin.get(reverse("admin:members_dataexport_change", args=[export.pk])).content.decode()
    assert "field-archive" not in page and 'name="archive"' not in page and "field-requested_by" in page


# --- Expiry, failures and the scheduled purge ---------------------------------------------------


def test_an_expired_link_says_so_and_the_purge_drops_the_archive(community, ann_client):
    ann = community["ann"]
    export = data_export.request_export(member=ann)
    data_export.build_export(export_id=export.pk)
    DataExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    url = reverse("members:download_export", args=[export.pk])
    response = ann_client.get(url)
    assert response.status_code == 410 and "expired" in response.content.decode()

    assert data_export.purge_data_exports() == {"expired": 1, "stale": 0, "deleted": 0}
    export.refresh_from_db()
    assert export.status == "expired" and export.archive is None
    assert ann_client.get(url).status_code == 410
    assert data_export.purge_data_exports() == {"expired": 0, "stale": 0, "deleted": 0}  # idempotent


def test_the_purge_fails_stuck_exports_and_forgets_old_records_but_keeps_live_ones(community):
    ann, bob = community["ann"], community["bob"]
    now = timezone.now()
    stuck = DataExport.objects.create(member=ann, status="running", requested_at=now - timedelta(hours=7))
    fresh = DataExport.objects.create(member=bob, status="pending", requested_at=now - timedelta(minutes=5))
    ancient = DataExport.objects.create(member=bob, status="expired", requested_at=now - timedelta(days=200))
    ready = DataExport.objects.create(
        member=ann,
        status="ready",
        archive=b"PK",
        requested_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=6),
    )
    assert data_export.purge_data_exports(now=now) == {"expired": 0, "stale": 1, "deleted": 1}
    assert DataExport.objects.get(pk=stuck.pk).status == "failed"
    assert DataExport.objects.get(pk=fresh.pk).status == "pending"
    assert not DataExport.objects.filter(pk=ancient.pk).exists()
    assert bytes(DataExport.objects.get(pk=ready.pk).archive) == b"PK"
    assert data_export.purge_data_exports(now=now) == {"expired": 0, "stale": 0, "deleted": 0}
    # The failed one no longer blocks Ann from asking again.
    data_export.request_export(member=ann)


def test_the_purge_task_is_scheduled_and_runs_the_service(community, settings):
    from members.tasks import purge_data_exports

    entry = next(
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "members.tasks.purge_data_exports"
    )
    assert entry["schedule"] <= 60 * 60 * 24
    DataExport.objects.create(
        member=community["ann"], status="ready", archive=b"x", expires_at=timezone.now()
    )
    assert purge_data_exports.delay().get() == {"expired": 1, "stale": 0, "deleted": 0}


def test_a_build_that_fails_is_marked_failed_and_the_member_can_ask_again(community, ann_client, monkeypatch):
    ann = community["ann"]
    export = data_export.request_export(member=ann)

    def broken(member):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(data_export, "collect", lambda member: broken(member))
    data_export.build_export(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == "failed" and "disk on fire" in export.error and export.archive is None
    assert "could not prepare your last copy" in ann_client.get(reverse("members:privacy")).content.decode()
    assert ann_client.get(reverse("members:download_export", args=[export.pk])).status_code == 404
    monkeypatch.undo()
    again = data_export.request_export(member=ann)
    assert data_export.build_export(export_id=again.pk).status == "ready"


def test_building_again_leaves_a_finished_export_alone(community):
    export = data_export.request_export(member=community["ann"])
    first = data_export.build_export(export_id=export.pk)
    archive = bytes(DataExport.objects.get(pk=export.pk).archive)
    second = data_export.build_export(export_id=export.pk)
    assert first.finished_at == second.finished_at and second.status == "ready"
    assert bytes(DataExport.objects.get(pk=export.pk).archive) == archive
    assert data_export.build_export(export_id="00000000-0000-0000-0000-000000000000") is None


# --- The public privacy policy, written from the settings ---------------------------------------


def test_the_privacy_policy_is_public_linked_everywhere_and_follows_the_settings(client, settings):
    from members.models import AccountDeletionSettings

    settings.PAYMENT_PROVIDER = "local"
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    settings.DATA_EXPORT_EXPIRY_DAYS = 5
    settings.VIEW_LOG_RETENTION_DAYS = 45
    settings.PRIVACY_CONTACT_EMAIL = "privacy@example.org"
    rules = AccountDeletionSettings.current()
    rules.grace_days, rules.posts = 21, AccountDeletionSettings.Posts.REMOVE
    rules.save()
    url = reverse("privacy_policy")
    assert url in client.get("/").content.decode()  # the footer
    assert url in client.get(reverse("account_signup")).content.decode()

    page = client.get(url).content.decode()
    assert "Stripe" not in page and "sends no email out" in page
    assert "kept 45 days" in page and "for 5 days" in page and "erased 21 days after you ask" in page
    assert "posts and comments are removed" in page and "privacy@example.org" in page
    for section in data_export.sections():
        assert str(section.title) in page.replace("&#x27;", "'"), section.name
    for kind in ("Include me in community analytics", "Personalise my recommendations", "news and offers"):
        assert kind in page.replace("&#x27;", "'")
    assert settings.SESSION_COOKIE_NAME in page and "ug_touch" in page

    settings.PAYMENT_PROVIDER = "stripe"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "smtp.mailer.example"
    del settings.VIEW_LOG_RETENTION_DAYS
    rules.grace_days, rules.posts = 0, AccountDeletionSettings.Posts.KEEP
    rules.save()
    page = client.get(url).content.decode()
    assert "handled by Stripe" in page and "smtp.mailer.example" in page
    assert "kept while your account exists" in page and "within a day of your request" in page
    assert "signed “Deleted member”" in page


def test_the_purge_command_prints_what_it_did(community):
    from django.core.management import call_command

    DataExport.objects.create(
        member=community["ann"], status="ready", archive=b"x", expires_at=timezone.now()
    )
    out = io.StringIO()
    call_command("purge_data_exports", stdout=out)
    assert json.loads(out.getvalue()) == {"expired": 1, "stale": 0, "deleted": 0}
    out = io.StringIO()
    call_command("purge_data_exports", stdout=out)
    assert json.loads(out.getvalue()) == {"expired": 0, "stale": 0, "deleted": 0}
