"""A generation: one run of a template with one person's inputs, and its result."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from templates_catalog.models import Template


class GenerationQuerySet(models.QuerySet["Generation"]):
    def for_user(self, user) -> GenerationQuerySet:
        """What this person may see: their own generations only."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)


class Generation(models.Model):
    class Status(models.TextChoices):
        # The words people see: "Stop" stops a generation, which is then "Stopped".
        QUEUED = "queued", _("Waiting")
        RUNNING = "running", _("Generating")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Stopped")

    class Delivery(models.TextChoices):
        """Whether the person received the whole answer (ChatStream's statuses)."""

        SUCCESS = "success", _("Delivered")
        BEFORE_STREAMING = (
            "client_disconnected_before_streaming",
            _("Left before the answer started"),
        )
        WHILE_STREAMING = (
            "client_disconnected_while_streaming",
            _("Left while the answer was streaming"),
        )
        UNKNOWN_ERROR = "unknown_error_occurred", _("Unknown error")

    UNFINISHED = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generations"
    )
    template = models.ForeignKey(
        Template, on_delete=models.SET_NULL, null=True, related_name="generations"
    )
    # What the person saw when they ran it; kept if the template changes or goes.
    template_title = models.CharField(_("template"), max_length=200)
    # The exact version of the template it ran with (templates_catalog.versions).
    template_version = models.ForeignKey(
        "templates_catalog.TemplateVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="generations",
        verbose_name=_("template version"),
    )
    kind = models.CharField(
        _("kind"), max_length=10, choices=Template.Kind, default=Template.Kind.TEXT
    )
    language = models.CharField(_("language"), max_length=10)
    # How the answer is shown and copied, as the template said when it started
    # (staff may change the template's format later; this answer stays as asked).
    answer_format = models.CharField(
        _("answer format"),
        max_length=10,
        choices=Template.AnswerFormat,
        default=Template.AnswerFormat.MARKDOWN,
    )
    inputs = models.JSONField(_("inputs"), default=dict)
    system_prompt = models.TextField(_("system prompt"), blank=True)
    prompt = models.TextField(_("prompt"))

    status = models.CharField(
        _("status"), max_length=20, choices=Status, default=Status.QUEUED, db_index=True
    )
    output = models.TextField(_("output"), blank=True)
    finish_reason = models.CharField(_("finish reason"), max_length=40, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(_("error"), blank=True)
    provider = models.CharField(_("provider"), max_length=40, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(_("input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(_("output tokens"), default=0)
    # Events the stream carried before its first text (see generation.events.log).
    events_before_text = models.PositiveIntegerField(default=0)
    # Image generations: the last `queued` or `progress` event ({"event", "data"}),
    # so that a page opened mid-run shows where it stands; and how many images
    # it produced (what it is charged for).
    progress = models.JSONField(default=dict, blank=True)
    image_count = models.PositiveSmallIntegerField(_("images"), default=0)
    # The attempt of the image task that holds this generation (see
    # generation.images.attempts): a redelivered task takes over only once the
    # holder's lease has lapsed, and a holder that lost it saves nothing.
    claim = models.CharField(max_length=32, blank=True)
    # The earlier answer this one continues (it stopped at the length limit).
    continued_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="continuations",
        verbose_name=_("continues"),
    )
    # The process running an unfinished generation renews this; once it lapses
    # that process is gone and the generation is marked failed (runner.reap).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # How far any reader got (an event id), and the outcome once it is known;
    # null until then ("" for history from before it was recorded), so that
    # "not settled yet" is its own state. `generation_finished` is sent when it
    # is recorded.
    delivered_event_id = models.PositiveIntegerField(default=0)
    delivery = models.CharField(  # noqa: DJ001
        _("delivery"), max_length=40, choices=Delivery, null=True, blank=True
    )

    created_at = models.DateTimeField(_("queued at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    first_token_at = models.DateTimeField(_("first token at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="generation_user_recent"),
            # How many a person has running (generation.lifecycle.limits).
            models.Index(
                fields=["user"],
                condition=models.Q(status__in=["queued", "running"]),
                name="generation_user_unfinished",
            ),
            # The reaper's two questions: whose lease lapsed, whose delivery is pending.
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status__in=["queued", "running"]),
                name="generation_unfinished_lease",
            ),
            models.Index(
                fields=["finished_at"],
                condition=models.Q(delivery__isnull=True, finished_at__isnull=False),
                name="generation_delivery_pending",
            ),
        ]
        verbose_name = _("generation")
        verbose_name_plural = _("generations")

    def __str__(self) -> str:
        return f"{self.template_title} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("generation:detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status not in self.UNFINISHED

    @property
    def is_plain_text(self) -> bool:
        """Whether the answer is shown and copied as written, not as Markdown."""
        return self.answer_format == Template.AnswerFormat.PLAIN

    @property
    def time_to_first_token(self) -> float | None:
        if self.first_token_at and self.created_at:
            return (self.first_token_at - self.created_at).total_seconds()
        return None

    @property
    def queue_wait(self) -> float | None:
        if self.started_at and self.created_at:
            return (self.started_at - self.created_at).total_seconds()
        return None

    @property
    def duration(self) -> float | None:
        if self.finished_at and self.created_at:
            return (self.finished_at - self.created_at).total_seconds()
        return None


def image_upload_path(image: GeneratedImage, filename: str) -> str:
    return f"generations/{image.generation_id}/{filename}"


class GeneratedImage(models.Model):
    """One image of an image generation: the original as PNG, a WebP copy and a
    thumbnail, with metadata stripped (generation.images.imaging)."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="images")
    index = models.PositiveSmallIntegerField()
    original = models.FileField(_("original (PNG)"), max_length=255, upload_to=image_upload_path)
    webp = models.FileField(_("WebP copy"), max_length=255, upload_to=image_upload_path)
    thumbnail = models.FileField(_("thumbnail"), max_length=255, upload_to=image_upload_path)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField(help_text=_("Size of the PNG original."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["generation", "index"]
        constraints = [
            # A redelivered task can never store an image twice.
            models.UniqueConstraint(fields=["generation", "index"], name="image_once_per_index")
        ]
        verbose_name = _("generated image")
        verbose_name_plural = _("generated images")

    def __str__(self) -> str:
        return f"{self.generation_id} #{self.index + 1}"

    @property
    def files(self) -> list[models.fields.files.FieldFile]:
        return [self.original, self.webp, self.thumbnail]


class UsageRecord(models.Model):
    """One generation's use of the model: what it used, what it cost, how long it
    waited. Kept when the generation is deleted from history, so that quotas,
    dashboards and costs count everything that was used (generation.lifecycle.limits,
    generation.lifecycle.usage)."""

    generation = models.OneToOneField(
        Generation, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records"
    )
    template = models.ForeignKey(
        Template, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_records"
    )
    template_title = models.CharField(_("template"), max_length=200)
    kind = models.CharField(
        _("kind"), max_length=10, choices=Template.Kind, default=Template.Kind.TEXT
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Generation.Status, default=Generation.Status.QUEUED
    )
    provider = models.CharField(_("provider"), max_length=40, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(_("input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(_("output tokens"), default=0)
    images = models.PositiveSmallIntegerField(_("images"), default=0)
    # The answer's length in characters: what people are shown instead of tokens.
    output_characters = models.PositiveIntegerField(_("characters"), default=0)
    # What counts against the person's quotas: the reservation while the
    # generation is unfinished, what it used once it ended (at most what it
    # reserved), nothing if it failed.
    charged_output_tokens = models.PositiveIntegerField(_("charged output tokens"), default=0)
    charged_images = models.PositiveSmallIntegerField(_("charged images"), default=0)
    # From the price table in settings (STUDIO_PRICES), in millionths of a US dollar.
    estimated_cost_micros = models.PositiveBigIntegerField(_("estimated cost"), default=0)
    created_at = models.DateTimeField(_("queued at"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    first_token_at = models.DateTimeField(_("first token at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"], name="usage_user_period")]
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")

    def __str__(self) -> str:
        return f"{self.template_title} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def estimated_cost(self) -> float:
        return self.estimated_cost_micros / 1_000_000

    @property
    def queue_wait(self) -> float | None:
        if self.started_at:
            return (self.started_at - self.created_at).total_seconds()
        return None

    @property
    def time_to_first_token(self) -> float | None:
        if self.first_token_at:
            return (self.first_token_at - self.created_at).total_seconds()
        return None

    @property
    def duration(self) -> float | None:
        if self.finished_at:
            return (self.finished_at - self.created_at).total_seconds()
        return None
