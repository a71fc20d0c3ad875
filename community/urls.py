from django.urls import path

from . import views

app_name = "community"

urlpatterns = [
    path("", views.index, name="index"),
    path("search/", views.search, name="search"),
    path("c/<slug:slug>/", views.category, name="category"),
    path("c/<slug:slug>/new/", views.new_thread, name="new_thread"),
    path("t/<int:pk>/", views.thread, name="thread_short"),
    path("t/<int:pk>-<slug:slug>/", views.thread, name="thread"),
    path("t/<int:pk>/reply/", views.reply, name="reply"),
    path("t/<int:pk>/accept/<int:post_id>/", views.accept, name="accept"),
    path("posts/<int:post_id>/vote/", views.vote, name="vote"),
    path("posts/<int:post_id>/edit/", views.edit, name="edit"),
    path("posts/<int:post_id>/flag/", views.flag, name="flag"),
    path("posts/<int:post_id>/moderate/", views.moderate, name="moderate"),
    path("moderation/", views.moderation, name="moderation"),
    path("notifications/", views.notifications, name="notifications"),
    path("comments/on/<int:content_id>/", views.comment, name="comment"),
    path("comments/<int:comment_id>/hide/", views.hide_comment, name="hide_comment"),
    path("comments/<int:comment_id>/flag/", views.flag_comment, name="flag_comment"),
    path("comments/<int:comment_id>/moderate/", views.moderate_comment, name="moderate_comment"),
    path("mentions/", views.mention_suggestions, name="mention_suggestions"),
    path("events/", views.events, name="events"),
    path("events/<slug:slug>/", views.event, name="event"),
    path("events/<slug:slug>/rsvp/", views.rsvp, name="rsvp"),
    path("events/<slug:slug>/calendar.ics", views.event_ics, name="event_ics"),
    path("t/<int:pk>/follow/", views.follow, name="follow"),
]
