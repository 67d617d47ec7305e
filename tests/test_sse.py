"""agent/models/sse.py against the SDKs' own SSE decoders: the same events, in the same
order, however the body is cut into network chunks."""

from __future__ import annotations

import anthropic._streaming
import openai._streaming
import pytest

from agent.models.sse import Decoder

BODY = (
    b": a comment\r\n"
    b"event: message_start\r\ndata: {\"a\": 1}\r\n\r\n"
    b"data: {\"text\": \"caf\xc3\xa9 \xe2\x9c\x93\"}\n\n"          # UTF-8, LF
    b"event: ping\rdata: {}\r\r"                                     # CR only
    b"data:{\"no\": \"space\"}\n\n"
    b"data: line one\ndata: line two\n\n"                            # multi-line data
    b"id: 7\nretry: 100\ndata: {\"b\": 2}\n\n"
    b"event: only-a-name\n\n"
    b"data\n\n"                                                      # a field with no colon
    b"\n\n"                                                          # nothing to dispatch
    b"data: [DONE]\r\n\r\n"
    b"data: not ended"                                               # never dispatched
)


def events(decoder, chunks) -> list[tuple[str | None, str]]:
    return [(e.event, e.data) for e in decoder.iter_bytes(iter(chunks))]


@pytest.mark.parametrize("sdk", [openai._streaming.SSEDecoder,
                                 anthropic._streaming.SSEDecoder])
def test_same_events_as_the_sdk_for_every_cut(sdk):
    expected = events(sdk(), [BODY])
    assert expected[:3] == [("message_start", '{"a": 1}'), (None, '{"text": "café ✓"}'),
                            ("ping", "{}")]
    assert (None, "line one\nline two") in expected and expected[-1] == (None, "[DONE]")
    for cut in range(1, len(BODY)):
        assert events(Decoder(), [BODY[:cut], BODY[cut:]]) == expected, cut
    for size in (1, 2, 3, 7):
        chunks = [BODY[i:i + size] for i in range(0, len(BODY), size)]
        assert events(Decoder(), chunks) == expected, size
        assert events(Decoder(), [b"", *chunks, b""]) == expected


def test_json_of_an_event():
    (event,) = Decoder().iter_bytes(iter([b'data: {"x": [1, 2]}\n\n']))
    assert event.json() == {"x": [1, 2]}
