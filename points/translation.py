"""Level, privilege and reward names in every language of LANGUAGES (see members/translation.py)."""

from modeltranslation.translator import TranslationOptions, register

from .models import Level, Privilege, RedemptionItem


@register(Level)
class LevelTranslation(TranslationOptions):
    fields = ("name", "description")


@register(Privilege)
class PrivilegeTranslation(TranslationOptions):
    fields = ("name",)


@register(RedemptionItem)
class RedemptionItemTranslation(TranslationOptions):
    fields = ("name", "description")
