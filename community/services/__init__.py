"""Every write of the community app, one module per area:

- forum: topics, replies, accepted answers, votes, edits; the posting limits and text checks;
- moderation: flags, and what moderators do about posts, topics and members;
- comments: comments on library items (written, flagged, hidden);
- events: RSVPs, the wait list, attendance, reminders;
- notifications: who hears about what (the bell), follows, read markers, email preferences.

The forum's and moderation's verbs are re-exported here, so `services.start_thread(...)` and
`from community.services import ForumError` keep working; the other areas are imported as
modules (`from community.services import events`). The emails themselves go out in
community.delivery, called by the tasks."""

from . import comments, events, notifications
from .forum import (
    BODY_MAX,
    TITLE_MAX,
    TITLE_MIN,
    ForumError,
    accept_answer,
    award,
    edit_post,
    refresh_post_html,
    reply,
    start_thread,
    vote,
)
from .moderation import (
    approve_post,
    dismiss_flags,
    flag_post,
    hide_post,
    move_thread,
    resolve_flags,
    restore_post,
    set_locked,
    suspend,
)

__all__ = [
    "BODY_MAX",
    "TITLE_MAX",
    "TITLE_MIN",
    "ForumError",
    "accept_answer",
    "approve_post",
    "award",
    "comments",
    "dismiss_flags",
    "edit_post",
    "events",
    "flag_post",
    "hide_post",
    "move_thread",
    "notifications",
    "refresh_post_html",
    "reply",
    "resolve_flags",
    "restore_post",
    "set_locked",
    "start_thread",
    "suspend",
    "vote",
]
