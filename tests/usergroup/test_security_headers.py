"""Content-Security-Policy, Permissions-Policy and the other hardening headers on every kind of
page, and templates that keep to the policy: no inline script, event handler or style."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community.models import Category, Event, Post, Thread
from content.models import Content, embed_src
from members.models import LocalCheckout
from tests.factories import ContentFactory, LessonFactory, TierFactory, UserFactory
from tests.usergroup.test_settings import load
from usergroup.security_headers import header_value

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def directives(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.status_code} {getattr(response, 'url', '')}"
    out = {}
    for part in header.split(";"):
        name, *values = part.split()
        assert name not in out, f"{name} given twice"
        out[name] = values
    return out


def assert_hardened(response) -> None:
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no nonce
    assert csp["style-src"] == ["'self'"]
    for name, values in csp.items():
        assert "'unsafe-inline'" not in values and "'unsafe-eval'" not in values, name
        assert "*" not in values and "https:" not in values and "http:" not in values, name
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["img-src"][:2] == ["'self'", "data:"]
    assert csp["form-action"][0] == "'self'"
    policy = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb", "display-capture"):
        assert f"{feature}=()" in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


@pytest.fixture
def world():
    """One object of each kind the pages below show."""
    gold = TierFactory(name="Gold", slug="gold", rank=2)
    article = ContentFactory(title="An article", slug="an-article")
    video = ContentFactory(
        kind=Content.Kind.VIDEO, slug="a-video", video_embed_url="https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    )
    lesson = LessonFactory(course=ContentFactory(kind=Content.Kind.COURSE, slug="a-course"), slug="first")
    area = Category.objects.create(name="Open", slug="open")
    author = UserFactory()
    thread = Thread.objects.create(category=area, author=author, title="Hello there")
    Post.objects.create(thread=thread, author=author, body="First post.")
    start = timezone.now() + timedelta(days=3)
    event = Event.objects.create(
        title="Live Q&A",
        slug="live-qa",
        summary="Bring questions.",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
    )
    return {"gold": gold, "article": article, "video": video, "lesson": lesson, "area": area, "thread": thread,
            "event": event, "author": author}  # fmt: skip


def _anonymous_pages(w):
    return [
        "/",
        reverse("content:library"),
        w["article"].get_absolute_url(),
        w["video"].get_absolute_url(),
        w["lesson"].course.get_absolute_url(),
        reverse("billing:pricing"),
        reverse("account_login"),
        reverse("account_signup"),
        reverse("account_reset_password"),
        reverse("community:index"),
        reverse("community:events"),
        reverse("community:event", args=[w["event"].slug]),
        reverse("content:feed_rss"),
    ]


def _member_pages(w):
    return [
        "/",
        reverse("content:mine"),
        w["lesson"].get_absolute_url(),
        reverse("points:overview"),
        reverse("points:leaderboard"),
        reverse("community:category", args=[w["area"].slug]),
        w["thread"].get_absolute_url(),
        reverse("community:new_thread", args=[w["area"].slug]),
        reverse("community:notifications"),
        reverse("community:search") + "?q=hello",
        reverse("members:profile"),
        reverse("account_email"),
        reverse("account_change_password"),
        reverse("billing:membership"),
        reverse("mfa_index"),
    ]


def _staff_pages(w):
    return [
        reverse("admin:index"),
        reverse("admin:members_user_changelist"),
        reverse("admin:members_user_change", args=[w["author"].pk]),
        reverse("admin:content_content_add"),
        reverse("admin:content_content_change", args=[w["article"].pk]),
        reverse("admin:community_thread_changelist"),
        reverse("analytics:dashboard"),
        reverse("analytics:members"),
        reverse("analytics:member", args=[w["author"].pk]),
        reverse("analytics:crm_import"),
    ]


def test_anonymous_pages(client, world):
    for url in _anonymous_pages(world):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_hardened(response)


def test_member_pages(member_client, world):
    for url in _member_pages(world):
        response = member_client.get(url)
        assert response.status_code == 200, url
        assert_hardened(response)


def test_staff_admin_dashboard_and_crm(admin_client, world):
    for url in _staff_pages(world):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_hardened(response)


def test_checkout_with_the_local_provider(member_client, world):
    response = member_client.post(reverse("billing:checkout"), {"tier": "gold", "interval": "month"})
    assert response.status_code == 302
    assert_hardened(response)
    checkout = LocalCheckout.objects.get()
    page = member_client.get(response["Location"])
    assert page.status_code == 200 and str(checkout.pk) in page.request["PATH_INFO"]
    assert_hardened(page)
    done = member_client.post(page.request["PATH_INFO"], {"action": "pay"}, follow=True)
    assert done.status_code == 200 and done.redirect_chain
    assert_hardened(done)


def test_error_pages(client, member_client):
    not_found = client.get("/no/such/page/")
    assert not_found.status_code == 404
    assert_hardened(not_found)
    forbidden = member_client.get(reverse("analytics:dashboard"))  # a member on a creator's page
    assert forbidden.status_code == 403
    assert_hardened(forbidden)
    csrf = Client(enforce_csrf_checks=True).post(reverse("account_login"), {"login": "a@example.com"})
    assert csrf.status_code == 403
    assert_hardened(csrf)
    bad = client.get("/", {"q": "\x00"})
    assert bad.status_code == 400
    assert_hardened(bad)


@pytest.mark.urls("tests.usergroup.urls_boom")
def test_server_error_page():
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert_hardened(response)


def test_json_endpoint(member_client, world):
    response = member_client.get(reverse("community:mention_suggestions"), {"q": "mem"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert_hardened(response)


def test_video_hosts_are_the_ones_the_player_embeds():
    """frame-src lists exactly the hosts content.models.embed_src builds player URLs for."""
    links = [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://youtu.be/dQw4w9WgXcQ",
        "https://vimeo.com/76979871",
        "https://www.bilibili.com/video/BV1GJ411x7h7",
    ]
    origins = {re.match(r"https://[^/]+", embed_src(link)).group(0) for link in links}
    frame_src = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["frame-src"]
    assert origins == set(frame_src)


def test_the_player_iframe_is_allowed_by_the_policy(client, world):
    response = client.get(world["video"].get_absolute_url())
    src = re.search(r'<iframe src="([^"]+)"', response.content.decode()).group(1)
    origin = re.match(r"https://[^/]+", src).group(0)
    assert origin in directives(response)["frame-src"]


PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']))"
)


def test_stripe_checkout_and_portal_are_form_targets_only_with_stripe():
    local = load({"DEBUG": "1"}, PROBE)
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["form-action"] == ["'self'"]
    stripe = load(
        {
            "DEBUG": "1",
            "PAYMENT_PROVIDER": "stripe",
            "STRIPE_SECRET_KEY": "sk_test_x",
            "STRIPE_WEBHOOK_SECRET": "whsec_x",
        },
        PROBE,
    )
    assert stripe.returncode == 0, stripe.stderr
    assert json.loads(stripe.stdout)["form-action"] == [
        "'self'",
        "https://checkout.stripe.com",
        "https://billing.stripe.com",
    ]


def test_extra_hosts_from_the_environment():
    out = load(
        {
            "DEBUG": "1",
            "CSP_EXTRA_FRAME_SRC": "https://player.example.com, https://*.wistia.net",
            "CSP_EXTRA_IMG_SRC": "https://images.example.com",
            "CSP_EXTRA_FORM_ACTION": "https://pay.example.com",
            "CSP_REPORT_URI": "/csp-reports/",
        },
        PROBE,
    )
    assert out.returncode == 0, out.stderr
    policy = json.loads(out.stdout)
    assert policy["frame-src"][-2:] == ["https://player.example.com", "https://*.wistia.net"]
    assert policy["img-src"] == ["'self'", "data:", "https://images.example.com"]
    assert policy["form-action"] == ["'self'", "https://pay.example.com"]
    assert policy["report-uri"] == ["/csp-reports/"]


@pytest.mark.parametrize(
    "name, value",
    [
        ("CSP_EXTRA_FRAME_SRC", "*"),
        ("CSP_EXTRA_FRAME_SRC", "http://player.example.com"),
        ("CSP_EXTRA_IMG_SRC", "https:"),
        ("CSP_EXTRA_IMG_SRC", "https://a.example.com; script-src *"),
        ("CSP_EXTRA_FORM_ACTION", "'unsafe-inline'"),
        ("CSP_REPORT_URI", "https://r.example.com/x; script-src *"),
    ],
)
def test_bad_extra_hosts_stop_start_up(name, value):
    out = load({"DEBUG": "1", name: value}, PROBE)
    assert out.returncode != 0
    assert name in out.stderr


def test_permissions_policy_header_syntax():
    assert header_value({"camera": [], "fullscreen": ["self", "https://player.vimeo.com"]}) == (
        'camera=(), fullscreen=(self "https://player.vimeo.com")'
    )
    with pytest.raises(Exception, match="https:// origin"):
        header_value({"camera": ["evil.example.com"]})


# --- Templates keep to the policy -------------------------------------------------------

TEMPLATE_DIRS = [ROOT / "templates", *sorted(ROOT.glob("*/templates"))]
# Mail is not a web page: e-mail clients need inline styles and no CSP applies there.
MAIL = re.compile(r"/email/")
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-zA-Z][^>]*?\son[a-z]+\s*=", re.IGNORECASE | re.DOTALL)
JS_URL = re.compile(r"""(href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)
STYLE_ATTR = re.compile(r"<[a-zA-Z][^>]*?\sstyle\s*=", re.IGNORECASE | re.DOTALL)
STYLE_TAG = re.compile(r"<style\b", re.IGNORECASE)


def _templates():
    found = [p for d in TEMPLATE_DIRS for p in d.rglob("*.html") if ".venv" not in p.parts]
    assert len(found) > 50  # the scan really reads the project's templates
    return found


def _problems(text: str, *, mail: bool) -> list[str]:
    out = []
    for match in SCRIPT_TAG.finditer(text):
        attrs = match.group(1)
        if "src=" not in attrs and not re.search(r"""type\s*=\s*["']application/(ld\+)?json["']""", attrs):
            out.append(f"inline <script>: {match.group(0)}")
    out += [f"event handler: {m.group(0)[-40:]}" for m in EVENT_HANDLER.finditer(text)]
    out += [f"javascript: URL: {m.group(0)}" for m in JS_URL.finditer(text)]
    if not mail:
        out += [f"style attribute: {m.group(0)[-40:]}" for m in STYLE_ATTR.finditer(text)]
        out += ["<style> element" for _ in STYLE_TAG.finditer(text)]
    return out


def test_no_template_has_inline_script_handler_or_style():
    problems = []
    for path in _templates():
        for problem in _problems(path.read_text(encoding="utf-8"), mail=bool(MAIL.search(path.as_posix()))):
            problems.append(f"{path.relative_to(ROOT)}: {problem}")
    assert not problems, "Move these into static/js or static/css:\n" + "\n".join(problems)


def test_every_avatar_size_has_its_class():
    """partials/avatar.html sizes its initial by a class (no style attribute): one per size asked."""
    sizes = {"32"}  # the default
    for path in _templates():
        sizes |= set(
            re.findall(r'"partials/avatar\.html"[^%]*?\bsize=(\d+)', path.read_text(encoding="utf-8"))
        )
    css = (ROOT / "static" / "css" / "app.css").read_text(encoding="utf-8")
    assert len(sizes) > 2
    assert not [size for size in sizes if f".avatar-{size} {{" not in css]


@pytest.mark.parametrize(
    "snippet",
    [
        '<select onchange="this.form.submit()">',
        "<form method=post\n  onsubmit='return confirm(1)'>",
        "<script>alert(1)</script>",
        '<script type="text/javascript">x()</script>',
        '<a href="javascript:void(0)">',
        '<div class="x" style="width: 5%">',
        "<style>body{}</style>",
    ],
)
def test_the_scan_catches_what_it_forbids(snippet):
    assert _problems(snippet, mail=False)


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="/static/js/site.js" defer></script>',
        '<script id="d" type="application/json">{"a": 1}</script>',
        '<select data-autosubmit name="language">',
        '<p class="onboarding">Turn it on="now"</p>',
        '<svg class="progress-fill"><rect width="40%" height="100%"/></svg>',
    ],
)
def test_the_scan_lets_allowed_markup_through(snippet):
    assert not _problems(snippet, mail=False)
