"""ASGI entry point: `daphne studio.asgi:application`."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

application = get_asgi_application()

# Start the generation runner with the server rather than at the first
# generation: its upkeep also fails the generations of a process that died.
from generation.text.runner import runner  # noqa: E402

runner.start()
