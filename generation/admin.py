from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from generation.models import Generation, UsageRecord
from generation.sample_runs import SampleRun, sample_run_events, sample_run_prepare
from studio.figures import usd
from studio.sse import event_stream_response, last_event_id
from templates_catalog.admin import LANGUAGES, TemplateAdmin, admin_language
from templates_catalog.models import Template


class TemplateAdminWithTestRun(TemplateAdmin):
    """The catalogue's admin, with a test run of a template's sample inputs on the
    offline demo model: the catalogue itself knows no model."""

    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            path(
                "<int:object_id>/test-run/",
                view(self.test_run_view),
                name="templates_catalog_template_test_run",
            ),
            # Async: admin_view() wraps a view in synchronous code, so this one
            # checks the same things itself (_sample_run).
            path(
                "<int:object_id>/test-run/events/",
                require_GET(self.test_run_stream),
                name="templates_catalog_template_test_run_stream",
            ),
        ]
        return [*urls, *super().get_urls()]

    def test_run_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The demo model's answer to the sample inputs, streamed into the page (or
        the form with the errors, when the samples do not pass it)."""
        run = self._sample_run(request, object_id)
        template = run.template
        context = self._page(
            request,
            template,
            gettext("Test run: %s") % template.title,
            run=run,
            languages=LANGUAGES,
            stream_url=reverse(
                "admin:templates_catalog_template_test_run_stream", args=[template.pk]
            ),
        )
        return render(request, "admin/templates_catalog/template/test_run.html", context)

    def _sample_run(self, request: HttpRequest, object_id: int) -> SampleRun:
        if not (self.admin_site.has_permission(request) and self.has_view_permission(request)):
            raise PermissionDenied
        template = get_object_or_404(Template, pk=object_id)
        return sample_run_prepare(template=template, language=admin_language(request))

    async def test_run_stream(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The test run's events (text/event-stream); nothing is stored."""
        run = await sync_to_async(self._sample_run)(request, object_id)
        return event_stream_response(
            sample_run_events(
                run, after=last_event_id(request), ui_language=translation.get_language()
            )
        )


admin.site.unregister(Template)
admin.site.register(Template, TemplateAdminWithTestRun)


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = (
        "template_title",
        "user",
        "status",
        "finish_reason",
        "provider",
        "input_tokens",
        "output_tokens",
        "created_at",
    )
    list_filter = ("status", "kind", "provider", "finish_reason")
    list_select_related = ("user",)
    search_fields = ("template_title", "user__username", "prompt", "output")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Generation._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """Every generation's usage, kept when the generation is deleted: a record
    to read (the totals are on the staff usage page), never to edit."""

    list_display = (
        "created_at",
        "user",
        "template_title",
        "kind",
        "status",
        "model",
        "input_tokens",
        "output_tokens",
        "output_characters",
        "images",
        "estimated_cost_display",
    )
    list_filter = ("kind", "status", "model")
    list_select_related = ("user",)
    search_fields = ("user__username", "template_title")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in UsageRecord._meta.fields]

    @admin.display(description=_("estimated cost (USD)"), ordering="estimated_cost_micros")
    def estimated_cost_display(self, record: UsageRecord) -> str:
        return usd(record.estimated_cost_micros)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
