from django.utils.functional import SimpleLazyObject

from .selectors import unread_count


def notifications(request):
    """The bell's unread count, queried only when a page shows it."""

    def count():
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return 0
        return unread_count(user)

    return {"unread_notifications": SimpleLazyObject(count)}
