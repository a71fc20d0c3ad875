"""Small typed helpers that the type checker needs where Django's own types are too wide.

The apps on top (analytics, recommend) and the project package use them; the lower apps may
not import usergroup (DESIGN.md, "Who may import whom")."""

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Field, Model
from django.http import HttpRequest

from members.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind login_required or staff_member_required: its user is a
    member, never AnonymousUser (django-stubs' pattern for typing such views)."""

    user: User


def attname_of(model: type[Model], name: str) -> str:
    """The attribute holding `model`'s field `name` (`user_id` for the foreign key `user`)."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise ImproperlyConfigured(f"{model.__name__}.{name} is not a field of its own")
    return field.attname


def column_of(model: type[Model], name: str) -> str:
    """The database column of `model`'s field `name`, for raw SQL; a reverse relation or a
    field without a column is a programming error."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise ImproperlyConfigured(f"{model.__name__}.{name} has no column")
    return field.column
