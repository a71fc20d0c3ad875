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
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import access, services
from .billing import webhooks
from .billing.providers import BillingError, LocalProvider, provider_named
from .forms import CheckoutForm, PlanForm
from .models import Interval, LocalCheckout, Payment, Provider, Tier
from .services import MemberError


@require_GET
def pricing(request):
    interval = request.GET.get("interval", Interval.MONTH)
    if interval not in Interval.values:
        interval = Interval.MONTH
    membership = services.live_membership(request.user) if request.user.is_authenticated else None
    current = access.current_tier(request.user)
    tiers = list(Tier.objects.filter(is_active=True).order_by("rank"))
    if membership and membership.tier not in tiers:
        tiers.append(membership.tier)  # an archived tier still shows for its members
        tiers.sort(key=lambda t: t.rank)
    cards = [
        {
            "tier": tier,
            "offered": tier.is_free or tier.offers(interval),
            "list_price": tier.list_price(interval),
            "price": tier.price(interval),
            "is_current": current is not None and current.pk == tier.pk,
        }
        for tier in tiers
    ]
    return render(
        request,
        "members/pricing.html",
        {"cards": cards, "interval": interval, "membership": membership, "intervals": Interval},
    )


@login_required
@require_POST
def checkout(request):
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a plan and a billing interval."))
        return redirect("billing:pricing")
    data = form.cleaned_data
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
    if services.live_membership(request.user):
        messages.success(request, _("Thank you! Your membership is active."))
    else:
        messages.info(
            request, _("Thank you! Your payment is being confirmed; this page updates in a moment.")
        )
    return redirect("billing:membership")


@login_required
def local_checkout(request, checkout_id):
    """The offline provider's payment page. Only its owner sees it (404 for anyone else)."""
    checkout = get_object_or_404(
        LocalCheckout.objects.select_related("tier", "promotion_code"), pk=checkout_id, user=request.user
    )
    if request.method == "POST":
        action = request.POST.get("action")
        if action not in ("pay", "decline"):
            return HttpResponseBadRequest(_("Unknown action."))
        try:
            checkout = LocalProvider().complete_checkout(checkout_id=checkout.pk, approve=action == "pay")
        except BillingError as exc:
            messages.error(request, str(exc))
            return redirect("billing:local_checkout", checkout_id=checkout.pk)
        if checkout.status == LocalCheckout.Status.COMPLETED:
            access.forget_rank(request.user)
            return redirect("billing:checkout_done")
        messages.error(request, _("The payment was declined. Nothing was charged."))
        return redirect("billing:pricing")
    return render(request, "members/local_checkout.html", {"checkout": checkout})


@login_required
@require_GET
def membership(request):
    current = services.live_membership(request.user)
    payments = Paginator(
        Payment.objects.filter(user=request.user).select_related("membership__tier"), 20
    ).get_page(request.GET.get("page"))
    history = request.user.memberships.exclude(pk=getattr(current, "pk", None)).select_related("tier")[:10]
    return render(
        request,
        "members/membership.html",
        {
            "current": current,
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
        access.forget_rank(request.user)
        messages.success(request, success_message)
    return redirect("billing:membership")


@login_required
@require_POST
def cancel(request):
    return _member_action(
        request,
        lambda: services.cancel_membership(member=request.user),
        _("Your membership will end at the end of the current period. You can resume it until then."),
    )


@login_required
@require_POST
def resume(request):
    return _member_action(
        request,
        lambda: services.resume_membership(member=request.user),
        _("Your membership will renew as usual."),
    )


@login_required
@require_POST
def change(request):
    form = PlanForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a plan and a billing interval."))
        return redirect("billing:pricing")
    return _member_action(
        request,
        lambda: services.change_tier(
            member=request.user, tier_slug=form.cleaned_data["tier"], interval=form.cleaned_data["interval"]
        ),
        _("Your plan has been changed."),
    )


@login_required
@require_POST
def portal(request):
    current = services.live_membership(request.user)
    if current is None or current.provider != Provider.STRIPE:
        raise Http404
    try:
        url = provider_named(Provider.STRIPE).portal_url(
            member=request.user, return_url=request.build_absolute_uri(reverse("billing:membership"))
        )
    except BillingError as exc:
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
    webhooks.schedule(row)
    return HttpResponse("ok", content_type="text/plain")
