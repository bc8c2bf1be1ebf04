from __future__ import annotations

import pytest

from wanglai.domain import content, editing
from wanglai.domain.errors import Forbidden, Gone, Invalid, NotFound, TooLarge
from wanglai.domain.policy import PeerFacts, SendFacts, check_direct, check_send

HASH = "a" * 64


def test_text_with_mentions() -> None:
    c = content.validate("text", {"text": "hi @bob", "mentions": [7, 7, "all"], "extra": 1})
    assert c.body == {"text": "hi @bob", "mentions": [7, "all"]}
    assert c.mentions == (7,) and c.mentions_all and c.search_text == "hi @bob"


@pytest.mark.parametrize(
    ("kind", "body", "error"),
    [
        ("text", {"text": ""}, Invalid),
        ("text", {"text": "x" * 4001}, TooLarge),
        ("text", {"text": "nul \x00 inside"}, Invalid),
        ("text", {}, Invalid),
        ("text", "hello", Invalid),
        ("text", {"text": "x", "mentions": [True]}, Invalid),
        ("text", {"text": "x", "mentions": "all"}, Invalid),
        ("video", {"text": "x"}, Invalid),
        ("system", {"notice": "joined"}, Invalid),
        ("image", {"media": "ABC"}, Invalid),
        ("file", {"media": HASH}, Invalid),
        ("voice", {"media": HASH}, Invalid),
        ("image", {"media": HASH, "width": 0}, Invalid),
        ("location", {"lat": 0}, Invalid),
        ("location", {"lat": 0, "lon": 181}, Invalid),
        ("location", {"lat": True, "lon": 1}, Invalid),
        ("contact", {"user_id": "7"}, Invalid),
    ],
)
def test_refuses_bad_bodies(kind: str, body: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        content.validate(kind, body)


def test_media_location_contact() -> None:
    img = content.validate("image", {"media": HASH, "width": 10, "height": 20, "x": 1})
    assert img.body == {"media": HASH, "width": 10, "height": 20} and img.media == HASH
    voice = content.validate("voice", {"media": HASH, "duration_ms": 3000})
    assert voice.body["duration_ms"] == 3000
    f = content.validate("file", {"media": HASH, "name": "report.pdf"})
    assert f.search_text == "report.pdf"
    loc = content.validate("location", {"lat": 31.2, "lon": 121.5, "label": "Bund"})
    assert loc.body == {"lat": 31.2, "lon": 121.5, "label": "Bund"}
    assert content.validate("contact", {"user_id": 9}).body == {"user_id": 9}


def test_direct_rules() -> None:
    check_direct(PeerFacts(False, False, True, "friends"))
    check_direct(PeerFacts(False, False, False, "anyone"))
    for facts, code in [
        (PeerFacts(False, True, True, "anyone"), "peer_unreachable"),
        (PeerFacts(True, False, True, "anyone"), "peer_blocked"),
        (PeerFacts(False, False, False, "friends"), "not_friends"),
    ]:
        with pytest.raises(Forbidden) as info:
            check_direct(facts)
        assert info.value.code == code


def test_send_rules() -> None:
    with pytest.raises(NotFound):
        check_send(SendFacts("group", None, None, False))
    check_send(SendFacts("group", "member", None, False))
    check_send(SendFacts("group", "admin", None, True))
    with pytest.raises(Forbidden):
        check_send(SendFacts("group", "member", None, True))
    with pytest.raises(Forbidden):
        check_send(SendFacts("direct", "member", PeerFacts(False, False, True, "x"), True))


def test_recall_and_edit_rules() -> None:
    t = 1_000_000
    editing.check_recall(1, "member", 1, t, False, t + 120_000)
    with pytest.raises(Gone):
        editing.check_recall(1, "member", 1, t, False, t + 120_001)
    with pytest.raises(Forbidden):
        editing.check_recall(2, "member", 1, t, False, t)
    editing.check_recall(2, "admin", 1, t - 10**9, False, t)
    with pytest.raises(Invalid):
        editing.check_recall(1, "owner", 1, t, True, t)
    for kind in ("transfer", "redpacket"):
        with pytest.raises(Forbidden, match="cannot be recalled"):
            editing.check_recall(1, "owner", 1, t, False, t, kind)
    editing.check_edit(1, 1, "text", t, False, t + 86_400_000)
    with pytest.raises(Gone):
        editing.check_edit(1, 1, "text", t, False, t + 86_400_001)
    with pytest.raises(Forbidden):
        editing.check_edit(2, 1, "text", t, False, t)
    with pytest.raises(Invalid):
        editing.check_edit(1, 1, "image", t, False, t)


def test_receipt_audience() -> None:
    from wanglai.domain import receipts

    assert receipts.audience("read", "direct", 1, [1, 2]) == [1, 2]
    assert receipts.audience("delivered", "direct", 1, [1, 2]) == [2]
    assert receipts.audience("read", "group", 1, [1, 2, 3]) == [1]
    assert receipts.audience("delivered", "group", 1, [1, 2, 3]) == []
    with pytest.raises(ValueError):
        receipts.audience("seen", "direct", 1, [1, 2])


def test_edit_may_add_all_only_as_admin() -> None:
    t = 1_000_000
    editing.check_edit(1, 1, "text", t, False, t, mentions_all=True, actor_role="admin")
    with pytest.raises(Forbidden):
        editing.check_edit(1, 1, "text", t, False, t, mentions_all=True, actor_role="member")
