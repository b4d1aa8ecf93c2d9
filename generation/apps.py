from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_delete
from django.utils.translation import gettext_lazy as _

from generation.images.files import delete_generation_files


def _delete_image_files(sender, instance, **kwargs) -> None:
    """A deleted generation takes its images (and any previews) with it, once the
    deletion is committed."""
    if instance.kind == "image":
        # Read the id now: by the time the deletion commits, delete() has
        # cleared the instance's pk.
        generation_id = instance.pk
        transaction.on_commit(lambda: delete_generation_files(generation_id))


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = _("Generation")

    def ready(self) -> None:
        from generation import checks  # noqa: F401  (registers system checks)

        post_delete.connect(
            _delete_image_files, sender="generation.Generation", dispatch_uid="image-files"
        )
