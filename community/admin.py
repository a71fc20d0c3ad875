from django.contrib import admin
from modeltranslation.admin import TranslationAdmin

from members.audit_admin import AuditedAdmin

from . import services as forum
from .models import RSVP, Category, Event, Flag, Post, Suspension, Thread
from .services import events as event_services


@admin.register(Category)
class CategoryAdmin(AuditedAdmin, TranslationAdmin):
    """Name and description have a field per language (community/translation.py)."""

    list_display = ["name", "slug", "read_tier", "post_tier", "default_kind", "position"]
    prepopulated_fields = {"slug": ("name",)}
    list_editable = ["position"]


class PostInline(admin.TabularInline):
    model = Post
    extra = 0
    fields = ["author", "created_at", "hidden", "approved", "score", "body"]
    # Hiding and approving go through the moderation queue (counts, points, the topic).
    readonly_fields = ["author", "created_at", "hidden", "approved", "score"]


@admin.register(Thread)
class ThreadAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = [
        "title",
        "category",
        "kind",
        "author",
        "reply_count",
        "pinned",
        "locked",
        "hidden",
        "last_activity_at",
    ]
    list_filter = ["category", "kind", "pinned", "locked", "hidden"]
    search_fields = ["title", "author__email"]
    list_select_related = ["category", "author"]
    raw_id_fields = ["author", "accepted_answer"]
    inlines = [PostInline]

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is Post:  # texts edited here: their stored HTML follows (content.markdown)
            forum.refresh_post_html(ids=[f.instance.pk for f in formset.forms if f.instance.pk])


@admin.register(Flag)
class FlagAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["created_at", "post", "comment", "reporter", "reason", "resolved_at"]
    list_filter = ["reason", ("resolved_at", admin.EmptyFieldListFilter)]
    list_select_related = ["post", "comment", "reporter"]


@admin.register(Suspension)
class SuspensionAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["member", "until", "reason", "by"]
    raw_id_fields = ["member"]
    readonly_fields = ["by"]

    def save_model(self, request, obj, form, change):
        obj.by = obj.by or request.user
        super().save_model(request, obj, form, change)


class RSVPInline(admin.TabularInline):
    model = RSVP
    extra = 0
    fields = ["member", "status", "attended", "created_at"]
    readonly_fields = ["member", "status", "attended", "created_at"]
    can_delete = False


@admin.register(Event)
class EventAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["title", "kind", "starts_at", "online", "capacity", "min_tier", "canceled"]
    list_filter = ["kind", "online", "canceled", "min_tier"]
    search_fields = ["title"]
    prepopulated_fields = {"slug": ("title",)}
    raw_id_fields = ["recording"]
    inlines = [RSVPInline]


@admin.register(RSVP)
class RSVPAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["event", "member", "status", "attended", "created_at"]
    list_filter = ["status", "attended", "event"]
    list_select_related = ["event", "member"]
    actions = ["mark_attended"]

    @admin.action(description="Mark as attended (awards points)", permissions=["change"])
    def mark_attended(self, request, queryset):
        for item in queryset.select_related("event", "member"):
            event_services.mark_attended(actor=request.user, rsvp_obj=item)
        self.message_user(request, f"{queryset.count()} marked as attended.")
