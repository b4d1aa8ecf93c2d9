"""Where an image generation's files live in storage, and removing them.

Everything of generation G sits under `generations/G/`: each attempt of the
image task writes under a folder named by its claim token (previews and
images), so an attempt that died leaves files that the next one can tell
apart and remove (generation.images.attempts).
"""

from __future__ import annotations

from uuid import UUID

from django.core.files.storage import default_storage


def folder_of(generation_id: UUID | str) -> str:
    return f"generations/{generation_id}"


def generation_files(generation_id: UUID | str, *, keep: str = "") -> list[str]:
    """The stored names under a generation's folder, but for attempt folder `keep`."""
    root = folder_of(generation_id)
    try:
        folders, files = default_storage.listdir(root)
    except FileNotFoundError:
        return []
    names = [f"{root}/{name}" for name in files]
    for folder in folders:
        if folder != keep:
            names += [
                f"{root}/{folder}/{name}" for name in default_storage.listdir(f"{root}/{folder}")[1]
            ]
    return sorted(names)


def delete_generation_files(generation_id: UUID | str, *, keep: str = "") -> None:
    """Delete the files under a generation's folder (all, or all but folder `keep`)."""
    for name in generation_files(generation_id, keep=keep):
        default_storage.delete(name)
