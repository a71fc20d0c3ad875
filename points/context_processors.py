from django.utils.functional import SimpleLazyObject


def level_up(request):
    """The newest unseen level-up notice, queried only if a template asks for it."""

    def notice():
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        from .models import LevelUp

        return LevelUp.objects.filter(member=user, seen=False).select_related("level").first()

    return {"level_up": SimpleLazyObject(notice)}
