"""The recommend app's part of "download my data" (registered in RecommendConfig.ready())."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from members.data_export import Section, absolute, exclude, register
from members.models import User

from .models import Dismissal, Impression


def dismissals(member: User) -> list[dict]:
    return [
        {"item": d.item.title, "item_url": absolute(d.item.get_absolute_url()), "dismissed_at": d.created_at}
        for d in Dismissal.objects.filter(member=member).select_related("item").order_by("created_at", "pk")
    ]


def impressions(member: User) -> list[dict]:
    rows = (
        Impression.objects.filter(member=member)
        .select_related("item", "variant__experiment")
        .order_by("shown_at", "pk")
    )
    return [
        {
            "list": i.list, "position": i.position, "shown_at": i.shown_at, "clicked_at": i.clicked_at,
            "item": i.item.title if i.item else "",
            "item_url": absolute(i.item.get_absolute_url()) if i.item else "",
            # A suggested topic is another member's thread: its id and link, not its title.
            "topic_url": absolute(reverse("community:thread_short", args=[i.thread_id])) if i.thread_id else "",
            "experiment_variant": f"{i.variant.experiment.name}: {i.variant.name}" if i.variant else "",
        }
        for i in rows.iterator(chunk_size=2000)
    ]  # fmt: skip


def register_sections() -> None:
    register(
        Section("recommendations/dismissed", _("Recommendations you marked as not interesting"), dismissals, ("recommend.Dismissal.member",)),
        Section("recommendations/shown", _("Recommendations shown to you, and which you followed"), impressions, ("recommend.Impression.member",)),
    )  # fmt: skip
    exclude(
        "recommend.StoredRanking.member",
        "The ranking computed overnight from the member's own activity (exported above), a cache "
        "of item ids rewritten every night, not something the member gave or was shown.",
    )
