"""A member's interests: the topics (library tags) they pick on the welcome page or in "My
library", which recommendations start from until they have read something."""

import pytest
from django.test import Client
from django.urls import reverse

from content import selectors, services
from content.models import Content, MemberInterest, Tag
from members.errors import MemberError
from tests.factories import ContentFactory, UserFactory

pytestmark = pytest.mark.django_db


def tag(name: str, *, live: bool = True) -> Tag:
    made = Tag.objects.create(name=name, slug=name.lower())
    item = ContentFactory() if live else ContentFactory(status=Content.Status.DRAFT, publish_at=None)
    item.tags.add(made)
    return made


def signed_in(member) -> Client:
    client = Client()
    client.force_login(member)
    return client


def test_setting_interests_adds_and_removes_and_keeps_the_rest():
    member, other = UserFactory(), UserFactory()
    baking, running, knitting = tag("Baking"), tag("Running"), tag("Knitting")
    services.set_interests(member=other, tags=[baking])
    assert services.set_interests(member=member, tags=[running, baking]) == [baking, running]
    kept = MemberInterest.objects.get(member=member, tag=baking)
    services.set_interests(member=member, tags=[baking, knitting])
    assert selectors.interests_of(member) == [baking, knitting]
    assert MemberInterest.objects.get(member=member, tag=baking).pk == kept.pk  # not re-created
    services.set_interests(member=member, tags=[])
    assert selectors.interests_of(member) == []
    assert selectors.interests_of(other) == [baking]  # another member's are their own


def test_too_many_interests_are_refused_whole():
    member = UserFactory()
    many = [Tag.objects.create(name=f"T{n}", slug=f"t{n}") for n in range(services.MAX_INTERESTS + 1)]
    with pytest.raises(MemberError, match="at most 30"):
        services.set_interests(member=member, tags=many)
    assert not MemberInterest.objects.exists()


def test_the_page_offers_tags_of_live_items_and_saves_the_choice():
    member = UserFactory()
    baking, running = tag("Baking"), tag("Running")
    secret = tag("Unannounced", live=False)  # only on a draft: a tag must not announce it
    client = signed_in(member)
    page = client.get(reverse("content:interests")).content.decode()
    assert "Baking" in page and "Running" in page and "Unannounced" not in page
    response = client.post(
        reverse("content:interests"), {"tags": [baking.pk, running.pk], "next": "/welcome/"}
    )
    assert response.status_code == 302 and response["Location"] == "/welcome/"
    assert selectors.interests_of(member) == [baking, running]
    # A tag that is not offered, or not a tag at all, is a form error and changes nothing.
    for bad in (secret.pk, 99999, "x"):
        response = client.post(reverse("content:interests"), {"tags": [baking.pk, bad]})
        assert response.status_code == 200 and "alert alert-danger" in response.content.decode()
    assert selectors.interests_of(member) == [baking, running]
    response = client.post(
        reverse("content:interests"), {"tags": [running.pk], "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("content:interests")
    assert selectors.interests_of(member) == [running]


def test_a_picked_tag_whose_items_went_away_stays_on_the_form():
    member = UserFactory()
    baking = tag("Baking")
    services.set_interests(member=member, tags=[baking])
    Content.objects.update(status=Content.Status.DRAFT)
    page = signed_in(member).get(reverse("content:interests")).content.decode()
    assert "Baking" in page and "checked" in page


def test_visitors_are_sent_to_log_in():
    response = Client().get(reverse("content:interests"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert Client().post(reverse("content:interests"), {"tags": []}).status_code == 302
    assert not MemberInterest.objects.exists()
