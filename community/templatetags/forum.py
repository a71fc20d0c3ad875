from django import template
from django.template import Engine
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

FLAG_FORM = "community/_flag_form.html"
_ACTION = "flag-form-action-5b8e1c"  # stands for the address while the form is rendered once


@register.simple_tag(takes_context=True)
def flag_form(context: template.Context, action: str) -> SafeString:
    """{% flag_form url %}: community/_flag_form.html posting to `url`. The form is the same under
    every post and comment of a page but for its address (the CSRF token is the page's), so it
    is rendered once per request and the address filled in for each."""
    request = context.get("request")
    rendered: str | None = getattr(request, "_flag_form_html", None)
    if rendered is None:
        form = Engine.get_default().get_template(FLAG_FORM)  # as {% include %} gets it
        with context.push(action=_ACTION):
            rendered = form.render(context)
        if request is not None:
            request._flag_form_html = rendered
    # The form's own markup, with the address escaped as the template would have.
    return mark_safe(rendered.replace(_ACTION, conditional_escape(action)))


@register.simple_tag(takes_context=True)
def csrf_input(context: template.Context) -> SafeString:
    """{% csrf_input as csrf %} once, then {{ csrf }} in each form of a list: the markup of
    {% csrf_token %}, with the page's token, worked out once rather than once per form."""
    token = context.get("csrf_token")
    if not token or token == "NOTPROVIDED":  # noqa: S105 - the marker, as CsrfTokenNode checks
        return mark_safe("")  # as {% csrf_token %} renders without a token
    return format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)
