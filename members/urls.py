from django.urls import path

from . import deletion_views, privacy_views, views

app_name = "members"

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("language/", views.set_language, name="set_language"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("privacy/", privacy_views.privacy, name="privacy"),
    path("privacy/export/", privacy_views.request_export, name="request_export"),
    path("privacy/export/<uuid:export_id>/", privacy_views.download_export, name="download_export"),
    path("delete/", deletion_views.delete_account, name="delete_account"),
]
