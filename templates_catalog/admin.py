"""Staff edit the catalogue here: templates with their fields and related
templates inline, a preview that renders the prompt from sample inputs, a test run that streams
the demo model's answer to them, the versions each save records, and
catalogue files in and out (what the tools do: templates_catalog.admin_tools)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin, TranslationStackedInline

from templates_catalog.admin_tools import (
    CatalogUploadForm,
    catalog_download,
    catalog_upload_import,
    version_table,
)
from templates_catalog.forms import form_data_from_inputs, stored_inputs, template_form
from templates_catalog.models import (
    Category,
    FavouriteTemplate,
    RelatedTemplate,
    Template,
    TemplateField,
    translated_names,
)
from templates_catalog.prompting import PromptRenderError, PromptSyntaxError, unknown_names
from templates_catalog.services import (
    template_duplicate,
    template_prompt_budget_problems,
    template_render_prompt,
)
from templates_catalog.versions import template_version_current


@admin.register(Category)
class CategoryAdmin(TranslationAdmin):
    list_display = ("name", "slug", "order")
    list_editable = ("order",)
    search_fields = ("slug", "name_ja", "name_en")
    prepopulated_fields = {"slug": ("name_en",)}


class LineEndingsForm(forms.ModelForm):
    """Browsers send text areas with CRLF line ends; keep LF, as the catalogue
    files have it, so that saving an untouched prompt changes nothing."""

    def clean(self) -> dict:
        cleaned = super().clean()
        for name, value in cleaned.items():
            if isinstance(value, str) and "\r" in value:
                cleaned[name] = value.replace("\r\n", "\n").replace("\r", "\n")
        return cleaned


class TemplateFieldFormSet(BaseInlineFormSet):
    """Refuses a template whose prompts name a field that the form does not have."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        names = {
            form.cleaned_data["name"]
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        }
        problems = []
        sources = ("prompt_body", "system_prompt", "sample_answer")
        for source_name in [name for source in sources for name in translated_names(source)]:
            try:
                unknown = unknown_names(getattr(self.instance, source_name) or "", names)
            except PromptSyntaxError:
                continue  # reported on the field itself by Template.clean
            if unknown:
                problems.append(
                    gettext("%(prompt)s names fields that do not exist: %(names)s")
                    % {"prompt": source_name, "names": ", ".join(unknown)}
                )
        if not problems:
            fields = [
                form.instance
                for form in self.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE")
            ]
            problems = template_prompt_budget_problems(template=self.instance, fields=fields)
        if problems:
            raise ValidationError(problems)


class TemplateFieldInline(TranslationStackedInline):
    model = TemplateField
    form = LineEndingsForm
    formset = TemplateFieldFormSet
    extra = 0
    fieldsets = (
        (None, {"fields": (("name", "type", "required", "order"), "label")}),
        (_("Help and defaults"), {"fields": ("help_text", "placeholder", "default")}),
        (
            _("Limits and choices"),
            {
                "fields": (("min_length", "max_length"), ("min_value", "max_value"), "choices"),
            },
        ),
    )


class RelatedTemplateFormSet(BaseInlineFormSet):
    """Refuses a link to the template itself and the same template twice, by name."""

    def clean(self) -> None:
        # Before the formset's own uniqueness check, whose message names no template.
        seen = set()
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            related = form.cleaned_data.get("to_template")
            if related is None:
                continue
            if related.pk == self.instance.pk:
                raise ValidationError(gettext("A template cannot be related to itself."))
            if related.pk in seen:
                raise ValidationError(
                    gettext("“%(title)s” is listed twice.") % {"title": related.title}
                )
            seen.add(related.pk)
        super().clean()


class RelatedTemplateInline(admin.TabularInline):
    """The templates this one's page links to, in this order; search by title or slug."""

    model = RelatedTemplate
    fk_name = "from_template"
    formset = RelatedTemplateFormSet
    fields = ("to_template", "order")
    autocomplete_fields = ("to_template",)
    extra = 0


LANGUAGES = ("ja", "en")


def admin_language(request: HttpRequest) -> str:
    language = request.POST.get("language") or request.GET.get("language") or "ja"
    return language if language in LANGUAGES else "ja"


@admin.register(Template)
class TemplateAdmin(TranslationAdmin):
    form = LineEndingsForm
    inlines = (TemplateFieldInline, RelatedTemplateInline)
    list_display = ("title", "category", "kind", "status", "order", "updated_at")
    list_filter = ("status", "kind", "tier", "answer_format", "category")
    list_editable = ("status", "order")
    list_select_related = ("category",)
    search_fields = (
        "slug",
        "title_ja",
        "title_en",
        "description_ja",
        "description_en",
        "tags_ja",
        "tags_en",
    )
    prepopulated_fields = {"slug": ("title_en",)}
    readonly_fields = ("preview_link", "test_run_link", "version_history")
    actions = (
        "publish_selected",
        "unpublish_selected",
        "duplicate_selected",
        "export_yaml",
        "export_json",
    )
    change_list_template = "admin/templates_catalog/template/change_list.html"
    fieldsets = (
        (
            None,
            {"fields": ("title", "slug", "category", ("kind", "status", "tier", "order"), "tags")},
        ),
        (_("Description"), {"fields": ("description",)}),
        (
            _("Prompt"),
            {
                "fields": (
                    "system_prompt",
                    "prompt_body",
                    "answer_format",
                    ("preview_link", "test_run_link"),
                )
            },
        ),
        (_("Sample inputs"), {"fields": ("sample_inputs", "sample_answer")}),
        (_("Versions"), {"fields": ("version_history",)}),
    )

    @admin.display(description=_("Preview"))
    def preview_link(self, obj: Template) -> str:
        if not obj.pk:
            return gettext("Save the template first, then preview it here.")
        url = reverse("admin:templates_catalog_template_preview", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, gettext("Preview the prompt"))

    @admin.display(description=_("Test run"))
    def test_run_link(self, obj: Template) -> str:
        if not obj.pk:
            return gettext("Save the template first, then try it here.")
        url = reverse("admin:templates_catalog_template_test_run", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">{}</a>', url, gettext("Test run with the samples")
        )

    @admin.display(description=_("Versions"))
    def version_history(self, obj: Template) -> str:
        if not obj.pk:
            return gettext("The first version is recorded when the template is saved.")
        return version_table(obj)

    def save_model(self, request: HttpRequest, obj: Template, form, change: bool) -> None:
        obj.source_digest = ""  # edited here: no catalogue file holds this any more
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Now the fields are saved too: record what the template has become.
        template_version_current(template=form.instance, user=request.user)

    # Actions -------------------------------------------------------------------

    @admin.action(description=_("Publish the selected templates"), permissions=["change"])
    def publish_selected(self, request: HttpRequest, queryset) -> None:
        count = queryset.exclude(status=Template.Status.PUBLISHED).update(
            status=Template.Status.PUBLISHED, updated_at=timezone.now()
        )
        message = ngettext("%(count)d template published.", "%(count)d templates published.", count)
        self.message_user(request, message % {"count": count}, messages.SUCCESS)

    @admin.action(
        description=_("Unpublish the selected templates (back to draft)"), permissions=["change"]
    )
    def unpublish_selected(self, request: HttpRequest, queryset) -> None:
        count = queryset.exclude(status=Template.Status.DRAFT).update(
            status=Template.Status.DRAFT, updated_at=timezone.now()
        )
        message = ngettext(
            "%(count)d template set back to draft.", "%(count)d templates set back to draft.", count
        )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Duplicate the selected templates as drafts"), permissions=["add"])
    def duplicate_selected(self, request: HttpRequest, queryset) -> None:
        with transaction.atomic():
            copies = [
                template_duplicate(template=template, user=request.user)
                for template in queryset.order_by("pk")
            ]
        message = ngettext(
            "%(count)d draft copy made: %(slugs)s.",
            "%(count)d draft copies made: %(slugs)s.",
            len(copies),
        )
        slugs = ", ".join(copy.slug for copy in copies)
        self.message_user(
            request, message % {"count": len(copies), "slugs": slugs}, messages.SUCCESS
        )

    @admin.action(description=_("Export the selected templates as YAML"), permissions=["view"])
    def export_yaml(self, request: HttpRequest, queryset) -> HttpResponse:
        return catalog_download(queryset, "yaml")

    @admin.action(description=_("Export the selected templates as JSON"), permissions=["view"])
    def export_json(self, request: HttpRequest, queryset) -> HttpResponse:
        return catalog_download(queryset, "json")

    # Pages -----------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            path(
                "import/",
                view(self.import_view),
                name="templates_catalog_template_import",
            ),
            path(
                "<int:object_id>/preview/",
                view(self.preview_view),
                name="templates_catalog_template_preview",
            ),
        ]
        return [*urls, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import": self._can_import(request)}
        return super().changelist_view(request, extra_context)

    def _can_import(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def _page(self, request: HttpRequest, template: Template | None, title: str, **context):
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "title": title,
            **context,
        }

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a catalogue file (YAML or JSON); check it only, or import it."""
        if not self._can_import(request):
            raise PermissionDenied
        result = None
        if request.method == "POST":
            form = CatalogUploadForm(request.POST, request.FILES)
            if form.is_valid():
                result = catalog_upload_import(form=form, user=request.user)
        else:
            form = CatalogUploadForm()
        context = self._page(request, None, gettext("Import templates"), form=form, result=result)
        return render(request, "admin/templates_catalog/template/import.html", context)

    def preview_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The form a person would see, filled with the sample inputs, and the prompt it makes."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        template = get_object_or_404(Template, pk=object_id)
        fields = list(template.fields.all())
        language = admin_language(request)
        if request.method == "POST":
            data = request.POST
        else:
            sample = getattr(template, f"sample_inputs_{language}") or template.sample_inputs
            data = form_data_from_inputs(sample or {}, fields)
        form = template_form(template, data, fields=fields)
        rendered, render_error = None, None
        if form.is_valid():
            try:
                rendered = template_render_prompt(
                    template=template,
                    inputs=stored_inputs(form),
                    language=language,
                    fields=fields,
                )
            except (PromptRenderError, PromptSyntaxError) as exc:
                render_error = str(exc)
        context = self._page(
            request,
            template,
            gettext("Preview: %s") % template.title,
            form=form,
            rendered=rendered,
            render_error=render_error,
            language=language,
        )
        return render(request, "admin/templates_catalog/template/preview.html", context)


@admin.register(FavouriteTemplate)
class FavouriteTemplateAdmin(admin.ModelAdmin):
    """Read-only: favourites are each person's own; staff only look (which templates are loved)."""

    list_display = ("template", "user", "created_at")
    list_filter = ("template__category",)
    list_select_related = ("template", "user")
    search_fields = ("user__username", "template__slug", "template__title_ja", "template__title_en")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
