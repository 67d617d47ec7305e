"""A leaner server-sent-events decoder for the SDKs' streams (both are Stainless clients: a
stream reads its events from `self._decoder.iter_bytes(body chunks)`; ours set `_decoder`).

A streamed tool call arrives as one event per few characters of its JSON arguments (~300
events for a 2 KB file): the SDKs' decoders handle each line in several Python steps, which
made a 2 KB streamed turn cost ~7 ms of CPU against ~1 ms unstreamed (bench/llm_path.py).
This one splits each network chunk into lines in one C call (`bytes.splitlines`: LF, CR and
CRLF, a CRLF split across two chunks included) and gives what the SDKs read: the event name
and the data; an id or retry field only counts, as in theirs, for when an event is dispatched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

NEWLINES = (b"\n", b"\r")


class Event:
    """What the SDKs' streams read of an event: `event`, `data`, `json()`."""

    __slots__ = ("event", "data")

    def __init__(self, event: str | None, data: str):
        self.event, self.data = event, data

    def json(self) -> Any:
        return json.loads(self.data)


class Decoder:
    """Body chunks in, events out (the SDKs' `SSEDecoder.iter_bytes`)."""

    def iter_bytes(self, chunks: Iterator[bytes]) -> Iterator[Event]:
        event: str | None = None
        data: list[str] = []
        last_id, retry = "", None  # an id outlives its event, as the spec (and SDKs) have it
        rest, skip_lf = b"", False
        for chunk in chunks:
            if skip_lf and chunk.startswith(b"\n"):  # the LF of a CRLF split across chunks
                chunk = chunk[1:]
            if not chunk:
                continue
            skip_lf = chunk.endswith(b"\r")
            lines = (rest + chunk).splitlines()
            rest = b"" if chunk.endswith(NEWLINES) else lines.pop()
            for line in lines:
                if not line:
                    if data or event or last_id or retry is not None:
                        yield Event(event, "\n".join(data))
                    event, data, retry = None, [], None
                    continue
                field, _, value = line.partition(b":")  # a comment's field is b""
                if value.startswith(b" "):
                    value = value[1:]
                if field == b"data":
                    data.append(value.decode())
                elif field == b"event":
                    event = value.decode() or None
                elif field == b"id" and b"\0" not in value:
                    last_id = value.decode()
                elif field == b"retry" and value.isdigit():
                    retry = int(value)
        # an event the body does not end with a blank line is not dispatched (the spec)
