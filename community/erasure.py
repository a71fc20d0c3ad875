"""Erasing a member who deleted their account (called by the purge, usergroup.account_deletion).

Other members' replies always stay. The member's own forum posts and comments follow the
creator's setting (members.AccountDeletionSettings.posts): kept, signed "Deleted member" (the
account row is anonymised), or removed; a removed topic or comment that others replied to keeps
its place, its replies and its title, with a note instead of its text.

What only concerned the member goes: follows, read markers, notification settings and
notifications, suspensions, RSVPs (a seat they held at a coming event goes to the wait list
first). Kept: their votes (other members' scores stay as they are; the voter is anonymous) and
the reports they filed (moderation records), without their note."""

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from content.markdown import stored_html
from members.models import User

from .models import (
    RSVP,
    Comment,
    Flag,
    Notification,
    NotificationSettings,
    Post,
    PostRevision,
    Suspension,
    Thread,
    ThreadFollow,
    ThreadRead,
)
from .services.events import cancel_rsvp


def removed_text() -> str:
    """Stored in place of a removed post or comment that others replied to, in the site's language."""
    with translation.override(settings.LANGUAGE_CODE):
        return _("*This text was removed when its author deleted their account.*")


def erase_member(*, member: User, remove_posts: bool) -> dict[str, int]:
    """Run inside the purge's transaction, before the account row is anonymised."""
    now = timezone.now()
    for rsvp in RSVP.objects.filter(
        member=member, status__in=(RSVP.Status.GOING, RSVP.Status.WAITLIST), event__ends_at__gt=now
    ).select_related("event"):
        cancel_rsvp(member=member, event=rsvp.event)
    counts = {
        "rsvps": RSVP.objects.filter(member=member).delete()[0],
        "thread_follows": ThreadFollow.objects.filter(member=member).delete()[0],
        "thread_reads": ThreadRead.objects.filter(member=member).delete()[0],
        "notifications": Notification.objects.filter(recipient=member).delete()[0],
        "notification_settings": NotificationSettings.objects.filter(member=member).delete()[0],
        "suspensions": Suspension.objects.filter(member=member).delete()[0],
        "flag_notes": Flag.objects.filter(reporter=member).exclude(note="").update(note=""),
    }
    if remove_posts:
        counts |= _remove_writing(member)
    return counts


def _remove_writing(member: User) -> dict[str, int]:
    text = removed_text()
    # Replies first, so a topic whose only other posts were the member's own is deleted whole.
    replies = Post.objects.filter(author=member, is_opening=False)
    touched = set(replies.values_list("thread_id", flat=True))
    removed_posts = replies.count()
    replies.delete()

    removed_threads = blanked_posts = 0
    for thread in Thread.objects.filter(author=member):
        if Post.objects.filter(thread=thread).exclude(author=member).exists():
            opening = Post.objects.filter(thread=thread, author=member, is_opening=True)
            PostRevision.objects.filter(post__in=opening).delete()  # the earlier versions of the text
            # The stored HTML too: none of the erased words may stay in the row.
            blanked_posts += opening.update(body=text, edited_at=None, **stored_html(text))
        else:
            thread.delete()
            removed_threads += 1
            touched.discard(thread.pk)
    for thread_id in touched:  # the counter that reply and hide_post keep, recounted
        Thread.objects.filter(pk=thread_id).update(
            reply_count=Post.objects.filter(
                thread_id=thread_id, is_opening=False, approved=True, hidden=False
            ).count()
        )

    # The member's replies under comments go; then their comments, blanked where others replied.
    own_replies = Comment.objects.filter(author=member, parent__isnull=False)
    removed_comments = own_replies.count()
    own_replies.delete()
    answered = set(Comment.objects.filter(author=member, replies__isnull=False).values_list("pk", flat=True))
    blanked_comments = Comment.objects.filter(pk__in=answered).update(body=text, **stored_html(text))
    unanswered = Comment.objects.filter(author=member).exclude(pk__in=answered)
    removed_comments += unanswered.count()
    unanswered.delete()
    return {
        "posts_removed": removed_posts,
        "threads_removed": removed_threads,
        "posts_blanked": blanked_posts,
        "comments_removed": removed_comments,
        "comments_blanked": blanked_comments,
    }
