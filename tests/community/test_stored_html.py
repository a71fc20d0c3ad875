"""Forum posts and comments keep their sanitized HTML beside their Markdown (issue 15): written
with the text, equal to a fresh render, rewritten on an edit, never shown once stale, refreshed
by the nightly job; the thread page and an item's comments then neither convert nor ask the
cache."""

import pytest
from django.test import Client

from community import services
from community.erasure import erase_member, removed_text
from community.models import Comment, Post
from community.services.comments import add_comment, refresh_comment_html
from content import markdown
from content.services import refresh_rendered_bodies
from tests.factories import ContentFactory, UserFactory

pytestmark = pytest.mark.django_db

TEXT = "Hi @alice, **bold** <script>alert(1)</script> [x](javascript:alert(1))\n\n> quoted"


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def no_rendering(monkeypatch) -> None:
    def fail(*args, **kwargs):
        pytest.fail("rendered or looked up on the page")

    monkeypatch.setattr(markdown, "_convert", fail)
    monkeypatch.setattr(markdown, "render_many", fail)


def test_posts_and_comments_are_stored_as_a_fresh_render_would_show_them(area):
    thread = services.start_thread(
        member=UserFactory(), category=area, kind="discussion", title="Topic", body=TEXT
    )
    reply = services.reply(member=UserFactory(), thread=thread, body="A **reply**")
    comment = add_comment(member=UserFactory(), item=ContentFactory(), body=TEXT)
    for row in (thread.posts.get(is_opening=True), reply, comment):
        row.refresh_from_db()
        assert row.body_html == markdown.convert(row.body).html == markdown.render(row.body).html
        assert row.body_html_key == markdown.source_key(row.body)
        assert "<script" not in row.body_html and "javascript:" not in row.body_html
    assert markdown.html_of([reply, comment]) == [reply.body_html, comment.body_html]


def test_the_thread_page_and_the_comments_show_stored_html_without_rendering(area, monkeypatch):
    thread = services.start_thread(
        member=UserFactory(), category=area, kind="discussion", title="Topic", body=TEXT
    )
    services.reply(member=UserFactory(), thread=thread, body="A **reply**")
    item = ContentFactory()
    parent = add_comment(member=UserFactory(), item=item, body="First *comment*")
    add_comment(member=UserFactory(), item=item, body="A reply to it", parent_id=parent.pk)
    refresh_rendered_bodies(ids=[item.pk])
    reader = as_user(UserFactory())
    no_rendering(monkeypatch)
    page = reader.get(thread.get_absolute_url()).content.decode()
    assert '<span class="mention">@alice</span>' in page and "<strong>reply</strong>" in page
    page = reader.get(item.get_absolute_url()).content.decode()
    assert "<em>comment</em>" in page and "A reply to it" in page


def test_an_edited_post_is_stored_and_shown_anew(area):
    author = UserFactory()
    thread = services.start_thread(
        member=author, category=area, kind="discussion", title="Topic", body="Old **words**"
    )
    post = thread.posts.get()
    services.edit_post(editor=author, post=post, body="New *words*")
    post.refresh_from_db()
    assert post.body_html == markdown.convert("New *words*").html
    assert post.body_html_key == markdown.source_key("New *words*")
    page = as_user(UserFactory()).get(thread.get_absolute_url()).content.decode()
    assert "<em>words</em>" in page and "Old" not in page


def test_rows_written_without_their_html_or_changed_behind_it_are_rendered_then_refreshed(area):
    thread = services.start_thread(
        member=UserFactory(), category=area, kind="discussion", title="Topic", body="Opening"
    )
    imported = Post.objects.create(thread=thread, author=UserFactory(), body="Imported *post*")  # no HTML
    changed = services.reply(member=UserFactory(), thread=thread, body="Before")
    Post.objects.filter(pk=changed.pk).update(body="After **change**")  # the stored HTML says "Before"
    page = as_user(UserFactory()).get(thread.get_absolute_url()).content.decode()
    assert "<em>post</em>" in page and "<strong>change</strong>" in page and "Before" not in page
    assert services.refresh_post_html() == 2  # only the two stale rows
    assert services.refresh_post_html() == 0
    for row in Post.objects.filter(pk__in=[imported.pk, changed.pk]):
        assert row.body_html == markdown.convert(row.body).html


def test_the_page_keeps_the_order_of_stored_and_stale_rows(area):
    rows = [
        Post(body="stored one", **markdown.stored_html("stored one")),
        Post(body="stale two"),
        Post(body="stored three", **markdown.stored_html("stored three")),
        Post(body="stale four", body_html="<p>wrong</p>", body_html_key="old"),
    ]
    assert markdown.html_of(rows) == [f"<p>{row.body}</p>" for row in rows]


def test_erasing_a_member_blanks_the_stored_html_too(area, settings):
    settings.COMMUNITY_NEW_POSTS_PER_MINUTE = settings.COMMUNITY_NEW_POSTS_PER_DAY = 1000
    gone, other = UserFactory(), UserFactory()
    thread = services.start_thread(
        member=gone, category=area, kind="discussion", title="Topic", body="My secret plan"
    )
    services.reply(member=other, thread=thread, body="Nice plan")
    item = ContentFactory()
    comment = add_comment(member=gone, item=item, body="My secret comment")
    add_comment(member=other, item=item, body="Answer", parent_id=comment.pk)
    erase_member(member=gone, remove_posts=True)
    opening, comment = thread.posts.get(is_opening=True), Comment.objects.get(pk=comment.pk)
    for row in (opening, comment):
        assert row.body == removed_text()
        assert "secret" not in row.body_html and row.body_html == markdown.convert(removed_text()).html
    assert refresh_comment_html() == 0 and services.refresh_post_html() == 0


def test_a_post_edited_in_the_admin_is_stored_anew(area):
    from django.urls import reverse

    from tests.audit_helpers import admin_form

    thread = services.start_thread(
        member=UserFactory(), category=area, kind="discussion", title="Topic", body="Typo"
    )
    client = as_user(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:community_thread_change", args=[thread.pk])
    assert client.post(url, admin_form(client, url, **{"posts-0-body": "Fixed *text*"})).status_code == 302
    post = thread.posts.get()
    assert post.body == "Fixed *text*"
    assert (post.body_html, post.body_html_key) == (
        markdown.convert("Fixed *text*").html,
        markdown.source_key("Fixed *text*"),
    )
