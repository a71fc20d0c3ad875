from django.urls import path

from . import views

app_name = "recommend"

urlpatterns = [
    path("not-interested/<int:pk>/", views.not_interested, name="not_interested"),
    path("go/<str:token>/", views.follow, name="follow"),
]
