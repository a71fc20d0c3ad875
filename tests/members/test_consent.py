"""Consents: off by default, changed only through set_consent, every change in the history
(privacy page, sign-up, unsubscribe link, admin, member import, demo seed, the backfill), and a
withdrawal that counts from the member's next request."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.imports import import_members
from analytics.models import MemberProfile, Persona, PersonaRun
from analytics.selectors import persona_key_of, persona_keys
from members.consent import CONSENT_FIELDS, set_consent
from members.errors import MemberError
from members.mail import unsubscribe_token
from members.models import AuditEvent, ConsentEvent, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PRIVACY = "members:privacy"


def history(member: User) -> list[tuple[str, bool, str]]:
    return [
        (e.kind, e.granted, e.source) for e in ConsentEvent.objects.filter(member=member).order_by("at", "pk")
    ]


def choose(client: Client, **consents: bool):
    return client.post(
        reverse(PRIVACY), {kind: "on" for kind, on in consents.items() if on}, REMOTE_ADDR="198.51.100.4"
    )


# --- The service ------------------------------------------------------------------------------


def test_set_consent_records_each_change_once_and_stamps_the_member():
    member = UserFactory()
    assert set_consent(member=member, kind="analytics", granted=True, source="settings", ip="203.0.113.1")
    assert not set_consent(member=member, kind="analytics", granted=True, source="settings")  # no change
    assert set_consent(member=member, kind="analytics", granted=False, source="settings")
    assert history(member) == [("analytics", True, "settings"), ("analytics", False, "settings")]
    member.refresh_from_db()
    assert member.analytics_consent is False and member.analytics_consent_at is not None
    assert ConsentEvent.objects.filter(member=member, ip="203.0.113.1").count() == 1


@pytest.mark.parametrize("kind,source", [("newsletter", "settings"), ("analytics", "telepathy")])
def test_unknown_kinds_and_sources_are_refused(kind, source):
    member = UserFactory()
    with pytest.raises(MemberError):
        set_consent(member=member, kind=kind, granted=True, source=source)
    assert not ConsentEvent.objects.exists()


def test_staff_may_withdraw_for_a_member_but_never_grant_and_it_is_audited():
    member, staff = UserFactory(announcements_email=True), UserFactory(is_staff=True)
    with pytest.raises(MemberError):
        set_consent(member=member, kind="analytics", granted=True, source="admin", actor=staff)
    assert set_consent(member=member, kind="marketing", granted=False, source="admin", actor=staff)
    event = ConsentEvent.objects.get(member=member)
    assert (event.kind, event.granted, event.source, event.actor) == ("marketing", False, "admin", staff)
    audit = AuditEvent.objects.get(action="consent.withdraw")
    assert (
        audit.actor == staff
        and audit.target_id == str(member.pk)
        and audit.details == {"consent": "marketing"}
    )


# --- The privacy page -------------------------------------------------------------------------


def test_the_privacy_page_needs_a_signed_in_member():
    response = Client().get(reverse(PRIVACY))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_consents_are_off_until_the_member_ticks_them(member_client, member):
    html = member_client.get(reverse(PRIVACY)).content.decode()
    for kind in CONSENT_FIELDS:
        assert f'name="{kind}"' in html
        assert f'name="{kind}" class="checkboxinput form-check-input" id="id_{kind}" checked' not in html
    assert "Never changed" in html


def test_every_change_on_the_page_is_recorded_with_its_source_and_address(member_client, member):
    assert choose(member_client, analytics=True, marketing=True).status_code == 302
    member.refresh_from_db()
    assert member.analytics_consent and member.announcements_email and not member.personalisation_consent
    choose(member_client, analytics=True, marketing=True)  # the same again: nothing new
    choose(member_client, personalisation=True)
    assert history(member) == [
        ("analytics", True, "settings"), ("marketing", True, "settings"),
        ("analytics", False, "settings"), ("personalisation", True, "settings"), ("marketing", False, "settings"),
    ]  # fmt: skip
    assert set(ConsentEvent.objects.filter(member=member).values_list("ip", flat=True)) == {"198.51.100.4"}
    page = member_client.get(reverse(PRIVACY)).content.decode()
    assert "History of your choices" in page and "Privacy settings page" in page and "turned off" in page


def test_the_profile_form_no_longer_touches_consents(member_client, member):
    set_consent(member=member, kind="analytics", granted=True, source="settings")
    response = member_client.post(
        reverse("members:profile"),
        {
            "display_name": "Ada",
            "handle": "ada_l",
            "bio": "",
            "language": "",
            "time_zone": "",
            "analytics_consent": "",
        },
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.display_name == "Ada" and member.analytics_consent is True
    assert "privacy page" in member_client.get(reverse("members:profile")).content.decode()


# --- The other ways consents change -----------------------------------------------------------


def test_sign_up_offers_the_consents_unticked_and_records_those_ticked(client):
    page = client.get(reverse("account_signup")).content.decode()
    assert 'name="consent_personalisation"' in page and reverse("privacy_policy") in page
    assert 'id="id_consent_analytics" checked' not in page
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": "a-Long-and-unusual-pass-42", "password2": "a-Long-and-unusual-pass-42",
         "consent_personalisation": "on"},
        REMOTE_ADDR="192.0.2.9",
    )  # fmt: skip
    assert response.status_code == 302
    member = User.objects.get(email="new@example.com")
    assert member.personalisation_consent and not member.analytics_consent and not member.announcements_email
    assert history(member) == [("personalisation", True, "signup")]
    assert ConsentEvent.objects.get(member=member).ip == "192.0.2.9"


def test_the_unsubscribe_link_withdraws_marketing_and_records_it(client):
    member = UserFactory()
    set_consent(member=member, kind="marketing", granted=True, source="settings")
    client.post(reverse("members:unsubscribe", args=[unsubscribe_token(member)]))
    member.refresh_from_db()
    assert not member.announcements_email
    assert history(member)[-1] == ("marketing", False, "unsubscribe")


def test_the_admin_shows_consents_read_only_and_withdraws_them_on_request():
    member = UserFactory()
    for kind in CONSENT_FIELDS:
        set_consent(member=member, kind=kind, granted=True, source="settings")
    staff = UserFactory(is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(staff)
    change = reverse("admin:members_user_change", args=[member.pk])
    page = admin.get(change).content.decode()
    assert 'name="analytics_consent"' not in page  # read-only: staff cannot tick it
    assert "consent history" in page.lower() and "privacy settings page" in page.lower()

    response = admin.post(
        reverse("admin:members_user_changelist"),
        {"action": "withdraw_consents", "_selected_action": [member.pk]},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert not (member.analytics_consent or member.personalisation_consent or member.announcements_email)
    assert [e for e in history(member) if e[2] == "admin"] == [
        ("analytics", False, "admin"), ("personalisation", False, "admin"), ("marketing", False, "admin"),
    ]  # fmt: skip
    assert AuditEvent.objects.filter(action="consent.withdraw", actor=staff).count() == 3


def test_a_member_import_records_the_marketing_consent_it_carries_over(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path
    importer = UserFactory(is_staff=True, is_superuser=True)
    existing = UserFactory(email="kept@example.com")
    chose = UserFactory(email="chose@example.com", announcements_email_at=timezone.now())
    csv = (
        "email,name,handle,language,tags,tier,complimentary_until,joined,note,announcements\n"
        "fresh@example.com,Fresh,,,,,,,,yes\n"
        "quiet@example.com,Quiet,,,,,,,,no\n"
        "kept@example.com,,,,,,,,,yes\n"
        "chose@example.com,,,,,,,,,yes\n"
    )
    import_members(data=csv.encode(), importer=importer)
    fresh = User.objects.get(email="fresh@example.com")
    assert history(fresh) == [("marketing", True, "import")]
    assert history(User.objects.get(email="quiet@example.com")) == []
    assert history(existing) == [("marketing", True, "import")]
    assert history(chose) == []  # they chose for themselves before: the import left them alone


def test_the_demo_seed_records_its_opt_ins():
    from django.core.management import call_command

    from usergroup.management.commands.seed_demo import MEMBER_DOMAIN

    call_command("seed_demo", members=12, seed=3, no_progress=True)
    members = User.objects.filter(email__endswith=f"@{MEMBER_DOMAIN}", is_staff=False)
    assert members.exists()
    for member in members:
        granted = {kind for kind, field in CONSENT_FIELDS.items() if getattr(member, field.value)}
        assert {kind for kind, _, source in history(member) if source == "demo"} == granted


def test_the_backfill_migration_starts_every_members_history_from_the_stored_values():
    seed = importlib.import_module("members.migrations.0012_seed_consent_history").seed
    now = timezone.now()
    joined = now - timedelta(days=100)
    never = UserFactory(date_joined=joined)
    opted = UserFactory(
        date_joined=joined, analytics_consent=True, analytics_consent_at=now - timedelta(days=3),
        announcements_email=False, announcements_email_at=now - timedelta(days=1),
    )  # fmt: skip
    seed(django_apps, None)
    rows = {(e.member_id, e.kind): (e.granted, e.at, e.source) for e in ConsentEvent.objects.all()}
    assert rows[(never.pk, "analytics")] == (False, joined, "backfill")
    assert rows[(never.pk, "marketing")] == (False, joined, "backfill")
    assert rows[(opted.pk, "analytics")] == (True, now - timedelta(days=3), "backfill")
    assert rows[(opted.pk, "personalisation")] == (False, joined, "backfill")
    assert rows[(opted.pk, "marketing")] == (False, now - timedelta(days=1), "backfill")
    assert len(rows) == 3 * User.objects.count()


# --- Withdrawal counts from the next request ----------------------------------------------------


def test_withdrawing_analytics_takes_the_member_out_of_personas_on_the_next_request(member_client, member):
    choose(member_client, analytics=True)
    run = PersonaRun.objects.create(as_of=timezone.localdate(), status=PersonaRun.Status.DONE)
    persona = Persona.objects.create(
        run=run, key=4, description_en="Readers", description_zh="读者", centroid={}
    )
    MemberProfile.objects.create(run=run, member=member, score=50, persona=persona)
    staff = Client()
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))
    card = reverse("analytics:member", args=[member.pk])
    assert persona_keys(member_ids=[member.pk]) == {member.pk: 4}
    assert persona_key_of(member_id=member.pk) == 4  # the recommendations' one statement
    # An older run's persona is not the member's any more; a newer run still running not yet.
    older = PersonaRun.objects.create(
        as_of=timezone.localdate() - timedelta(days=7), status=PersonaRun.Status.DONE
    )
    MemberProfile.objects.create(
        run=older, member=member, score=50,
        persona=Persona.objects.create(run=older, key=9, description_en="Old", description_zh="旧", centroid={}),
    )  # fmt: skip
    PersonaRun.objects.create(as_of=timezone.localdate() + timedelta(days=1))
    assert persona_key_of(member_id=member.pk) == 4
    assert 'class="crm-score"' in staff.get(card).content.decode()
    choose(member_client)  # everything off
    assert persona_keys(member_ids=[member.pk]) == {}
    assert persona_key_of(member_id=member.pk) is None
    page = staff.get(card).content.decode()
    assert 'class="crm-score"' not in page and "has not given analytics consent" in page


def test_withdrawing_personalisation_turns_the_list_to_popular_items_on_the_next_request(
    member_client, member
):
    from content.models import ContentView
    from recommend.selectors import recommendations_for
    from recommend.services import build_neighbours
    from tests.factories import ContentFactory

    items = [ContentFactory(title=f"Running {i}") for i in range(4)] + [
        ContentFactory(title=f"Cooking {i}") for i in range(4)
    ]
    for n in range(6):
        reader = UserFactory(personalisation_consent=True)
        for item in items[:4] if n % 2 else items[4:]:
            ContentView.objects.create(content=item, user=reader, dwell_seconds=60, completed=True)
    choose(member_client, personalisation=True)
    ContentView.objects.create(content=items[0], user=member, dwell_seconds=60, completed=True)
    build_neighbours()
    member.refresh_from_db()
    assert any(r.reason != "popular" for r in recommendations_for(member=member))
    choose(member_client)
    member = User.objects.get(pk=member.pk)  # as the next request loads it
    assert all(r.reason == "popular" for r in recommendations_for(member=member))


def test_withdrawing_marketing_stops_the_next_announcement(member_client, member, on_commit):
    from analytics.crm import queue_broadcast

    choose(member_client, marketing=True)
    choose(member_client)
    staff = UserFactory(is_staff=True)
    with on_commit():
        queue_broadcast(subject="Big sale", body="Half price", query={}, by=staff)
    assert not [m for m in mail.outbox if member.email in m.to]
