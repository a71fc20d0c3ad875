"""First touch at sign-up and the nightly roll-up of sign-ups, paid conversions and upgrades."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.attribution import COOKIE, Touch, roll_up_conversions
from analytics.models import Acquisition, Conversion
from content.models import ContentView
from members.models import MembershipEvent, Payment, Provider
from tests.factories import ContentFactory, MembershipFactory, TierFactory, UserFactory
from usergroup.nightly import JOBS

pytestmark = pytest.mark.django_db

STRONG = "a-Long-and-unusual-passphrase-42"


def _touch(client) -> Touch | None:
    cookie = client.cookies.get(COOKIE)
    return Touch.from_cookie(cookie.value if cookie else None)


def test_first_visit_keeps_utm_and_landing_page_and_later_visits_do_not_replace_them(client):
    client.get("/pricing/?utm_source=newsletter&utm_medium=email&utm_campaign=launch")
    first = _touch(client)
    assert (first.source, first.medium, first.campaign, first.landing_path) == (
        "newsletter", "email", "launch", "/pricing/",
    )  # fmt: skip
    client.get("/library/?utm_source=twitter", HTTP_REFERER="https://t.co/abc")
    assert _touch(client).source == "newsletter"


def test_external_referrer_becomes_the_source_and_own_site_does_not(client):
    client.get("/library/", HTTP_REFERER="https://www.google.com/search?q=secret")
    touch = _touch(client)
    assert (touch.source, touch.medium, touch.referrer) == ("google.com", "referral", "www.google.com/search")

    other = client.__class__()
    other.get("/library/", HTTP_REFERER="http://testserver/pricing/")
    assert _touch(other).source == ""


def test_reading_an_item_updates_the_last_item_only(client):
    item = ContentFactory()
    client.get("/library/?utm_source=podcast")
    client.get(reverse("content:detail", args=[item.slug]))
    touch = _touch(client)
    assert (touch.source, touch.last_content) == ("podcast", item.slug)


def test_tampered_cookie_is_ignored_and_members_get_no_cookie(client):
    client.cookies[COOKIE] = "forged-value"
    response = client.get("/library/?utm_source=x\x01y")
    assert response.status_code == 200
    assert _touch(client).source == "xy"

    member = UserFactory()
    signed_in = client.__class__()
    signed_in.force_login(member)
    signed_in.get("/library/?utm_source=newsletter")
    assert COOKIE not in signed_in.cookies


def test_sign_up_records_first_touch_and_last_item_read(client):
    item = ContentFactory()
    client.get("/?utm_source=youtube&utm_campaign=course-trailer", HTTP_REFERER="https://youtube.com/watch")
    client.get(reverse("content:detail", args=[item.slug]))
    client.post(
        reverse("account_signup"), {"email": "new@example.com", "password1": STRONG, "password2": STRONG}
    )
    acquisition = Acquisition.objects.get(member__email="new@example.com")
    assert acquisition.source == "youtube"
    assert acquisition.campaign == "course-trailer"
    assert acquisition.landing_path == "/"
    assert acquisition.referrer == "youtube.com/watch"
    assert acquisition.signup_content == item
    assert acquisition.first_seen_at is not None


def test_sign_up_without_a_cookie_is_direct(client):
    client.post(
        reverse("account_signup"), {"email": "new@example.com", "password1": STRONG, "password2": STRONG}
    )
    acquisition = Acquisition.objects.get(member__email="new@example.com")
    assert (acquisition.source, acquisition.signup_content) == ("", None)


def _view(member, item, at):
    ContentView.objects.create(user=member, content=item, started_at=at)


def test_roll_up_finds_last_item_before_each_conversion_and_is_idempotent():
    now = timezone.now()
    low, high = TierFactory(rank=1, slug="low"), TierFactory(rank=2, slug="high")
    teaser, deep, after = ContentFactory(), ContentFactory(), ContentFactory()
    member = UserFactory(analytics_consent=True, date_joined=now - timedelta(days=40))
    Acquisition.objects.create(member=member, source="newsletter", signup_content=teaser)
    _view(member, teaser, now - timedelta(days=39))
    _view(member, deep, now - timedelta(days=31))
    membership = MembershipFactory(user=member, tier=low)
    Payment.objects.create(
        user=member, membership=membership, provider=Provider.LOCAL, provider_invoice_id="in_1",
        status=Payment.Status.PAID, amount=Decimal("9"), currency="USD", created_at=now - timedelta(days=30),
    )  # fmt: skip
    _view(member, after, now - timedelta(days=20))
    MembershipEvent.objects.create(
        membership=membership, kind=MembershipEvent.Kind.TIER_CHANGED,
        data={"from": low.pk, "to": high.pk}, created_at=now - timedelta(days=10),
    )  # fmt: skip
    MembershipEvent.objects.create(  # a downgrade is not a conversion
        membership=membership, kind=MembershipEvent.Kind.TIER_CHANGED,
        data={"from": high.pk, "to": low.pk}, created_at=now - timedelta(days=5),
    )  # fmt: skip

    counts = roll_up_conversions()
    assert counts == {"removed": 0, "signup": 1, "paid": 1, "upgrade": 1}
    rows = {c.kind: c for c in Conversion.objects.all()}
    assert (rows["signup"].content, rows["signup"].source) == (teaser, "newsletter")
    assert (rows["paid"].content, rows["paid"].tier, rows["paid"].source) == (deep, low, "newsletter")
    assert (rows["upgrade"].content, rows["upgrade"].tier) == (after, high)

    assert roll_up_conversions() == {"removed": 0, "signup": 0, "paid": 0, "upgrade": 0}
    assert Conversion.objects.count() == 3


def test_roll_up_leaves_out_members_without_consent_and_staff_and_complimentary_grants():
    now = timezone.now()
    tier = TierFactory(rank=1)
    UserFactory(analytics_consent=False)
    UserFactory(analytics_consent=True, is_staff=True)
    gifted = UserFactory(analytics_consent=True)
    MembershipFactory(user=gifted, tier=tier, provider=Provider.COMPLIMENTARY, provider_subscription_id=None)
    Payment.objects.create(
        user=gifted, membership=None, provider=Provider.LOCAL, provider_invoice_id="in_x",
        status=Payment.Status.PAID, amount=Decimal("5"), currency="USD", created_at=now,
    )  # fmt: skip
    roll_up_conversions()
    assert list(Conversion.objects.values_list("member", "kind")) == [(gifted.pk, "signup")]

    gifted.analytics_consent = False
    gifted.save()
    assert roll_up_conversions()["removed"] == 1
    assert not Conversion.objects.exists()


def test_nightly_chain_runs_the_roll_up_after_the_profiles():
    names = [name for name, _ in JOBS]
    assert names.index("attribution") > names.index("member profiles")
