"""Profile editing, avatar validation, consent defaults, language and time zone."""

from io import BytesIO

import pytest
from allauth.account.utils import user_display
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation
from PIL import Image

from members.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def image_bytes(fmt="PNG", size=(600, 400), color=(200, 30, 60)) -> bytes:
    buf = BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def profile_data(**overrides):
    data = {
        "display_name": "Ada",
        "handle": "ada_l",
        "bio": "Learning in public.",
        "language": "",
        "time_zone": "",
    }
    data.update(overrides)
    return data


def post_profile(client, files=None, **overrides):
    data = profile_data(**overrides)
    if files:
        data.update(files)
    return client.post(reverse("members:profile"), data)


def test_profile_needs_login(client):
    response = client.get(reverse("members:profile"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_consents_are_off_by_default_and_live_on_the_privacy_page(member_client, member):
    assert member.analytics_consent is False and member.personalisation_consent is False
    html = member_client.get(reverse("members:profile")).content.decode()
    assert 'name="analytics_consent"' not in html and reverse("members:privacy") in html


def test_profile_edit_saves_fields_and_leaves_consent_alone(member_client, member):
    response = post_profile(
        member_client,
        language="zh-hans",
        time_zone="Asia/Shanghai",
        analytics_consent="on",
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.display_name == "Ada"
    assert member.bio == "Learning in public."
    assert member.language == "zh-hans"
    assert member.time_zone == "Asia/Shanghai"
    assert member.analytics_consent is False
    assert member.analytics_consent_at is None


def test_withdrawing_consent_is_time_stamped(member_client, member):
    member_client.post(reverse("members:privacy"), {"analytics": "on"})
    member.refresh_from_db()
    given_at = member.analytics_consent_at
    assert member.analytics_consent is True and given_at is not None
    member_client.post(reverse("members:privacy"), {})
    member.refresh_from_db()
    assert member.analytics_consent is False
    assert member.analytics_consent_at >= given_at


@pytest.mark.parametrize(
    "field,value",
    [("language", "xx-klingon"), ("time_zone", "Mars/Olympus_Mons"), ("display_name", "x" * 61)],
)
def test_profile_rejects_bad_values_with_form_error(member_client, member, field, value):
    response = post_profile(member_client, **{field: value})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    member.refresh_from_db()
    assert member.display_name != "Ada"


def test_avatar_upload_is_reencoded_to_square_webp(member_client, member, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("me.png", image_bytes("PNG"), content_type="image/png")
    response = post_profile(member_client, files={"avatar": upload})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.avatar.name.startswith("avatars/") and member.avatar.name.endswith(".webp")
    with Image.open(member.avatar.path) as saved:
        assert saved.format == "WEBP"
        assert saved.size == (256, 256)
    # Served (only) from the avatar route.
    assert member_client.get(member.avatar.url).status_code == 200


def test_replacing_avatar_deletes_the_old_file(
    member_client, member, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    with django_capture_on_commit_callbacks(execute=True):
        post_profile(member_client, files={"avatar": SimpleUploadedFile("a.png", image_bytes(), "image/png")})
    member.refresh_from_db()
    first = tmp_path / member.avatar.name
    assert first.exists()
    with django_capture_on_commit_callbacks(execute=True):
        post_profile(
            member_client, files={"avatar": SimpleUploadedFile("b.jpg", image_bytes("JPEG"), "image/jpeg")}
        )
    member.refresh_from_db()
    assert not first.exists()
    assert (tmp_path / member.avatar.name).exists()


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("notes.txt", b"just some text, not an image", "not an image"),
        ("fake.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "not an image"),
        ("pic.bmp", image_bytes("BMP", size=(20, 20)), "not accepted"),
        ("pic.tiff", image_bytes("TIFF", size=(20, 20)), "not accepted"),
    ],
)
def test_bad_avatar_files_get_a_clear_error(
    member_client, member, settings, tmp_path, name, content, message
):
    settings.MEDIA_ROOT = tmp_path
    response = post_profile(member_client, files={"avatar": SimpleUploadedFile(name, content)})
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["avatar"])
    assert message in errors
    member.refresh_from_db()
    assert not member.avatar
    assert member.display_name != "Ada"  # nothing half-saved


def test_too_big_avatar_is_refused(member_client, member, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.AVATAR_MAX_BYTES = 10_000
    big = image_bytes("PNG", size=(1500, 1500), color=None)
    big = big + b"\x00" * max(0, 10_001 - len(big))
    response = post_profile(member_client, files={"avatar": SimpleUploadedFile("big.png", big)})
    assert response.status_code == 200
    assert "the limit is" in " ".join(response.context["form"].errors["avatar"])


def test_remove_avatar(member_client, member, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    post_profile(member_client, files={"avatar": SimpleUploadedFile("a.png", image_bytes(), "image/png")})
    post_profile(member_client, remove_avatar="on")
    member.refresh_from_db()
    assert not member.avatar


def test_media_route_serves_only_avatar_names(client):
    assert client.get("/media/avatars/../../settings.py").status_code == 404
    assert client.get("/media/other/file.txt").status_code == 404


def test_language_switch_for_visitor_sets_cookie_and_translates(client):
    response = client.post(reverse("members:set_language"), {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "zh-hans"
    html = client.get("/").content.decode()
    assert '<html lang="zh-hans"' in html
    with translation.override("zh-hans"):
        assert translation.gettext("Home") in html
    assert "首页" in html


def test_language_switch_for_member_is_saved_on_profile(member_client, member):
    member_client.post(reverse("members:set_language"), {"language": "zh-hans"})
    member.refresh_from_db()
    assert member.language == "zh-hans"
    # The saved choice follows the member to a new browser, over Accept-Language.
    other = member_client.__class__()
    other.force_login(member)
    html = other.get("/", headers={"accept-language": "en"}).content.decode()
    assert '<html lang="zh-hans"' in html


def test_invalid_language_code_is_a_400_with_a_message(client):
    response = client.post(reverse("members:set_language"), {"language": "xx"})
    assert response.status_code == 400
    assert "That language is not available." in response.content.decode()


def test_language_switch_ignores_offsite_next(client):
    response = client.post(
        reverse("members:set_language"), {"language": "en", "next": "https://evil.example.com/"}
    )
    assert response["Location"] == "/"


def test_language_switch_needs_post(client):
    assert client.get(reverse("members:set_language")).status_code == 405


def test_member_time_zone_is_activated(member_client, member):
    member.time_zone = "Asia/Tokyo"
    member.save()
    response = member_client.get("/")
    assert response.context["TIME_ZONE"] == "Asia/Tokyo"


def test_public_name_is_the_display_name_else_the_handle_never_the_email():
    user = User(pk=7, email="secret@example.com", display_name="", handle="newbie_nu")
    assert user.public_name == "@newbie_nu" and user.avatar_initial == "N"
    # Django's and allauth's names for the member are the same one.
    assert user.get_short_name() == user.get_full_name() == user_display(user) == "@newbie_nu"
    user.display_name = "  "
    assert user.public_name == "@newbie_nu"
    user.display_name = "ada Lovelace"
    assert user.public_name == "ada Lovelace" and user.avatar_initial == "A"
    assert "secret" not in user.get_short_name() + user.get_full_name()


def test_the_header_shows_the_same_name_as_the_forum(client):
    member = UserFactory(email="newbie.nu@example.com", display_name="", handle="newbie_nu")
    client.force_login(member)
    html = client.get("/").content.decode()
    assert '<span class="member-name">@newbie_nu</span>' in html and "newbie.nu" not in html


def test_saving_the_profile_from_the_welcome_page_goes_back_there(member_client):
    page = member_client.get(reverse("members:profile") + "?next=/welcome/").content.decode()
    assert '<input type="hidden" name="next" value="/welcome/">' in page
    response = post_profile(member_client, next="/welcome/")
    assert response.status_code == 302 and response["Location"] == "/welcome/"
    response = post_profile(member_client, next="https://evil.example.com/")
    assert response["Location"] == reverse("members:profile")


def test_handle_is_normalised_and_saved(member_client, member):
    response = post_profile(member_client, handle="  @Ada_Lovelace ")
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.handle == "ada_lovelace"


@pytest.mark.parametrize(
    ("handle", "message"),
    [
        ("ab", "3 to 30 characters"),
        ("has space", "3 to 30 characters"),
        ("_leading", "3 to 30 characters"),
        ("x" * 31, "at most 30 characters"),
        ("<script>", "3 to 30 characters"),
        ("everyone", "reserved"),
        ("Admin", "reserved"),
        ("TAKEN_ONE", "taken"),
    ],
)
def test_bad_or_taken_handles_are_form_errors(member_client, member, handle, message):
    UserFactory(handle="taken_one")
    before = member.handle
    response = post_profile(member_client, handle=handle)
    assert response.status_code == 200
    assert message in response.content.decode()
    member.refresh_from_db()
    assert member.handle == before


def test_new_members_get_distinct_placeholder_handles():
    first, second = UserFactory(), UserFactory()
    assert first.handle.startswith("member_") and first.handle != second.handle
    assert first.email.split("@")[0] not in first.handle  # never derived from the address


def test_handle_taken_between_form_and_save_is_a_form_error(member_client, member, monkeypatch):
    from members.forms import ProfileForm

    UserFactory(handle="racer_x")
    monkeypatch.setattr(ProfileForm, "validate_unique", lambda self: None)  # it passed a moment ago
    response = post_profile(member_client, handle="racer_x")
    assert response.status_code == 200
    assert "That handle is taken" in response.content.decode()


@pytest.mark.parametrize(
    ("name", "handle"),
    [("Alice Chen", "alice_chen"), ("  Dr. O'Neil ", "dr_o_neil"), ("王丹", ""), ("Al", ""), ("Admin", "")],
)
def test_handle_from_name(name, handle):
    from members.models import handle_from_name

    assert handle_from_name(name) == handle
