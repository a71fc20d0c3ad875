"""Forum area names and descriptions in every language of LANGUAGES (see members/translation.py)."""

from modeltranslation.translator import TranslationOptions, register

from .models import Category


@register(Category)
class CategoryTranslation(TranslationOptions):
    fields = ("name", "description")
