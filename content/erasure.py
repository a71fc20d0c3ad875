"""Erasing a member who deleted their account (called by the purge, usergroup.account_deletion).

Raw views are kept but detached: they become anonymous views (user NULL, as a visitor's), so
the items' view counts stay right while nothing ties them to a person any more. What was
personal and only theirs goes: their per-item view sums (ViewHistory), likes, bookmarks,
interests, lesson progress and the private feed token. Items the member wrote as staff stay, signed
"Deleted member"."""

from members.models import User

from .models import Bookmark, ContentView, FeedToken, LessonProgress, Like, MemberInterest, ViewHistory


def erase_member(*, member: User) -> dict[str, int]:
    """Run inside the purge's transaction, before the account row is anonymised."""
    return {
        "views_detached": ContentView.objects.filter(user=member).update(user=None),
        "view_history": ViewHistory.objects.filter(user=member).delete()[0],
        "likes": Like.objects.filter(user=member).delete()[0],
        "bookmarks": Bookmark.objects.filter(user=member).delete()[0],
        "interests": MemberInterest.objects.filter(member=member).delete()[0],
        "lesson_progress": LessonProgress.objects.filter(user=member).delete()[0],
        "feed_tokens": FeedToken.objects.filter(user=member).delete()[0],
    }
