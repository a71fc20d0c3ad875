import secrets

from django import forms
from django.utils.translation import gettext_lazy as _

from members.models import User


class RedeemForm(forms.Form):
    shipping_address = forms.CharField(required=False, max_length=1000)
    nonce = forms.CharField(required=False, max_length=64)


class PointsChangeForm(forms.Form):
    """A manual grant or deduction for one member (the admin's account page)."""

    points = forms.IntegerField(
        label=_("Points"), min_value=-1_000_000, max_value=1_000_000, help_text=_("Negative to deduct.")
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=200, help_text=_("The member sees it in their history.")
    )
    # One per rendered form: sending it twice (a double click, a reload) records once.
    nonce = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("nonce", secrets.token_urlsafe(16))


class AdjustPointsForm(PointsChangeForm):
    """The same for a member named by email (the ledger's page)."""

    email = forms.EmailField(label=_("Member's email"))
    field_order = ["email", "points", "reason"]

    def clean_email(self):
        member = User.objects.filter(email__iexact=self.cleaned_data["email"]).first()
        if member is None:
            raise forms.ValidationError(_("No member has this email address."))
        self.member = member
        return member.email
