from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from content.models import Content
from usergroup.typed import AuthenticatedHttpRequest

from . import experiments, services
from .models import Impression


@login_required
@require_POST
def not_interested(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Content.objects.live(), pk=pk)
    services.dismiss(member=request.user, item=item)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    messages.success(
        request, _("“%(title)s” is hidden; you will see fewer items like it.") % {"title": item.title}
    )
    # Back to the list the member was reading, not to the top of the page.
    return HttpResponseRedirect(f"{target}#recommended-title" if target == "/" else target)


@login_required
@require_POST
def not_interested_in_pick(request: AuthenticatedHttpRequest) -> HttpResponse:
    """ "Not interested" from a list's one form: the item is the value of the button pressed."""
    item = request.POST.get("item", "")
    if not item.isdigit():
        raise Http404
    return not_interested(request, int(item))


@login_required
@require_GET
@never_cache
def follow(request: AuthenticatedHttpRequest, token: str) -> HttpResponse:
    """A recommended entry followed: count the click (the member's own impression, first click
    only) and go on to the entry. The target comes from the impression itself, never from the
    request, so the link cannot send anyone elsewhere."""
    impression_id = experiments.impression_id_from_token(token)
    if impression_id is None:
        raise Http404
    impression = get_object_or_404(Impression.objects.select_related("item", "thread"), pk=impression_id)
    if impression.member_id == request.user.pk:
        experiments.record_click(member=request.user, impression_id=impression.pk)
    return HttpResponseRedirect(experiments.target_url(impression))
