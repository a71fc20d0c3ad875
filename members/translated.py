"""The creator's texts kept in every language of LANGUAGES (each app's translation.py).

django-modeltranslation gives a translated field one column per language (`name_en`,
`name_zh_hans`); on an instance, `tier.name` is the active language's value, else the default
language's, else any other's (MODELTRANSLATION_FALLBACK_LANGUAGES), and queries on the registered model itself (`Tier.objects.filter(name=...)`,
`.values("name")`) are rewritten the same way. Two things it does not cover live here:
reading such a field through a relation from a model that is not registered
(`Membership.objects.values("tier__name")` would read the bare `name` column, which holds
whichever language was active when the row was last saved), and giving rows the texts of a
shipped default in every language.
"""

from collections.abc import Mapping

from django.db.models import F, Model, TextField, Value
from django.db.models.functions import Coalesce, NullIf
from modeltranslation.settings import AVAILABLE_LANGUAGES, DEFAULT_LANGUAGE
from modeltranslation.utils import build_localized_fieldname, get_language, resolution_order

# {field: {language code: text}}, e.g. {"name": {"en": "Free", "zh-hans": "免费"}}
Texts = Mapping[str, Mapping[str, str]]


def in_language(path: str) -> Coalesce:
    """`path` (e.g. "tier__name") in the language active now, else in a fallback language: what
    `membership.tier.name` shows, as an expression for `.values()` and `.annotate()`. Build the
    query in the language it is read in."""
    text = TextField()  # each language's column has a field class of its own
    given = [
        NullIf(F(build_localized_fieldname(path, language)), Value(""), output_field=text)
        for language in resolution_order(get_language())  # the active one, then the fallbacks
    ]
    return Coalesce(*given, Value(""), output_field=text)


def columns(texts: Texts) -> dict[str, str]:
    """`texts` as column values for `create()` or `get_or_create(defaults=...)`."""
    return {
        build_localized_fieldname(field, language): text
        for field, by_language in texts.items()
        for language, text in by_language.items()
        if language in AVAILABLE_LANGUAGES
    }


def add_missing_translations(obj: Model, texts: Texts) -> list[str]:
    """Give `obj` the languages of `texts` it has no text in, for each field whose default-language
    text is still the one in `texts` (what a creator rewrote is theirs: a shipped translation of
    the old wording would not match it). Saves and returns the columns it filled."""
    filled = []
    for field, by_language in texts.items():
        default_text = getattr(obj, build_localized_fieldname(field, DEFAULT_LANGUAGE))
        if default_text != by_language.get(DEFAULT_LANGUAGE):
            continue
        for language, text in by_language.items():
            column = build_localized_fieldname(field, language)
            if language in AVAILABLE_LANGUAGES and not getattr(obj, column):
                setattr(obj, column, text)
                filled.append(column)
    if filled:
        obj.save(update_fields=filled)
    return filled
