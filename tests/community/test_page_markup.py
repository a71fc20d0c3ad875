"""The thread page, the comments under an item and the suggested topics print the same HTML as
before their per-row work moved to Python (community/rendering.py, issue 15): each page is
rendered by the view, then the template as it was (kept in tests/*/before/) is rendered with the
same context and request, and the two compared, the CSRF tokens' random masks aside. For staff,
a topic's author, a member, the author of a post waiting for approval and a visitor, in English
and Chinese, with names and titles that need escaping and an avatar picture."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.middleware.csrf import get_token
from django.template import engines
from django.test import Client
from django.utils import timezone

from community import services
from community.models import Comment, Post, Thread, ThreadRead
from community.services import comments as comment_services
from tests.factories import ContentFactory, UserFactory

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 Chrome/120"
TESTS = Path(__file__).resolve().parent.parent
_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def _same(html: str) -> str:
    return _TOKEN.sub('name="csrfmiddlewaretoken" value="-"', html)


class Captured:
    """What a module's render / render_to_string was called with, rendered again with the
    template as it was."""

    def __init__(self, monkeypatch, module, name: str, before: str) -> None:
        self.calls: list[tuple[str, str]] = []
        real = getattr(module, name)
        old = engines["django"].from_string((TESTS / before).read_text())

        def spy(*args, **kwargs):
            if name == "render":
                request, _template, context = args[:3]
            else:
                _template, context = args[:2]
                # Drawn without the request (its context processors) now: the old template is
                # drawn with them, so the test says the output did not change.
                request = kwargs.get("request") or context.get("request")
            out = real(*args, **kwargs)
            new = out.content.decode() if name == "render" else out
            self.calls.append((new, old.render(dict(context), request)))
            return out

        monkeypatch.setattr(module, name, spy)

    def assert_same(self) -> None:
        assert self.calls
        for new, old in self.calls:
            assert _same(new) == _same(old)


class Drawn:
    """What a module's drawing in Python (`name`, called with keywords only) was given, drawn
    again with the template it replaced: the same keywords as the template's context, with the
    request's CSRF token when a request is given."""

    def __init__(self, monkeypatch, module, name: str, before: str) -> None:
        self.calls: list[tuple[str, str]] = []
        real = getattr(module, name)
        old = engines["django"].from_string((TESTS / before).read_text())

        def spy(**kwargs):
            out = real(**kwargs)
            request = kwargs.get("request")
            context = {**kwargs, "csrf_token": get_token(request)} if request is not None else kwargs
            self.calls.append((out, old.render(context, request)))
            return out

        monkeypatch.setattr(module, name, spy)

    assert_same = Captured.assert_same


def client_for(user, language: str) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.cookies["django_language"] = language
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def people(db):
    return {
        "staff": UserFactory(is_staff=True, display_name="Staff <b>"),
        "author": UserFactory(display_name='Ann "&" <i>'),
        "member": UserFactory(display_name="Mo", avatar="avatars/mo.webp"),
        "pending": UserFactory(display_name="Newbie"),
    }


@pytest.fixture
def question(area, people):
    thread = services.start_thread(
        member=people["author"], category=area, kind="question", title="How <script>x</script>?", body="# Hi"
    )
    answer = services.reply(member=people["member"], thread=thread, body="Use **this** & that")
    staff_reply = services.reply(member=people["staff"], thread=thread, body="Staff reply")
    services.vote(member=people["member"], post=staff_reply, value=1)  # the member's vote up
    services.vote(member=people["author"], post=staff_reply, value=-1)  # the author's vote down
    Post.objects.create(thread=thread, author=people["pending"], body="Waiting", approved=False)
    Post.objects.filter(pk=answer.pk).update(edited_at=timezone.now())
    services.accept_answer(actor=people["author"], thread=thread, post=answer)
    days_ago = timezone.now() - timedelta(days=3)
    for n in range(3):  # suggested topics: the area's other topics
        other = services.start_thread(
            member=people["staff"], category=area, kind="discussion", title=f"Other <{n}>", body="x"
        )
        Thread.objects.filter(pk=other.pk).update(last_activity_at=days_ago, reply_count=n)
        if n == 1:  # read by the member before its last activity: "new replies" for them
            ThreadRead.objects.create(
                thread=other, member=people["member"], read_at=days_ago - timedelta(days=1)
            )
    return Thread.objects.get(pk=thread.pk)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("who", ["staff", "author", "member", "pending", "visitor"])
def test_the_thread_page_and_its_suggested_topics_are_unchanged(monkeypatch, people, question, who, language):
    import community.views
    import recommend.sections

    page = Captured(monkeypatch, community.views, "render", "community/before/thread.html")
    topics = Drawn(
        monkeypatch, recommend.sections, "draw_suggested_topics", "recommend/before/suggested_topics.html"
    )
    response = client_for(people.get(who), language).get(question.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "How &lt;script&gt;" in html and "<script>x" not in html
    assert ("Waiting" in html) == (who in ("staff", "pending"))
    assert "Other &lt;2&gt;" in html  # the suggested topics
    assert ("new replies" in html) == (who == "member" and language == "en")
    # The drawing's messages are in the catalogue (makemessages reads no f-string).
    assert ("推荐话题" in html) == (language == "zh-hans")
    page.assert_same()
    topics.assert_same()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("who", ["staff", "author", "member", "visitor"])
def test_the_comments_under_an_item_are_unchanged(monkeypatch, people, who, language):
    import community.sections

    item = ContentFactory()
    first = comment_services.add_comment(member=people["author"], item=item, body="First <b>bold</b>")
    comment_services.add_comment(member=people["member"], item=item, body="A reply", parent_id=first.pk)
    comment_services.add_comment(member=people["staff"], item=item, body="Second")
    Comment.objects.update(created_at=timezone.now() - timedelta(days=2, hours=3))
    comments = Drawn(monkeypatch, community.sections, "draw_comments", "community/before/_comments.html")
    response = client_for(people.get(who), language).get(item.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "A reply" in html
    comments.assert_same()
    if language == "zh-hans":  # the drawing's messages are in the catalogue
        assert ("登录后评论" in html) == (who == "visitor") and ("发表评论" in html) == (who != "visitor")


@pytest.mark.parametrize("who", ["member", "visitor"])
def test_a_later_page_of_a_long_topic_is_unchanged(monkeypatch, area, people, who):
    import community.views

    thread = services.start_thread(
        member=people["author"], category=area, kind="discussion", title="A long topic", body="x"
    )
    Post.objects.bulk_create(
        [Post(thread=thread, author=people["staff"], body=f"Post {n}") for n in range(60)]
    )
    page = Captured(monkeypatch, community.views, "render", "community/before/thread.html")
    response = client_for(people.get(who), "en").get(thread.get_absolute_url() + "?page=2")
    assert response.status_code == 200
    if who == "member":
        assert "&page=2#latest" in response.content.decode()
    page.assert_same()
