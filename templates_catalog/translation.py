"""Which catalogue fields exist once per language (django-modeltranslation)."""

from modeltranslation.translator import TranslationOptions, register

from templates_catalog.models import Category, Template, TemplateField


@register(Category)
class CategoryTranslation(TranslationOptions):
    fields = ("name",)
    required_languages = ("ja", "en")


@register(Template)
class TemplateTranslation(TranslationOptions):
    fields = (
        "title",
        "description",
        "tags",
        "system_prompt",
        "prompt_body",
        "sample_inputs",
        "sample_answer",
    )
    required_languages = {"ja": ("title", "prompt_body"), "en": ("title", "prompt_body")}


@register(TemplateField)
class TemplateFieldTranslation(TranslationOptions):
    fields = ("label", "help_text", "placeholder", "choices")
    required_languages = {"ja": ("label",), "en": ("label",)}
