"""The "Delete my account" page: what happens, a password to confirm, then sign-out."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from . import selectors
from .deletion import DeletionError, deletion_settings, is_last_superuser, schedule_account_deletion
from .forms import DeleteAccountForm
from .models import AccountDeletionSettings
from .ratelimit import over_limit

# Password attempts per member on this page, per ATTEMPTS_WINDOW seconds.
MAX_ATTEMPTS, ATTEMPTS_WINDOW = 5, 15 * 60


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request):
    member = request.user
    form = DeleteAccountForm(request.POST or None, member=member)
    status, page_error = 200, ""
    if request.method == "POST":
        if over_limit(f"delete-account:{member.pk}", limit=MAX_ATTEMPTS, window=ATTEMPTS_WINDOW):
            form = DeleteAccountForm(member=member)
            page_error = _("Too many attempts. Wait a few minutes and try again.")
            status = 429
        elif form.is_valid():
            try:
                scheduled = schedule_account_deletion(member=member)
            except DeletionError as exc:
                form.add_error(None, str(exc))
                status = 400
            else:
                logout(request)
                messages.success(
                    request,
                    _(
                        "Your account will be deleted on %(date)s and you are signed out. "
                        "Sign in before then if you want to keep it."
                    )
                    % {"date": date_format(timezone.localtime(scheduled.deletion_due_at), "DATETIME_FORMAT")},
                )
                return redirect("home")
    rules = deletion_settings()
    membership = selectors.live_paid_membership(member)
    context = {
        "form": form,
        "page_error": page_error,
        "grace_days": rules.grace_days,
        "due_preview": timezone.now() + timedelta(days=rules.grace_days),
        "posts_removed": rules.posts == AccountDeletionSettings.Posts.REMOVE,
        "membership": membership,
        "last_superuser": is_last_superuser(member),
        "has_password": member.has_usable_password(),
    }
    return render(request, "members/delete_account.html", context, status=status)
