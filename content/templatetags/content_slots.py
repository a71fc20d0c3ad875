from django import template
from django.utils.safestring import SafeString

from .. import slots
from ..models import Content

register = template.Library()


@register.simple_tag(takes_context=True)
def item_sections(context: template.Context, place: str, item: Content) -> SafeString:
    """{% item_sections "discussion" item %}: what higher apps registered for that place on an
    item's page (content.slots), in order; nothing when none registered or all are empty."""
    return SafeString("".join(slots.item_sections(context["request"], item, place=slots.Place(place))))
