class MemberError(Exception):
    """A member operation refused for a reason the caller should show (already translated)."""
