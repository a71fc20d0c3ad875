from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from .models import Content, Tag


class LibraryFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100)
    kind = forms.ChoiceField(required=False, choices=[("", ""), *Content.Kind.choices])
    tag = forms.SlugField(required=False, max_length=50)
    sort = forms.ChoiceField(required=False, choices=[("newest", "newest"), ("popular", "popular")])


class BeaconForm(forms.Form):
    token = forms.CharField(max_length=400)
    dwell = forms.IntegerField(min_value=0, max_value=4 * 3600)
    scroll = forms.IntegerField(min_value=0, max_value=100)
    completed = forms.BooleanField(required=False)


class InterestsForm(forms.Form):
    tags: "forms.ModelMultipleChoiceField[Tag]" = forms.ModelMultipleChoiceField(
        label=_("Topics you care about"),
        queryset=Tag.objects.none(),  # the topics offered are set per form (__init__)
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "btn-check"}),
    )

    def __init__(self, *args: Any, tags: "QuerySet[Tag]", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("forms.ModelMultipleChoiceField[Tag]", self.fields["tags"]).queryset = tags
