import zoneinfo
from functools import cache

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .avatars import process_avatar
from .models import User


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
            "bio",
            "language",
            "time_zone",
            "analytics_consent",
            "personalisation_consent",
        ]
        labels = {
            "analytics_consent": _("Include me in community analytics"),
            "personalisation_consent": _("Personalise my recommendations"),
        }
        help_texts = {
            "analytics_consent": _(
                "Lets the creator see your activity in aggregate reports (engagement, personas)."
            ),
            "personalisation_consent": _("Uses what you read and watch to suggest what to read next."),
        }
        widgets = {"bio": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("Same as my browser")), *settings.LANGUAGES]
        self.fields["time_zone"].choices = [
            ("", _("Site default (%(tz)s)") % {"tz": settings.TIME_ZONE}),
            *time_zone_choices(),
        ]
        self.fields["avatar"].help_text = _(
            "JPEG, PNG, WebP or GIF, up to %(mb)s MB. It is cropped to a square."
        ) % {"mb": settings.AVATAR_MAX_BYTES // (1024 * 1024)}

    def clean_avatar(self):
        upload = self.cleaned_data.get("avatar")
        if not upload:
            return None
        return process_avatar(upload)


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=settings.LANGUAGES)
    next = forms.CharField(required=False, max_length=2000)
