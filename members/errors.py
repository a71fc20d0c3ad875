"""Errors of the domain, shared by every app.

`DomainError` is the root: an operation refused for a reason the caller should show to the
person who asked (the message is already translated). Each app derives its own from it
(`MemberError` here, `ForumError`, `PointsError`, `ExperimentError` in theirs), so a view
catches its own app's errors and nothing else. It lives in members, the lowest app, because
every app may import members and none may import the project package (DESIGN.md, "Who may
import whom").
"""


class DomainError(Exception):
    """An operation refused for a reason the caller should show (already translated)."""


class MemberError(DomainError):
    """A members operation (profile, membership, billing, privacy) refused."""
