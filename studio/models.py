"""Per-person API tokens (how scripts call the JSON API) and plans (what each
person may use)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A bearer token. Only a hash of it is kept: whoever reads the database (or
    the admin) cannot use it, and a lost token is replaced rather than recovered."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(
        _("name"), max_length=100, help_text=_("What the token is for, e.g. “Zapier”.")
    )
    # The token's first characters, so that people can tell their tokens apart.
    prefix = models.CharField(_("prefix"), max_length=16)
    # SHA-256 of the whole token: a long random secret needs no slow hash.
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class PlanQuerySet(models.QuerySet["Plan"]):
    def default(self) -> Plan | None:
        return self.filter(is_default=True).first()


class Plan(models.Model):
    """What a person may use: how many generations at once and a minute, and how
    many output tokens and images a day and a month. An empty limit is no limit."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    is_default = models.BooleanField(
        _("default plan"),
        default=False,
        help_text=_("The plan of everyone who has not been given another one."),
    )
    max_concurrent = models.PositiveIntegerField(
        _("generations at once"), null=True, blank=True, default=2
    )
    requests_per_minute = models.PositiveIntegerField(
        _("generations a minute"), null=True, blank=True, default=10
    )
    daily_output_tokens = models.PositiveIntegerField(
        _("output tokens a day"), null=True, blank=True
    )
    monthly_output_tokens = models.PositiveIntegerField(
        _("output tokens a month"), null=True, blank=True
    )
    daily_images = models.PositiveIntegerField(_("images a day"), null=True, blank=True)
    monthly_images = models.PositiveIntegerField(_("images a month"), null=True, blank=True)

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_plan",
                violation_error_message=_("Only one plan can be the default."),
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        """The plan as people are told it, in their language: the built-in plans
        by their translated names ("Free" is "フリープラン"), any other as
        "<name> plan" unless its name already says plan."""
        known = {"free": gettext("Free plan")}
        if (name := known.get(self.name.strip().lower())) is not None:
            return name
        if "plan" in self.name.lower() or "プラン" in self.name:
            return self.name
        return gettext("%(name)s plan") % {"name": self.name}


class PlanMembership(models.Model):
    """A person on a plan other than the default."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="plan_membership",
        verbose_name=_("user"),
    )
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="memberships", verbose_name=_("plan")
    )
    since = models.DateTimeField(_("since"), auto_now_add=True)

    class Meta:
        verbose_name = _("plan membership")
        verbose_name_plural = _("plan memberships")

    def __str__(self) -> str:
        return f"{self.user} → {self.plan}"
