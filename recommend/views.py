from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from content.models import Content

from . import services


@login_required
@require_POST
def not_interested(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Content.objects.live(), pk=pk)
    services.dismiss(member=request.user, item=item)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    return HttpResponseRedirect(target)
