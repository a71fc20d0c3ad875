"""What other apps do when a member signs up, without members importing them.

A higher app (analytics records where the member came from) registers a hook in its
`AppConfig.ready()`; the account adapter runs every hook once the new user is saved.
A failing hook is logged and never blocks a sign-up.
"""

import logging
from collections.abc import Callable

from django.http import HttpRequest

from .models import User

log = logging.getLogger(__name__)

SignupHook = Callable[[HttpRequest, User], None]
_hooks: list[SignupHook] = []


def register(hook: SignupHook) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


def run(request: HttpRequest, user: User) -> None:
    for hook in _hooks:
        try:
            hook(request, user)
        except Exception:
            log.exception("Sign-up hook %s failed for member %s", getattr(hook, "__name__", hook), user.pk)
