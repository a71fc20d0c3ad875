"""Every scheduled job is safe to run again: one test per job (CELERY_BEAT_SCHEDULE and each stage
of `manage.py run_nightly`), each running it twice, and where a job can stop half-way, after a
partial first run, and asserting the second run changes nothing: no email sent twice, no points
awarded twice, no row duplicated.

A test that lists the schedule fails when a job is added without a test here."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django.utils import timezone

from analytics.models import ActiveDay, ActivePeriod, Conversion, MemberFeatures, MemberProfile, PersonaRun
from community import services as forum
from community.models import (
    RSVP,
    Category,
    Event,
    Notification,
    NotificationSettings,
    Post,
    WeeklyDigestSent,
)
from content.models import ContentStats, ContentView, Like, RenderedBody, ViewArchive, ViewHistory
from members.models import (
    Membership,
    MembershipEvent,
    MembershipStatus,
    Payment,
    Provider,
    WebhookEvent,
)
from points.models import LedgerEntry, Level, LevelUp, PointsAccount
from recommend.models import ItemNeighbours, NeighbourBuild, PopularItem
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory
from tests.members import stripe_helpers as stripe_test
from usergroup import nightly
from usergroup.celery import app

pytestmark = pytest.mark.django_db

# Jobs that are not about the data of this site, or that write a new file on every run by
# design: each run of `backup` is a new archive (it prunes to BACKUP_KEEP).
NOT_RERUN_HERE = {"usergroup.tasks.backup"}


def run(task_name: str, *args):
    """Run a scheduled task the way beat does (through Celery, eager in tests), with every
    on-commit callback (queued emails and tasks) executed as a real commit would."""
    from django.test import TestCase

    app.loader.import_default_modules()
    with TestCase.captureOnCommitCallbacks(execute=True):
        return app.tasks[task_name].apply(args=args, throw=True).get()


def outbox() -> list[tuple[str, str]]:
    return sorted((m.to[0], str(m.subject)) for m in mail.outbox)


def test_every_scheduled_job_has_a_rerun_test():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} - NOT_RERUN_HERE
    tested = {name for name in globals() if name.startswith("test_")}
    for task in scheduled:
        assert f"test_{task.rsplit('.', 1)[1]}" in tested, f"no re-run test for {task}"
    for name, _job in nightly.JOBS:
        assert f"test_nightly_{name.replace(' ', '_')}" in tested, f"no re-run test for nightly {name!r}"


# --- Hourly and more often ----------------------------------------------------------------


def test_run_billing_cycle(monkeypatch):
    """Renewals, expiries, reminders and pruning: the second run charges, ends, reminds and
    deletes nothing; after a run that stopped half-way through the renewals, the rerun renews
    only the membership not renewed yet."""
    from members.billing.providers import LocalProvider

    now = timezone.now()
    gold = TierFactory(rank=20, monthly_price=Decimal("12.00"))
    due = [
        MembershipFactory(
            tier=gold,
            current_period_start=now - timedelta(days=31),
            current_period_end=now - timedelta(hours=1),
        )
        for _ in range(2)
    ]
    lapsed = MembershipFactory(
        tier=gold,
        provider=Provider.STRIPE,
        current_period_start=now - timedelta(days=40),
        current_period_end=now - timedelta(days=10),
    )
    reminded = MembershipFactory(
        tier=gold, provider=Provider.STRIPE, current_period_end=now + timedelta(days=3)
    )
    WebhookEvent.objects.create(
        provider="stripe", status=WebhookEvent.Status.REJECTED, payload="{}", headers={},
        received_at=now - timedelta(days=settings.WEBHOOK_REJECTED_RETENTION_DAYS + 1),
    )  # fmt: skip

    real = LocalProvider.simulate_renewal
    calls = []

    def renew_once_then_crash(self, membership, **kwargs):
        calls.append(membership.pk)
        if len(calls) == 2:
            raise RuntimeError("worker lost half-way")
        return real(self, membership, **kwargs)

    monkeypatch.setattr(LocalProvider, "simulate_renewal", renew_once_then_crash)
    with pytest.raises(RuntimeError):
        run("members.tasks.run_billing_cycle")
    monkeypatch.setattr(LocalProvider, "simulate_renewal", real)

    def state():
        return (
            sorted(Membership.objects.values_list("pk", "status", "current_period_end")),
            sorted(Payment.objects.values_list("membership_id", "provider_invoice_id", "amount")),
            MembershipEvent.objects.count(),
            WebhookEvent.objects.filter(status=WebhookEvent.Status.REJECTED).count(),
            outbox(),
        )

    first = run("members.tasks.run_billing_cycle")
    after_first = state()
    assert first["renewed"] == 1  # the one the crashed run had not reached
    assert Payment.objects.filter(membership__in=due, billing_reason="subscription_cycle").count() == 2
    assert Membership.objects.get(pk=lapsed.pk).status == MembershipStatus.EXPIRED
    assert Membership.objects.get(pk=reminded.pk).renewal_reminder_sent_for is not None
    assert after_first[3] == 0

    second = run("members.tasks.run_billing_cycle")
    assert second == {"renewed": 0, "expired": 0, "reminded": 0, "pruned": 0}
    assert state() == after_first


@pytest.fixture
def stripe_settings(settings):
    settings.STRIPE_WEBHOOK_SECRET = stripe_test.SECRET
    settings.STRIPE_SECRET_KEY = "sk_test_dummy"


def test_retry_failed_webhooks(stripe_settings, committing):
    """A failed event (its price unknown until the tier is synced) is applied once: the second
    retry finds nothing to do and the membership is not granted twice."""
    gold = TierFactory(rank=20, monthly_price=Decimal("12.00"))
    user = UserFactory()
    sub = stripe_test.subscription(sub_id="sub_r", customer="cus_r", price_id="price_late", user_id=user.pk)
    stripe_test.deliver(committing(Client()), stripe_test.event("customer.subscription.created", sub))
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.FAILED
    gold.stripe_monthly_price_id = "price_late"
    gold.save()

    assert run("members.tasks.retry_failed_webhooks") == 1
    state = (
        list(WebhookEvent.objects.values_list("status", "attempts")),
        list(Membership.objects.values_list("user_id", "tier_id", "status", "current_period_end")),
        MembershipEvent.objects.count(),
        outbox(),
    )
    assert state[0] == [(WebhookEvent.Status.PROCESSED, 2)] and len(state[1]) == 1
    assert run("members.tasks.retry_failed_webhooks") == 0
    assert (
        list(WebhookEvent.objects.values_list("status", "attempts")),
        list(Membership.objects.values_list("user_id", "tier_id", "status", "current_period_end")),
        MembershipEvent.objects.count(),
        outbox(),
    ) == state


def _content_stats():
    return sorted(
        ContentStats.objects.values_list(
            "content_id", "views_total", "views_30d", "readers", "completion_rate", "likes"
        )
    )


def test_refresh_content_stats():
    items = [ContentFactory() for _ in range(3)]
    readers = [UserFactory() for _ in range(3)]
    now = timezone.now()
    for n, reader in enumerate(readers):
        for item in items[: n + 1]:
            ContentView.objects.create(user=reader, content=item, started_at=now - timedelta(days=n * 20))
        Like.objects.create(user=reader, content=items[0])
    assert run("content.tasks.refresh_content_stats") == 3
    first = _content_stats()
    assert first[0][1:] == (3, 2, 3, 0.0, 3)
    assert run("content.tasks.refresh_content_stats") == 3
    assert _content_stats() == first
    assert ContentStats.objects.count() == 3


def test_award_renewals():
    membership = MembershipFactory()
    for invoice in ("in_1", "in_2"):
        Payment.objects.create(
            user=membership.user, membership=membership, provider="local", provider_invoice_id=invoice,
            status="paid", amount=Decimal("12.00"), currency="USD", billing_reason="subscription_cycle",
        )  # fmt: skip
    assert run("points.tasks.award_renewals") == 2
    ledger = sorted(LedgerEntry.objects.values_list("member_id", "action", "points"))
    account = PointsAccount.objects.values_list("balance", "lifetime").get(member=membership.user)
    assert run("points.tasks.award_renewals") == 0
    assert sorted(LedgerEntry.objects.values_list("member_id", "action", "points")) == ledger
    assert PointsAccount.objects.values_list("balance", "lifetime").get(member=membership.user) == account


def test_send_event_reminders():
    now = timezone.now()
    soon = Event.objects.create(
        title="Live Q&A", slug="live-qa", summary="Bring questions.", starts_at=now + timedelta(minutes=40),
        ends_at=now + timedelta(minutes=100), join_url="https://meet.example.com/room",
    )  # fmt: skip
    going = [UserFactory() for _ in range(2)]
    for member in going:
        RSVP.objects.create(event=soon, member=member, status=RSVP.Status.GOING)
    assert run("community.tasks.send_event_reminders") == 2
    sent = outbox()
    notices = Notification.objects.filter(kind=Notification.Kind.EVENT_REMINDER).count()
    assert len(sent) == 2 and notices == 2
    assert run("community.tasks.send_event_reminders") == 0
    assert outbox() == sent
    assert Notification.objects.filter(kind=Notification.Kind.EVENT_REMINDER).count() == notices


def test_collect_level_ups():
    member = UserFactory()
    for level in Level.objects.order_by("threshold")[:2]:
        LevelUp.objects.create(member=member, level=level)
    assert run("community.tasks.collect_level_ups") == 2
    rows = sorted(Notification.objects.values_list("recipient_id", "kind", "level_id"))
    run("community.tasks.collect_level_ups")
    assert sorted(Notification.objects.values_list("recipient_id", "kind", "level_id")) == rows


# --- Digests --------------------------------------------------------------------------------


def _failing_on_call(monkeypatch, target: str, number: int):
    """Make the `number`th email sent through `target` fail as a mail server going away would."""
    import community.delivery  # where the digests send their emails

    real = getattr(community.delivery, target)
    calls = []

    def send(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise ConnectionRefusedError("mail server went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(community.delivery, target, send)
    return lambda: monkeypatch.setattr(community.delivery, target, real)


def test_send_weekly_digest(monkeypatch):
    """The weekly digest stops at the second member (mail server gone); the retry mails the rest,
    not the first again; one more run mails nobody."""
    area = Category.objects.create(name="Open", slug="open")
    members = [UserFactory() for _ in range(3)]
    forum.start_thread(member=members[0], category=area, kind="discussion", title="Lively", body="x")
    mail.outbox.clear()

    restore = _failing_on_call(monkeypatch, "send_to_member", 2)
    with pytest.raises(ConnectionRefusedError):
        app.tasks["community.tasks.send_weekly_digest"]()
    restore()
    assert [m.to[0] for m in mail.outbox] == [members[0].email]
    assert WeeklyDigestSent.objects.count() == 1  # the failed member's mark was put back

    assert run("community.tasks.send_weekly_digest") == 2
    assert sorted(m.to[0] for m in mail.outbox) == sorted(m.email for m in members)
    sent = outbox()
    assert run("community.tasks.send_weekly_digest") == 0
    assert outbox() == sent
    assert WeeklyDigestSent.objects.count() == 3

    # A week on, the digest goes out again.
    WeeklyDigestSent.objects.update(sent_at=timezone.now() - timedelta(days=7))
    forum.start_thread(member=members[1], category=area, kind="discussion", title="Next week", body="x")
    assert run("community.tasks.send_weekly_digest") == 3


def test_send_daily_digests(monkeypatch):
    """Two members on the daily digest; the first run stops at the second (mail server gone), the
    retry mails only that one, one more run the same day mails nobody, even with news."""
    level, next_level = Level.objects.order_by("threshold")[:2]
    members = [UserFactory() for _ in range(2)]
    for member in members:
        NotificationSettings.objects.create(member=member, email=NotificationSettings.Email.DAILY)
        Notification.objects.create(recipient=member, kind=Notification.Kind.LEVEL_UP, level=level)

    restore = _failing_on_call(monkeypatch, "_email", 2)
    with pytest.raises(ConnectionRefusedError):
        app.tasks["community.tasks.send_daily_digests"]()
    restore()
    assert len(mail.outbox) == 1
    assert Notification.objects.filter(emailed=True).count() == 1  # the failed one is pending again

    assert run("community.tasks.send_daily_digests") == 1
    assert sorted(m.to[0] for m in mail.outbox) == sorted(m.email for m in members)
    state = (outbox(), sorted(Notification.objects.values_list("pk", "emailed")))
    Notification.objects.create(recipient=members[0], kind=Notification.Kind.LEVEL_UP, level=next_level)
    assert run("community.tasks.send_daily_digests") == 0
    assert outbox() == state[0]

    # The next day the news goes out.
    NotificationSettings.objects.update(last_digest_at=timezone.now() - timedelta(days=1))
    assert run("community.tasks.send_daily_digests") == 1


def test_clear_expired_sessions():
    for days in (-2, -1, 1):
        store = SessionStore()
        store["member"] = days
        store.set_expiry(timezone.now() + timedelta(days=days))
        store.save()
    run("usergroup.tasks.clear_expired_sessions")
    left = list(Session.objects.values_list("session_key", "expire_date"))
    assert len(left) == 1
    run("usergroup.tasks.clear_expired_sessions")
    assert list(Session.objects.values_list("session_key", "expire_date")) == left


def test_purge_data_exports():
    """Expired archives dropped, a stuck export failed, an old record deleted: once."""
    from members.models import DataExport

    now = timezone.now()
    ann, bob, cat = UserFactory(), UserFactory(), UserFactory()
    DataExport.objects.create(
        member=ann, status="ready", archive=b"PK", expires_at=now - timedelta(minutes=1)
    )
    DataExport.objects.create(member=bob, status="running", requested_at=now - timedelta(hours=7))
    DataExport.objects.create(member=cat, status="failed", requested_at=now - timedelta(days=100))
    live = DataExport.objects.create(
        member=cat, status="ready", archive=b"PK", expires_at=now + timedelta(days=1)
    )
    assert run("members.tasks.purge_data_exports") == {"expired": 1, "stale": 1, "deleted": 1}
    rows = list(DataExport.objects.order_by("pk").values_list("pk", "status", "archive"))
    assert run("members.tasks.purge_data_exports") == {"expired": 0, "stale": 0, "deleted": 0}
    assert list(DataExport.objects.order_by("pk").values_list("pk", "status", "archive")) == rows
    assert bytes(DataExport.objects.get(pk=live.pk).archive) == b"PK"


# --- The nightly chain ---------------------------------------------------------------------


@pytest.fixture
def community():
    """Enough of a community for every nightly stage to write something: consenting members who
    joined two months ago, read, liked and paid over the last weeks, and a forum thread."""
    now = timezone.now()
    gold = TierFactory(rank=20, monthly_price=Decimal("12.00"))
    items = [ContentFactory(title=f"Topic {n} words", body=f"Body about topic {n % 3}") for n in range(6)]
    members = []
    for n in range(12):
        member = UserFactory(analytics_consent=True, personalisation_consent=True)
        member.date_joined = now - timedelta(days=60)
        member.save(update_fields=["date_joined"])
        members.append(member)
        for k, item in enumerate(items[n % 3 : n % 3 + 3]):
            ContentView.objects.create(
                user=member, content=item, started_at=now - timedelta(days=1 + (n + k) % 9, hours=2),
                dwell_seconds=60 * (k + 1), completed=k == 0,
            )  # fmt: skip
        if n % 4 == 0:
            membership = MembershipFactory(user=member, tier=gold)
            Payment.objects.create(
                user=member, membership=membership, provider="local", provider_invoice_id=f"in_{n}",
                status="paid", amount=Decimal("12.00"), currency="USD", billing_reason="subscription_create",
            )  # fmt: skip
    area = Category.objects.create(name="Open", slug="open")
    thread = forum.start_thread(member=members[0], category=area, kind="discussion", title="Hello", body="x")
    forum.reply(member=members[1], thread=thread, body="Hi")
    return members


def nightly_state() -> dict:
    """Everything the nightly chain writes, without ids of rows a rerun may replace."""
    return {
        "payments": sorted(Payment.objects.values_list("membership_id", "provider_invoice_id", "amount")),
        "memberships": sorted(Membership.objects.values_list("pk", "status", "current_period_end")),
        "ledger": sorted(LedgerEntry.objects.values_list("member_id", "action", "points")),
        "view history": sorted(ViewHistory.objects.values_list("user_id", "pairs")),
        "views": [ContentView.objects.count()],
        "stored html": sorted(RenderedBody.objects.values_list("content_id", "source_key"))
        + sorted(Post.objects.values_list("pk", "body_html_key")),
        "view archive": sorted(ViewArchive.objects.values_list("content_id", "views", "completed")),
        "content stats": _content_stats(),
        "active days": sorted(ActiveDay.objects.values_list("member_id", "day")),
        "active periods": sorted(ActivePeriod.objects.values_list("kind", "start", "cohort", "members")),
        "runs": list(PersonaRun.objects.values_list("as_of", "members", "k", "status")),
        "profiles": sorted(
            MemberProfile.objects.values_list("member_id", "score", "high_potential", "at_risk_loyal")
        ),
        "feature blocks": [MemberFeatures.objects.count()],
        "conversions": sorted(Conversion.objects.values_list("key", "member_id", "kind", "at")),
        "builds": list(NeighbourBuild.objects.values_list("status", "members", "items")),
        "neighbours": sorted(
            (item, source, tuple(ids), *scores)
            for item, source, ids, scores in ItemNeighbours.objects.values_list(
                "item_id", "source", "neighbours", "scores"
            )
        ),
        "popular": sorted(PopularItem.objects.values_list("group", "item_id", "score")),
        "emails": outbox(),
    }


def assert_unchanged(after: dict, before: dict) -> None:
    """`after == before`, floats within a millionth: scores decay with time, and a rerun a
    moment later computes them a few float32 steps apart."""
    assert after.keys() == before.keys()
    for key in before:
        assert len(after[key]) == len(before[key]), key
        for new, old in zip(after[key], before[key], strict=True):
            new, old = (new, old) if isinstance(old, tuple) else ((new,), (old,))
            assert len(new) == len(old), (key, new, old)
            for a, b in zip(new, old, strict=True):
                if isinstance(b, float):
                    assert a == pytest.approx(b, rel=1e-6, abs=1e-9), (key, new, old)
                else:
                    assert a == b, (key, new, old)


def _run_stage(name: str):
    job = dict(nightly.JOBS)[name]
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        return job()


def test_run_nightly(community, monkeypatch):
    """The whole chain, as beat runs it: a first run cut short (profiles failed, the neighbour
    build broke half-way through its writes), then a full run, then one more that changes
    nothing."""
    import analytics.services
    import recommend.services

    def disk_full(**kwargs):
        raise OSError("disk full")

    real_profiles = analytics.services.build_member_profiles
    real_popular = recommend.services.write_popular
    monkeypatch.setattr(analytics.services, "build_member_profiles", disk_full)
    monkeypatch.setattr(recommend.services, "write_popular", disk_full)
    with pytest.raises(RuntimeError, match=r"member profiles, .*recommendations"):
        run("usergroup.tasks.run_nightly")
    assert NeighbourBuild.objects.filter(status=NeighbourBuild.Status.FAILED).count() == 1
    monkeypatch.setattr(analytics.services, "build_member_profiles", real_profiles)
    monkeypatch.setattr(recommend.services, "write_popular", real_popular)

    results = run("usergroup.tasks.run_nightly")
    assert all(r["ok"] for r in results)
    first = nightly_state()
    assert first["builds"][0][0] == NeighbourBuild.Status.DONE and len(first["builds"]) == 1
    assert len(first["runs"]) == 1 and first["profiles"] and first["active days"] and first["neighbours"]
    assert first["conversions"] and first["view history"]

    run("usergroup.tasks.run_nightly")
    assert_unchanged(nightly_state(), first)


def _twice(name: str, key: str, partial=None) -> dict:
    if partial is not None:
        partial()
    _run_stage(name)
    first = nightly_state()
    assert first[key], f"the {name} stage wrote nothing to check"
    _run_stage(name)
    assert_unchanged(nightly_state(), first)
    return first


def test_nightly_billing_cycle(community):
    MembershipFactory(
        current_period_start=timezone.now() - timedelta(days=31),
        current_period_end=timezone.now() - timedelta(hours=1),
    )
    _twice("billing cycle", "payments")


def test_nightly_view_history(community):
    _twice("view history", "view history")


def test_nightly_drop_old_views(community, settings, monkeypatch):
    """Views past the retention, once summed, are dropped and counted into the archive; a drop
    that stopped after its first batch, then two full ones, archive each view once."""
    import content.history

    settings.VIEW_LOG_RETENTION_DAYS = 4
    _run_stage("view history")
    cutoff = timezone.now() - timedelta(days=4)
    old_views = ContentView.objects.filter(started_at__lt=cutoff).count()
    kept = ContentView.objects.count() - old_views
    assert old_views > 2 and kept > 0

    real_archive = content.history._archive
    batches = []

    def archive_then_crash(counts):
        batches.append(counts)
        if len(batches) == 2:
            raise OSError("worker lost")
        real_archive(counts)

    def partial():
        with monkeypatch.context() as patch:
            patch.setattr(content.history, "_archive", archive_then_crash)
            with pytest.raises(OSError):
                content.history.drop_old_views(batch_size=2)
        assert ContentView.objects.count() == kept + old_views - 2  # the first batch, whole

    first = _twice("drop old views", "view archive", partial=partial)
    assert first["views"] == [kept]
    assert sum(views for _item, views, _done in first["view archive"]) == old_views


def test_purge_deleted_members(monkeypatch):
    """Two members due for deletion; erasing the second fails (its provider unreachable) and it
    stays queued; the next run purges it; one more run finds nobody, and changes nothing."""
    import community.erasure
    from community.models import Post
    from members.models import User

    area = Category.objects.create(name="Open", slug="open")
    staying = UserFactory()
    leaving = [UserFactory(display_name=f"Leaving {n}") for n in range(2)]
    thread = forum.start_thread(
        member=staying, category=area, kind="discussion", title="Hello there", body="x"
    )
    for member in leaving:
        forum.reply(member=member, thread=thread, body=f"bye from {member.pk}")
    User.objects.filter(pk__in=[m.pk for m in leaving]).update(
        deletion_due_at=timezone.now() - timedelta(minutes=1)
    )

    real = community.erasure.erase_member

    def unreachable_for_the_second(*, member, **kwargs):
        if member.pk == leaving[1].pk:
            raise ConnectionError("payment provider unreachable")
        return real(member=member, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(community.erasure, "erase_member", unreachable_for_the_second)
        first = run("usergroup.tasks.purge_deleted_members")
    assert (first["purged"], first["failed"]) == (1, 1)
    assert User.objects.get(pk=leaving[1].pk).deleted_at is None  # rolled back whole, still queued

    second = run("usergroup.tasks.purge_deleted_members")
    assert (second["purged"], second["failed"]) == (1, 0)

    def state():
        return (
            sorted(User.objects.values_list("pk", "email", "display_name", "is_active", "deleted_at")),
            sorted(Post.objects.values_list("pk", "author_id", "body")),
            outbox(),
        )

    after = state()
    assert all(deleted for pk, *_rest, deleted in after[0] if pk in {m.pk for m in leaving})
    third = run("usergroup.tasks.purge_deleted_members")
    assert (third["purged"], third["failed"]) == (0, 0)
    assert state() == after


def test_nightly_content_stats(community):
    _twice("content stats", "content stats")


def test_nightly_stored_html(community):
    """Bodies and posts without their HTML (a bulk import) are rendered and stored once; a second
    run finds nothing stale and writes nothing."""
    Post.objects.update(body_html="", body_html_key="")
    first = _twice("stored html", "stored html")
    assert RenderedBody.objects.count() == 6 and not Post.objects.filter(body_html_key="").exists()
    assert _run_stage("stored html") == {"bodies": 0, "posts": 0, "comments": 0}
    assert nightly_state()["stored html"] == first["stored html"]


def test_nightly_active_days(community):
    """A first run that stopped after part of the history (days rolled up to a week ago), then
    the full run: the same member-days as one clean run, none twice."""
    from analytics.rollups import last_closed_day, roll_up_active_days

    def partial():
        assert roll_up_active_days(until=last_closed_day() - timedelta(days=7)) > 0

    first = _twice("active days", "active days", partial=partial)
    ActiveDay.objects.all().delete()
    roll_up_active_days()
    assert nightly_state()["active days"] == first["active days"]


def test_nightly_active_periods(community):
    _run_stage("active days")
    _twice("active periods", "active periods")


def test_nightly_member_profiles(community):
    first = _twice("member profiles", "profiles")
    assert len(first["runs"]) == 1  # the day's run replaced, not added


def test_nightly_attribution(community):
    _twice("attribution", "conversions")


def test_nightly_dashboard_figures(community):
    """The dashboard's default range counted ahead: a second run stores the same figures under
    the same keys and writes nothing to the database."""
    from django.core.cache import cache

    before = nightly_state()
    _run_stage("dashboard figures")
    from analytics.dashboard import warm_dashboards

    keys = warm_dashboards()
    first = [cache.get(key) for key in keys]
    assert all(board is not None for board in first)
    _run_stage("dashboard figures")
    again = [cache.get(key) for key in keys]
    assert [(b.revenue.mrr, b.revenue.paying, b.activity.monthly) for b in again] == [
        (b.revenue.mrr, b.revenue.paying, b.activity.monthly) for b in first
    ]
    assert_unchanged(nightly_state(), before)


def test_nightly_crm_lists(community):
    """The CRM directory's first page counted ahead, unfiltered and per persona of the latest
    run: a second run keeps the same lists under the same keys and writes nothing to the
    database."""
    from django.core.cache import cache

    _run_stage("member profiles")
    before = nightly_state()
    _run_stage("crm lists")
    from analytics.selectors import store_directory_lists

    keys = store_directory_lists()
    first = [cache.get(key) for key in keys]
    assert len(keys) > 1 and all(kept is not None and kept[1] > 0 for kept in first)
    _run_stage("crm lists")
    assert [cache.get(key) for key in keys] == first
    assert_unchanged(nightly_state(), before)


def test_nightly_recommendations(community, monkeypatch):
    """A build that broke half-way through its writes, then two full ones: one build, the same
    neighbours and popular lists."""
    import recommend.services

    def broken(**kwargs):
        raise OSError("disk full")

    def partial():
        with monkeypatch.context() as patch:
            patch.setattr(recommend.services, "write_popular", broken)
            with pytest.raises(OSError):
                _run_stage("recommendations")

    _run_stage("view history")
    first = _twice("recommendations", "neighbours", partial=partial)
    assert len(first["builds"]) == 1
