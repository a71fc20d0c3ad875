from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import Prefetch, Q
from django.utils.translation import gettext_lazy as _

from members.audit_admin import AuditedAdmin

from .models import Attachment, Content, ContentView, Lesson, Tag
from .services import refresh_rendered_bodies, refresh_search_documents


@admin.register(Tag)
class TagAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "name" in form.changed_data:  # tag names are part of the search documents
            refresh_search_documents(ids=obj.items.values_list("pk", flat=True))

    def delete_model(self, request, obj):
        items = list(obj.items.values_list("pk", flat=True))
        super().delete_model(request, obj)
        refresh_search_documents(ids=items)


URL_FIELDS: dict[type[models.Field], dict[str, str]] = {models.URLField: {"assume_scheme": "https"}}


class LessonInline(admin.StackedInline):
    model = Lesson
    formfield_overrides = URL_FIELDS
    extra = 0
    prepopulated_fields = {"slug": ("title",)}
    fields = [
        "position",
        "title",
        "slug",
        "is_preview",
        "body",
        "video_embed_url",
        "video_file",
        "duration_minutes",
    ]


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    fields = ["title", "file", "size"]
    readonly_fields = ["size"]


class ContentAdminForm(forms.ModelForm):
    """The author is picked among the staff (the people who write here), not from every member;
    an item keeps its author when that person is no longer staff."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        author = self.fields.get("author")
        if isinstance(author, forms.ModelChoiceField) and author.queryset is not None:
            writers = Q(is_staff=True, is_active=True)
            if self.instance.author_id:
                writers |= Q(pk=self.instance.author_id)
            author.queryset = author.queryset.filter(writers).order_by("display_name", "email")
            author.widget.can_add_related = False  # a member added here would not be staff


@admin.register(Content)
class ContentAdmin(AuditedAdmin, admin.ModelAdmin):
    form = ContentAdminForm
    list_display = ["title", "kind", "status", "min_tier", "publish_at", "featured", "views", "completion"]
    list_filter = ["kind", "status", "min_tier", "featured", "tags"]
    search_fields = ["title", "summary", "slug"]
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ["tags"]
    date_hierarchy = "publish_at"
    list_select_related = ["min_tier", "stats"]
    inlines = [LessonInline, AttachmentInline]
    change_form_template = "admin/content/content/change_form.html"
    formfield_overrides = URL_FIELDS
    fieldsets = (
        (None, {"fields": ("kind", "title", "slug", "summary", "body", "cover", "tags", "author")}),
        (_("Access and publishing"), {"fields": ("min_tier", "status", "publish_at", "featured")}),
        (_("Video"), {"fields": ("video_embed_url", "video_file", "duration_minutes")}),
    )

    def get_changeform_initial_data(self, request):
        return {"author": request.user.pk, **super().get_changeform_initial_data(request)}

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # After the tags are saved: the search documents hold the title, tags, summary and body.
        refresh_search_documents(ids=[form.instance.pk])
        refresh_rendered_bodies(ids=[form.instance.pk])

    @admin.display(description=_("views"), ordering="stats__views_total")
    def views(self, obj):
        stats = getattr(obj, "stats", None)
        return stats.views_total if stats else 0

    @admin.display(description=_("completion"), ordering="stats__completion_rate")
    def completion(self, obj):
        stats = getattr(obj, "stats", None)
        return f"{stats.completion_rate:.0%}" if stats and stats.views_total else "—"


@admin.register(ContentView)
class ContentViewAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "content",
        "lesson",
        "user",
        "source",
        "dwell_seconds",
        "scroll_depth",
        "completed",
    ]
    list_filter = ["source", "completed", "content__kind"]
    search_fields = ["content__title", "user__email"]
    date_hierarchy = "started_at"
    list_select_related = ["content", "lesson", "user"]
    readonly_fields = [f.name for f in ContentView._meta.fields]
    show_full_result_count = False  # the log is large; skip the COUNT(*) of the whole table

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(Prefetch("content__tags"))
