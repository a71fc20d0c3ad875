from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _

from members.views import ConfirmEmailView

from . import privacy, views

admin.site.site_header = _("usergroup: creator admin")
admin.site.site_title = _("usergroup admin")
admin.site.index_title = _("Manage your community")
# The admin's own login form would skip allauth: no second factor, no rate limit. It sends
# visitors to the site's sign-in page instead (docs/accounts.md, "Two-factor authentication").
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]  # on purpose

urlpatterns = [
    path("", views.home, name="home"),
    path("welcome/", views.welcome, name="welcome"),
    path("privacy/", privacy.policy, name="privacy_policy"),
    # Ahead of allauth's pattern for the same path, which it answers instead (allauth's
    # reverse("account_confirm_email") in mails and on the page leads here): the confirmation
    # link of a new account also signs its member in (members.views.ConfirmEmailView).
    re_path(
        r"^accounts/confirm-email/(?P<key>[-:\w]+)/$",
        ConfirmEmailView.as_view(),
        name="account_confirm_email_and_sign_in",
    ),
    path("accounts/", include("allauth.urls")),
    path("members/", include("members.urls")),
    path("", include("members.billing.urls")),
    path("library/", include("content.urls")),
    path("points/", include("points.urls")),
    path("community/", include("community.urls")),
    path("recommend/", include("recommend.urls")),
    # The creator's dashboard and CRM: before admin.site.urls, whose catch-all would take them.
    path("admin/insights/", include("analytics.urls")),
    path("admin/", admin.site.urls),
    re_path(
        r"^media/(?P<folder>avatars|covers)/(?P<name>[0-9a-f]{32}\.(?:webp|jpe?g|png|gif))$",
        views.public_media,
        name="public_media",
    ),
]

if settings.BENCH_YARDSTICK:  # the load test's minimal page (bench/load/); off in production
    urlpatterns.append(path("_bench/yardstick/", views.yardstick, name="bench_yardstick"))

handler400 = "usergroup.views.bad_request"
handler403 = "usergroup.views.permission_denied"
handler404 = "usergroup.views.page_not_found"
# handler500 stays Django's: it renders templates/500.html without a request
# context, which cannot fail on a broken database or middleware.
