from django.shortcuts import render


def home(request):
    return render(request, "home.html")


def bad_request(request, exception=None):
    return render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    return render(request, "403.html", status=403)


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)


def csrf_failure(request, reason=""):
    return render(request, "403_csrf.html", status=403)
