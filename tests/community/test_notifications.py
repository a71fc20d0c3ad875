"""Notifications: followers hear about replies, answerers about acceptance, authors about likes;
the bell counts them; emails go out right away or in a daily digest; no one hears about a topic
they may not read."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from community import services
from community.models import Category, Notification
from community.services import notifications as notify
from community.tasks import send_daily_digests
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def as_user(user):
    client = Client()
    client.force_login(user)
    return client


def test_reply_accept_and_like_notify_the_right_people(area, on_commit):
    asker, helper, fan = UserFactory(), UserFactory(), UserFactory()
    notify.set_email_preference(member=asker, email="instant")
    thread = services.start_thread(member=asker, category=area, kind="question", title="Need help", body="?")
    with on_commit():
        answer = services.reply(member=helper, thread=thread, body="Try this.")
    assert Notification.objects.get(recipient=asker).kind == "reply"
    assert not Notification.objects.filter(recipient=helper).exists()  # not about your own post
    assert any("1 new notification" in m.subject for m in mail.outbox)
    services.accept_answer(actor=asker, thread=thread, post=answer)
    services.vote(member=fan, post=answer, value=1)
    services.vote(member=fan, post=answer, value=1)  # taking the vote back says nothing
    services.vote(member=fan, post=answer, value=1)
    kinds = sorted(Notification.objects.filter(recipient=helper).values_list("kind", flat=True))
    assert kinds == ["accepted", "like"]
    services.reply(member=fan, thread=thread, body="Me too")
    assert Notification.objects.filter(recipient=helper, kind="reply").count() == 1  # replying followed it


def test_bell_count_page_and_mark_read(area):
    asker, helper = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=asker, category=area, kind="discussion", title="Bell test", body="x"
    )
    services.reply(member=helper, thread=thread, body="hello")
    client = as_user(asker)
    assert 'data-testid="unread">1<' in client.get("/").content.decode()
    page = client.get(reverse("community:notifications")).content.decode()
    assert "replied in “Bell test”" in page
    assert 'data-testid="unread"' not in client.get("/").content.decode()


def test_unfollow_and_preferences(area):
    asker, helper = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=asker, category=area, kind="discussion", title="Quiet please", body="x"
    )
    as_user(asker).post(reverse("community:follow", args=[thread.pk]), {"follow": "0"})
    services.reply(member=helper, thread=thread, body="hello")
    assert not Notification.objects.filter(recipient=asker).exists()
    as_user(asker).post(reverse("community:notifications"), {"email": "off"})
    assert asker.notification_settings.email == "off"
    as_user(asker).post(reverse("community:notifications"), {"email": "hourly"})
    asker.notification_settings.refresh_from_db()
    assert asker.notification_settings.email == "off"


def test_no_notifications_about_topics_you_can_no_longer_read(db):
    gold = TierFactory(rank=20)
    lounge = Category.objects.create(name="Lounge", slug="lounge", read_tier=gold)
    former = MembershipFactory(tier=gold)
    thread = services.start_thread(
        member=former.user, category=lounge, kind="discussion", title="Lounge talk", body="x"
    )
    former.status = "expired"
    former.save()
    services.reply(member=MembershipFactory(tier=gold).user, thread=thread, body="secret plans")
    assert not Notification.objects.filter(recipient=former.user).exists()


def test_daily_digest(area):
    asker, helper = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=asker, category=area, kind="discussion", title="Digest me", body="x"
    )
    services.reply(member=helper, thread=thread, body="one")
    services.reply(member=UserFactory(), thread=thread, body="two")
    notify.set_email_preference(member=asker, email="daily")
    assert send_daily_digests() == 1
    digest = mail.outbox[-1]
    assert "daily community digest" in digest.subject and digest.body.count("Digest me") == 2
    assert send_daily_digests() == 0  # nothing new


def test_weekly_digest_respects_access_and_preferences():
    from community.tasks import send_weekly_digest

    gold = TierFactory(rank=20)
    lounge = Category.objects.create(name="Lounge", slug="lounge", read_tier=gold)
    open_area = Category.objects.create(name="Open", slug="open")
    insider = MembershipFactory(tier=gold).user
    free, muted = UserFactory(), UserFactory()
    notify.set_email_preference(member=muted, email="off")
    services.start_thread(member=insider, category=lounge, kind="discussion", title="Gold secrets", body="x")
    services.start_thread(member=free, category=open_area, kind="discussion", title="Open chat", body="x")
    mail.outbox.clear()
    send_weekly_digest()
    by_recipient = {m.to[0]: m.body for m in mail.outbox}
    assert "Gold secrets" in by_recipient[insider.email] and "Open chat" in by_recipient[insider.email]
    assert "Gold secrets" not in by_recipient[free.email] and "Open chat" in by_recipient[free.email]
    assert muted.email not in by_recipient


def test_quote_prefills_the_reply(area):
    author, reader = UserFactory(display_name="Ann"), UserFactory()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="Quote me", body="line one\nline two"
    )
    post = thread.posts.get()
    html = as_user(reader).get(thread.get_absolute_url() + f"?quote={post.pk}").content.decode()
    assert "Ann:\n&gt; line one\n&gt; line two" in html
    assert as_user(reader).get(thread.get_absolute_url() + "?quote=abc").status_code == 200


@pytest.fixture
def silver(db):
    from points.models import Level
    from points.services import rules_changed

    Level.objects.all().delete()
    Level.objects.create(name="Start", threshold=0)
    level = Level.objects.create(name="Silver", threshold=1)
    rules_changed()
    yield level
    rules_changed()


def test_level_up_from_a_forum_post_rings_the_bell(area, silver):
    member = UserFactory()
    services.start_thread(member=member, category=area, kind="discussion", title="My first", body="hi")
    n = Notification.objects.get(recipient=member)
    assert (n.kind, n.level, n.emailed) == ("level_up", silver, True)  # points emails it already
    page = as_user(member).get(reverse("community:notifications")).content.decode()
    assert "You reached the level Silver" in page
    assert reverse("points:overview") in page


def test_level_ups_earned_elsewhere_are_collected_once(silver):
    from django.core.management import call_command

    from points.models import Action
    from points.services import award_points

    member = UserFactory()
    award_points(member=member, action=Action.DAILY_VISIT, ref="visit:2026-11-25")
    assert not Notification.objects.filter(recipient=member).exists()
    call_command("run_community_jobs", "level-ups")
    call_command("run_community_jobs", "level-ups")  # safe to re-run
    assert Notification.objects.filter(recipient=member, kind="level_up").count() == 1
    # Opening the notifications page also collects them, so nothing waits for the job.
    other = UserFactory()
    award_points(member=other, action=Action.DAILY_VISIT, ref="visit:2026-11-25")
    assert "Silver" in as_user(other).get(reverse("community:notifications")).content.decode()


def test_run_community_jobs_rejects_unknown_jobs():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("run_community_jobs", "everything")


def test_event_reminders_and_seats_ring_the_bell(on_commit):
    from datetime import timedelta

    from django.utils import timezone

    from community.models import Event
    from community.services import events

    start = timezone.now() + timedelta(minutes=40)
    event = Event.objects.create(
        title="Office hours", slug="office-hours", summary="Drop in.", starts_at=start,
        ends_at=start + timedelta(hours=1), capacity=1,
    )  # fmt: skip
    first, waiting, quiet = UserFactory(), UserFactory(), UserFactory()
    notify.set_email_preference(member=quiet, email="off")
    events.rsvp(member=first, event=event)
    assert events.rsvp(member=waiting, event=event).status == "waitlist"
    with on_commit():
        events.cancel_rsvp(member=first, event=event)
    seat = Notification.objects.get(recipient=waiting)
    assert (seat.kind, seat.event) == ("event_seat", event)
    assert any("Office hours" in m.subject for m in mail.outbox)
    page = as_user(waiting).get(reverse("community:notifications")).content.decode()
    assert "A seat opened up" in page and event.get_absolute_url() in page

    event.capacity = None
    event.save()
    events.rsvp(member=quiet, event=event)
    mail.outbox.clear()
    assert events.send_reminders() == 2
    assert Notification.objects.filter(kind="event_soon").count() == 2
    assert [m.to for m in mail.outbox] == [[waiting.email]]  # "never" means no email, still the bell
    assert "“Office hours” starts" in as_user(quiet).get(reverse("community:notifications")).content.decode()


def test_event_notices_disappear_for_members_who_lose_access():
    from datetime import timedelta

    from django.utils import timezone

    from community.models import Event

    gold = TierFactory(rank=20)
    former = MembershipFactory(tier=gold)
    start = timezone.now() + timedelta(hours=2)
    event = Event.objects.create(
        title="Gold AMA", slug="gold-ama", summary="x", starts_at=start,
        ends_at=start + timedelta(hours=1), min_tier=gold,
    )  # fmt: skip
    notify.event_notice(member=former.user, event=event, kind="event_soon", emailed=True)
    former.status = "canceled"
    former.current_period_end = timezone.now() - timedelta(days=1)
    former.save()
    page = as_user(former.user).get(reverse("community:notifications")).content.decode()
    assert "Gold AMA" not in page


def test_notifications_page_query_count_stays_flat(area, django_assert_max_num_queries):
    from datetime import timedelta

    from django.utils import timezone

    from community.models import Event

    member = UserFactory(handle="busy_b")
    client = as_user(member)
    client.get("/")  # the day's first request also pays the daily visit
    start = timezone.now() + timedelta(days=1)

    def add_some(n):
        for i in range(n):
            writer = UserFactory()
            thread = services.start_thread(
                member=writer, category=area, kind="discussion", title=f"Topic {i} {n}", body="@busy_b hi"
            )
            event = Event.objects.create(
                title=f"Event {i} {n}", slug=f"event-{i}-{n}", summary="x",
                starts_at=start, ends_at=start + timedelta(hours=1),
            )  # fmt: skip
            notify.event_notice(member=member, event=event, kind="event_soon", emailed=True)
            assert thread

    add_some(2)
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("community:notifications"))
    add_some(12)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("community:notifications")).content.decode()
    assert page.count("mentioned you in") == 14


def test_old_level_ups_do_not_flood_the_bell(area, silver):
    from datetime import timedelta

    from django.utils import timezone

    from points.models import Level, LevelUp

    member = UserFactory()
    bronze = Level.objects.create(name="Bronze", threshold=10_000)
    LevelUp.objects.create(member=member, level=bronze, created_at=timezone.now() - timedelta(days=300))
    gold = Level.objects.create(name="Gold", threshold=20_000)
    LevelUp.objects.create(member=member, level=gold, seen=True)  # banner already dismissed
    services.start_thread(member=member, category=area, kind="discussion", title="Hello bell", body="x")
    as_user(member).get("/")
    assert not Notification.objects.filter(level=bronze).exists()
    notify.collect_level_ups(members=[member.pk])
    assert Notification.objects.get(level=gold).read_at is not None
    assert Notification.objects.get(level=silver).read_at is None


def test_the_notifications_page_collects_level_ups_only_after_a_change(client, django_assert_num_queries):
    """The page puts the member's level-ups into the bell, and skips looking for them while the
    member's header version is the one it last looked under: a LevelUp saved gives a new one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from points.models import Level, LevelUp

    member = UserFactory()
    client.force_login(member)
    page = reverse("community:notifications")
    client.get(page)

    def looked(sqls: list[str]) -> bool:
        return any('FROM "points_levelup"' in sql for sql in sqls)

    with CaptureQueriesContext(connection) as again:
        client.get(page)
    assert not looked([q["sql"] for q in again.captured_queries])

    LevelUp.objects.create(member=member, level=Level.objects.create(name="Platinum", threshold=50_000))
    with CaptureQueriesContext(connection) as after:
        html = client.get(page).content.decode()
    assert looked([q["sql"] for q in after.captured_queries])
    assert Notification.objects.filter(recipient=member, kind=Notification.Kind.LEVEL_UP).count() == 1
    assert "Platinum" in html


def test_the_notification_settings_form_is_crispys_with_the_members_choice(client):
    from crispy_forms.templatetags.crispy_forms_filters import as_crispy_form

    from community.forms import NotificationSettingsForm

    member = UserFactory()
    client.force_login(member)
    page = reverse("community:notifications")
    notify.set_email_preference(member=member, email="off")
    html = client.get(page).content.decode()
    assert as_crispy_form(NotificationSettingsForm(initial={"email": "off"})) in html
    assert '<option value="off" selected>' in html
    notify.set_email_preference(member=member, email="instant")
    html = client.get(page).content.decode()
    assert '<option value="instant" selected>' in html and '<option value="off" selected>' not in html
    client.cookies["django_language"] = "zh-hans"
    html = client.get(page).content.decode()
    assert '<option value="instant" selected>' in html and "Email me about new notifications" not in html
