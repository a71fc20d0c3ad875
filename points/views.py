import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services
from .forms import RedeemForm
from .history_html import draw_history_rows
from .rules import next_level

HISTORY_PAGE = 25


@login_required
@require_GET
def overview(request):
    account = selectors.account_for(request.user)
    level = account.level
    upcoming = next_level(lifetime=account.lifetime)
    progress = None
    if upcoming is not None:
        base = level.threshold if level else 0
        progress = int(100 * (account.lifetime - base) / max(1, upcoming.threshold - base))
    history = selectors.history_page(request.user, page=request.GET.get("page"), per_page=HISTORY_PAGE)
    return render(
        request,
        "points/overview.html",
        {
            "account": account,
            "next_level": upcoming,
            "progress": progress,
            "ways": selectors.ways_to_earn(request.user),
            "privileges": selectors.privileges_of(level),
            "items": selectors.redeemable_items(),
            "nonce": secrets.token_urlsafe(16),  # one per rendered form: a double submit redeems once
            "history": history,
            "history_rows": draw_history_rows(history),
            "redemptions": selectors.recent_redemptions(request.user),
        },
    )


@require_GET
def leaderboard(request):
    period = request.GET.get("period", "week")
    if period not in selectors.PERIODS:
        period = "week"
    rows = selectors.leaderboard(period)
    account = standing = None
    if request.user.is_authenticated:
        account = selectors.account_for(request.user)
        if account.show_on_leaderboards:
            standing = selectors.standing_for(member=request.user, period=period, rows=rows)
    return render(
        request,
        "points/leaderboard.html",
        {"rows": rows, "period": period, "account": account, "standing": standing},
    )


@login_required
@require_POST
def redeem(request, item_id):
    form = RedeemForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The shipping address is too long."))
        return redirect("points:overview")
    try:
        redemption = services.redeem(
            member=request.user,
            item_id=item_id,
            shipping_address=form.cleaned_data["shipping_address"],
            nonce=form.cleaned_data["nonce"],
        )
    except services.DomainError as exc:  # a PointsError, or a MemberError from the membership time
        messages.error(request, str(exc))
    else:
        if redemption.coupon_code:
            messages.success(
                request,
                _("Redeemed! Your coupon code is %(code)s; use it on the pricing page.")
                % {"code": redemption.coupon_code},
            )
        else:
            messages.success(request, _("Redeemed: %(item)s.") % {"item": redemption.item.name})
    return redirect("points:overview")


@login_required
@require_POST
def privacy(request):
    visible = request.POST.get("show_on_leaderboards") == "on"
    services.set_leaderboard_visibility(member=request.user, visible=visible)
    messages.success(
        request, _("You appear on leaderboards.") if visible else _("You are hidden from leaderboards.")
    )
    return redirect("points:leaderboard")


@login_required
@require_POST
def dismiss(request, notice_id):
    services.dismiss_level_up(member=request.user, notice_id=notice_id)
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("points:overview")
