from django.urls import path

from . import feeds, views

app_name = "content"

urlpatterns = [
    path("", views.library, name="library"),
    path("me/", views.my_library, name="mine"),
    path("me/feed/rotate/", views.rotate_feed, name="rotate_feed"),
    path("me/interests/", views.interests, name="interests"),
    path("beacon/", views.beacon, name="beacon"),
    path("preview/", views.preview, name="preview"),
    path("feed/rss/", feeds.PublicRss(), name="feed_rss"),
    path("feed/atom/", feeds.PublicAtom(), name="feed_atom"),
    path("feed/private/<str:token>/", feeds.PrivateRss(), name="feed_private"),
    path("files/<int:pk>/", views.attachment, name="attachment"),
    path("<slug:slug>/", views.detail, name="detail"),
    path("<slug:slug>/video/", views.video, name="video"),
    path("<slug:slug>/like/", views.like, name="like"),
    path("<slug:slug>/bookmark/", views.bookmark, name="bookmark"),
    path("<slug:slug>/<slug:lesson_slug>/", views.lesson, name="lesson"),
    path("<slug:slug>/<slug:lesson_slug>/video/", views.lesson_video, name="lesson_video"),
    path("<slug:slug>/<slug:lesson_slug>/complete/", views.complete_lesson, name="complete_lesson"),
]
