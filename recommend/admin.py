from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import NeighbourBuild


@admin.register(NeighbourBuild)
class NeighbourBuildAdmin(admin.ModelAdmin):
    """Each build of the recommendations' neighbour table: read only, for the operator."""

    list_display = ["started_at", "status", "members", "items", "interactions", "seconds"]
    list_filter = ["status"]
    readonly_fields = [
        "status", "started_at", "finished_at", "params", "durations", "members", "items", "interactions", "error",
    ]  # fmt: skip

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("seconds"))
    def seconds(self, obj):
        return round(sum(obj.durations.values()), 2) if obj.durations else None
