"""The site's URLs with the load test's yardstick routed (settings.BENCH_YARDSTICK, read when
usergroup.urls is imported, is off in tests)."""

from django.urls import include, path

from usergroup import views

urlpatterns = [
    path("_bench/yardstick/", views.yardstick, name="bench_yardstick"),
    path("", include("usergroup.urls")),
]
