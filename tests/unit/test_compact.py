"""The compact dialect: which frames shorten, and that expanding gives back the object frame."""

from __future__ import annotations

import msgspec
import pytest

from wanglai.services import compact, frames
from wanglai.services.views import MessageView


def text(body: dict[str, object] | None = None, **kw: object) -> MessageView:
    return MessageView(7, 3, 42, "c9", "text", body or {"text": "hello"}, 1_700_000_000_000, **kw)  # type: ignore[arg-type]


def test_a_plain_text_event_round_trips() -> None:
    [(_, frame)] = frames.message_event_frames("message", text(), [(5, 11)], 1_700_000_000_000)
    short = compact.shorten(frame)
    assert short == ["m", 11, 7, 3, 42, 1_700_000_000_000, "hello"]
    back = msgspec.json.decode(compact.expand(short, me=5, sent_texts={}))
    original = msgspec.json.decode(frame)
    original["message"]["client_id"] = ""  # the receiver is not told the sender's frame id
    assert back == original


def test_the_senders_copy_becomes_an_ack_and_is_rebuilt_from_the_sent_text() -> None:
    [(_, frame)] = frames.message_event_frames("message", text(), [(42, 12)], 1_700_000_000_000)
    own = frames.with_ack(frame, "c9")
    short = compact.shorten(own)
    assert short == ["a", "c9", 7, 3, 1_700_000_000_000, 12]
    back = compact.expand(short, me=42, sent_texts={"c9": "hello"})
    assert msgspec.json.decode(back) == msgspec.json.decode(own)


def test_an_ack_without_event_round_trips() -> None:
    ack = frames.ack_frame("c9", text())
    short = compact.shorten(ack)
    assert short == ["a", "c9", 7, 3, 1_700_000_000_000]
    assert msgspec.json.decode(compact.expand(short, 1, {})) == msgspec.json.decode(ack)


@pytest.mark.parametrize(
    "message",
    [
        text({"text": "hi", "mentions": [3]}),
        text(reply_to=1),
        text(edited_at=5),
        MessageView(7, 3, 42, "c9", "image", {"media": 1}, 1),
    ],
)
def test_anything_but_a_plain_text_keeps_its_object_form(message: MessageView) -> None:
    [(_, frame)] = frames.message_event_frames("message", message, [(5, 11)], 1)
    assert compact.shorten(frame) is None
    assert compact.shorten(frames.with_ack(frame, "c9")) is None


def test_other_frames_have_no_compact_form() -> None:
    [(_, edit)] = frames.message_event_frames("message.edit", text(), [(5, 11)], 1)
    assert compact.shorten(edit) is None
    assert compact.shorten(b'{"t":"pong"}') is None


def test_a_compact_send_expands_to_the_send_frame() -> None:
    sent = msgspec.json.decode(compact.expand_send(["s", "id1", 7, "yo"]))
    assert sent == {"t": "send", "id": "id1", "conv": 7, "kind": "text", "body": {"text": "yo"}}
    for bad in ([], ["s", "id"], ["x", "id", 7, "yo"], ["s", "id", 7, "yo", 1]):
        with pytest.raises(ValueError):
            compact.expand_send(bad)
    with pytest.raises(ValueError):
        compact.expand(["z", 1], 1, {})
