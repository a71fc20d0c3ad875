"""The creator's pages under load: CRM rows drawn once and redrawn when the member changes, the
admin sidebar drawn once per set of permissions, the dashboard's figures refreshed in the
background (never while a reader waits) and warmed by the nightly job."""

import time
from datetime import timedelta
from decimal import Decimal
from typing import cast

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache, caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import dashboard as figures
from analytics.models import MemberProfile, MemberTag, Persona, PersonaRun, Tag
from analytics.views.common import NAV_SIDEBAR_SECONDS
from members.models import Payment, Provider
from points.models import PointsAccount
from tests.factories import MembershipFactory, TierFactory, UserFactory
from usergroup.nightly import JOBS

pytestmark = pytest.mark.django_db

DIRECTORY = "/admin/insights/crm/"
DASHBOARD = "/admin/insights/dashboard/"


@pytest.fixture
def ann(db):
    ann = UserFactory(
        email="ann@example.com", display_name="Ann Lee", handle="annlee", analytics_consent=True
    )
    run = PersonaRun.objects.create(as_of=timezone.localdate(), status=PersonaRun.Status.DONE)
    persona = Persona.objects.create(
        run=run, key=1, description_en="reads a lot", description_zh="读", centroid={}
    )
    MemberProfile.objects.create(run=run, member=ann, score=40, persona=persona, churn_risk=0.2)
    return ann


def _row(response, email: str) -> str:
    html = response.content.decode()
    start = html.index(email)
    return html[html.rindex("<tr>", 0, start) : html.index("</tr>", start)]


def test_a_cached_row_is_drawn_anew_when_the_member_changes(creator, ann):
    first = _row(creator.get(DIRECTORY), "ann@example.com")
    assert "Ann Lee" in first and ">40<" in first and "reads a lot" in first
    assert _row(creator.get(DIRECTORY), "ann@example.com") == first  # drawn from the cache

    ann.display_name = "Ann Smith"
    ann.save()
    MemberTag.objects.create(member=ann, tag=Tag.objects.create(name="VIP"))
    MemberProfile.objects.filter(member=ann).update(score=91, high_potential=True)
    Persona.objects.filter(key=1).update(name="Bookworm")  # the creator renames the persona
    MembershipFactory(user=ann, tier=TierFactory(name="Gold", slug="gold", rank=2))
    PointsAccount.objects.update_or_create(member=ann, defaults={"balance": 1234, "lifetime": 1234})
    Payment.objects.create(
        user=ann, provider=Provider.LOCAL, provider_invoice_id="in_1", status=Payment.Status.PAID,
        amount=Decimal("20.00"), currency="USD",
    )  # fmt: skip
    ann.last_seen_at = timezone.now() - timedelta(hours=3)
    ann.save()

    row = _row(creator.get(DIRECTORY), "ann@example.com")
    assert "Ann Smith" in row and "Ann Lee" not in row
    for shown in ("VIP", ">91<", "high potential", "Bookworm", "Gold", "1,234", "20.00", "3\xa0hours ago"):
        assert shown in row, shown


def test_a_row_follows_consent_withdrawn(creator, ann):
    assert ">40<" in _row(creator.get(DIRECTORY), "ann@example.com")
    ann.analytics_consent = False
    ann.save()
    MemberProfile.objects.filter(member=ann).delete()  # what withdrawing consent does to the run
    assert "no consent" in _row(creator.get(DIRECTORY), "ann@example.com")


def test_the_warm_directory_reads_a_fixed_number_of_queries(creator, ann, django_assert_num_queries):
    for _ in range(5):
        UserFactory()
    creator.get(DIRECTORY)  # the day's visit, the sidebar and the rows drawn
    # session, user, second factor, the rows' columns with their tags: no count or page ids (the
    # list kept until an account changes), no run, personas, tiers, tags or segments (the
    # directory's choices, kept until one changes), no segment sizes (kept per run), no admin app
    # list, no singleton lookups.
    # The tags come in the rows' own statement on PostgreSQL, by one more query elsewhere.
    with django_assert_num_queries(4 if connection.vendor == "postgresql" else 5) as warm:
        creator.get(DIRECTORY)
    assert not any("settings" in q["sql"] or "COUNT(" in q["sql"] for q in warm.captured_queries)
    # The filters' tiers and tags by plain queries: a model select's own choice iterator reads
    # through a server-side cursor on PostgreSQL (DECLARE, FETCH, CLOSE: three round trips each).
    assert not any(q["sql"].startswith("DECLARE") for q in warm.captured_queries)


def test_the_warm_directory_reads_the_cache_twice(creator, ann, monkeypatch):
    """The kept list of the page (its members, their number) in one read of the cache; its rows,
    the filter fields, the admin's sidebar and the run's segment sizes in another."""
    creator.get(DIRECTORY)
    reads: list[list[str]] = []
    get, get_many = cache.get, cache.get_many
    inside: list[bool] = []  # the local-memory cache's get_many calls its own get

    def counted_get(key, *args, **kwargs):
        if not inside:
            reads.append([key])
        return get(key, *args, **kwargs)

    def counted_get_many(keys, *args, **kwargs):
        reads.append(list(keys))
        inside.append(True)
        try:
            return get_many(keys, *args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(cache, "get", counted_get)
    monkeypatch.setattr(cache, "get_many", counted_get_many)
    html = creator.get(DIRECTORY).content.decode()
    ours = [
        keys
        for keys in reads
        if any(key.startswith(("analytics:crm-", "analytics:nav", "analytics:segment-sizes")) for key in keys)
    ]
    assert len(ours) == 2
    assert ours[0] == [
        "analytics:directory-list-version",
        f"analytics:crm-list:1:{ann.profiles.get().run_id}:None:joined:",
    ]
    assert {key.split(":")[1] for key in ours[1]} == {"crm-row", "crm-filters", "nav", "segment-sizes"}
    assert 'id="nav-sidebar"' in html and 'name="persona"' in html and "ann@example.com" in html


def _sizes(response) -> str:
    html = response.content.decode()
    return html[html.index('class="crm-run"') : html.index("</p>", html.index('class="crm-run"'))]


def test_the_segment_sizes_are_counted_again_when_a_member_is_erased(
    creator, ann, django_capture_on_commit_callbacks
):
    from analytics.erasure import erase_member

    MemberProfile.objects.filter(member=ann).update(high_potential=True)
    bob = UserFactory(analytics_consent=True)
    MemberProfile.objects.create(run=PersonaRun.objects.get(), member=bob, score=80, high_potential=True)
    assert "2 high-potential fans" in _sizes(creator.get(DIRECTORY))
    assert "2 high-potential fans" in _sizes(creator.get(DIRECTORY))  # kept
    with django_capture_on_commit_callbacks(execute=True):
        erase_member(member=bob)
    assert "1 high-potential fan<" in _sizes(creator.get(DIRECTORY))


def test_the_segment_sizes_are_counted_again_when_a_member_is_deleted(
    creator, ann, django_capture_on_commit_callbacks
):
    MemberProfile.objects.filter(member=ann).update(at_risk_loyal=True)
    assert "1 at-risk loyal fan<" in _sizes(creator.get(DIRECTORY))
    with django_capture_on_commit_callbacks(execute=True):
        ann.delete()  # the admin can: the profiles go with the account
    assert "0 at-risk loyal fans" in _sizes(creator.get(DIRECTORY))


def test_a_new_run_shows_its_own_segment_sizes(creator, ann):
    MemberProfile.objects.filter(member=ann).update(high_potential=True)
    assert "1 high-potential fan<" in _sizes(creator.get(DIRECTORY))
    run = PersonaRun.objects.create(
        as_of=timezone.localdate() + timedelta(days=1), status=PersonaRun.Status.DONE
    )
    MemberProfile.objects.create(run=run, member=ann, score=40)
    assert "0 high-potential fans" in _sizes(creator.get(DIRECTORY))


@pytest.mark.parametrize("query", ["", "?persona=1", "?sort=score", "?sort=points"])
def test_the_list_of_a_page_computes_no_row_columns(creator, ann, query):
    """The count and the page's ids read the members and only what the filters and the sort
    need: no member's payments, memberships or tier names (the page's own 50 rows read those),
    and the profile joined once."""
    with CaptureQueriesContext(connection) as queries:
        creator.get(DIRECTORY + query)
    listing = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT COUNT(*) AS "__count" FROM "members_user"') or '"members_user"."id" AS "pk"' in q["sql"]]  # fmt: skip
    assert len(listing) == 2
    for sql in listing:
        assert "members_payment" not in sql and "members_membership" not in sql and "members_tier" not in sql
        assert sql.count("analytics_memberprofile") == (1 if query in ("?persona=1", "?sort=score") else 0)
        assert ("points_pointsaccount" in sql) == (query == "?sort=points")


def test_the_sidebar_follows_the_users_permissions(ann):
    staff = UserFactory(is_staff=True, email="mod@example.com")
    staff.user_permissions.add(
        Permission.objects.get(codename="view_user", content_type__app_label="members")
    )
    client = Client()
    client.force_login(staff)
    html = client.get(DIRECTORY).content.decode()
    assert 'id="nav-sidebar"' in html and "/admin/members/user/" in html
    assert "/admin/analytics/tag/" not in html
    staff.user_permissions.add(
        Permission.objects.get(codename="view_tag", content_type__app_label="analytics")
    )
    staff = type(staff).objects.get(pk=staff.pk)  # permissions are cached on the instance
    client.force_login(staff)
    assert "/admin/analytics/tag/" in client.get(DIRECTORY).content.decode()


def test_a_stale_board_is_shown_and_refreshed_once_in_the_background(
    creator, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr("analytics.tasks.refresh_dashboard.delay", lambda **kwargs: queued.append(kwargs))
    # At noon: ten minutes later is the same day, so the default range (and its key) stays.
    noon = timezone.now().replace(hour=12, minute=0)
    monkeypatch.setattr("django.utils.timezone.now", lambda: noon)
    first = creator.get(DASHBOARD).context["board"]
    assert creator.get(DASHBOARD).context["board"].computed_at == first.computed_at and not queued

    later = first.computed_at + timedelta(seconds=figures.CACHE_SECONDS + 1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as read:
        stale = creator.get(DASHBOARD).context["board"]
    with django_capture_on_commit_callbacks(execute=True):
        creator.get(DASHBOARD)  # a second reader: no second refresh
    assert stale.computed_at == first.computed_at  # shown at once, not recomputed while waiting
    assert not any("members_payment" in q["sql"] for q in read.captured_queries)
    assert len(queued) == 1 and queued[0]["first"] == figures.default_first(later.date()).isoformat()

    from analytics.tasks import refresh_dashboard

    refresh_dashboard(**queued[0])  # what the worker does
    assert creator.get(DASHBOARD).context["board"].computed_at == later


def test_the_figures_are_drawn_once_per_board(creator, monkeypatch):
    creator.get(DASHBOARD)
    drawn = []
    original = figures.zero_filled
    monkeypatch.setattr(figures, "zero_filled", lambda **kw: drawn.append(1) or original(**kw))
    page = creator.get(DASHBOARD)
    assert page.status_code == 200 and 'id="dashboard-data"' in page.content.decode()
    assert not drawn  # the charts' data came drawn from the cache
    creator.get(DASHBOARD, {"refresh": "1"})  # a new board is drawn anew
    assert drawn


def test_the_nightly_job_warms_the_default_range_in_every_language(settings):
    assert "dashboard figures" in [name for name, _job in JOBS]
    cache.clear()
    keys = figures.warm_dashboards()
    assert len(keys) == len(settings.LANGUAGES)
    assert all(cache.get(key) is not None for key in keys)


def test_the_row_columns_query_is_built_once_per_run_and_language(creator, ann):
    """Built once per run and language in a process, then chained per page: a page in another
    language names the tier in that language, a page of a newer run shows that run's scores."""
    from analytics import selectors

    tier = TierFactory(name_en="Gold", name_zh_hans="黄金", slug="gold", rank=2)
    MembershipFactory(user=ann, tier=tier)
    selectors._page_columns_built.clear()
    assert "Gold" in _row(creator.get(DIRECTORY), "ann@example.com")
    creator.get(DIRECTORY + "?sort=email")
    assert len(selectors._page_columns_built) == 1

    creator.cookies["django_language"] = "zh-hans"
    assert "黄金" in _row(creator.get(DIRECTORY), "ann@example.com")
    newer = PersonaRun.objects.create(
        as_of=timezone.localdate() + timedelta(days=1), status=PersonaRun.Status.DONE
    )
    MemberProfile.objects.create(run=newer, member=ann, score=77)
    assert ">77<" in _row(creator.get(DIRECTORY), "ann@example.com")
    assert len(selectors._page_columns_built) == 3


@pytest.mark.parametrize(
    "query",
    [
        "",
        "q=a<b%26c&score_min=10&score_max=90.5&churn_min=20&seen=within-7&sort=-score",
        "persona=2&tier=gold&tag=VIP&consent=no&flag=at_risk_loyal&status=lapsed",
        "q=%22quoted%22&q=last&persona=1&persona=2",
    ],
)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_filters_drawn_in_python_are_the_templates_html(query, language):
    """draw_filters gives analytics/crm/_filters.html's HTML for every kind of field and value."""
    from django.http import QueryDict
    from django.template import Context
    from django.template.loader import get_template
    from django.utils import translation

    from analytics.forms import DirectoryForm
    from analytics.views.crm import draw_filters

    run = PersonaRun.objects.create(as_of=timezone.localdate(), status=PersonaRun.Status.DONE)
    personas = [
        Persona.objects.create(
            run=run, key=key, description_en=f"<b>{key}</b> & co", description_zh="读", centroid={}
        )
        for key in (1, 2)
    ]
    TierFactory(name="Gold & <more>", slug="gold", rank=2)
    Tag.objects.create(name="VIP")
    with translation.override(language):
        form = DirectoryForm(
            QueryDict(query.replace("tag=VIP", f"tag={Tag.objects.get().pk}")), personas=personas
        )
        assert form.is_valid(), form.errors
        template = get_template("analytics/crm/_filters.html").template
        assert draw_filters(form) == template.render(Context({"form": form}))


def _sidebar_drawn(response) -> bool:
    return "admin/nav_sidebar.html" in [template.name for template in response.templates]


@pytest.fixture
def layout_kept(settings):
    """The process's own layout cache as in production: under DEBUG (the README's test command)
    it is a dummy cache, so that edited templates show at once."""
    settings.CACHES = {
        **settings.CACHES,
        "layout": {**settings.CACHES["layout"], "BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    caches["layout"].clear()  # a locmem cache's entries outlive its handler: start empty


def test_the_sidebar_is_kept_in_the_process_when_the_shared_cache_is_emptied(creator, ann, layout_kept):
    assert _sidebar_drawn(creator.get(DIRECTORY))
    cache.clear()  # as the load test's flush, or an eviction
    response = creator.get(DIRECTORY)
    assert not _sidebar_drawn(response)
    assert 'id="nav-sidebar"' in response.content.decode()
    caches["layout"].clear()  # a new process: read from the shared cache, not drawn
    creator.get(DIRECTORY)
    caches["layout"].clear()
    assert not _sidebar_drawn(creator.get(DIRECTORY))
    cache.clear()
    caches["layout"].clear()
    assert _sidebar_drawn(creator.get(DIRECTORY))


def test_the_process_keeps_the_sidebar_only_until_its_drawing_is_due_again(
    creator, ann, monkeypatch, layout_kept
):
    creator.get(DIRECTORY)
    [key] = [key for key in caches["layout"]._cache if "analytics:nav:" in key]
    nav_key = key.split(":", 2)[2]  # the locmem key is prefixed with ":<version>:"
    drawn_at, html = cache.get(nav_key)
    assert abs(drawn_at - time.time()) < 60 and 'id="nav-sidebar"' in html
    cache.set(nav_key, (time.time() - 200, '<nav id="nav-sidebar">drawn 200 s ago</nav>'))
    caches["layout"].clear()
    kept: list[float] = []
    original = caches["layout"].set

    def layout_set(key: str, value: object, timeout: float | None) -> None:
        if key == nav_key:  # not the layout's fixed parts (`{% cache %}`, kept for good)
            kept.append(cast(float, timeout))
        original(key, value, timeout)

    monkeypatch.setattr(caches["layout"], "set", layout_set)
    assert "drawn 200 s ago" in creator.get(DIRECTORY).content.decode()
    assert len(kept) == 1 and NAV_SIDEBAR_SECONDS - 201 < kept[0] <= NAV_SIDEBAR_SECONDS - 200


# analytics/crm/_row.html as it was before the rows were drawn in Python (d222135), with the
# words the view passed it: the rows drawn by the page must stay this HTML.
ROW_TEMPLATE = """{% load i18n l10n humanize %}
<tr>
  <td data-label="{{ l_member }}">
    <a href="{% url 'analytics:member' m.pk %}"><strong>{{ m.public_name }}</strong></a>
    <div class="crm-sub">{{ m.email }} · @{{ m.handle }}</div>
    {% for t in m.tag_names %}<span class="crm-tag">{{ t }}</span>{% endfor %}
    {% if m.high_potential %}<span class="crm-flag up">{% translate "high potential" %}</span>{% endif %}
    {% if m.at_risk_loyal %}<span class="crm-flag down">{% translate "at-risk loyal" %}</span>{% endif %}
  </td>
  <td data-label="{{ l_tier }}">{{ m.tier_name|default:_("Free") }}<div class="crm-sub">{{ m.status }}</div></td>
  <td data-label="{{ l_score }}" class="num">{% if m.score is not None %}{{ m.score|floatformat:0 }}{% elif not m.analytics_consent %}<span class="crm-sub" title="{% translate 'No analytics consent' %}">{% translate "no consent" %}</span>{% else %}—{% endif %}</td>
  <td data-label="{{ l_persona }}">{{ m.persona.label|default:"—" }}</td>
  <td data-label="{{ l_churn }}" class="num">{% if m.churn is not None %}{% widthratio m.churn 1 100 %}%{% else %}—{% endif %}</td>
  <td data-label="{{ l_points }}" class="num">{{ m.balance|default:0|intcomma }}</td>
  <td data-label="{{ l_ltv }}" class="num">{{ m.ltv|floatformat:2 }}</td>
  <td data-label="{{ l_seen }}">{{ m.seen_text|default:_("never") }}</td>
  <td data-label="{{ l_joined }}">{{ m.date_joined|date:"SHORT_DATE_FORMAT" }}</td>
</tr>
"""


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_rows_drawn_in_python_are_the_templates_html(creator, ann, language):
    """Every row of the page, drawn cold, is what the row template drew for the same member:
    escaped names and tags, scores rounded half up, no consent, no profile, flags, tiers, large
    balances, lifetime values, last seen."""
    from django.contrib.humanize.templatetags.humanize import naturaltime
    from django.template import Context, Template
    from django.utils import translation

    from analytics.forms import STATUS_LABELS
    from analytics.selectors import (
        DirectoryFilters,
        directory_page,
        member_status,
        tags_by_member,
    )

    run = PersonaRun.objects.get()
    persona = Persona.objects.get()
    tag = Tag.objects.create(name="<VIP & 'co'>")
    gold = TierFactory(name="Gold & <b>", slug="gold", rank=2)
    bob = UserFactory(email="bob@example.com", display_name='Bob "<script>"', analytics_consent=False)
    MemberTag.objects.create(member=bob, tag=tag)
    MemberTag.objects.create(member=bob, tag=Tag.objects.create(name="alpha"))
    MembershipFactory(user=bob, tier=gold)
    PointsAccount.objects.update_or_create(member=bob, defaults={"balance": 1234567, "lifetime": 1234567})
    for n, amount in enumerate(("10.50", "0.01")):
        Payment.objects.create(
            user=bob, provider=Provider.LOCAL, provider_invoice_id=f"in_{n}", status=Payment.Status.PAID,
            amount=Decimal(amount), currency="USD",
        )  # fmt: skip
    cat = UserFactory(email="cat@example.com", analytics_consent=True, last_seen_at=None, last_login=None)
    for email, score, churn in (("dan@example.com", 55.5, 0.125), ("eve@example.com", 0.49, 0.0)):
        member = UserFactory(email=email, analytics_consent=True)
        member.last_seen_at = timezone.now() - timedelta(days=3, hours=2)
        member.save()
        MemberProfile.objects.create(
            run=run, member=member, score=score, persona=persona, churn_risk=churn,
            high_potential=score > 50, at_risk_loyal=True,
        )  # fmt: skip
    PointsAccount.objects.update_or_create(member=cat, defaults={"balance": 0, "lifetime": 0})

    creator.cookies["django_language"] = language
    html = creator.get(DIRECTORY).content.decode()
    drawn = html[html.index("<tbody>") + len("<tbody>") : html.index("</tbody>")].strip()

    with translation.override(language):
        _page, rows = directory_page(filters=DirectoryFilters(), run=run, page=1)
        tags = tags_by_member([m.pk for m in rows])
        template = Template(ROW_TEMPLATE)
        words = {
            "l_member": translation.gettext("Member"), "l_tier": translation.gettext("Tier"),
            "l_score": translation.gettext("Score"), "l_persona": translation.gettext("Persona"),
            "l_churn": translation.gettext("Churn risk"), "l_points": translation.gettext("Points"),
            "l_ltv": translation.gettext("Lifetime value"), "l_seen": translation.gettext("Last seen"),
            "l_joined": translation.gettext("Joined"),
        }  # fmt: skip
        expected = []
        for m in rows:
            m.persona = persona if m.persona_id == persona.pk else None
            m.status = str(
                STATUS_LABELS.get(member_status(live_status=m.live_status, ever_member=m.ever_member), "")
            )
            m.tag_names = tags.get(m.pk, [])
            m.seen_text = naturaltime(m.seen) if m.seen else ""
            expected.append(template.render(Context({"m": m, **words})))
    assert len(rows) == 5
    assert drawn == "".join(expected).strip()
    for shown in (
        "&lt;VIP &amp; &#x27;co&#x27;&gt;",
        "Bob &quot;&lt;script&gt;&quot;",
        ">56<",
        ">0<",
        "10.51",
    ):
        assert shown in drawn, shown


def _listed(response) -> list[str]:
    return [member.email for member in response.context["rows"]]


def _counts(client: Client, url: str) -> tuple[list[str], int, int]:
    """The page's members, its member count, and how many queries counted them."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    counted = sum(1 for q in queries.captured_queries if "COUNT(*)" in q["sql"])
    return _listed(response), response.context["page"].paginator.count, counted


def test_the_kept_list_follows_members_joining_leaving_and_made_staff(creator, ann):
    assert _counts(creator, DIRECTORY)[:2] == (["ann@example.com"], 1)
    assert _counts(creator, DIRECTORY) == (["ann@example.com"], 1, 0)  # kept: not counted again

    bob = UserFactory(email="bob@example.com")
    assert _counts(creator, DIRECTORY) == (["bob@example.com", "ann@example.com"], 2, 1)
    bob.is_staff = True
    bob.save()
    assert _counts(creator, DIRECTORY) == (["ann@example.com"], 1, 1)
    ann.delete()
    assert _counts(creator, DIRECTORY) == ([], 0, 1)


def test_the_kept_persona_list_follows_an_erased_member(creator, ann):
    from analytics.erasure import erase_member

    url = DIRECTORY + "?persona=1"
    assert _counts(creator, url)[:2] == (["ann@example.com"], 1)
    assert _counts(creator, url) == (["ann@example.com"], 1, 0)
    erase_member(member=ann)  # the account itself is anonymised after, by the purge
    assert _counts(creator, url) == ([], 0, 1)


def test_a_new_run_has_lists_of_its_own(creator, ann):
    url = DIRECTORY + "?persona=1"
    assert _counts(creator, url)[:2] == (["ann@example.com"], 1)
    bob = UserFactory(email="bob@example.com", analytics_consent=True)
    creator.get(url)  # the list with bob's account kept: bob has no profile in this run
    run = PersonaRun.objects.create(
        as_of=timezone.localdate() + timedelta(days=1), status=PersonaRun.Status.DONE
    )
    persona = Persona.objects.create(run=run, key=1, description_en="new", description_zh="新", centroid={})
    MemberProfile.objects.create(run=run, member=bob, score=10, persona=persona)
    assert _counts(creator, url)[:2] == (["bob@example.com"], 1)


@pytest.mark.parametrize(
    "query",
    [
        "?q=ann",
        "?sort=points",
        "?sort=seen",
        "?seen=within-7",
        "?consent=yes",
        "?persona=1&flag=at_risk_loyal",
    ],
)
def test_lists_that_change_as_members_act_are_not_kept(creator, ann, query):
    creator.get(DIRECTORY + query)
    assert _counts(creator, DIRECTORY + query)[2] == 1


def test_each_page_of_a_list_is_kept_apart(creator, ann):
    for _ in range(55):
        UserFactory()
    first, total, _counted = _counts(creator, DIRECTORY)
    second = _counts(creator, DIRECTORY + "?page=2")[0]
    assert total == 56 and len(first) == 50 and len(second) == 6 and not set(first) & set(second)
    assert _counts(creator, DIRECTORY + "?page=2") == (second, 56, 0)
    assert _counts(creator, DIRECTORY + "?page=9")[0] == second  # past the end: the last page
    assert _counts(creator, DIRECTORY)[:2] == (first, 56)
