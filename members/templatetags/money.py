from django import template

from members.money import format_money

register = template.Library()


@register.simple_tag
def money(amount, currency):
    """{% money payment.amount payment.currency %} in the current language's format."""
    if amount is None:
        return ""
    return format_money(amount, currency)
