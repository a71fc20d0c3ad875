"""Writes on members. Views validate input with forms, then call one of these."""

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from .models import User, validate_language


class MemberError(Exception):
    """A member operation refused for a reason the caller should show."""


@transaction.atomic
def update_profile(
    *,
    member: User,
    display_name: str,
    bio: str,
    language: str,
    time_zone: str,
    analytics_consent: bool,
    personalisation_consent: bool,
    avatar: ContentFile | None = None,
    remove_avatar: bool = False,
) -> User:
    """Save a member's profile; consent changes are time-stamped, old avatars deleted after commit."""
    member = User.objects.select_for_update().get(pk=member.pk)
    now = timezone.now()
    if analytics_consent != member.analytics_consent:
        member.analytics_consent_at = now
    if personalisation_consent != member.personalisation_consent:
        member.personalisation_consent_at = now
    member.display_name = display_name.strip()
    member.bio = bio.strip()
    member.language = language
    member.time_zone = time_zone
    member.analytics_consent = analytics_consent
    member.personalisation_consent = personalisation_consent

    old_avatar = member.avatar.name if member.avatar else ""
    if avatar is not None:
        member.avatar.save(avatar.name, avatar, save=False)
    elif remove_avatar:
        member.avatar = None
    member.full_clean(exclude=["password"])
    member.save()
    if old_avatar and old_avatar != (member.avatar.name if member.avatar else ""):
        storage = member.avatar.storage
        transaction.on_commit(lambda: storage.delete(old_avatar))
    return member


def set_language(*, member: User, language: str) -> User:
    """Remember the member's interface language (validated against settings.LANGUAGES)."""
    try:
        validate_language(language)
    except ValidationError as exc:
        raise MemberError(exc.messages[0]) from None
    User.objects.filter(pk=member.pk).update(language=language)
    member.language = language
    return member
