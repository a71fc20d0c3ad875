"""RSS/Atom feeds. The public feed carries public items only; a member's private feed (secret
URL) carries every item that member may read, bodies included."""

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext_lazy as _

from members.access import accessible
from members.models import User

from .markdown import render
from .models import Content, FeedToken

FEED_SIZE = 30


class PublicRss(Feed):
    title = _("New in the library")
    description = _("Public articles, videos and courses.")

    def link(self):
        return reverse("content:library")

    def items(self, obj: None = None) -> "QuerySet[Content]":
        return (
            Content.objects.live()
            .filter(min_tier__isnull=True)
            .select_related("author")
            .order_by("-publish_at")[:FEED_SIZE]
        )

    def item_title(self, item):
        return item.title

    def item_description(self, item):
        return render(item.body).html if item.body else item.summary

    def item_link(self, item):
        return f"{item.get_absolute_url()}?src=feed"

    def item_pubdate(self, item):
        return item.publish_at or item.created_at

    def item_categories(self, item):
        return [tag.name for tag in item.tags.all()]


class PublicAtom(PublicRss):
    feed_type = Atom1Feed
    subtitle = PublicRss.description


class PrivateRss(PublicRss):
    description = _("Everything your membership lets you read. Keep this address to yourself.")

    def get_object(self, request, token):
        feed_token = FeedToken.objects.select_related("user").filter(token=token).first()
        if feed_token is None or not feed_token.user.is_active:
            raise Http404
        return feed_token.user

    def items(self, user: User) -> "QuerySet[Content]":  # type: ignore[override]
        readable = accessible(Content.objects.live(), user)
        return readable.select_related("author").order_by("-publish_at")[:FEED_SIZE]

    # Feed takes each attribute as a value or as a method of the feed's object.
    def title(self, user: User) -> str:  # type: ignore[override]
        library = _("Your library")  # not inside the f-string: makemessages does not read those
        return f"{settings.SITE_NAME}: {library}"
