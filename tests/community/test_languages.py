"""Forum area names and descriptions in the reader's language, else English
(community/translation.py): the forum pages and the weekly digest."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from community import services
from community.models import Category
from community.tasks import send_weekly_digest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def areas(db):
    return {
        "questions": Category.objects.create(
            name="Questions",
            name_zh_hans="提问区",
            description="Ask anything.",
            description_zh_hans="有问题尽管问。",
            slug="questions",
        ),
        "showcase": Category.objects.create(name="Showcase", description="Show your work.", slug="showcase"),
    }


def reader(language: str) -> Client:
    client = Client()
    client.cookies["django_language"] = language
    return client


def test_the_forum_shows_area_names_in_the_readers_language(areas):
    index = reader("zh-hans").get(reverse("community:index")).content.decode()
    assert "<strong>提问区</strong>" in index and "有问题尽管问。" in index
    assert "<strong>Showcase</strong>" in index and "Show your work." in index  # no Chinese: English
    assert "Questions" not in index and "Ask anything." not in index
    page = reader("zh-hans").get(areas["questions"].get_absolute_url()).content.decode()
    assert '<h1 class="h2 mb-1">提问区</h1>' in page

    index = reader("en").get(reverse("community:index")).content.decode()
    assert "<strong>Questions</strong>" in index and "提问区" not in index


def test_the_forum_index_costs_the_same_queries_in_every_language(areas, django_assert_max_num_queries):
    with django_assert_max_num_queries(12) as english:
        reader("en").get(reverse("community:index"))
    with django_assert_max_num_queries(len(english.captured_queries)):
        reader("zh-hans").get(reverse("community:index"))


def test_the_weekly_digest_names_areas_in_each_recipients_language(areas):
    author = UserFactory()
    services.start_thread(
        member=author, category=areas["questions"], kind="question", title="How do I start?", body="x"
    )
    chinese, english = UserFactory(language="zh-hans"), UserFactory(language="en")
    mail.outbox.clear()
    send_weekly_digest()
    by_recipient = {m.to[0]: m.body for m in mail.outbox}
    assert "How do I start? (提问区," in by_recipient[chinese.email]
    assert "How do I start? (Questions," in by_recipient[english.email]
