"""Full-text search over your conversations, on both databases: Chinese, case, edits, recalls,
scope, and LIKE's special characters taken literally."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from wanglai.domain.errors import Invalid
from wanglai.services.accounts import Session
from wanglai.store import messages as message_store
from wanglai.store.sql import Op, Row, Stmt, all_rows, execute

from .conftest import World


async def chat(world: World) -> tuple[Session, Session, int]:
    """Alice and Bob in a direct conversation (Bob accepts messages from anyone)."""
    alice, bob = await world.user("alice"), await world.user("bob")
    await world.container.accounts.update_profile(bob, dm_policy="anyone")
    conv = await world.container.messaging.open_direct(alice.user_id, bob.user_id)
    return alice, bob, conv


async def say(world: World, who: Session, conv: int, *texts: str) -> list[int]:
    m = world.container.messaging
    seqs = []
    for text in texts:
        world.clock.advance(1)
        sent = await m.send(who.user_id, conv, f"c{world.clock.now_ms()}", "text", {"text": text})
        seqs.append(sent.seq)
    return seqs


async def find(world: World, who: Session, needle: str, conv: int | None = None) -> list[str]:
    found = await world.container.messaging.search(who.user_id, needle, conv, 100)
    return [str(view.body.get("text", "")) for view in found]


async def test_chinese_text_is_found_by_any_part(world: World) -> None:
    alice, bob, conv = await chat(world)
    await say(world, alice, conv, "明天一起吃饭吗", "今天下雨了", "我们去吃火锅吧")
    assert await find(world, bob, "吃饭") == ["明天一起吃饭吗"]  # 2 characters: scanned
    assert await find(world, bob, "一起吃") == ["明天一起吃饭吗"]  # 3 or more: the index
    assert await find(world, bob, "明天一起吃饭吗") == ["明天一起吃饭吗"]
    assert await find(world, alice, "吃") == ["我们去吃火锅吧", "明天一起吃饭吗"]  # newest first
    assert await find(world, bob, "吃火锅") == ["我们去吃火锅吧"]
    assert await find(world, bob, "一起吃面") == []
    assert await find(world, bob, "下雪") == []


async def test_english_is_case_insensitive(world: World) -> None:
    alice, bob, conv = await chat(world)
    await say(world, alice, conv, "Meeting at NOON in Room 5", "lunch later?")
    for needle in ("noon", "NOON", "Noon", "meeting AT", "room 5", "No", "n r"):
        assert await find(world, bob, needle) == ["Meeting at NOON in Room 5"], needle
    assert await find(world, bob, "LUNCH") == ["lunch later?"]
    assert await find(world, bob, "room 6") == []


async def test_edits_match_only_the_new_text(world: World) -> None:
    alice, bob, conv = await chat(world)
    [seq] = await say(world, alice, conv, "see you at the harbour")
    await world.container.messaging.edit(alice.user_id, conv, seq, {"text": "see you at 港口"})
    assert await find(world, bob, "harbour") == []
    assert await find(world, bob, "ha") == []
    assert await find(world, bob, "港口") == ["see you at 港口"]
    assert await find(world, bob, "at 港口") == ["see you at 港口"]
    await world.container.messaging.edit(alice.user_id, conv, seq, {"text": "never mind"})
    assert await find(world, bob, "at 港口") == []
    assert await find(world, bob, "mind") == ["never mind"]


async def test_recalled_messages_never_match(world: World) -> None:
    alice, bob, conv = await chat(world)
    [seq, _] = await say(world, alice, conv, "the password is 口令123", "password hint: none")
    await world.container.messaging.recall(alice.user_id, conv, seq)
    for needle in ("口令", "口令123", "the password", "is"):
        assert await find(world, bob, needle) == [], needle
    assert await find(world, bob, "password") == ["password hint: none"]


async def test_other_peoples_conversations_never_leak(world: World) -> None:
    alice, bob, conv = await chat(world)
    eve = await world.user("eve")
    await world.container.accounts.update_profile(eve, dm_policy="anyone")
    private = await world.container.messaging.open_direct(alice.user_id, eve.user_id)
    await say(world, alice, conv, "shared plan 计划 for bob")
    await say(world, alice, private, "shared plan 计划 for eve")
    assert await find(world, bob, "shared plan") == ["shared plan 计划 for bob"]
    assert await find(world, bob, "计划") == ["shared plan 计划 for bob"]
    assert await find(world, eve, "计划 for") == ["shared plan 计划 for eve"]
    assert len(await find(world, alice, "计划")) == 2
    # naming the other conversation does not open it
    assert await find(world, bob, "shared plan", private) == []
    assert await find(world, bob, "计划", private) == []
    assert await find(world, alice, "shared plan", private) == ["shared plan 计划 for eve"]
    outsider = await world.user("mallory")
    assert await find(world, outsider, "shared") == []


async def test_history_before_joining_is_not_searched(world: World) -> None:
    alice, bob, conv = await chat(world)
    await say(world, alice, conv, "before bob came 之前", "after bob came 之后")

    def hide_first_message(conv_id: int, user_id: int) -> Op[int]:
        count = yield from execute(
            "UPDATE members SET from_seq = 1 WHERE conv_id = ? AND user_id = ?", conv_id, user_id
        )
        return count

    await world.container.db.write(hide_first_message, conv, bob.user_id)
    assert await find(world, bob, "bob came") == ["after bob came 之后"]
    assert await find(world, bob, "之前") == []
    assert await find(world, alice, "bob came") == ["after bob came 之后", "before bob came 之前"]


async def test_like_special_characters_are_literal(world: World) -> None:
    alice, bob, conv = await chat(world)
    texts = [
        "100% sure",
        "1000 reasons",
        "file_name.txt",
        "filename.txt",
        "back\\slash",
        'she said "hi" twice',
        "a*b OR c",
    ]
    await say(world, alice, conv, *texts)
    cases = {
        "%": ["100% sure"],
        "0%": ["100% sure"],
        "100%": ["100% sure"],
        "_": ["file_name.txt"],
        "e_n": ["file_name.txt"],
        "file_": ["file_name.txt"],
        "\\": ["back\\slash"],
        "k\\s": ["back\\slash"],
        '"hi"': ['she said "hi" twice'],
        '"': ['she said "hi" twice'],
        "a*b": ["a*b OR c"],
        "OR c": ["a*b OR c"],
        "b OR": ["a*b OR c"],
        "NEAR(": [],
        "%%%": [],
        "___": [],
    }
    for needle, expected in cases.items():
        assert await find(world, bob, needle) == expected, needle


async def test_file_names_and_captions_are_searchable(world: World) -> None:
    alice, bob, conv = await chat(world)
    data = b"%PDF-1.7\n" + b"x" * 100

    async def body() -> AsyncIterator[bytes]:
        yield data

    uploaded = await world.container.media.upload(alice.user_id, "application/pdf", body())
    await world.container.messaging.send(
        alice.user_id,
        conv,
        "f1",
        "file",
        {"media": uploaded.hash, "name": "年度报告.pdf", "caption": "Q3 numbers"},
    )
    found = await world.container.messaging.search(bob.user_id, "年度报告", None, 10)
    assert [v.body["name"] for v in found] == ["年度报告.pdf"]
    assert len(await world.container.messaging.search(bob.user_id, "q3 NUM", None, 10)) == 1


async def test_bad_queries_are_refused(world: World) -> None:
    alice, _bob, _conv = await chat(world)
    for needle in ("", "   ", "x" * 101):
        with pytest.raises(Invalid):
            await world.container.messaging.search(alice.user_id, needle, None, 10)


# On tables this small PostgreSQL rightly walks the user's conversations instead; with these
# off, the only way into `messages` other than a full scan is a bitmap scan of an index that can
# answer the ILIKE, which shows the trigram index serves the query as it is written.
_PLANNER = "; ".join(
    f"SET enable_{what} = {{0}}" for what in ("seqscan", "indexscan", "nestloop", "mergejoin")
)


def _explain(needle: str, user_id: int) -> Op[list[Row]]:
    """The plan of the search query for ``needle``."""
    query = message_store.search(user_id, needle, None, 10)
    stmt: Stmt = next(query)
    yield from execute("SELECT 1", pg_sql=_PLANNER.format("off"))
    plan: list[Row] = yield Stmt(
        "all",
        "EXPLAIN QUERY PLAN " + stmt.sql,
        stmt.params,
        "EXPLAIN " + (stmt.pg_sql or ""),
        stmt.pg_params,
    )
    yield from execute("SELECT 1", pg_sql=_PLANNER.format("on"))
    return plan


def _index_rows() -> Op[list[Row]]:
    rows = yield from all_rows(
        "SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'",
        pg_sql="SELECT indexname FROM pg_indexes WHERE indexname = 'ix_messages_search_trgm'",
    )
    return rows


async def test_long_needles_use_the_index_kept_in_sync(world: World) -> None:
    alice, bob, conv = await chat(world)
    seqs = await say(world, alice, conv, "明天一起吃饭吗", "to be edited", "to be recalled")
    db = world.container.db
    if db.dialect == "sqlite":  # the app's background job; here, by hand
        assert await db.write(message_store.index_search, 1000) == 3
        assert await db.write(message_store.index_search, 1000) == 0
    m = world.container.messaging
    await m.edit(alice.user_id, conv, seqs[1], {"text": "edited once 改过"})
    await m.recall(alice.user_id, conv, seqs[2])
    assert await db.read(_index_rows) != []
    plan = " ".join(str(row[-1]) for row in await db.read(_explain, "一起吃", bob.user_id))
    if db.dialect == "sqlite":
        assert "VIRTUAL TABLE INDEX" in plan and ":M" in plan, plan  # an FTS5 MATCH

        def integrity() -> Op[int]:
            # with rank 1, FTS5 compares its index with the messages table: it raises
            # "database disk image is malformed" if a trigger missed an insert, edit or recall
            count = yield from execute(
                "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)"
            )
            return count

        await db.write(integrity)
    else:
        assert "ix_messages_search_trgm" in plan, plan
    short: Any = " ".join(str(row[-1]) for row in await db.read(_explain, "吃饭", bob.user_id))
    assert "messages_fts" not in short


async def test_messages_are_found_before_and_after_background_indexing(world: World) -> None:
    alice, bob, conv = await chat(world)
    db = world.container.db
    m = world.container.messaging
    await say(world, alice, conv, "first batch: dumplings tonight")
    if db.dialect == "sqlite":
        await db.write(message_store.index_search, 1000)
    seqs = await say(world, alice, conv, "second batch: more dumplings", "unrelated")
    found = await m.search(bob.user_id, "dumplings", None, 10)
    assert [x.seq for x in found] == [seqs[0], seqs[0] - 1]  # indexed and not-yet-indexed
    await m.edit(alice.user_id, conv, seqs[0], {"text": "second batch: noodles"})
    assert [x.seq for x in await m.search(bob.user_id, "dumplings", None, 10)] == [seqs[0] - 1]
    if db.dialect == "sqlite":
        await db.write(message_store.index_search, 1000)
    assert [x.seq for x in await m.search(bob.user_id, "noodles", None, 10)] == [seqs[0]]
    assert [x.seq for x in await m.search(bob.user_id, "dumplings", None, 10)] == [seqs[0] - 1]
