from __future__ import annotations

from typing import Any, cast

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from members.models import MembershipStatus, Tier

from .models import Persona, Tag
from .selectors import DirectoryFilters

# The query-string keys the directory understands; a segment keeps exactly these.
FILTER_KEYS = (
    "q", "tier", "status", "persona", "score_min", "score_max", "churn_min", "seen", "tag", "consent", "flag",
    "sort",
)  # fmt: skip

STATUS_CHOICES = [
    ("", _("any status")),
    ("free", _("free (never paid)")),
    (MembershipStatus.TRIALING, _("trialing")),
    (MembershipStatus.ACTIVE, _("active")),
    (MembershipStatus.PAST_DUE, _("payment failed")),
    ("lapsed", _("lapsed (a paid membership ended)")),
]
# Short names of a member's status, for the directory's rows.
STATUS_LABELS = {
    "free": _("free"),
    "lapsed": _("lapsed"),
    **{status.value: status.label for status in MembershipStatus},
}
SEEN_CHOICES = [
    ("", _("any time")),
    ("within-7", _("in the last 7 days")),
    ("within-30", _("in the last 30 days")),
    ("within-90", _("in the last 90 days")),
    ("not-30", _("not for 30 days")),
    ("not-90", _("not for 90 days")),
    ("never", _("never")),
]
SORT_CHOICES = [
    ("joined", _("newest first")),
    ("-joined", _("oldest first")),
    ("score", _("highest score")),
    ("-score", _("lowest score")),
    ("churn", _("highest churn risk")),
    ("-churn", _("lowest churn risk")),
    ("seen", _("seen most recently")),
    ("-seen", _("seen longest ago")),
    ("points", _("most points")),
    ("-points", _("fewest points")),
    ("ltv", _("highest lifetime value")),
    ("-ltv", _("lowest lifetime value")),
    ("email", _("email A–Z")),
    ("-email", _("email Z–A")),
]


class DirectoryForm(forms.Form):
    """The directory's filters, read from the query string (and from saved segments)."""

    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    tier: forms.ModelChoiceField[Tier] = forms.ModelChoiceField(
        label=_("Tier"), queryset=Tier.objects.order_by("rank"), to_field_name="slug", required=False,
        empty_label=_("any tier"),
    )  # fmt: skip
    status = forms.ChoiceField(label=_("Status"), choices=STATUS_CHOICES, required=False)
    persona = forms.TypedChoiceField(label=_("Persona"), coerce=int, required=False, empty_value=None)
    score_min = forms.FloatField(label=_("Score from"), min_value=0, max_value=100, required=False)
    score_max = forms.FloatField(label=_("Score to"), min_value=0, max_value=100, required=False)
    churn_min = forms.IntegerField(
        label=_("Churn risk at least (%)"), min_value=0, max_value=100, required=False
    )
    seen = forms.ChoiceField(label=_("Last seen"), choices=SEEN_CHOICES, required=False)
    tag = forms.ModelChoiceField(
        label=_("Tag"), queryset=Tag.objects.all(), required=False, empty_label=_("any tag")
    )
    consent = forms.ChoiceField(
        label=_("Analytics consent"),
        choices=[("", _("either")), ("yes", _("given")), ("no", _("not given"))],
        required=False,
    )
    flag = forms.ChoiceField(
        label=_("List"),
        choices=[
            ("", _("everyone")),
            ("high_potential", _("high-potential fans")),
            ("at_risk_loyal", _("at-risk loyal fans")),
        ],
        required=False,
    )
    sort = forms.ChoiceField(label=_("Sort"), choices=SORT_CHOICES, required=False)

    def __init__(self, *args: Any, personas: list[Persona], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.TypedChoiceField, self.fields["persona"]).choices = [
            ("", _("any persona")),
            *((p.key, p.label) for p in personas),
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            self.add_error("score_max", _("The upper score must not be below the lower one."))
        return data

    def filters(self) -> DirectoryFilters:
        data = self.cleaned_data
        tier: Tier | None = data.get("tier")
        tag: Tag | None = data.get("tag")
        churn = data.get("churn_min")
        return DirectoryFilters(
            q=data.get("q") or "",
            tier_rank=tier.rank if tier else None,
            status=data.get("status") or "",
            persona_key=data.get("persona"),
            score_min=data.get("score_min"),
            score_max=data.get("score_max"),
            churn_min=churn / 100 if churn is not None else None,
            seen=data.get("seen") or "",
            tag_id=tag.pk if tag else None,
            consent=data.get("consent") or "",
            flag=data.get("flag") or "",
            sort=data.get("sort") or "joined",
        )

    def query(self) -> dict[str, str]:
        """The filters as they came, without empty values: what a segment stores."""
        return {key: str(self.data[key]) for key in FILTER_KEYS if self.data.get(key) not in (None, "")}


def query_dict(query: dict[str, str]) -> QueryDict:
    data = QueryDict(mutable=True)
    for key in FILTER_KEYS:
        if key in query:
            data[key] = query[key]
    return data


class SegmentForm(forms.Form):
    name = forms.CharField(label=_("Segment name"), max_length=80)


class TagForm(forms.Form):
    name = forms.CharField(label=_("Tag"), max_length=50)

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError(_("Type a tag."))
        return name


class NoteForm(forms.Form):
    body = forms.CharField(label=_("Note"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class BroadcastForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=150)
    body = forms.CharField(
        label=_("Message"),
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text=_("Markdown. Each member gets it in an email with a one-click unsubscribe link."),
    )
