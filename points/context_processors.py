from django.utils.functional import SimpleLazyObject

from .selectors import unseen_level_up


def level_up(request):
    """The newest unseen level-up notice, queried only if a template asks for it."""

    def notice():
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return unseen_level_up(user)

    return {"level_up": SimpleLazyObject(notice)}
