from django.urls import path

from . import views

app_name = "points"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("redeem/<int:item_id>/", views.redeem, name="redeem"),
    path("privacy/", views.privacy, name="privacy"),
    path("notices/<int:notice_id>/dismiss/", views.dismiss, name="dismiss"),
]
