"""Pricing, checkout, the member's membership page, and the providers' endpoints."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    RawPostDataException,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from members import selectors, services
from members.errors import MemberError
from members.forms import CancelForm, CheckoutForm, PlanChangeForm, PlanForm
from members.models import Interval, LocalCheckout, Provider

from . import webhooks
from .changes import StalePreview

# Where to send the member after a checkout started from a locked item (see `safe_next`).
NEXT_SESSION_KEY = "billing_next"


def safe_next(request, url: str | None) -> str:
    """`url` if it is a page of this site (a locked item asking to come back after paying),
    else ""."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


@require_GET
def pricing(request):
    """The plans. `?tier=<slug>` marks the plan a locked item needs and `?next=<path>` is where
    to return once it is bought (both come from the item's upgrade button)."""
    next_url = safe_next(request, request.GET.get("next"))
    back = {"next": next_url} if next_url else {}  # carried by every link and form on the page
    page = selectors.pricing(
        user=request.user,
        interval=request.GET.get("interval"),
        wanted_slug=request.GET.get("tier"),
        back=back,
    )
    wanted = page.wanted
    keep = {"tier": wanted.slug, **back} if wanted else back
    toggles = {i: urlencode({"interval": i, **keep}) for i in Interval.values}
    return render(
        request,
        "members/pricing.html",
        {
            "cards": page.cards,
            "interval": page.interval,
            "membership": page.membership,
            "intervals": Interval,
            "toggles": toggles,
            "next_url": next_url,
        },
    )


@login_required
@require_POST
def checkout(request):
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a plan and a billing interval."))
        return redirect("billing:pricing")
    data = form.cleaned_data
    next_url = safe_next(request, data["next"])
    if next_url:
        request.session[NEXT_SESSION_KEY] = next_url
    else:
        request.session.pop(NEXT_SESSION_KEY, None)
    try:
        url = services.start_checkout(
            member=request.user,
            tier_slug=data["tier"],
            interval=data["interval"],
            promotion_code=data["promotion_code"],
            success_url=request.build_absolute_uri(reverse("billing:checkout_done")),
            cancel_url=request.build_absolute_uri(reverse("billing:pricing")),
        )
    except MemberError as exc:
        messages.error(request, str(exc))
        return redirect(f"{reverse('billing:pricing')}?interval={data['interval']}")
    return HttpResponseRedirect(url)


@login_required
@require_GET
def checkout_done(request):
    next_url = safe_next(request, request.session.pop(NEXT_SESSION_KEY, ""))
    if selectors.live_membership(request.user):
        messages.success(request, _("Thank you! Your membership is active."))
        if next_url:
            return HttpResponseRedirect(next_url)  # back to the item that asked for it
    else:
        messages.info(
            request, _("Thank you! Your payment is being confirmed; this page updates in a moment.")
        )
    return redirect("billing:membership")


@login_required
def local_checkout(request, checkout_id):
    """The offline provider's payment page. Only its owner sees it (404 for anyone else)."""
    checkout = selectors.local_checkout_for(member=request.user, checkout_id=checkout_id)
    if checkout is None:
        raise Http404
    if request.method == "POST":
        action = request.POST.get("action")
        if action not in ("pay", "decline"):
            return HttpResponseBadRequest(_("Unknown action."))
        try:
            checkout = services.complete_local_checkout(
                member=request.user, checkout_id=checkout.pk, approve=action == "pay"
            )
        except MemberError as exc:
            messages.error(request, str(exc))
            return redirect("billing:local_checkout", checkout_id=checkout.pk)
        if checkout.status == LocalCheckout.Status.COMPLETED:
            return redirect("billing:checkout_done")
        messages.error(request, _("The payment was declined. Nothing was charged."))
        return redirect("billing:pricing")
    problem = selectors.local_checkout_problem(checkout)
    return render(request, "members/local_checkout.html", {"checkout": checkout, "problem": problem})


@login_required
@require_GET
def membership(request):
    current = selectors.live_membership(request.user)
    payments = Paginator(selectors.payment_history(request.user), 20).get_page(request.GET.get("page"))
    history = selectors.past_memberships(request.user, besides=current)
    return render(
        request,
        "members/membership.html",
        {
            "current": current,
            "scheduled": selectors.scheduled_change(current),
            "payments": payments,
            "history": history,
            "has_portal": current is not None and current.provider == Provider.STRIPE,
            "grants_access": current.grants_access() if current else False,
        },
    )


def _member_action(request, action, success_message):
    try:
        action()
    except MemberError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success_message)
    return redirect("billing:membership")


@login_required
@require_http_methods(["GET", "POST"])
def cancel(request):
    """Cancel at the period end, asking (optionally) why, and offering a cheaper plan first."""
    current = selectors.live_membership(request.user)
    form = CancelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "members/cancel.html", _cancel_context(current, form), status=400)
        return _member_action(
            request,
            lambda: services.cancel_membership(
                member=request.user, reason=form.cleaned_data["reason"], comment=form.cleaned_data["comment"]
            ),
            _("Your membership will end at the end of the current period. You can resume it until then."),
        )
    if current is None or current.provider == Provider.COMPLIMENTARY:
        messages.error(request, _("You have no paid membership to change."))
        return redirect("billing:membership")
    if current.cancel_at_period_end:
        return redirect("billing:membership")
    return render(request, "members/cancel.html", _cancel_context(current, form))


def _cancel_context(current, form) -> dict:
    cheaper = selectors.cheaper_tiers(current) if current is not None else []
    return {
        "current": current,
        "form": form,
        "cheaper": [
            {
                "tier": tier,
                "price": tier.price(current.interval),
                "query": urlencode({"tier": tier.slug, "interval": current.interval}),
            }
            for tier in cheaper
        ],
    }


@login_required
@require_POST
def resume(request):
    return _member_action(
        request,
        lambda: services.resume_membership(member=request.user),
        _("Your membership will renew as usual."),
    )


@login_required
@require_http_methods(["GET", "POST"])
def change(request):
    """GET: the preview of a plan change (what changes, what is due now, the next renewal).
    POST: its confirmation, which carries the signed preview."""
    if request.method == "POST":
        return _confirm_change(request)
    form = PlanForm(request.GET)
    if not form.is_valid():
        messages.error(request, _("Choose a plan and a billing interval."))
        return redirect("billing:pricing")
    try:
        preview = services.preview_plan_change(
            member=request.user, tier_slug=form.cleaned_data["tier"], interval=form.cleaned_data["interval"]
        )
    except MemberError as exc:
        messages.error(request, str(exc))
        return redirect(
            "billing:membership" if selectors.live_membership(request.user) else "billing:pricing"
        )
    return render(
        request,
        "members/change_plan.html",
        {"preview": preview, "next_url": safe_next(request, request.GET.get("next"))},
    )


def _confirm_change(request):
    form = PlanChangeForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_("This confirmation is not valid. Choose your plan again."))
    next_url = safe_next(request, form.cleaned_data["next"])
    try:
        change = services.confirm_plan_change(member=request.user, token=form.cleaned_data["token"])
    except StalePreview as exc:
        messages.warning(request, str(exc))
        query = urlencode({"tier": exc.tier_slug, "interval": exc.interval, "next": next_url})
        return redirect(f"{reverse('billing:change')}?{query}")
    except MemberError as exc:
        messages.error(request, str(exc))
        return redirect("billing:membership")
    if change.timing == change.Timing.NOW:
        messages.success(request, _("Your plan has been changed."))
        if next_url:
            return HttpResponseRedirect(next_url)
    else:
        messages.success(
            request,
            _("Your plan will change to %(tier)s on %(date)s. Until then nothing changes.")
            % {
                "tier": change.to_tier.name,
                "date": date_format(localtime(change.effective_at), "DATE_FORMAT"),
            },
        )
    return redirect("billing:membership")


@login_required
@require_POST
def cancel_change(request):
    """Keep the current plan: drop a change scheduled for the end of the period."""
    try:
        dropped = services.cancel_scheduled_change(member=request.user)
    except MemberError as exc:
        messages.error(request, str(exc))
    else:
        if dropped is not None:
            messages.success(request, _("You keep your current plan."))
    return redirect("billing:membership")


@login_required
@require_POST
def portal(request):
    current = selectors.live_membership(request.user)
    if current is None or current.provider != Provider.STRIPE:
        raise Http404
    try:
        url = services.customer_portal_url(
            member=request.user, return_url=request.build_absolute_uri(reverse("billing:membership"))
        )
    except MemberError as exc:
        messages.error(request, str(exc))
        return redirect("billing:membership")
    if not url:
        raise Http404
    return HttpResponseRedirect(url)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    if not settings.STRIPE_WEBHOOK_SECRET:
        return HttpResponse("Stripe is not configured.", status=400, content_type="text/plain")
    try:
        body = request.body
    except RawPostDataException:  # a form upload, already parsed: never a Stripe event
        return HttpResponse("Rejected: send the event as JSON.", status=400, content_type="text/plain")
    try:
        row = webhooks.receive_stripe(
            body=body, headers=request.headers, client=request.META.get("REMOTE_ADDR", "")
        )
    except webhooks.WebhookRejected as exc:
        return HttpResponse(f"Rejected: {exc}", status=exc.status, content_type="text/plain")
    webhooks.schedule(row=row)
    return HttpResponse("ok", content_type="text/plain")
