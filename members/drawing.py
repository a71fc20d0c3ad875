"""What the pages drawn in Python instead of a template share (issue 15: community's comments and
posts, recommend's end lists, the points history): the template tags' output, written out."""

from html import escape  # django.utils.html.escape without its check for lazy strings: none here


def translated(message: str) -> str:
    """`{% translate %}` of `message`, already translated by gettext: escaped, and "%%" printed
    as "%", as the tag gives it."""
    return escape(message).replace("%%", "%")
