"""The thread page's cost stays flat (issue 15): the posts' HTML is stored with them (no
conversion, no cache), the reader's votes and follow come from the page's own queries, whatever
the number of posts."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from community import services
from community.models import Post, ThreadFollow, ThreadRead
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def thread_with(area, replies: int):
    author = UserFactory()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="Topic", body="# Hi"
    )
    Post.objects.bulk_create(
        [Post(thread=thread, author=UserFactory(), body=f"Reply **{n}** to @someone") for n in range(replies)]
    )
    return thread


def test_the_warm_thread_page_costs_the_same_for_two_posts_or_forty(area):
    reader = UserFactory()
    client = as_user(reader)
    counts = []
    for replies in (2, 40):
        url = thread_with(area, replies).get_absolute_url()
        client.get(url)  # warm: the read marker is set, the posts' Markdown cached
        with CaptureQueriesContext(connection) as captured:
            page = client.get(url)
        assert page.content.decode().count("forum-post") == replies + 1
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]
    # Beside the session's and the layout's: the thread with the reader's marker and follow,
    # the posts with the reader's votes (a topic of one page is not counted), and the suggested
    # topics (one query when the neighbours fill them, one more for the fill).
    assert counts[1] <= 9, counts


def test_following_and_the_read_marker_are_each_readers_own(area):
    thread = thread_with(area, 1)
    fan, other = UserFactory(), UserFactory()
    ThreadFollow.objects.create(thread=thread, member=fan)
    assert ">Unfollow<" in as_user(fan).get(thread.get_absolute_url()).content.decode()
    assert ">Follow<" in as_user(other).get(thread.get_absolute_url()).content.decode()
    assert set(ThreadRead.objects.filter(thread=thread).values_list("member", flat=True)) == {
        fan.pk,
        other.pk,
    }


def test_a_hidden_post_vanishes_from_the_next_page_at_once(area, settings):
    settings.COMMUNITY_NEW_POSTS_PER_MINUTE = settings.COMMUNITY_NEW_POSTS_PER_DAY = 1000
    thread = thread_with(area, 0)
    spam = services.reply(member=UserFactory(), thread=thread, body="Cheap watches here")
    client = as_user(UserFactory())
    assert "Cheap watches here" in client.get(thread.get_absolute_url()).content.decode()
    services.hide_post(actor=UserFactory(is_staff=True, is_superuser=True), post=spam)
    assert "Cheap watches here" not in client.get(thread.get_absolute_url()).content.decode()


def test_a_topic_of_one_page_is_not_counted_and_a_longer_one_pages_as_before(area, settings):
    from community.views import POSTS_PER_PAGE

    reader = UserFactory()
    client = as_user(reader)
    short = thread_with(area, 3)
    client.get(short.get_absolute_url())
    with CaptureQueriesContext(connection) as captured:
        page = client.get(short.get_absolute_url()).content.decode()
    assert page.count("forum-post") == 4 and "pagination" not in page
    assert not any("COUNT(" in q["sql"] and "community_post" in q["sql"] for q in captured.captured_queries)

    long = thread_with(area, POSTS_PER_PAGE + 10)
    long.reply_count = POSTS_PER_PAGE + 10
    long.save(update_fields=["reply_count"])
    first = client.get(long.get_absolute_url()).content.decode()
    second = client.get(long.get_absolute_url() + "?page=2").content.decode()
    assert first.count("forum-post") == POSTS_PER_PAGE and "?page=2" in first
    assert second.count("forum-post") == 11 and "?page=1" in second
    # A topic whose counter says one page but whose reader sees more (their own posts waiting
    # for approval) is paged by the count.
    mine = thread_with(area, POSTS_PER_PAGE - 1)
    Post.objects.bulk_create(
        [Post(thread=mine, author=reader, body=f"Pending {n}", approved=False) for n in range(3)]
    )
    page = client.get(mine.get_absolute_url()).content.decode()
    assert page.count("forum-post") == POSTS_PER_PAGE and "?page=2" in page


def test_each_flag_form_posts_to_its_own_post_with_the_pages_token(area):
    """The flag form is rendered once per page and its address filled in per post."""
    import re

    from django.urls import reverse

    thread = thread_with(area, 3)
    client = as_user(UserFactory())
    page = client.get(thread.get_absolute_url()).content.decode()
    actions = re.findall(r'<form method="post" action="([^"]+)" class="d-flex flex-wrap gap-2 mt-2">', page)
    posts = list(thread.posts.order_by("created_at", "id"))
    assert actions == [reverse("community:flag", args=[p.pk]) for p in posts]
    tokens = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page))
    assert len(tokens) == 1  # one token on the page, in every form
    assert page.count('<option value="spam">') == len(posts)


def test_the_reply_box_is_the_areas_and_keeps_a_quote(area):
    from community.models import Category

    other = Category.objects.create(name="Other", slug="other")
    reader = as_user(UserFactory())
    here, there = thread_with(area, 1), thread_with(other, 1)
    assert "?category=open" in reader.get(here.get_absolute_url()).content.decode()
    assert "?category=other" in reader.get(there.get_absolute_url()).content.decode()
    quoted = here.posts.get(is_opening=True)
    page = reader.get(f"{here.get_absolute_url()}?quote={quoted.pk}").content.decode()
    assert "&gt; # Hi" in page and "?category=open" in page
    assert "&gt; # Hi" not in reader.get(here.get_absolute_url()).content.decode()
