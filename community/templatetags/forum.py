from typing import Any

from django import template
from django.template import Context, Engine
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

register = template.Library()

FLAG_FORM = "community/_flag_form.html"
_ACTION = "flag-form-action-5b8e1c"  # stands for the address while the form is rendered once


_TOKEN = "flag-form-token-5b8e1c"  # noqa: S105 - stands for the page's CSRF token likewise
_TOKEN_INPUT = f'<input type="hidden" name="csrfmiddlewaretoken" value="{_TOKEN}">'
_flag_forms: dict[str, str] = {}  # the form's markup by language, for the process


def flag_form_html(*, csrf_token: Any, action: str) -> SafeString:
    """community/_flag_form.html posting to `action`. The form is the same under every post and
    comment of every page in a language but for its address and the page's CSRF token, so it is
    rendered once per language in each process and those two filled in for each."""
    language = get_language()
    rendered = _flag_forms.get(language)
    if rendered is None:
        form = Engine.get_default().get_template(FLAG_FORM)  # as {% include %} gets it
        # The form reads nothing of the page but its token and the address.
        rendered = _flag_forms[language] = form.render(Context({"action": _ACTION, "csrf_token": _TOKEN}))
    # The form's own markup, with the address escaped as the template would have.
    return mark_safe(
        rendered.replace(_TOKEN_INPUT, csrf_input_html(csrf_token)).replace(
            _ACTION, conditional_escape(action)
        )
    )


@register.simple_tag(takes_context=True)
def flag_form(context: template.Context, action: str) -> SafeString:
    """{% flag_form url %}: community/_flag_form.html posting to `url` (flag_form_html)."""
    return flag_form_html(csrf_token=context.get("csrf_token"), action=action)


def csrf_input_html(token: Any) -> SafeString:
    """The markup of {% csrf_token %} with `token`."""
    if not token or token == "NOTPROVIDED":  # noqa: S105 - the marker, as CsrfTokenNode checks
        return mark_safe("")  # as {% csrf_token %} renders without a token
    return format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)


@register.simple_tag(takes_context=True)
def csrf_input(context: template.Context) -> SafeString:
    """{% csrf_input as csrf %} once, then {{ csrf }} in each form of a list: the markup of
    {% csrf_token %}, with the page's token, worked out once rather than once per form."""
    return csrf_input_html(context.get("csrf_token"))
