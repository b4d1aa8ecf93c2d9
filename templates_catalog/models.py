"""The catalogue: categories, generation templates and their typed input fields."""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from templates_catalog.choices import ChoiceParseError, parse_choices
from templates_catalog.icons import Look, category_look
from templates_catalog.prompting import PromptSyntaxError, parse_prompt

field_name_validator = RegexValidator(
    r"^[a-z][a-z0-9_]*$",
    _("Use lowercase letters, digits and underscores, starting with a letter."),
)


class Category(models.Model):
    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=100)
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["order", "slug"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:category", args=[self.slug])

    @property
    def look(self) -> Look:
        """Its icon and colour tone on the pages."""
        return category_look(self.slug)


class TemplateQuerySet(models.QuerySet["Template"]):
    def published(self) -> TemplateQuerySet:
        return self.filter(status=Template.Status.PUBLISHED)

    def visible_to(self, user) -> TemplateQuerySet:
        """Published templates; staff also see drafts (to try them before publishing)."""
        if getattr(user, "is_staff", False):
            return self.all()
        return self.published()

    def related_to(self, template: Template) -> TemplateQuerySet:
        """The templates `template`'s page links to, in the order it lists them."""
        return self.filter(related_backlinks__from_template=template).order_by(
            "related_backlinks__order"
        )


class Template(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        IMAGE = "image", _("Image")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")

    class Tier(models.TextChoices):
        STANDARD = "standard", _("Standard")
        ADVANCED = "advanced", _("Advanced")

    class AnswerFormat(models.TextChoices):
        """What the answer is written as: Markdown (reports, plans: headings,
        lists and tables, shown formatted) or plain text (emails, letters,
        messages: pasted as they are, so the model is asked for no Markdown and
        the answer is shown and copied as written)."""

        MARKDOWN = "markdown", _("Markdown (headings, lists, tables)")
        PLAIN = "plain", _("Plain text, ready to paste")

    slug = models.SlugField(_("slug"), unique=True)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="templates", verbose_name=_("category")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind, default=Kind.TEXT)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.DRAFT)
    tier = models.CharField(
        _("model tier"),
        max_length=10,
        choices=Tier,
        default=Tier.STANDARD,
        help_text=_("Advanced templates run on the provider's stronger model."),
    )
    answer_format = models.CharField(
        _("answer format"),
        max_length=10,
        choices=AnswerFormat,
        default=AnswerFormat.MARKDOWN,
        help_text=_(
            "Plain text for emails, letters and messages: the model is asked not to use "
            "Markdown, and the answer is shown and copied exactly as written."
        ),
    )
    order = models.PositiveIntegerField(_("sort order"), default=0)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    tags = models.CharField(
        _("tags"),
        max_length=300,
        blank=True,
        help_text=_("Comma-separated search words, in this language."),
    )
    system_prompt = models.TextField(_("system prompt"), blank=True)
    prompt_body = models.TextField(
        _("prompt body"),
        help_text=_("Refer to fields as {{ field_name }}; {% if field_name %}…{% endif %} works."),
    )
    sample_inputs = models.JSONField(
        _("sample inputs"),
        default=dict,
        blank=True,
        help_text=_("One complete input set, keyed by field name."),
    )
    sample_answer = models.TextField(
        _("sample answer"),
        blank=True,
        help_text=_(
            "What a professional would write for the sample inputs. The offline demo "
            "model streams it, with {{ field_name }} filled in with the person's values."
        ),
    )
    # The digest of the catalogue document this template was last imported
    # from, so that importing the same document again skips it; any other
    # save clears it (the template no longer matches any file).
    source_digest = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The version that matches what the template holds now, kept up to date by
    # the writers (admin, import, duplicate; templates_catalog.versions), so
    # that starting a generation reads its id from the row it already has.
    # Other templates for a similar job, listed on this one's page in this order.
    # One-way: each template lists its own (templates_catalog.catalog_io).
    related = models.ManyToManyField(
        "self",
        through="RelatedTemplate",
        through_fields=("from_template", "to_template"),
        symmetrical=False,
        blank=True,
        related_name="related_from",
        verbose_name=_("related templates"),
    )
    current_version = models.ForeignKey(
        "TemplateVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("current version"),
    )

    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["category__order", "order", "slug"]
        verbose_name = _("template")
        verbose_name_plural = _("templates")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("catalog:template", args=[self.slug])

    @property
    def tag_list(self) -> list[str]:
        """The tags in the active language (Japanese where a language has none)."""
        return split_tags(self.tags or "")

    def tags_in(self, language: str) -> list[str]:
        """The tags in `language` only, without falling back to another."""
        return split_tags(getattr(self, f"tags_{language}") or "")

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        sources = ("prompt_body", "system_prompt", "sample_answer")
        for field_name in [name for source in sources for name in translated_names(source)]:
            try:
                parse_prompt(getattr(self, field_name) or "")
            except PromptSyntaxError as exc:
                errors.setdefault(field_name, []).append(str(exc))
        if not isinstance(self.sample_inputs, dict):
            errors["sample_inputs"] = [_("Sample inputs must be an object keyed by field name.")]
        if errors:
            raise ValidationError(errors)


class RelatedTemplate(models.Model):
    """A link from a template's page to another template for a similar job
    (several apology emails, several press releases…), so that a person finds
    the one that fits. One-way and ordered: a page lists its own links."""

    from_template = models.ForeignKey(
        Template,
        on_delete=models.CASCADE,
        related_name="related_links",
        verbose_name=_("template"),
    )
    to_template = models.ForeignKey(
        Template,
        on_delete=models.CASCADE,
        related_name="related_backlinks",
        verbose_name=_("related template"),
    )
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["from_template", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_template", "to_template"], name="related_template_once"
            ),
            models.CheckConstraint(
                condition=~Q(from_template=F("to_template")), name="related_template_not_itself"
            ),
        ]
        verbose_name = _("related template")
        verbose_name_plural = _("related templates")

    def __str__(self) -> str:
        return f"{self.from_template} → {self.to_template}"


class TemplateField(models.Model):
    class Type(models.TextChoices):
        SHORT_TEXT = "short_text", _("Short text")
        LONG_TEXT = "long_text", _("Long text")
        NUMBER = "number", _("Number")
        INTEGER = "integer", _("Whole number")
        SELECT = "select", _("Select")
        MULTI_SELECT = "multi_select", _("Multi-select")
        RADIO = "radio", _("Radio buttons")
        CHECKBOX = "checkbox", _("Checkbox")
        DATE = "date", _("Date")
        URL = "url", _("URL")
        EMAIL = "email", _("Email")

    CHOICE_TYPES = frozenset({Type.SELECT, Type.MULTI_SELECT, Type.RADIO})

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(_("name"), max_length=50, validators=[field_name_validator])
    label = models.CharField(_("label"), max_length=200)
    type = models.CharField(_("type"), max_length=20, choices=Type, default=Type.SHORT_TEXT)
    required = models.BooleanField(_("required"), default=True)
    help_text = models.CharField(_("help text"), max_length=300, blank=True)
    placeholder = models.CharField(_("placeholder"), max_length=200, blank=True)
    default = models.CharField(_("default"), max_length=500, blank=True)
    min_length = models.PositiveIntegerField(_("minimum length"), null=True, blank=True)
    max_length = models.PositiveIntegerField(_("maximum length"), null=True, blank=True)
    min_value = models.DecimalField(
        _("minimum value"), max_digits=18, decimal_places=4, null=True, blank=True
    )
    max_value = models.DecimalField(
        _("maximum value"), max_digits=18, decimal_places=4, null=True, blank=True
    )
    choices = models.TextField(
        _("choices"),
        blank=True,
        help_text=_("One per line: value|label. The values must match across languages."),
    )
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "name"], name="unique_field_name_per_template"
            ),
        ]
        verbose_name = _("field")
        verbose_name_plural = _("fields")

    def __str__(self) -> str:
        return self.name

    def choice_pairs(self) -> list[tuple[str, str]]:
        """(value, label) pairs in the active language; labels fall back to the value."""
        try:
            return parse_choices(self.choices)
        except ChoiceParseError:
            return []

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        value_sets = []
        for name in translated_names("choices"):
            try:
                pairs = parse_choices(getattr(self, name) or "")
            except ChoiceParseError as exc:
                errors.setdefault(name, []).append(str(exc))
                continue
            if pairs:
                value_sets.append((name, [value for value, _label in pairs]))
        if self.type in self.CHOICE_TYPES and not value_sets and "choices_ja" not in errors:
            errors.setdefault(translated_names("choices")[0], []).append(
                _("A choice field needs at least one choice.")
            )
        if value_sets:
            first_name, first_values = value_sets[0]
            for name, values in value_sets[1:]:
                if values != first_values:
                    errors.setdefault(name, []).append(
                        _("The choice values must be the same, in the same order, as in %(field)s.")
                        % {"field": first_name}
                    )
        if self.min_length and self.max_length and self.min_length > self.max_length:
            errors["max_length"] = [_("The maximum length is below the minimum length.")]
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            errors["max_value"] = [_("The maximum value is below the minimum value.")]
        if self.type == self.Type.INTEGER:
            for name in ("min_value", "max_value"):
                limit = getattr(self, name)
                if isinstance(limit, Decimal) and limit != limit.to_integral_value():
                    errors.setdefault(name, []).append(
                        _("A whole-number field's limits must be whole numbers.")
                    )
        if errors:
            raise ValidationError(errors)


class TemplateVersion(models.Model):
    """What a template was at one moment: everything that shapes a generation
    (templates_catalog.versions.template_snapshot), numbered 1, 2, 3… per template."""

    template = models.ForeignKey(
        Template, on_delete=models.CASCADE, related_name="versions", verbose_name=_("template")
    )
    number = models.PositiveIntegerField(_("number"))
    snapshot = models.JSONField(_("snapshot"))
    digest = models.CharField(_("digest"), max_length=64)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "number"], name="template_version_number_once"
            ),
        ]
        verbose_name = _("template version")
        verbose_name_plural = _("template versions")

    def __str__(self) -> str:
        return _("version %(number)d") % {"number": self.number}

    def title(self, language: str) -> str:
        """The template's title in `language` when this version was recorded."""
        titles = self.snapshot.get("title") or {}
        return titles.get(language) or next(iter(titles.values()), "")


class FavouriteTemplate(models.Model):
    """A template a person starred, to find it again on the home page."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="favourite_templates",
        verbose_name=_("user"),
    )
    template = models.ForeignKey(
        Template, on_delete=models.CASCADE, related_name="favourites", verbose_name=_("template")
    )
    created_at = models.DateTimeField(_("added at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "template"], name="favourite_once_per_person")
        ]
        verbose_name = _("favourite template")
        verbose_name_plural = _("favourite templates")

    def __str__(self) -> str:
        return f"{self.user} ★ {self.template}"


def split_tags(tags: str) -> list[str]:
    """Comma-separated tags as a list, without blanks or repeats; 「、」 and 「，」
    separate too (staff typing Japanese in admin)."""
    words = (tag.strip() for tag in re.split(r"[,、，]", tags))
    return list(dict.fromkeys(tag for tag in words if tag))


def translated_names(field: str) -> list[str]:
    """The per-language column names of a translated field, default language first."""
    from modeltranslation.utils import build_localized_fieldname

    return [build_localized_fieldname(field, code) for code, _name in settings.LANGUAGES]
