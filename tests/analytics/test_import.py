"""The CRM's CSV import: dry run first, row-level errors, all rows or none, existing members kept."""

import codecs
import os
import re
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from allauth.account.models import EmailAddress
from dateutil.relativedelta import relativedelta
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import resolve, reverse
from django.utils import timezone

from analytics import imports
from analytics.imports import (
    MAX_BYTES,
    MAX_ROWS,
    ImportFileError,
    ImportRefused,
    UploadMissing,
    months_until,
    parse_language,
    parse_moment,
    parse_tags,
    parse_yes_no,
    preview_import,
    read_csv,
)
from analytics.models import MemberNote, MemberTag, Tag
from members.errors import MemberError
from members.models import Membership, MembershipStatus, Provider, User
from tests.factories import PASSWORD, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

STRONG = "a-Long-and-unusual-passphrase-42"
HEADER = "email,name,handle,language,tags,tier,complimentary_until,joined,note,announcements\n"


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path


@pytest.fixture
def creator(db) -> User:
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff(client, creator) -> Client:
    client.force_login(creator)
    return client


@pytest.fixture
def gold(db):
    return TierFactory(slug="gold", name="Gold Circle", rank=5)


def upload(client: Client, content: str | bytes, name: str = "members.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        reverse("analytics:crm_import"), {"file": SimpleUploadedFile(name, data, content_type="text/csv")}
    )


def uploaded(client: Client, content: str | bytes) -> str:
    """Upload a file that has no file-level problem; the token of its dry run."""
    response = upload(client, content)
    assert response.status_code == 302, response.content.decode()[:2000]
    return resolve(response.url).kwargs["token"]


def confirm(client: Client, token: str):
    return client.post(reverse("analytics:crm_import_confirm", args=[token]))


def written() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "addresses": EmailAddress.objects.count(),
        "tags": Tag.objects.count(),
        "member_tags": MemberTag.objects.count(),
        "notes": MemberNote.objects.count(),
        "memberships": Membership.objects.count(),
    }


def three_members() -> str:
    return HEADER + (
        "alice@example.com,Alice Chen,alice_chen,en,vip;early supporter,gold,,2021-03-04,Met at the meetup,yes\n"
        "Bob@Example.com,Bob Li,,zh-CN,vip|newsletter,,,2022-11-20T09:30:00Z,,no\n"
        "carol@example.com,,,,,,,,,\n"
    )


def test_dry_run_reports_and_writes_nothing(staff, gold):
    before = written()
    token = uploaded(staff, three_members())
    page = staff.get(reverse("analytics:crm_import_report", args=[token]))
    assert page.status_code == 200
    assert page.context["summary"] == {
        "create": 3, "update": 0, "skip": 0, "error_rows": 0, "tags": 4, "new_tags": 3, "notes": 1, "grants": 1,
    }  # fmt: skip
    html = page.content.decode()
    assert "Import now" in html and "bob@example.com" in html and "Gold Circle" in html
    assert written() == before


def test_confirm_imports_every_row(staff, creator, gold, on_commit):
    token = uploaded(staff, three_members())
    with on_commit():
        response = confirm(staff, token)
    assert response.status_code == 302 and response.url == reverse("analytics:crm_import")
    alice = User.objects.get(email="alice@example.com")
    bob = User.objects.get(email="bob@example.com")  # stored in lower case
    carol = User.objects.get(email="carol@example.com")
    assert (alice.display_name, alice.handle, alice.language) == ("Alice Chen", "alice_chen", "en")
    assert alice.date_joined.date() == date(2021, 3, 4)
    assert alice.announcements_email and alice.announcements_email_at is not None
    assert bob.language == "zh-hans" and bob.date_joined == datetime(2022, 11, 20, 9, 30, tzinfo=UTC)
    assert not bob.announcements_email and bob.announcements_email_at is None
    assert carol.handle.startswith("member_") and carol.display_name == ""
    for member in (alice, bob, carol):
        assert not member.has_usable_password()
        assert not (member.analytics_consent or member.personalisation_consent)
        address = EmailAddress.objects.get(user=member)
        assert address.email == member.email and address.primary and not address.verified
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["early supporter", "newsletter", "vip"]
    assert set(MemberTag.objects.values_list("member__email", "tag__name", "added_by")) == {
        ("alice@example.com", "vip", creator.pk),
        ("alice@example.com", "early supporter", creator.pk),
        ("bob@example.com", "vip", creator.pk),
        ("bob@example.com", "newsletter", creator.pk),
    }
    note = MemberNote.objects.get()
    assert (note.member, note.author, note.body) == (alice, creator, "Met at the meetup")
    membership = Membership.objects.get()
    assert (membership.user, membership.tier, membership.provider) == (alice, gold, Provider.COMPLIMENTARY)
    assert membership.status == MembershipStatus.ACTIVE and membership.current_period_end is None
    assert membership.granted_by == creator
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]  # the grant's usual welcome
    assert list(imports.upload_dir().iterdir()) == []  # the upload is gone once used
    again = confirm(staff, token)  # a double click
    assert again.status_code == 302 and User.objects.count() == 4 and Membership.objects.count() == 1
    follow = staff.get(response.url)
    assert "New members: 3; existing members filled in: 0" in follow.content.decode()


def test_one_bad_row_imports_nothing_and_names_row_and_column(staff, gold):
    before = written()
    content = three_members() + "dave@example.com,Dave,,,,,,31/12/2020,,\n"
    token = uploaded(staff, content)
    page = staff.get(reverse("analytics:crm_import_report", args=[token]))
    errors = page.context["plan"].errors
    assert [(e.row, e.column) for e in errors] == [(5, "joined")]
    assert "YYYY-MM-DD" in errors[0].message
    html = page.content.decode()
    assert "Import now" not in html and "1 row has errors" in html
    refused = confirm(staff, token)  # posted anyway
    assert refused.status_code == 409 and "nothing was imported" in refused.content.decode()
    assert written() == before


def test_confirm_time_failure_rolls_back_every_row(staff, gold, monkeypatch):
    before = written()
    token = uploaded(staff, three_members() + "dave@example.com,Dave,,,,gold,,,,\n")
    calls = []

    def grant_then_fail(**kwargs):
        calls.append(kwargs["member"].email)
        if len(calls) == 2:
            raise MemberError("The provider is down.")
        return real_grant(**kwargs)

    real_grant = imports.grant_complimentary
    monkeypatch.setattr(imports, "grant_complimentary", grant_then_fail)
    response = confirm(staff, token)
    assert response.status_code == 409
    assert "Row 5 (tier): The provider is down. Nothing was imported." in response.content.decode()
    assert calls == ["alice@example.com", "dave@example.com"]
    assert written() == before  # users, addresses, tags, notes and the first grant rolled back


def test_changes_after_the_dry_run_are_caught_at_confirm(staff, gold):
    token = uploaded(staff, three_members())
    UserFactory(email="carol@example.com")  # signs up between the dry run and the confirmation
    users = User.objects.count()
    changed = confirm(staff, token)
    assert changed.status_code == 409 and "changed since the dry run" in changed.content.decode()
    assert User.objects.count() == users and not Tag.objects.exists()
    assert changed.context["summary"]["create"] == 2  # the new figures, now the ones to confirm
    UserFactory(handle="alice_chen")  # and now someone takes a handle from the file
    taken = confirm(staff, token)
    assert taken.status_code == 409 and "@alice_chen is taken" in taken.content.decode()
    assert User.objects.count() == users + 1


def test_duplicates_in_the_file(staff):
    content = HEADER + (
        "ann@example.com,Ann,ann_1,,,,,,,\nbea@example.com,Bea,ann_1,,,,,,,\n"
        "x@example.com,,,,,,,,,\nANN@example.com,Ann again,,,,,,,,\n"
    )
    token = uploaded(staff, content)
    errors = staff.get(reverse("analytics:crm_import_report", args=[token])).context["plan"].errors
    assert [(e.row, e.column, e.message) for e in errors] == [
        (3, "handle", "Same handle as row 2."),
        (5, "email", "Same address as row 2."),
    ]


def test_row_errors_name_their_column(staff, gold):
    UserFactory(handle="taken_one")
    content = HEADER + (
        "not-an-address,,,,,,,,,\n"
        f"a@example.com,{'x' * 61},,,,,,,,\n"
        "b@example.com,,taken_one,,,,,,,\n"
        "c@example.com,,No Spaces,,,,,,,\n"
        "d@example.com,,,fr,,,,,,\n"
        "e@example.com,,,,,platinum,,,,\n"
        "f@example.com,,,,,,2030-01-01,,,\n"
        "g@example.com,,,,,gold,2001-01-01,,,\n"
        "h@example.com,,,,,,,2999-01-01,,\n"
        "i@example.com,,,,,,,,,maybe\n"
        f"j@example.com,,,,,,,,{'n' * 5001},\n"
        f"k@example.com,,,,{'t' * 51},,,,,\n"
        ",,,,,,,,,yes\n"
        'l@example.com,"Chen, Lee",,,,,,,,,extra\n'
    )
    token = uploaded(staff, content)
    errors = staff.get(reverse("analytics:crm_import_report", args=[token])).context["plan"].errors
    found = {(e.row, e.column): e.message for e in errors}
    assert "not a valid email" in found[(2, "email")]
    assert "Longer than 60" in found[(3, "name")]
    assert "taken" in found[(4, "handle")]
    assert "lowercase letters" in found[(5, "handle")]
    assert "not a language this site offers" in found[(6, "language")]
    assert "not a tier here" in found[(7, "tier")] and "gold" in found[(7, "tier")]
    assert "without a tier" in found[(8, "complimentary_until")]
    assert "has passed" in found[(9, "complimentary_until")]
    assert "in the future" in found[(10, "joined")]
    assert "yes or no" in found[(11, "announcements")]
    assert "Longer than 5000" in found[(12, "note")]
    assert "longer than 50" in found[(13, "tags")]
    assert "required" in found[(14, "email")]
    assert "needs quotes" in found[(15, "(values past the last column)")]
    assert len(found) == 14


def test_existing_members_are_only_filled_in(staff, creator, gold):
    own = UserFactory(email="own@example.com", display_name="Own Name", handle="own_handle", language="")
    own_joined = own.date_joined
    Tag.objects.create(name="VIP")
    payer = UserFactory(email="payer@example.com", display_name="")
    paid = MembershipFactory(user=payer, tier=gold)
    chose = UserFactory(email="chose@example.com", announcements_email_at=timezone.now())
    content = HEADER + (
        "OWN@example.com,Someone Else,someone,zh-CN,vip;new tag,gold,,2019-01-01,From Ghost,yes\n"
        "payer@example.com,Pay Er,,,,gold,,,,\n"
        "chose@example.com,,,,,,,,,yes\n"
    )
    token = uploaded(staff, content)
    page = staff.get(reverse("analytics:crm_import_report", args=[token]))
    assert page.context["summary"]["update"] == 2 and page.context["summary"]["skip"] == 1
    assert dict(page.context["kept"]) == {"name": 1, "handle": 1, "joined": 1, "tier": 1, "announcements": 1}
    assert dict(page.context["fills"]) == {"language": 1, "announcements": 1, "name": 1}
    assert confirm(staff, token).status_code == 302
    own.refresh_from_db()
    assert (own.display_name, own.handle, own.language) == ("Own Name", "own_handle", "zh-hans")
    assert own.date_joined == own_joined and own.announcements_email
    assert own.check_password(PASSWORD) and EmailAddress.objects.get(user=own).verified
    assert set(MemberTag.objects.filter(member=own).values_list("tag__name", flat=True)) == {"VIP", "new tag"}
    assert MemberNote.objects.get(member=own).author == creator
    assert Membership.objects.get(user=own).provider == Provider.COMPLIMENTARY
    payer.refresh_from_db()
    assert payer.display_name == "Pay Er"
    assert list(Membership.objects.filter(user=payer)) == [paid]  # what they pay for is untouched
    chose.refresh_from_db()
    assert not chose.announcements_email  # they turned announcements off themselves
    assert User.objects.count() == 4  # nobody new


def test_importing_the_same_file_again_adds_nothing(staff, gold):
    confirm(staff, uploaded(staff, three_members()))
    before = written()
    token = uploaded(staff, three_members())
    summary = staff.get(reverse("analytics:crm_import_report", args=[token])).context["summary"]
    assert (summary["create"], summary["update"], summary["skip"]) == (0, 0, 3)
    assert confirm(staff, token).status_code == 302
    assert written() == before


def test_tags_reuse_existing_names_and_tiers_by_name_or_slug(staff, gold):
    vip = Tag.objects.create(name="VIP")
    until = timezone.localdate() + timedelta(days=70)
    content = (
        "email,tags,tier,complimentary_until\n"
        f'a@example.com,"vip, Fans | fans",Gold Circle,{until.isoformat()}\n'
        "b@example.com,VIP,free,\n"
    )
    confirm(staff, uploaded(staff, content))
    a = User.objects.get(email="a@example.com")
    assert set(MemberTag.objects.filter(member=a).values_list("tag__name", flat=True)) == {"VIP", "Fans"}
    assert Tag.objects.count() == 2 and MemberTag.objects.filter(tag=vip).count() == 2
    membership = Membership.objects.get()
    assert membership.user == a
    assert membership.current_period_end.date() >= until  # 70 days, rounded up to 3 months
    assert membership.current_period_end.date() <= timezone.localdate() + relativedelta(months=3)


def test_tier_grants_per_file_are_limited(staff, gold, monkeypatch):
    monkeypatch.setattr(imports, "MAX_GRANTS", 2)
    paying = UserFactory(email="pays@example.com")
    MembershipFactory(user=paying, tier=gold)
    content = (
        "email,tier\n" + "".join(f"t{i}@example.com,gold\n" for i in range(2)) + "pays@example.com,gold\n"
    )
    content += "t2@example.com,gold\nt3@example.com,\nt4@example.com,gold\n"
    token = uploaded(staff, content)
    page = staff.get(reverse("analytics:crm_import_report", args=[token]))
    assert [(e.row, e.column) for e in page.context["plan"].errors] == [(5, "tier"), (7, "tier")]
    assert "already grant 2 tiers" in page.context["plan"].errors[0].message
    assert page.context["summary"]["grants"] == 2  # the paying member's row grants nothing


def test_values_with_quotes_newlines_tabs_and_backslashes_arrive_intact(staff):
    note = 'Line one\nline two\twith a tab, a \\ backslash, a \\N and "quotes"'
    escaped = note.replace('"', '""')
    confirm(staff, uploaded(staff, f'email,name,note\nq@example.com,"O\'Brien ""Bob""","{escaped}"\n'))
    member = User.objects.get(email="q@example.com")
    assert member.display_name == 'O\'Brien "Bob"'
    assert MemberNote.objects.get(member=member).body == note


def test_bom_semicolons_and_windows_line_ends(staff):
    content = codecs.BOM_UTF8 + "Email;Display Name;Tags\r\nzoe@example.com;Zoë Wang;a|b;\r\n\r\n".encode()
    confirm(staff, uploaded(staff, content))
    zoe = User.objects.get(email="zoe@example.com")
    assert zoe.display_name == "Zoë Wang"
    assert set(MemberTag.objects.filter(member=zoe).values_list("tag__name", flat=True)) == {"a", "b"}


def test_ghost_export_columns(staff):
    content = (
        "id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,created_at,deleted_at,labels,tiers,analytics_consent\n"
        '5f1,ghost@example.com,Gho St,Likes cats,true,false,,2020-05-01T10:00:00.000Z,,"a, b",,yes\n'
    )
    token = uploaded(staff, content)
    plan = staff.get(reverse("analytics:crm_import_report", args=[token])).context["plan"]
    assert plan.ignored == ("id", "complimentary_plan", "stripe_customer_id", "deleted_at")
    assert plan.refused == ("analytics_consent",)
    confirm(staff, token)
    ghost = User.objects.get(email="ghost@example.com")
    assert ghost.announcements_email and not ghost.analytics_consent
    assert ghost.date_joined == datetime(2020, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (codecs.BOM_UTF8 + b"\r\n \n", "The file is empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG image"),
        (b"email,name\nx@example.com,\x00\x01\x02", "binary file"),
        ("email,name\nx@example.com,Zoë\n".encode("latin-1"), "not UTF-8"),
        ("email,name\nx@example.com,Zoë\n".encode("utf-16"), "UTF-16"),
        (b"mail address,name\nx@example.com,X\n", "no email column"),
        (b"email,name,Name\nx@example.com,X,Y\n", "mean the same thing"),
        (b"email\n", "no members"),
        (b'email,name\nx@example.com,"X\ny@example.com,"Y"\n', "cannot be read as CSV"),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_400(staff, content, message):
    before = written()
    response = upload(staff, content)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert written() == before and not imports.upload_dir().exists()


def test_size_and_row_limits(staff):
    big = b"email,note\n" + b"x@example.com," + b"n" * MAX_BYTES + b"\n"
    response = upload(staff, big)
    assert response.status_code == 400 and "the limit is 5.0 MB" in response.content.decode()
    many = "email\n" + "".join(f"m{i}@example.com\n" for i in range(MAX_ROWS + 1))
    response = upload(staff, many)
    assert response.status_code == 400 and "more than 50,000 rows" in response.content.decode()
    assert upload(staff, "").status_code == 400
    missing = staff.post(reverse("analytics:crm_import"), {})
    assert missing.status_code == 400 and "This field is required" in missing.content.decode()


def test_staff_only(client, member, creator):
    url = reverse("analytics:crm_import")
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("account_login"))
    assert upload(client, three_members()).status_code == 302 and not imports.upload_dir().exists()
    stored = imports.stash_upload(
        data=three_members().encode(), filename="m.csv", owner=creator, previewed={}
    )
    assert confirm(client, stored.token).url.startswith(reverse("account_login"))
    client.force_login(member)
    assert client.get(url).status_code == 403
    assert upload(client, three_members()).status_code == 403
    assert confirm(client, stored.token).status_code == 403
    assert client.get(reverse("analytics:crm_import_report", args=[stored.token])).status_code == 403
    moderator = UserFactory(is_staff=True)  # staff, but may not add members
    client.force_login(moderator)
    assert client.get(url).status_code == 403
    # Adding members needs "add user", and every creator page "view user" (it lists members).
    moderator.user_permissions.add(*Permission.objects.filter(codename__in=["add_user", "view_user"]))
    client.force_login(User.objects.get(pk=moderator.pk))
    assert client.get(url).status_code == 200
    assert not User.objects.filter(email="alice@example.com").exists()


def test_posts_need_the_csrf_token(creator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(creator)
    assert upload(client, three_members()).status_code == 403
    stored = imports.stash_upload(
        data=three_members().encode(), filename="m.csv", owner=creator, previewed={}
    )
    assert confirm(client, stored.token).status_code == 403
    assert client.post(reverse("analytics:crm_import_discard", args=[stored.token])).status_code == 403
    assert not User.objects.filter(email="alice@example.com").exists()
    page = client.get(reverse("analytics:crm_import_report", args=[stored.token]))
    assert page.status_code == 200 and "csrfmiddlewaretoken" in page.content.decode()


def test_an_upload_belongs_to_its_uploader_and_expires(staff, creator, monkeypatch):
    other = Client()
    other.force_login(UserFactory(is_staff=True, is_superuser=True))
    token = uploaded(staff, three_members())
    for response in (
        other.get(reverse("analytics:crm_import_report", args=[token])),
        confirm(other, token),
        other.post(reverse("analytics:crm_import_discard", args=[token])),
    ):
        assert response.status_code == 302 and response.url == reverse("analytics:crm_import")
    assert not User.objects.filter(email="alice@example.com").exists()
    assert staff.get(reverse("analytics:crm_import_report", args=[token])).status_code == 200  # still there
    not_a_token = staff.get(reverse("analytics:crm_import_report", args=["..%2F..%2Fetc"]))
    assert not_a_token.status_code == 302
    assert staff.get("/admin/insights/crm/import/..%2F..%2Fetc%2Fpasswd/").status_code == 404
    with pytest.raises(UploadMissing):
        imports.stored_upload(token="x" * 32, owner=creator)
    later = time.time() + imports.UPLOAD_TTL_SECONDS + 1
    monkeypatch.setattr(imports, "wall_clock", lambda: later)
    expired = staff.get(reverse("analytics:crm_import_report", args=[token]), follow=True)
    assert "expired" in expired.content.decode()
    assert list(imports.upload_dir().iterdir()) == []


def test_discard_and_prune(staff, creator):
    token = uploaded(staff, three_members())
    assert staff.post(reverse("analytics:crm_import_discard", args=[token])).status_code == 302
    assert list(imports.upload_dir().iterdir()) == []
    old = imports.stash_upload(data=b"email\na@example.com\n", filename="a.csv", owner=creator, previewed={})
    stale = time.time() - imports.UPLOAD_TTL_SECONDS - 60
    for path in imports.upload_dir().iterdir():
        os.utime(path, (stale, stale))
    fresh = imports.stash_upload(
        data=b"email\nb@example.com\n", filename="b.csv", owner=creator, previewed={}
    )
    names = sorted(path.name for path in imports.upload_dir().iterdir())
    assert names == [f"{fresh.token}.csv", f"{fresh.token}.json"] and old.token != fresh.token


def test_errors_download_lists_every_error(staff):
    content = "email,name\n" + "".join(f"=bad{i},X\n" for i in range(3))
    token = uploaded(staff, content)
    response = staff.get(reverse("analytics:crm_import_errors", args=[token]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "row,column,error" and len(lines) == 4
    assert lines[1].startswith("2,email,") and "“=bad0”" in lines[1]


def _link(message, prefix: str) -> str:
    match = re.search(rf"https?://[^/\s]+({prefix}[^\s]*)", message.body)
    assert match, message.body
    return match.group(1)


def test_imported_members_choose_a_password_then_confirm_their_address(staff, client, gold):
    confirm(staff, uploaded(staff, three_members()))
    mail.outbox.clear()
    client.post(reverse("account_reset_password"), {"email": "carol@example.com"})
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]
    set_url = client.get(_link(mail.outbox[0], "/accounts/password/reset/key/"))["Location"]
    assert client.post(set_url, {"password1": STRONG, "password2": STRONG}).status_code == 302
    assert User.objects.get(email="carol@example.com").check_password(STRONG)
    mail.outbox.clear()
    signed_in = client.post(reverse("account_login"), {"login": "carol@example.com", "password": STRONG})
    assert signed_in.status_code == 302 and signed_in["Location"] == reverse(
        "account_email_verification_sent"
    )
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]  # the confirmation link
    confirm_url = _link(mail.outbox[0], "/accounts/confirm-email/")
    assert client.get(confirm_url).status_code == 200
    client.post(confirm_url)
    assert EmailAddress.objects.get(email="carol@example.com").verified


def test_the_dry_run_reads_in_a_fixed_number_of_queries(django_assert_max_num_queries, gold):
    def file(n: int) -> bytes:
        rows = "".join(f"m{i}@example.com,Member {i},,,tag{i % 7},gold,,,note {i},yes\n" for i in range(n))
        return (HEADER + rows).encode()

    for i in range(0, 40, 3):
        UserFactory(email=f"m{i}@example.com")
    with django_assert_max_num_queries(10):
        small = preview_import(data=file(20))
    with django_assert_max_num_queries(10):
        large = preview_import(data=file(600))
    assert small.summary()["update"] == 7 and large.summary()["update"] == 14
    assert large.summary()["create"] == 586


def test_import_service_refuses_a_plan_with_errors(creator):
    with pytest.raises(ImportRefused) as refused:
        imports.import_members(data=b"email\nnope\n", importer=creator)
    assert refused.value.plan is not None and refused.value.plan.errors[0].row == 2
    assert not User.objects.filter(email="nope").exists()


# --- The parsing functions ---------------------------------------------------------------


def test_dates_other_platforms_write():
    utc = UTC
    assert parse_moment("2023-01-05T10:00:00.000Z", utc) == datetime(2023, 1, 5, 10, tzinfo=utc)
    assert parse_moment("2023-01-05 10:00:00 UTC", utc) == datetime(2023, 1, 5, 10, tzinfo=utc)
    assert parse_moment("2023/1/5", utc) == datetime(2023, 1, 5, tzinfo=utc)
    assert parse_moment("2023-01-05 10:00:00.123456+08:00", utc).hour == 10
    for bad in ("05/01/2023", "yesterday", "2023-02-30", "1900-01-01"):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            parse_moment(bad, utc)


def test_small_parsers():
    assert [parse_yes_no(v) for v in ("Yes", "TRUE", "1", "no", "false", "", "opted out")] == [
        True, True, True, False, False, False, False,
    ]  # fmt: skip
    with pytest.raises(ValueError):
        parse_yes_no("perhaps")
    languages = ["en", "zh-hans"]
    assert [parse_language(v, languages) for v in ("EN", "en_US", "zh", "zh-CN", "zh-Hans")] == [
        "en", "en", "zh-hans", "zh-hans", "zh-hans",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        parse_language("zh-TW", languages)
    assert parse_tags(" vip ; Early  supporter|VIP, fans ") == ["vip", "Early supporter", "fans"]
    with pytest.raises(ValueError, match="More than 20"):
        parse_tags(";".join(f"t{i}" for i in range(21)))
    assert months_until(date(2024, 1, 31), date(2024, 2, 29)) == 1
    assert months_until(date(2024, 1, 15), date(2024, 2, 16)) == 2
    assert months_until(date(2024, 1, 15), date(2025, 1, 15)) == 12


def test_read_csv_maps_headers_and_counts_blank_rows():
    csv_file = read_csv(b"E-mail, Full Name ,First Name,whatever\n\na@example.com,A,,\n,,,\n")
    assert csv_file.headers == {"email": "E-mail", "name": "Full Name", "first_name": "First Name"}
    assert csv_file.ignored == ("whatever",) and csv_file.blank_rows == 2 and csv_file.delimiter == ","
    assert [row.number for row in csv_file.rows] == [3]
    with pytest.raises(ImportFileError, match="Row 3 cannot be read"):
        read_csv(b'email\na@example.com\n"b@example.com\nc"d\n')
