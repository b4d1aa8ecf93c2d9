"""Staff's view of API tokens (who holds which, when it was used, revoking it) and
of plans (their limits, and who is on which)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from studio.models import ApiToken, Plan, PlanMembership
from studio.services import api_token_revoke


class RevokedFilter(admin.SimpleListFilter):
    title = _("revoked")
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("no", _("Active")), ("yes", _("Revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff see who has which token and can revoke it; the secret is never stored,
    and its hash is not shown either. Tokens are created by their owners."""

    list_display = ("name", "user", "shown_prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = (RevokedFilter,)
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    date_hierarchy = "created_at"
    fields = ("user", "name", "shown_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description=_("token"), ordering="prefix")
    def shown_prefix(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            api_token_revoke(token=token)
        self.message_user(
            request,
            ngettext("Revoked %(count)d token.", "Revoked %(count)d tokens.", len(tokens))
            % {"count": len(tokens)},
            messages.SUCCESS,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class PlanMembershipInline(admin.TabularInline):
    model = PlanMembership
    autocomplete_fields = ["user"]
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """Limits per plan; an empty limit is no limit. People not listed on a plan
    are on the default one."""

    list_display = (
        "name",
        "is_default",
        "max_concurrent",
        "requests_per_minute",
        "daily_output_tokens",
        "monthly_output_tokens",
        "daily_images",
        "monthly_images",
    )
    list_editable = ("max_concurrent", "requests_per_minute")
    inlines = [PlanMembershipInline]


@admin.register(PlanMembership)
class PlanMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "plan", "since")
    list_filter = ("plan",)
    list_select_related = ("user", "plan")
    search_fields = ("user__username", "user__email")
    autocomplete_fields = ["user"]
