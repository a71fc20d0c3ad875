"""@mentions: who a post names gets one notification, never about an area they cannot read;
quotes and code do not mention; edits notify only the newly named; the editor's suggestions
list only members who can read the area and never show an email address."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from community import mentions, services
from community.models import Category, Notification
from community.services import notifications as notify
from tests.factories import MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def as_user(user):
    client = Client()
    client.force_login(user)
    return client


def kinds_for(member):
    return sorted(Notification.objects.filter(recipient=member).values_list("kind", flat=True))


def test_handles_in_reads_own_words_only():
    body = (
        "Thanks @Alice_B and @bob_c! Ask @alice_b again.\n\n"
        "> @quoted_one said so\n\n"
        "`@in_code` and\n\n    @in_block\n\n"
        "mail me: carol@example.com, @xy is too short, path/@not_me, 谢谢@dan_d 帮忙"
    )
    assert mentions.handles_in(body=body) == ["alice_b", "bob_c", "dan_d"]


def test_mention_notifies_once_and_replaces_the_reply_notice(area, on_commit):
    asker, helper = UserFactory(handle="asker_a"), UserFactory(handle="helper_h")
    notify_me = UserFactory(handle="watcher_w")
    thread = services.start_thread(
        member=asker, category=area, kind="question", title="Who knows?", body="Pinging @watcher_w"
    )
    assert kinds_for(notify_me) == ["mention"]
    reply = services.reply(
        member=helper, thread=thread, body="@asker_a @ASKER_A see @helper_h and @nobody_here"
    )
    assert kinds_for(asker) == ["mention"]  # a follower named in the reply hears it once, as a mention
    assert kinds_for(helper) == []  # naming yourself says nothing
    n = Notification.objects.get(recipient=asker)
    assert (n.post, n.actor, n.thread) == (reply, helper, thread)
    page = as_user(asker).get(reverse("community:notifications")).content.decode()
    assert "mentioned you in “Who knows?”" in page


def test_edits_notify_only_newly_mentioned(area):
    author = UserFactory()
    first, second = UserFactory(handle="first_one"), UserFactory(handle="second_one")
    thread = services.start_thread(member=author, category=area, kind="discussion", title="Edits", body="x")
    post = services.reply(member=author, thread=thread, body="hi @first_one")
    services.edit_post(editor=author, post=post, body="hi @first_one and @second_one")
    services.edit_post(editor=author, post=post, body="hi @second_one")
    services.edit_post(editor=author, post=post, body="hi @first_one @second_one")
    assert kinds_for(first) == ["mention"]
    assert kinds_for(second) == ["mention"]


def test_mention_of_a_member_who_cannot_read_the_area_stays_silent(on_commit):
    gold = TierFactory(rank=20)
    lounge = Category.objects.create(name="Lounge", slug="lounge", read_tier=gold)
    insider = MembershipFactory(tier=gold).user
    outsider = UserFactory(handle="outsider_o")
    notify.set_email_preference(member=outsider, email="instant")
    with on_commit():
        services.start_thread(
            member=insider, category=lounge, kind="discussion", title="Secret plans", body="cc @outsider_o"
        )
    assert not Notification.objects.filter(recipient=outsider).exists()
    assert not any("Secret plans" in m.body for m in mail.outbox)
    assert as_user(outsider).get(reverse("community:notifications")).content.decode().count("Secret") == 0


def test_too_many_mentions_is_a_form_error(area):
    author = UserFactory()
    names = " ".join(f"@someone_{i}" for i in range(mentions.MAX_MENTIONS + 1))
    client = as_user(author)
    response = client.post(
        reverse("community:new_thread", args=[area.slug]),
        {"kind": "discussion", "title": "Hello all", "body": names},
    )
    assert response.status_code == 200
    assert "at most 10 members" in response.content.decode()
    assert not area.threads.exists()


def test_pending_posts_mention_only_when_approved(area, settings):
    settings.COMMUNITY_APPROVE_FIRST_POSTS = True
    newcomer, named = UserFactory(), UserFactory(handle="named_n")
    staff = UserFactory(is_staff=True, is_superuser=True)
    thread = services.start_thread(
        member=newcomer, category=area, kind="discussion", title="First post", body="hello @named_n"
    )
    assert kinds_for(named) == []
    services.approve_post(actor=staff, post=thread.posts.get())
    assert kinds_for(named) == ["mention"]


def test_mentions_render_as_marked_text_and_stay_sanitised(area):
    author = UserFactory()
    thread = services.start_thread(
        member=author,
        category=area,
        kind="discussion",
        title="Render",
        body='hi @some_one <span class="mention" onclick="alert(1)">x</span>',
    )
    html = Client().get(thread.get_absolute_url()).content.decode()
    assert '<span class="mention">@some_one</span>' in html
    assert "onclick" not in html


def test_suggestions_list_only_members_who_can_read_the_area():
    gold = TierFactory(rank=20)
    Category.objects.create(name="Lounge", slug="lounge", read_tier=gold)
    writer = MembershipFactory(tier=gold, user__handle="writer_w").user
    MembershipFactory(tier=gold, user__handle="alice_gold", user__display_name="Alice Gold")
    UserFactory(handle="alice_free", display_name="Alice Free")
    UserFactory(handle="alice_gone", display_name="Alice Gone", is_active=False)
    client = as_user(writer)
    url = reverse("community:mention_suggestions")
    found = client.get(url, {"q": "ali", "category": "lounge"}).json()["results"]
    assert found == [{"handle": "alice_gold", "name": "Alice Gold"}]
    anywhere = client.get(url, {"q": "Alice"}).json()["results"]
    assert [r["handle"] for r in anywhere] == ["alice_free", "alice_gold"]
    assert "@" not in str(anywhere).replace("'handle'", "")  # no email addresses
    assert client.get(url, {"q": "writer"}).json()["results"] == []  # not yourself
    assert client.get(url, {"q": ""}).json()["results"] == []


def test_suggestions_need_login_and_a_readable_area():
    gold = TierFactory(rank=20)
    Category.objects.create(name="Lounge", slug="lounge", read_tier=gold)
    url = reverse("community:mention_suggestions")
    assert Client().get(url, {"q": "ali"}).status_code == 302
    assert as_user(UserFactory()).get(url, {"q": "ali", "category": "lounge"}).status_code == 404
    assert as_user(UserFactory()).get(url, {"q": "ali", "category": "no-such"}).status_code == 404


def test_reply_box_offers_suggestions(area):
    author = UserFactory()
    thread = services.start_thread(member=author, category=area, kind="discussion", title="Boxes", body="x")
    html = as_user(author).get(thread.get_absolute_url()).content.decode()
    assert 'data-mention-url="/community/mentions/?category=open"' in html
    assert "js/mentions" in html


def test_edits_cannot_ping_more_than_the_limit_and_staff_edits_name_the_editor(area, settings):
    settings.COMMUNITY_NEW_POSTS_PER_MINUTE = 100
    author = UserFactory()
    staff = UserFactory(is_staff=True, display_name="Mod")
    crowd = [UserFactory(handle=f"crowd_{i:02d}") for i in range(3 * mentions.MAX_MENTIONS)]
    thread = services.start_thread(member=author, category=area, kind="discussion", title="Edits", body="x")
    post = services.reply(member=author, thread=thread, body="hi")
    for start in range(0, len(crowd), mentions.MAX_MENTIONS):
        names = " ".join(f"@{m.handle}" for m in crowd[start : start + mentions.MAX_MENTIONS])
        services.edit_post(editor=author, post=post, body=names)
    assert Notification.objects.filter(kind="mention", post=post).count() == mentions.MAX_MENTIONS
    other = services.reply(member=author, thread=thread, body="second")
    late = UserFactory(handle="late_one")
    services.edit_post(editor=staff, post=other, body="see @late_one")
    assert Notification.objects.get(recipient=late).actor == staff


def test_suggestions_find_readers_behind_many_non_readers():
    gold = TierFactory(rank=20)
    Category.objects.create(name="Lounge", slug="lounge", read_tier=gold)
    writer = MembershipFactory(tier=gold).user
    for i in range(45):
        UserFactory(handle=f"aa_{i:02d}", display_name=f"Zed fan {i}")
    MembershipFactory(tier=gold, user__handle="zed_gold", user__display_name="Gold")
    found = as_user(writer).get(reverse("community:mention_suggestions"), {"q": "zed", "category": "lounge"})
    assert [r["handle"] for r in found.json()["results"]] == ["zed_gold"]
