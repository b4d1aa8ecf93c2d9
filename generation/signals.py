"""Signals for integrators.

`generation_finished(sender=Generation, generation, delivery)` is sent exactly
once per generation, once it has finished and whether the person received it
is known. `delivery` is one of `Generation.Delivery`: "success",
"client_disconnected_before_streaming", "client_disconnected_while_streaming"
or "unknown_error_occurred". Receivers run in whichever process settled the
delivery, outside any request.
"""

from __future__ import annotations

from django.dispatch import Signal

generation_finished = Signal()
