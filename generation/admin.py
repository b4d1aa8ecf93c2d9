from __future__ import annotations

from django.contrib import admin

from generation.models import Generation


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
