from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Category, Flag, NotificationSettings, Thread
from .services.forum import BODY_MAX, TITLE_MAX, TITLE_MIN


class ThreadForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=Thread.Kind.choices, initial=Thread.Kind.DISCUSSION)
    title = forms.CharField(label=_("Title"), min_length=TITLE_MIN, max_length=TITLE_MAX)
    body = forms.CharField(
        label=_("Text"),
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("Markdown: **bold**, *italic*, [links](https://example.com), > quotes, lists."),
    )


class ReplyForm(forms.Form):
    body = forms.CharField(
        label=_("Your reply"), max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 5})
    )


class VoteForm(forms.Form):
    value = forms.TypedChoiceField(choices=[("1", "+1"), ("-1", "-1")], coerce=int)


class FlagForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=Flag.Reason.choices)
    note = forms.CharField(label=_("Note"), max_length=300, required=False)


class NotificationSettingsForm(forms.Form):
    email = forms.ChoiceField(
        label=_("Email me about new notifications"), choices=NotificationSettings.Email.choices
    )


class CommentForm(forms.Form):
    body = forms.CharField(max_length=5000)
    parent = forms.IntegerField(required=False, min_value=1)


class MoveForm(forms.Form):
    category: "forms.ModelChoiceField[Category]" = forms.ModelChoiceField(
        label=_("Move to"), queryset=Category.objects.all()
    )


class SuspendForm(forms.Form):
    days = forms.IntegerField(label=_("Days"), min_value=1, max_value=3650, initial=7)
    reason = forms.CharField(label=_("Reason"), max_length=300)
