import mimetypes
import re

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from members.access import can_access, cheapest_tier_unlocking
from members.errors import MemberError

from . import results, selectors, services, slots
from .forms import BeaconForm, InterestsForm, LibraryFilterForm
from .markdown import render as render_markdown
from .models import Attachment, Content, ContentView, Lesson

PAGE_SIZE = 24


@require_GET
def library(request):
    form = LibraryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    shown = results.library_page(
        request.user,
        q=filters.get("q") or "",
        kind=filters.get("kind") or "",
        tag=filters.get("tag") or "",
        sort=filters.get("sort") or "",
        number=request.GET.get("page"),
        per_page=PAGE_SIZE,
    )
    return render(
        request,
        "content/library.html",
        {"form": form, "page": shown.page, "cards": shown.cards, "tags": shown.tags, "filters": filters},
    )


def _source(request) -> str:
    source = request.GET.get("src", "")
    return source if source in ContentView.Source.values else ContentView.Source.DIRECT


def _gate(request, obj, item: Content) -> dict:
    """What to show instead of a body the user may not read."""
    return {
        "locked": True,
        "unlock_tier": cheapest_tier_unlocking(obj),
        "needs_login": not request.user.is_authenticated,
        "item": item,
    }


@require_GET
def detail(request, slug):
    item = selectors.item_page_for(request.user, slug)
    if item is None:
        raise Http404
    context = {"item": item, "locked": False, "sections": slots.item_sections(request, item)}
    if item.kind == Content.Kind.COURSE:
        lessons = selectors.lessons_with_progress(item, request.user)
        context |= {"lessons": lessons, "next_lesson": selectors.next_lesson(lessons)}
    if not can_access(request.user, item):
        context |= _gate(request, item, item)
        return render(request, "content/detail.html", context)
    context |= {
        "rendered": selectors.rendered_body_of(item),
        "attachments": selectors.attachments_of(item),
        "liked": getattr(item, "liked", False),  # annotated by selectors.item_page_for
        "bookmarked": getattr(item, "bookmarked", False),
        "beacon_token": services.record_view(
            content=item, lesson=None, user=request.user, source=_source(request),
            user_agent=request.headers.get("user-agent", ""), client=request.META.get("REMOTE_ADDR", ""),
        ),
    }  # fmt: skip
    return render(request, "content/detail.html", context)


@require_GET
def lesson(request, slug, lesson_slug):
    course = selectors.item_for(request.user, slug)
    if course is None or course.kind != Content.Kind.COURSE:
        raise Http404
    lessons = selectors.lessons_with_progress(course, request.user)
    current = next((x for x in lessons if x.slug == lesson_slug), None)
    if current is None:
        raise Http404
    index = lessons.index(current)
    context = {
        "item": course,
        "lesson": current,
        "lessons": lessons,
        "previous": lessons[index - 1] if index else None,
        "next": lessons[index + 1] if index + 1 < len(lessons) else None,
        "locked": False,
    }
    if context["next"] is None:  # the course's last lesson: what to read after the course
        context["sections"] = slots.item_sections(request, course)
    if not can_access(request.user, current):
        context |= _gate(request, current, course)
        return render(request, "content/lesson.html", context)
    context |= {
        "rendered": render_markdown(current.body),
        "beacon_token": services.record_view(
            content=course, lesson=current, user=request.user, source=_source(request),
            user_agent=request.headers.get("user-agent", ""), client=request.META.get("REMOTE_ADDR", ""),
        ),
    }  # fmt: skip
    return render(request, "content/lesson.html", context)


@login_required
@require_POST
def complete_lesson(request, slug, lesson_slug):
    lesson_obj = get_object_or_404(
        Lesson.objects.select_related("course"), course__slug=slug, slug=lesson_slug
    )
    if not lesson_obj.course.is_live() and not request.user.is_staff:
        raise Http404
    try:
        _progress, course_done = services.complete_lesson(member=request.user, lesson=lesson_obj)
    except MemberError:
        raise Http404 from None  # same answer as a missing lesson: no hint that it exists
    if course_done:
        messages.success(request, _("Course complete. Well done!"))
    ordered = list(lesson_obj.course.lessons.all())  # Meta.ordering: position, then id
    index = next(i for i, x in enumerate(ordered) if x.pk == lesson_obj.pk)
    following = ordered[index + 1] if index + 1 < len(ordered) else None
    return redirect(following.get_absolute_url() if following else lesson_obj.course.get_absolute_url())


RANGE_RE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")
RANGE_CHUNK = 8 * 1024 * 1024  # the most one partial response carries; players ask for the rest


def _protected_file(request, field_file, obj, *, as_attachment=False, name=None):
    """Serve a private file after the access check. Supports single byte ranges so that
    videos can seek. A locked file looks missing (404): no hint about what exists."""
    if not field_file or not can_access(request.user, obj):
        raise Http404
    try:
        handle = field_file.open("rb")
        size = field_file.size
    except FileNotFoundError:
        raise Http404 from None
    filename = name or field_file.name.rsplit("/", 1)[-1]
    match = RANGE_RE.match(request.headers.get("range", "").strip())
    if match and (match.group(1) or match.group(2)):
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:  # "bytes=-500": the last 500 bytes
            start, end = max(0, size - int(last)), size - 1
        end = min(end, start + RANGE_CHUNK - 1)
        if start > end or start >= size:
            handle.close()
            refused = HttpResponse(status=416)
            refused["Content-Range"] = f"bytes */{size}"
            return refused
        handle.seek(start)
        data = handle.read(end - start + 1)
        handle.close()
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        response: HttpResponseBase = HttpResponse(data, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        if as_attachment:
            response["Content-Disposition"] = content_disposition_header(True, filename)
    else:
        response = FileResponse(handle, as_attachment=as_attachment, filename=filename)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def video(request, slug):
    item = selectors.item_for(request.user, slug)
    if item is None:
        raise Http404
    return _protected_file(request, item.video_file, item)


@require_GET
def lesson_video(request, slug, lesson_slug):
    course = selectors.item_for(request.user, slug)
    if course is None:
        raise Http404
    current = get_object_or_404(Lesson, course=course, slug=lesson_slug)
    current.course = course
    return _protected_file(request, current.video_file, current)


@require_GET
def attachment(request, pk):
    file = get_object_or_404(Attachment.objects.select_related("content__min_tier"), pk=pk)
    if not file.content.is_live() and not request.user.is_staff:
        raise Http404
    ext = (file.file.name or "").rsplit(".", 1)[-1]
    return _protected_file(request, file.file, file, as_attachment=True, name=f"{file.title[:80]}.{ext}")


def _back(request, fallback):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


def _toggle(request, slug, action, word_on, word_off):
    item = selectors.item_for(request.user, slug)
    if item is None:
        raise Http404
    state = action(member=request.user, content=item)
    if request.headers.get("accept", "").startswith("application/json"):
        return JsonResponse({"on": state})
    messages.success(request, word_on if state else word_off)
    return _back(request, item.get_absolute_url())


@login_required
@require_POST
def like(request, slug):
    return _toggle(request, slug, services.toggle_like, _("Liked."), _("Like removed."))


@login_required
@require_POST
def bookmark(request, slug):
    return _toggle(
        request, slug, services.toggle_bookmark, _("Saved to your library."), _("Removed from your library.")
    )


@require_POST
def beacon(request):
    form = BeaconForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": "invalid beacon", "fields": list(form.errors)}, status=400)
    data = form.cleaned_data
    try:
        services.record_beacon(
            token=data["token"],
            user=request.user,
            dwell=data["dwell"],
            scroll=data["scroll"],
            completed=data["completed"],
            client=request.META.get("REMOTE_ADDR", ""),
        )  # fmt: skip
    except services.BeaconRejected as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    if request.user.is_authenticated:
        slots.after_reading(request.user)
    return HttpResponse(status=204)


@login_required
@require_GET
def my_library(request):
    context = selectors.my_library(request.user)
    context["feed_token"] = services.feed_token_for(member=request.user)
    return render(request, "content/my_library.html", context)


@login_required
def interests(request):
    """The topics a member cares about (also on the welcome page): recommendations start from
    them until the member has read something."""
    form = InterestsForm(
        request.POST or None,
        tags=selectors.tags_to_pick(request.user),
        initial={"tags": selectors.interests_of(request.user)},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.set_interests(member=request.user, tags=form.cleaned_data["tags"])
        except MemberError as exc:
            form.add_error("tags", str(exc))
        else:
            messages.success(request, _("Your interests are saved."))
            return _back(request, "content:interests")
    return render(request, "content/interests.html", {"form": form})


@login_required
@require_POST
def rotate_feed(request):
    services.rotate_feed_token(member=request.user)
    messages.success(request, _("Your private feed has a new address. The old one no longer works."))
    return redirect("content:mine")


@staff_member_required
@require_POST
def preview(request):
    """The admin's Markdown preview: the same renderer and sanitizer as the site."""
    source = request.POST.get("body", "")[:200_000]
    return JsonResponse({"html": render_markdown(source).html})
