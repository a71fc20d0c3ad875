import zoneinfo
from functools import cache
from typing import cast

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .avatars import process_avatar
from .consent import CONSENT_FIELDS, client_ip, consent_value, set_consent
from .models import CancelReason, ConsentEvent, Interval, Tier, User


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(tz, tz.replace("_", " ")) for tz in sorted(zoneinfo.available_timezones())]


class ProfileForm(forms.ModelForm):
    avatar = forms.FileField(
        label=_("Avatar"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}),
    )
    remove_avatar = forms.BooleanField(label=_("Remove my avatar"), required=False)
    language = forms.ChoiceField(label=_("Language"), required=False)
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False)

    class Meta:
        model = User
        fields = [
            "display_name",
            "handle",
            "bio",
            "language",
            "time_zone",
        ]
        widgets = {"bio": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Both are declared ChoiceFields above; `fields` is typed by its base class only.
        cast(forms.ChoiceField, self.fields["language"]).choices = [
            ("", _("Same as my browser")),
            *settings.LANGUAGES,
        ]
        cast(forms.ChoiceField, self.fields["time_zone"]).choices = [
            ("", _("Site default (%(tz)s)") % {"tz": settings.TIME_ZONE}),
            *time_zone_choices(),
        ]
        self.fields["avatar"].help_text = _(
            "JPEG, PNG, WebP or GIF, up to %(mb)s MB. It is cropped to a square."
        ) % {"mb": settings.AVATAR_MAX_BYTES // (1024 * 1024)}

    def clean_handle(self):
        # Lower-cased before the model's validators and unique check run on it.
        return self.cleaned_data["handle"].strip().lstrip("@").lower()

    def clean_avatar(self):
        upload = self.cleaned_data.get("avatar")
        if not upload:
            return None
        return process_avatar(upload)


class ConsentForm(forms.Form):
    """The privacy page's consents: one unticked box per kind until the member opts in."""

    def __init__(self, *args, member: User | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        for kind, field in CONSENT_FIELDS.items():
            self.fields[kind] = forms.BooleanField(
                label=field.label,
                help_text=field.help,
                required=False,
                initial=consent_value(member, kind) if member is not None else False,
            )

    def choices(self) -> dict[str, bool]:
        return {kind: bool(self.cleaned_data.get(kind)) for kind in CONSENT_FIELDS}


class SignupConsentForm(forms.Form):
    """Extra boxes on allauth's sign-up form (ACCOUNT_SIGNUP_FORM_CLASS): the same optional
    consents, unticked; those ticked are recorded with source "signup"."""

    # After allauth's own fields (it applies `field_order` once it has added the passwords).
    field_order = ["email", "password1", "password2", *(f"consent_{kind}" for kind in CONSENT_FIELDS)]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for kind, field in CONSENT_FIELDS.items():
            # Labels only: the sign-up page links to the privacy policy, which explains each.
            self.fields[f"consent_{kind}"] = forms.BooleanField(label=field.label, required=False)

    def consent_choices(self) -> dict[str, bool]:
        return {kind: bool(self.cleaned_data.get(f"consent_{kind}")) for kind in CONSENT_FIELDS}

    def signup(self, request, user) -> None:
        """allauth calls this once the new user is saved (never for a taken address)."""
        for kind, granted in self.consent_choices().items():
            if granted:
                set_consent(
                    member=user,
                    kind=kind,
                    granted=True,
                    source=ConsentEvent.Source.SIGNUP,
                    ip=client_ip(request),
                )


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=settings.LANGUAGES)
    next = forms.CharField(required=False, max_length=2000)


class PlanForm(forms.Form):
    """A tier and a billing interval, as posted from the pricing page."""

    tier = forms.SlugField(max_length=80)
    interval = forms.ChoiceField(choices=Interval.choices)


class CheckoutForm(PlanForm):
    promotion_code = forms.CharField(max_length=40, required=False, strip=True)
    next = forms.CharField(max_length=2000, required=False)


class PlanChangeForm(forms.Form):
    """The member's confirmation of a plan-change preview (its signed token)."""

    token = forms.CharField(max_length=4000)
    next = forms.CharField(max_length=2000, required=False)


class CancelForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("What made you decide to cancel? (optional)"),
        choices=CancelReason.choices,
        required=False,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )
    comment = forms.CharField(
        label=_("Anything you would like us to know? (optional)"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ComplimentaryForm(forms.Form):
    email = forms.EmailField(label=_("Member's email"))
    tier: "forms.ModelChoiceField[Tier]" = forms.ModelChoiceField(
        label=_("Tier"), queryset=Tier.objects.filter(rank__gt=0)
    )
    duration = forms.ChoiceField(
        label=_("For"),
        choices=[
            ("1", _("1 month")),
            ("3", _("3 months")),
            ("6", _("6 months")),
            ("12", _("12 months")),
            ("forever", _("forever")),
        ],
    )
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        member = User.objects.filter(email__iexact=email).first()
        if member is None:
            raise forms.ValidationError(_("No member has this email address."))
        self.member = member
        return email


class DeleteAccountForm(forms.Form):
    """The member confirms the deletion of their account with their password."""

    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, member: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.member = member

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.member.check_password(password):
            raise forms.ValidationError(_("That is not your password."))
        return password
