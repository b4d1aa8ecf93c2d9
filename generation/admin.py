from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from generation.dashboards import usd
from generation.models import Generation, UsageRecord


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
        "images",
        "estimated_cost_display",
    )
    list_filter = ("kind", "status", "model")
    list_select_related = ("user",)
    search_fields = ("user__username", "template_title")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in UsageRecord._meta.fields]

    @admin.display(description=_("estimated cost"), ordering="estimated_cost_micros")
    def estimated_cost_display(self, record: UsageRecord) -> str:
        return usd(record.estimated_cost_micros)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
