from django import template

from members.access import can_access

register = template.Library()


@register.filter
def can_read(user, obj) -> bool:
    """{% if user|can_read:item %}: the access policy, for templates (no extra query per item)."""
    return can_access(user, obj)
