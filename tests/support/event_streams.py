"""Reading a studio event stream over real HTTP, as an API client does."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

Event = tuple[int, str, dict]


def read_event_stream(
    url: str,
    headers: dict[str, str],
    *,
    until: Callable[[list[Event]], bool] | None = None,
    timeout: float = 30,
) -> list[Event]:
    """(id, name, data) of the events at `url`, up to `done` or until `until(events)`."""
    events: list[Event] = []
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200
        event_id, name, data = None, None, []
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and name:
                events.append((event_id, name, json.loads("\n".join(data))))
                if name == "done" or (until and until(events)):
                    break
                event_id, name, data = None, None, []
    return events
