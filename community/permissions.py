"""Who may read, post in and attend what: the forum's questions to the access policy
(members.access), asked by the services, the selectors and the views alike."""

from django.contrib.auth.models import AnonymousUser

from members.access import can_access, member_rank
from members.models import User

from .models import Category, Event

# Whoever is asking: a member, a visitor (AnonymousUser), or nobody (a job with no request).
Viewer = User | AnonymousUser | None


def can_read(*, user: Viewer, category: Category) -> bool:
    return can_access(user, category)


def can_post(*, user: Viewer, category: Category) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    if not can_read(user=user, category=category):
        return False
    return category.post_tier is None or (member_rank(user) or 0) >= category.post_tier.rank


def may_attend(*, user: Viewer, event: Event) -> bool:
    return user is not None and user.is_authenticated and user.is_active and can_access(user, event)
