from django.urls import path

from . import views

app_name = "recommend"

urlpatterns = [
    path("not-interested/<int:pk>/", views.not_interested, name="not_interested"),
    # The home page's list: one form for all its picks, the pick in the button pressed.
    path("not-interested/", views.not_interested_in_pick, name="not_interested_in_pick"),
    path("go/<str:token>/", views.follow, name="follow"),
]
