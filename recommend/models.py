"""The item-item neighbour table, built whole by each run and swapped in at once.

Readers only ever read the neighbours of the current build (the newest finished one), so a
build in progress or a failed one is never seen; older builds are deleted once a new one is
current.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class NeighbourBuild(models.Model):
    class Status(models.TextChoices):
        BUILDING = "building", _("building")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.BUILDING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(_("parameters"), default=dict)
    durations = models.JSONField(_("seconds per stage"), default=dict)
    members = models.PositiveIntegerField(_("members"), default=0)
    items = models.PositiveIntegerField(_("items"), default=0)
    interactions = models.PositiveIntegerField(_("interactions"), default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("neighbour build")
        verbose_name_plural = _("neighbour builds")

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"


class ItemNeighbour(models.Model):
    build = models.ForeignKey(NeighbourBuild, on_delete=models.CASCADE, related_name="neighbours")
    item = models.ForeignKey("content.Content", on_delete=models.CASCADE, related_name="+")
    neighbour = models.ForeignKey("content.Content", on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()

    class Meta:
        constraints = [
            # Also the index readers use: an item's neighbours in the current build, best first.
            models.UniqueConstraint(fields=["build", "item", "rank"], name="recommend_neighbour_rank_once"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} → {self.neighbour_id} ({self.score:.3f})"


class Dismissal(models.Model):
    """A member's "not interested" on a recommended item: it is never recommended to them again,
    and items like it count less."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey("content.Content", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "item"], name="recommend_dismissed_once")]
        verbose_name = _("dismissed recommendation")
        verbose_name_plural = _("dismissed recommendations")

    def __str__(self) -> str:
        return f"{self.member_id} ✕ {self.item_id}"
