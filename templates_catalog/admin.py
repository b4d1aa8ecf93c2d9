"""Staff edit the catalogue here: templates with their fields inline, and a
preview that renders the prompt from sample inputs."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin, TranslationStackedInline

from templates_catalog.forms import form_data_from_inputs, stored_inputs, template_form
from templates_catalog.models import (
    Category,
    FavouriteTemplate,
    Template,
    TemplateField,
    translated_names,
)
from templates_catalog.prompting import PromptRenderError, PromptSyntaxError, unknown_names
from templates_catalog.services import template_render_prompt


@admin.register(Category)
class CategoryAdmin(TranslationAdmin):
    list_display = ("name", "slug", "order")
    list_editable = ("order",)
    search_fields = ("slug", "name_ja", "name_en")
    prepopulated_fields = {"slug": ("name_en",)}


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
        for source_name in translated_names("prompt_body") + translated_names("system_prompt"):
            try:
                unknown = unknown_names(getattr(self.instance, source_name) or "", names)
            except PromptSyntaxError:
                continue  # reported on the field itself by Template.clean
            if unknown:
                problems.append(
                    gettext("%(prompt)s names fields that do not exist: %(names)s")
                    % {"prompt": source_name, "names": ", ".join(unknown)}
                )
        if problems:
            raise ValidationError(problems)


class TemplateFieldInline(TranslationStackedInline):
    model = TemplateField
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


@admin.register(Template)
class TemplateAdmin(TranslationAdmin):
    inlines = (TemplateFieldInline,)
    list_display = ("title", "category", "kind", "status", "order", "updated_at")
    list_filter = ("status", "kind", "category")
    list_editable = ("status", "order")
    list_select_related = ("category",)
    search_fields = ("slug", "title_ja", "title_en", "description_ja", "description_en", "tags")
    prepopulated_fields = {"slug": ("title_en",)}
    readonly_fields = ("preview_link",)
    fieldsets = (
        (
            None,
            {"fields": ("title", "slug", "category", ("kind", "status", "tier", "order"), "tags")},
        ),
        (_("Description"), {"fields": ("description",)}),
        (_("Prompt"), {"fields": ("system_prompt", "prompt_body", "preview_link")}),
        (_("Sample inputs"), {"fields": ("sample_inputs",)}),
    )

    @admin.display(description=_("Preview"))
    def preview_link(self, obj: Template) -> str:
        if not obj.pk:
            return gettext("Save the template first, then preview it here.")
        url = reverse("admin:templates_catalog_template_preview", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, gettext("Preview the prompt"))

    def get_urls(self):
        preview = path(
            "<int:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="templates_catalog_template_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The form a person would see, filled with the sample inputs, and the prompt it makes."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        template = get_object_or_404(Template, pk=object_id)
        fields = list(template.fields.all())
        language = request.POST.get("language") or request.GET.get("language") or "ja"
        if language not in {"ja", "en"}:
            language = "ja"
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
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "title": gettext("Preview: %s") % template.title,
            "form": form,
            "rendered": rendered,
            "render_error": render_error,
            "language": language,
        }
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
