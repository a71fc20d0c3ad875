from django.contrib import admin

from .models import Category, Flag, Post, Suspension, Thread


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "read_tier", "post_tier", "position"]
    prepopulated_fields = {"slug": ("name",)}
    list_editable = ["position"]


class PostInline(admin.TabularInline):
    model = Post
    extra = 0
    fields = ["author", "created_at", "hidden", "score", "body"]
    readonly_fields = ["author", "created_at", "score"]


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
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


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ["created_at", "post", "reporter", "reason", "resolved_at"]
    list_filter = ["reason", ("resolved_at", admin.EmptyFieldListFilter)]
    list_select_related = ["post", "reporter"]


@admin.register(Suspension)
class SuspensionAdmin(admin.ModelAdmin):
    list_display = ["member", "until", "reason", "by"]
    raw_id_fields = ["member"]
    readonly_fields = ["by"]

    def save_model(self, request, obj, form, change):
        obj.by = obj.by or request.user
        super().save_model(request, obj, form, change)
