from .rules import local_date
from .services import award_daily_visit

SESSION_KEY = "points_daily_visit"


class DailyVisitMiddleware:
    """Award the daily visit once a day. The session remembers the day, so this touches the
    database once per member per day, not on every request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            today = local_date(member=user)
            if request.session.get(SESSION_KEY) != today:
                award_daily_visit(member=user)
                request.session[SESSION_KEY] = today
        return self.get_response(request)
