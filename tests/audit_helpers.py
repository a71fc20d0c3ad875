"""What the audit tests of every app share: the one row an action wrote, and admin form data."""

from html.parser import HTMLParser

from django.db import models
from django.test import Client

from members.models import AuditEvent, User


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def only_event(**filters) -> AuditEvent:
    """The single audit row matching `filters`; fails listing every row if there are 0 or 2+."""
    rows = list(AuditEvent.objects.filter(**filters))
    assert len(rows) == 1, [(r.action, r.target_repr) for r in AuditEvent.objects.all()]
    return rows[0]


def assert_one(*, actor: User, action: str, target: models.Model) -> AuditEvent:
    """Exactly one row in the whole log, by `actor`, doing `action` to `target`."""
    rows = list(AuditEvent.objects.all())
    assert [(r.actor_id, r.action, r.target_id) for r in rows] == [(actor.pk, action, str(target.pk))]
    assert rows[0].actor_label == actor.email
    assert rows[0].target_type is not None
    assert rows[0].target_type.model_class() is type(target)
    return rows[0]


class _FormFields(HTMLParser):
    """The values a browser would submit from the page's main form (the admin's change form)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self.in_form = False
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id", "").endswith("_form") and a.get("id") != "logout-form":
            self.in_form = True
        if not self.in_form or ("name" not in a and tag != "option"):
            return
        name = a.get("name")
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.setdefault(name, []).append(a.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select":
            self.select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self.select and "selected" in a:
            self.data[self.select].append(a.get("value", ""))
        elif tag == "textarea":
            self.textarea = name
            self.data[name] = [""]

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea:
            self.data[self.textarea][0] += (
                data.removeprefix("\n") if not self.data[self.textarea][0] else data
            )


def admin_form(client: Client, url: str, **changes) -> dict:
    """What the admin page at `url` would post unchanged, with `changes` applied (False unticks)."""
    response = client.get(url)
    assert response.status_code == 200
    parser = _FormFields()
    parser.feed(response.content.decode())
    data: dict = {k: v if len(v) != 1 else v[0] for k, v in parser.data.items()}
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = "on" if value is True else value
    return data
