"""What the creator types in every language of LANGUAGES (django-modeltranslation adds a
column per language, e.g. `name_en` and `name_zh_hans`; `tier.name` reads the active language's
value, else the default language's; members/translated.py has the helpers)."""

from modeltranslation.translator import TranslationOptions, register

from .models import Tier


@register(Tier)
class TierTranslation(TranslationOptions):
    fields = ("name", "description", "perks")
