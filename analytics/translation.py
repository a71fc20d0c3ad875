"""The name a creator gives a persona, in every language of LANGUAGES (see members/translation.py;
the generated descriptions already come in both languages)."""

from modeltranslation.translator import TranslationOptions, register

from .models import Persona


@register(Persona)
class PersonaTranslation(TranslationOptions):
    fields = ("name",)
