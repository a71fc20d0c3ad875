import functools
from typing import TYPE_CHECKING

from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field, as_crispy_form
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from content.markdown import html_of
from content.markdown import render as render_markdown
from members.access import can_access, cheapest_tier_unlocking
from members.paging import page_without_count

from . import calendar, mentions, selectors, services, slots
from .forms import (
    CommentForm,
    FlagForm,
    MoveForm,
    NotificationSettingsForm,
    ReplyForm,
    SuspendForm,
    ThreadForm,
    VoteForm,
)
from .lists import topic_rows
from .models import RSVP, Category, Event, Thread
from .permissions import can_post, can_read, may_attend
from .posts_html import draw_posts
from .rendering import notification_lines_html, prepare_posts
from .services import comments as comment_services
from .services import events as event_services
from .services import notifications as notify

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs' types, not needed at run time

THREADS_PER_PAGE = 30
POSTS_PER_PAGE = 50


def _readable_category(user, slug) -> Category:
    category = selectors.category_by_slug(slug)
    if category is None or not can_read(user=user, category=category):
        raise Http404  # a category you may not read looks like one that does not exist
    return category


def _readable_thread(user, pk) -> "WithAnnotations[Thread, selectors.ThreadReadState]":
    """The thread if `user` may read it (else 404), with `last_read` (see the selector)."""
    thread = selectors.visible_thread(user=user, pk=pk)
    if thread is None:
        raise Http404
    if not can_read(user=user, category=thread.category):
        raise Http404
    return thread


@require_GET
def index(request):
    return render(request, "community/index.html", {"categories": selectors.categories_for(request.user)})


@require_GET
def category(request, slug):
    category = _readable_category(request.user, slug)
    filter_by = request.GET.get("filter", "all")
    if filter_by not in selectors.FILTERS:
        filter_by = "all"
    page = page_without_count(
        selectors.threads_in(category, filter_by=filter_by, user=request.user),
        request.GET.get("page"),
        THREADS_PER_PAGE,
    )
    return render(
        request,
        "community/category.html",
        {
            "category": category,
            "page": page,
            "rows": topic_rows(page.object_list, member=request.user.is_authenticated),
            "filter": filter_by,
            "can_post": can_post(user=request.user, category=category),
        },
    )


@require_GET
def thread(request, pk, slug=""):
    thread = _readable_thread(request.user, pk)
    page = _posts_page(thread, request.user, request.GET.get("page"))
    posts = list(page.object_list)
    for post, html in zip(posts, html_of(posts), strict=True):
        # For the template only: the stored HTML checked against the body (or rendered afresh).
        setattr(post, "html", html)  # noqa: B010
    signed_in = request.user.is_authenticated
    # Each post's avatar, date, addresses and what the viewer may do with it, worked out once.
    prepare_posts(
        posts, thread=thread, viewer_id=request.user.pk if signed_in else None, page_number=page.number
    )
    if request.user.is_authenticated and (
        thread.last_read is None or thread.last_read < thread.last_activity_at
    ):
        # The read marker moves only when there is something new since: no write on a re-read.
        notify.mark_read(member=request.user, thread=thread)
    staff = signed_in and request.user.is_staff
    # What the posts are drawn with (community/posts_html.py).
    shown = {
        "thread": thread,
        "signed_in": signed_in,
        "staff": staff,
        "can_reply": can_post(user=request.user, category=thread.category) and (not thread.locked or staff),
        "can_accept": thread.is_question and signed_in and (request.user.pk == thread.author_id or staff),
        "thread_url": thread.get_absolute_url() if staff else "",
        "move_targets": list(selectors.move_targets()) if staff else [],
    }
    # One token for the page's forms, the posts' and the template's (as the context processor
    # gives it); the posts of a visitor have no form.
    token = {"csrf_token": get_token(request)} if signed_in else {}
    posts_html = draw_posts(posts=posts, csrf_token=token.get("csrf_token"), **shown)
    return render(
        request,
        "community/thread.html",
        shown
        | token
        | {
            "page": page,
            "posts_html": posts_html,
            "reply_field": _reply_field(thread.category, _quote(request, thread)),
            "following": thread.following,
            # What higher apps add at the end of a topic (recommend: suggested topics).
            "sections": slots.thread_sections(request, thread),
        },
    )


def _posts_page(thread: Thread, user, number: str | None) -> Page:
    """The page of the thread's posts asked for. Most topics fit on one page: then the posts are
    read (one plain statement) with one row more than a page holds, and when that row is not
    there they are the whole topic, so the paginator counts the list instead of asking the
    database (the COUNT query is saved)."""
    if thread.reply_count < POSTS_PER_PAGE:  # the approved replies, so likely one page for anyone
        first = selectors.first_posts(thread, user, limit=POSTS_PER_PAGE + 1)
        if len(first) <= POSTS_PER_PAGE:
            return Paginator(first, POSTS_PER_PAGE).get_page(number)
    return Paginator(selectors.posts_in(thread, user), POSTS_PER_PAGE).get_page(number)


def _reply_field(category: Category, quote: str) -> str:
    """The reply box (crispy's rendering of the form's text field, the quote in it if any).
    Without a quote it is the same for every reader of an area in a language (no value, no
    error, no token: the form's token is the page's), so it is rendered once per area and
    language in each process."""
    if quote:
        return _render_reply_field(category.slug, quote)
    return _blank_reply_field(category.slug, get_language())


@functools.lru_cache(maxsize=256)
def _blank_reply_field(category_slug: str, language: str) -> str:
    return _render_reply_field(category_slug, "")


def _render_reply_field(category_slug: str, quote: str) -> str:
    form = _mentionable(ReplyForm(initial={"body": quote}), Category(slug=category_slug))
    return as_crispy_field(form["body"])


def _mentionable(form, category: Category):
    """The text box suggests @handles of members who can read `category`."""
    url = f"{reverse('community:mention_suggestions')}?category={category.slug}"
    form.fields["body"].widget.attrs.update(
        {
            "data-mention-url": url,
            # The suggestion list's accessible name (static/js/mentions.js).
            "data-mention-label": _("Members to mention"),
            "autocomplete": "off",
        }
    )
    return form


def _quote(request, thread) -> str:
    """`?quote=<post id>` starts the reply with that post quoted (Markdown blockquote)."""
    post_id = request.GET.get("quote", "")
    if not post_id.isdigit() or not request.user.is_authenticated:
        return ""
    post = selectors.readable_post(int(post_id), request.user)
    if post is None or post.thread_id != thread.pk:
        return ""
    quoted = "\n".join(f"> {line}" for line in post.body.splitlines()[:20])
    return f"{post.author.public_name}:\n{quoted}\n\n"


@login_required
def new_thread(request, slug):
    category = _readable_category(request.user, slug)
    if not can_post(user=request.user, category=category):
        raise PermissionDenied(_("You cannot start a topic here."))
    # A question-and-answer area starts the form as a question.
    form = _mentionable(ThreadForm(request.POST or None, initial={"kind": category.default_kind}), category)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = services.start_thread(
                member=request.user,
                category=category,
                kind=data["kind"],
                title=data["title"],
                body=data["body"],
            )
        except services.ForumError as exc:
            form.add_error(None, str(exc))
        else:
            if created.hidden:
                messages.info(request, _("Thanks! Your topic appears once a moderator approves it."))
                return redirect(category.get_absolute_url())
            return redirect(created.get_absolute_url())
    return render(request, "community/new_thread.html", {"category": category, "form": form})


@login_required
@require_POST
def reply(request, pk):
    thread = _readable_thread(request.user, pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, " ".join(str(e) for e in form.errors.get("body", [_("Write something first.")]))
        )
        return redirect(thread.get_absolute_url())
    try:
        post = services.reply(member=request.user, thread=thread, body=form.cleaned_data["body"])
    except services.ForumError as exc:
        messages.error(request, str(exc))
        return redirect(thread.get_absolute_url())
    if not post.approved:
        messages.info(request, _("Thanks! Your reply appears once a moderator approves it."))
    last_page = (thread.reply_count + 1) // POSTS_PER_PAGE + 1
    return redirect(f"{thread.get_absolute_url()}?page={last_page}#latest")


@login_required
@require_POST
def accept(request, pk, post_id):
    thread = _readable_thread(request.user, pk)
    post = selectors.post_in_thread(thread=thread, post_id=post_id)
    if post is None:
        raise Http404
    try:
        services.accept_answer(actor=request.user, thread=thread, post=post)
    except services.ForumError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Marked as the accepted answer."))
    return redirect(thread.get_absolute_url())


@login_required
@require_POST
def vote(request, post_id):
    post = selectors.readable_post(post_id, request.user)
    if post is None:
        raise Http404
    form = VoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("A vote is +1 or -1."))
    else:
        try:
            services.vote(member=request.user, post=post, value=form.cleaned_data["value"])
        except services.ForumError as exc:
            messages.error(request, str(exc))
    return redirect(post.thread.get_absolute_url())


@login_required
def edit(request, post_id):
    post = selectors.readable_post(post_id, request.user)
    if post is None:
        raise Http404
    if post.author_id != request.user.pk and not request.user.is_staff:
        raise PermissionDenied(_("You can only edit your own posts."))
    form = _mentionable(ReplyForm(request.POST or None, initial={"body": post.body}), post.thread.category)
    if request.method == "POST" and form.is_valid():
        try:
            services.edit_post(editor=request.user, post=post, body=form.cleaned_data["body"])
        except services.ForumError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Your changes are saved."))
            return redirect(f"{post.thread.get_absolute_url()}#post-{post.pk}")
    return render(request, "community/edit.html", {"post": post, "form": form})


@login_required
@require_POST
def flag(request, post_id):
    post = selectors.readable_post(post_id, request.user)
    if post is None:
        raise Http404
    _report(request, lambda **data: services.flag_post(reporter=request.user, post=post, **data))
    return redirect(post.thread.get_absolute_url())


def _report(request, flag_it) -> None:
    """Parse a flag form and call `flag_it(reason=..., note=...)`, with a message either way."""
    form = FlagForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a reason."))
        return
    try:
        flag_it(reason=form.cleaned_data["reason"], note=form.cleaned_data["note"])
    except services.ForumError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Thanks. A moderator will look at it."))


@staff_member_required
def moderation(request):
    return render(request, "community/moderation.html", selectors.moderation_queue())


@staff_member_required
@require_POST
def moderate(request, post_id):
    post = selectors.post_for_moderation(post_id)
    if post is None:
        raise Http404
    actions = {
        "hide": lambda: services.hide_post(actor=request.user, post=post),
        "restore": lambda: services.restore_post(actor=request.user, post=post),
        "approve": lambda: services.approve_post(actor=request.user, post=post),
        "dismiss": lambda: services.dismiss_flags(actor=request.user, post=post),
        "lock": lambda: services.set_locked(actor=request.user, thread=post.thread, locked=True),
        "unlock": lambda: services.set_locked(actor=request.user, thread=post.thread, locked=False),
        "move": lambda: _move(request, post.thread),
        "suspend": lambda: _suspend(request, post.author),
    }
    return _moderation_action(request, actions)


@staff_member_required
@require_POST
def moderate_comment(request, comment_id):
    target = selectors.comment_for_moderation(comment_id)
    if target is None:
        raise Http404
    actions = {
        "hide": lambda: comment_services.hide_comment(actor=request.user, comment=target),
        "dismiss": lambda: services.dismiss_flags(actor=request.user, comment=target),
        "suspend": lambda: _suspend(request, target.author),
    }
    return _moderation_action(request, actions)


def _moderation_action(request, actions: dict):
    action = request.POST.get("action")
    if action not in actions:
        return render(request, "400.html", {"message": _("Unknown action.")}, status=400)
    try:
        actions[action]()
    except services.ForumError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Done."))
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("community:moderation")


def _move(request, thread: Thread) -> None:
    form = MoveForm(request.POST)
    if not form.is_valid():
        raise services.ForumError(_("Choose the area to move the topic to."))
    services.move_thread(actor=request.user, thread=thread, category=form.cleaned_data["category"])


def _suspend(request, member) -> None:
    form = SuspendForm(request.POST)
    if not form.is_valid():
        raise services.ForumError(" ".join(str(e) for errors in form.errors.values() for e in errors))
    data = form.cleaned_data
    services.suspend(actor=request.user, member=member, days=data["days"], reason=data["reason"])


@login_required
@require_GET
def mention_suggestions(request):
    """Members to @mention while writing in an area: only those who can read it, so a
    mention always reaches them. JSON for the editor's autocomplete; never an email."""
    slug = request.GET.get("category", "")
    category = _readable_category(request.user, slug) if slug else None
    found = mentions.suggestions(
        query=request.GET.get("q", ""),
        may_see=lambda m: (
            m.pk != request.user.pk and (category is None or can_read(user=m, category=category))
        ),
    )
    return JsonResponse(
        {"results": [{"handle": m.handle, "name": m.public_name} for m in found]},
        headers={"Cache-Control": "private, max-age=30"},
    )


@login_required
def notifications(request):
    if request.method == "POST":
        form = NotificationSettingsForm(request.POST)
        if form.is_valid():
            notify.set_email_preference(member=request.user, email=form.cleaned_data["email"])
            messages.success(request, _("Your email preference is saved."))
        return redirect("community:notifications")
    notify.collect_member_level_ups(member_id=request.user.pk)
    page = selectors.notifications_page_for(request.user)
    if any(n.read_at is None for n in page.lines):  # seeing them is reading them; no write when all are read
        notify.mark_all_read(member=request.user)
    form_html = _settings_form_html(page.email_preference, get_language())
    rows_html = notification_lines_html(page.lines)
    return render(request, "community/notifications.html", {"rows_html": rows_html, "form_html": form_html})


@functools.lru_cache(maxsize=64)
def _settings_form_html(choice: str, language: str) -> str:
    """The email preference form as `{{ form|crispy }}` draws it with `choice` selected: the same
    for every member with that choice, in that language (drawn once per process)."""
    return as_crispy_form(NotificationSettingsForm(initial={"email": choice}))


@login_required
@require_POST
def follow(request, pk):
    thread = _readable_thread(request.user, pk)
    if request.POST.get("follow") == "1":
        notify.follow(member=request.user, thread=thread)
        messages.success(request, _("You will hear about new replies."))
    else:
        notify.unfollow(member=request.user, thread=thread)
        messages.success(request, _("You will no longer hear about this topic."))
    return redirect(thread.get_absolute_url())


@require_GET
def events(request):
    now = timezone.now()
    upcoming = selectors.upcoming_events(now=now)
    past = selectors.past_events(now=now)
    return render(request, "community/events.html", {"upcoming": upcoming, "past": past})


def _event(slug: str) -> Event:
    item = selectors.event_by_slug(slug)
    if item is None:
        raise Http404
    return item


@require_GET
def event(request, slug):
    item = _event(slug)
    mine = selectors.rsvp_of(member=request.user, event=item)
    counts = selectors.attendance_of(item)
    going = counts.going
    allowed = may_attend(user=request.user, event=item)
    return render(
        request,
        "community/event.html",
        {
            "event": item,
            "mine": mine,
            "going": going,
            # Once it is over: how many came (as the creator marked them), not "4 going".
            "ended": item.ends_at <= timezone.now(),
            "attended": counts.attended,
            "seats_left": None if item.capacity is None else max(0, item.capacity - going),
            "allowed": allowed,
            "unlock_tier": cheapest_tier_unlocking(item)
            if not allowed and request.user.is_authenticated
            else None,
            "join_link": selectors.join_link_for(user=request.user, event=item),
            "description": render_markdown(item.description).html if allowed else "",
        },
    )


@login_required
@require_POST
def rsvp(request, slug):
    item = _event(slug)
    try:
        if request.POST.get("cancel") == "1":
            event_services.cancel_rsvp(member=request.user, event=item)
            messages.success(request, _("Your RSVP is canceled."))
        else:
            result = event_services.rsvp(member=request.user, event=item)
            if result.status == RSVP.Status.GOING:
                messages.success(request, _("You're going. We will remind you a day and an hour before."))
            else:
                messages.info(
                    request,
                    _("The event is full; you are on the wait list. We will email you if a seat opens."),
                )
    except services.ForumError as exc:
        messages.error(request, str(exc))
    return redirect(item.get_absolute_url())


@require_GET
def event_ics(request, slug):
    item = _event(slug)
    response = HttpResponse(
        calendar.ics(event=item, user=request.user), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(True, f"{item.slug}.ics")
    return response


@login_required
@require_POST
def comment(request, content_id):
    item = selectors.commentable_item(content_id)
    if item is None:
        raise Http404
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write something first."))
    else:
        try:
            created = comment_services.add_comment(
                member=request.user,
                item=item,
                body=form.cleaned_data["body"],
                parent_id=form.cleaned_data["parent"],
            )
        except services.ForumError as exc:
            messages.error(request, str(exc))
        else:
            return redirect(f"{item.get_absolute_url()}#comment-{created.pk}")
    if not can_access(request.user, item):
        raise Http404
    return redirect(f"{item.get_absolute_url()}#comments")


@login_required
@require_POST
def flag_comment(request, comment_id):
    target = selectors.comment_for_moderation(comment_id)
    if target is None or not can_access(request.user, target.content):
        raise Http404
    _report(
        request, lambda **data: comment_services.flag_comment(reporter=request.user, comment=target, **data)
    )
    return redirect(f"{target.content.get_absolute_url()}#comment-{target.pk}")


@staff_member_required
@require_POST
def hide_comment(request, comment_id):
    target = selectors.comment_for_moderation(comment_id)
    if target is None:
        raise Http404
    try:
        comment_services.hide_comment(actor=request.user, comment=target)
    except services.ForumError as exc:
        messages.error(request, str(exc))
    return redirect(f"{target.content.get_absolute_url()}#comments")


@require_GET
def search(request):
    q = request.GET.get("q", "").strip()[:100]
    page = None
    if len(q) >= 2:
        page = Paginator(selectors.search(request.user, q), THREADS_PER_PAGE).get_page(
            request.GET.get("page")
        )
    return render(request, "community/search.html", {"q": q, "page": page})
