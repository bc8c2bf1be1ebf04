"""Property-based fuzzing of every REST operation from the served OpenAPI document, and a pass of
hand-made hostile input (deep nesting, huge integers, invalid UTF-8 ...) for the JSON endpoints.

schemathesis reads ``/openapi.json`` from the running app and sends generated requests over real
HTTP. Its calls are synchronous (``requests``), so they run in a worker thread while the server
keeps serving on the test's event loop. Each operation's test is built with
``schemathesis.generation.hypothesis.builder.create_test``, as schemathesis' own pytest plugin
does (``schema.parametrize`` needs the schema at collection time, before the server runs), which
is why ``pyproject.toml`` pins schemathesis below 5.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis import APIOperation, Case, CheckContext, HookContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation.hypothesis.builder import (
    HypothesisTestConfig,
    HypothesisTestMode,
    create_test,
)
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from wanglai.domain.content import USER_KINDS

from .conftest import Api, User
from .shops import open_shop

EXAMPLES = 50
"""Random cases per operation, with every input generated (path ids mostly name nothing)."""
BOUND_EXAMPLES = 40
"""Random cases per operation with path ids, those ids bound to the caller's real objects."""


def negative_data_rejected(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """schemathesis' ``negative_data_rejection`` (it judges negative cases only), except when a
    query parameter went out empty (``?limit=``, also how an empty object or list is sent):
    ``Ctx.query_int`` takes an empty value for an absent one on purpose, as forms send empty
    fields. Coverage cases break one thing at a time, so this skips little else."""
    sent = parse_qsl(urlsplit(response.request.url or "").query, keep_blank_values=True)
    if any(value == "" for _, value in sent):
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejected,
]

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            # The caller's real token is sent with every request instead: a generated or removed
            # Authorization header would only ever test the 401 path.
            "with-security-parameters": False,
            # Unknown query parameters are ignored, as HTTP servers customarily do; negative
            # cases that differ only by one are not "accepted invalid input".
            "allow-extra-parameters": False,
        }
    }
)


@dataclass
class Target:
    """A fresh caller for one operation (logout and device removal end the session they use)
    and real objects of theirs: path ids are bound to them in the second pass, and generated
    bodies' id fields are swapped for them half of the time (random ids name nobody)."""

    user: User
    path: dict[str, Any]
    user_ids: list[int]
    seqs: list[int]


@dataclass
class Fuzzer:
    base_url: str
    target: Target | None = None
    failures: list[str] = field(default_factory=list)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def run(
        self,
        operation: APIOperation[Any, Any, Any, Any],
        max_examples: int,
        path: dict[str, Any] | None = None,
    ) -> None:
        """Run one operation's cases (in a worker thread); record the shrunk failure, if any.

        Positive and negative cases of three kinds: the schema's examples, schemathesis'
        deterministic coverage cases (empty and longest strings, each required field missing,
        each field of the wrong type, undeclared methods) and ``max_examples`` random ones.
        """
        assert self.target is not None
        auth = self.target.user.auth
        http = requests.Session()

        def check(case: Case[Any]) -> None:
            response = case.call_and_validate(
                base_url=self.base_url, session=http, headers=auth, checks=CHECKS
            )
            self.statuses[operation.label, response.status_code] += 1

        test = create_test(
            operation=operation,
            test_func=check,
            config=HypothesisTestConfig(
                project=operation.schema.config,
                modes=list(HypothesisTestMode),
                settings=settings(
                    max_examples=max_examples,
                    deadline=None,
                    derandomize=True,  # the same cases on every run
                    database=None,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck),
                    print_blob=False,
                ),
                override=Override(path_parameters=path or {}),
            ),
        )
        try:
            test()
        except (FailureGroup, Exception) as exc:  # FailureGroup is a BaseExceptionGroup
            bound = " (path ids bound to real objects)" if path else ""
            self.failures.append(f"{operation.label}{bound}\n{exc}")
        finally:
            http.close()

    def steer_bodies(self, _context: HookContext, body: Any) -> SearchStrategy[Any]:
        """Half of the JSON bodies get real ids and message content where they carry generated
        ones: random ids name nobody and random message kinds are all refused up front, so
        without this the deeper rules (friendship, membership, each message kind) go untried."""
        if not isinstance(body, dict) or self.target is None:
            return st.just(body)
        t = self.target
        real = st.fixed_dictionaries(
            {
                "user_id": st.sampled_from(t.user_ids),
                "user_ids": st.lists(st.sampled_from(t.user_ids), max_size=3),
                "seq": st.sampled_from(t.seqs),
                "message": message_content(t.user_ids, t.path["hash"]),
            }
        )
        return st.one_of(st.just(body), real.map(lambda ids: steered(body, ids)))


def steered(body: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its id fields and message content replaced by ``real`` ones; a field that a
    negative case broke (a wrong type) is left as it is, so the case stays negative."""
    out = dict(body)
    for key, value in body.items():
        if type(value) is int and key in ("user_id", "seq", "reply_to"):
            out[key] = real["seq" if key == "reply_to" else key]
        elif key in ("members", "user_ids") and isinstance(value, list):
            out[key] = real["user_ids"] if all(type(v) is int for v in value) else value
    kind, content = real["message"]
    if isinstance(body.get("body"), dict):
        out["body"] = content
        if isinstance(body.get("kind"), str):
            out["kind"] = kind
    return out


def message_content(user_ids: list[int], media: str) -> SearchStrategy[tuple[str, Any]]:
    """A message kind and a body: valid for that kind, or mixing every kind's fields at random."""
    words = st.text(min_size=1, max_size=40)
    dims = st.integers(1, 100_000)
    mentions = st.lists(st.sampled_from([*user_ids, "all"]), max_size=3)
    optional = {"name": words, "caption": words, "width": dims, "height": dims}
    valid = st.one_of(
        st.tuples(
            st.just("text"), st.fixed_dictionaries({"text": words}, optional={"mentions": mentions})
        ),
        st.tuples(
            st.just("image"), st.fixed_dictionaries({"media": st.just(media)}, optional=optional)
        ),
        st.tuples(
            st.just("voice"),
            st.fixed_dictionaries(
                {"media": st.just(media), "duration_ms": st.integers(1, 600_000)}
            ),
        ),
        st.tuples(st.just("file"), st.fixed_dictionaries({"media": st.just(media), "name": words})),
        st.tuples(
            st.just("location"),
            st.fixed_dictionaries(
                {"lat": st.floats(-90, 90), "lon": st.floats(-180, 180)}, optional={"label": words}
            ),
        ),
        st.tuples(
            st.just("contact"), st.fixed_dictionaries({"user_id": st.sampled_from(user_ids)})
        ),
    )
    junk = st.integers() | st.floats(allow_nan=False) | st.text(max_size=40) | st.none()
    fields = (
        "text",
        "mentions",
        "media",
        "name",
        "caption",
        "label",
        "width",
        "height",
        "duration_ms",
        "lat",
        "lon",
        "user_id",
    )
    mixed = st.tuples(
        st.sampled_from([*USER_KINDS, "system"]),
        st.fixed_dictionaries({}, optional=dict.fromkeys(fields, junk | st.sampled_from(user_ids))),
    )
    return valid | mixed


async def make_target(api: Api) -> Target:
    me, friend, stranger = await api.user(), await api.user(), await api.user()
    status, req = await api.call("POST", "/v1/friends/requests", friend, json={"user_id": me.id})
    assert status == 200, req
    status, _ = await api.call("POST", f"/v1/friends/requests/{req['id']}/accept", me)
    assert status == 200
    status, group = await api.call(
        "POST", "/v1/groups", me, json={"title": "fuzz", "members": [friend.id]}
    )
    assert status == 201, group
    status, msg = await api.call(
        "POST",
        f"/v1/conversations/{group['id']}/messages",
        me,
        json={"client_id": "seed", "kind": "text", "body": {"text": "hi"}},
    )
    assert status == 201, msg
    status, pending = await api.call(
        "POST", "/v1/friends/requests", stranger, json={"user_id": me.id}
    )
    assert status == 200, pending
    status, media = await api.call(
        "POST",
        "/v1/media",
        me,
        data=b"seed bytes",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 201, media
    status, order = await api.call(
        "POST",
        "/v1/wallet/topups",
        me,
        json={"channel": "carrier", "amount": 100},
        headers={"Idempotency-Key": "seed"},
    )
    assert status == 201, order
    # A transfer to the caller, for /v1/wallet/transfers/{transfer_id} (accept, decline).
    await api.fund(friend, 1_000)
    status, _ = await api.call("PUT", "/v1/wallet/pin", friend, json={"pin": "246810"})
    assert status == 200
    status, transfer = await api.call(
        "POST",
        "/v1/wallet/transfers",
        friend,
        json={"to": me.id, "amount": 100, "pin": "246810"},
        headers={"Idempotency-Key": "seed"},
    )
    assert status == 201, transfer
    # A second device of the caller's, for DELETE /v1/devices/{device_id}.
    await api.call("POST", "/v1/auth/code", json={"phone": me.phone})
    status, second = await api.call(
        "POST",
        "/v1/auth/login",
        json={"phone": me.phone, "code": api.sms.last_code(me.phone), "device_name": "2"},
    )
    assert status == 200, second
    await api.fund(me.id, 10_000, pin_free=20_000)
    status, packet = await api.call(
        "POST",
        "/v1/redpackets",
        me,
        json={"conv": group["id"], "kind": "lucky", "amount": 100, "shares": 2},
        headers={"Idempotency-Key": "seed-packet"},
    )
    assert status == 201, packet
    shop = await open_shop(api, me, friend)
    path = {
        "packet_id": packet["id"],
        "merchant_id": shop["merchant_id"],
        "code_id": shop["code_id"],
        "payment_id": shop["payment_id"],
        "token": shop["token"],
        "conv_id": group["id"],
        "seq": msg["seq"],
        "user_id": friend.id,
        "request_id": pending["id"],
        "hash": media["hash"],
        "device_id": second["device_id"],
        "order_id": order["id"],
        "transfer_id": transfer["id"],
    }
    return Target(me, path, [friend.id, stranger.id, me.id], [msg["seq"]])


async def test_every_operation_survives_generated_input(api: Api) -> None:
    schema = await asyncio.to_thread(
        schemathesis.openapi.from_url, api.url("/openapi.json"), config=CONFIG
    )
    fuzzer = Fuzzer(api.url("/").rstrip("/"))

    def flatmap_body(context: HookContext, body: Any) -> SearchStrategy[Any]:
        return fuzzer.steer_bodies(context, body)

    schema.hook(flatmap_body)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) >= 45, [r for r in results if not isinstance(r, Ok)]
    started = time.perf_counter()
    for operation in operations:
        fuzzer.target = await make_target(api)
        await asyncio.to_thread(fuzzer.run, operation, EXAMPLES)
        names = [p.name for p in operation.path_parameters]
        if names:
            path = {name: fuzzer.target.path[name] for name in names}
            await asyncio.to_thread(fuzzer.run, operation, BOUND_EXAMPLES, path)
    elapsed = time.perf_counter() - started
    requests_sent = sum(fuzzer.statuses.values())
    print(f"\n{len(operations)} operations, {requests_sent} requests in {elapsed:.1f} s")
    reached = {label for (label, status) in fuzzer.statuses if status < 300}
    print("never answered 2xx:", sorted({op.label for op in operations} - reached))
    # Guard against a vacuous pass (a broken token makes every answer a documented 401).
    # Partner callbacks are left out: only a partner holding the shared secret gets a 2xx.
    reachable = [op for op in operations if not op.path.startswith("/v1/partners/")]
    assert len(reached) >= 0.8 * len(reachable), sorted(reached)
    assert not fuzzer.failures, f"{len(fuzzer.failures)} failing operation run(s):\n\n" + (
        "\n\n".join(fuzzer.failures)
    )


# --- Hostile bodies and parameters ------------------------------------------------------------

DEEP = 10_000
DEEP_LIST = b"[" * DEEP + b"]" * DEEP
DEEP_OBJECT = b'{"a":' * DEEP + b"1" + b"}" * DEEP
OUT_OF_INT64 = (2**70, -(2**70), 2**64 - 1, 2**63, -(2**63) - 1)
"""msgspec decodes any JSON integer into a Python int: these must be refused before the store."""
BAD_IDS = ("%C2%B2", "%D9%A1%D9%A2", "1e3", "0x1f", "%201", "-1", "1.0", "9" * 19, "0")
"""Path ids: superscript two and Arabic-Indic digits (``str.isdigit`` says yes), and others."""


@dataclass
class Hostile:
    method: str
    path: str
    valid: dict[str, Any]
    """A body the endpoint accepts (checked last): each hostile case breaks one part of it."""
    auth: bool = True


def raw_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def with_raw(valid: dict[str, Any], key: str, raw: bytes) -> bytes:
    """``valid`` with ``key``'s value replaced by raw JSON text that ``json`` can't produce."""
    placeholder = "\x00placeholder\x00"
    return raw_json({**valid, key: placeholder}).replace(raw_json(placeholder), raw)


def with_extra(valid: dict[str, Any], raw: bytes) -> bytes:
    """``valid`` with raw text appended inside its top-level object."""
    return raw_json(valid)[:-1] + b"," + raw + b"}"


def hostile_bodies(valid: dict[str, Any]) -> list[tuple[str, bytes]]:
    cases = [
        (f"top level {raw.decode()}", raw)
        for raw in (b"[]", b'"text"', b"42", b"null", b"true", b"1.5")
    ]
    cases += [
        ("top level: nested lists", DEEP_LIST),
        ("top level: nested objects", DEEP_OBJECT),
        ("invalid UTF-8", with_extra(valid, b'"\xff\xfe":"\xc3\x28"')),
        ("truncated UTF-8", with_extra(valid, b'"x":"\xe4\xb8"')),
        ("lone surrogate", with_extra(valid, b'"x":"\\ud800"')),
        ("byte order mark", b"\xef\xbb\xbf" + raw_json(valid)),
        ("trailing garbage", raw_json(valid) + b"}"),
    ]
    for key, value in valid.items():
        for label, raw in (
            ("nested lists", DEEP_LIST),
            ("nested objects", DEEP_OBJECT),
            ("NaN", b"NaN"),
            ("Infinity", b"Infinity"),
            ("-Infinity", b"-Infinity"),
            ("1e400", b"1e400"),
            ("wrong type", b'{"wrong":["type"]}'),
            *((str(n), str(n).encode()) for n in OUT_OF_INT64),
        ):
            cases.append((f"{key}: {label}", with_raw(valid, key, raw)))
        # A duplicate key: the last one wins (as in most JSON parsers), and it is wrong.
        cases.append((f"{key}: duplicate", with_extra(valid, raw_json(key) + b":[[]]")))
        if isinstance(value, dict):
            # A free-form object (a message body) takes any JSON and keeps only the fields its
            # kind reads, but the decoder still has to get through the hostile part inside.
            nested = with_raw(valid, key, with_extra(value, b'"x":' + DEEP_LIST))
            cases.append((f"{key}.x: nested lists", nested))
        if isinstance(value, list):
            for n in OUT_OF_INT64:
                cases.append((f"{key}[0]: {n}", with_raw(valid, key, f"[{n}]".encode())))
    return cases


def is_error_envelope(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"error"}
        and isinstance(body["error"], dict)
        and set(body["error"]) == {"code", "message"}
        and all(isinstance(v, str) and v for v in body["error"].values())
    )


async def test_hostile_input_gets_a_json_4xx(api: Api) -> None:
    me, friend, stranger = await api.user(), await api.user(), await api.user()
    _, req = await api.call("POST", "/v1/friends/requests", friend, json={"user_id": me.id})
    await api.call("POST", f"/v1/friends/requests/{req['id']}/accept", me)
    _, conv = await api.call("POST", "/v1/conversations/direct", me, json={"user_id": friend.id})
    messages = f"/v1/conversations/{conv['id']}/messages"
    status, sent = await api.call(
        "POST", messages, me, json={"client_id": "c0", "kind": "text", "body": {"text": "hi"}}
    )
    assert status == 201, sent
    seq = sent["seq"]
    endpoints = [
        Hostile("POST", "/v1/auth/code", {"phone": "+8613800138000"}, auth=False),
        Hostile("PATCH", "/v1/me", {"name": "n", "about": "a", "dm_policy": "anyone"}),
        Hostile("POST", "/v1/conversations/direct", {"user_id": friend.id}),
        Hostile(
            "POST",
            messages,
            {"client_id": "c1", "kind": "text", "body": {"text": "x"}, "reply_to": seq},
        ),
        Hostile("PATCH", f"{messages}/{seq}", {"body": {"text": "edited"}}),
        Hostile("POST", f"/v1/conversations/{conv['id']}/read", {"seq": seq}),
        Hostile("POST", "/v1/groups", {"title": "g", "members": [friend.id]}),
        Hostile("POST", "/v1/friends/requests", {"user_id": stranger.id, "note": "hi"}),
        Hostile("POST", "/v1/contacts/match", {"phones": ["+8613800138000"]}),
        Hostile("POST", "/v1/blocks", {"user_id": friend.id}),
    ]
    bad: list[str] = []

    async def expect_4xx(method: str, path: str, body: bytes | None, label: str = "") -> None:
        ep = next((e for e in endpoints if (e.method, e.path) == (method, path)), None)
        status, answer = await api.call(
            method,
            path,
            me if ep is None or ep.auth else None,
            data=body,
            headers={"Content-Type": "application/json"} if body is not None else None,
        )
        if not (400 <= status < 500 and is_error_envelope(answer)):
            bad.append(f"{method} {path} {label} -> {status} {answer!r:.200}".replace("  ", " "))

    for ep in endpoints:
        for label, body in hostile_bodies(ep.valid):
            await expect_4xx(ep.method, ep.path, body, f"[{label}]")
    for n in OUT_OF_INT64:
        for path in (
            "/v1/sync?since=",
            "/v1/sync?limit=",
            messages + "?before=",
            "/v1/search?q=x&conv=",
        ):
            await expect_4xx("GET", f"{path}{n}", None)
    for raw_id in BAD_IDS:
        await expect_4xx("GET", f"/v1/conversations/{raw_id}", None)
        await expect_4xx("GET", f"/v1/users/{raw_id}", None)
        await expect_4xx("POST", f"{messages}/{raw_id}/recall", None)
    assert not bad, f"{len(bad)} hostile request(s) not answered with a JSON 4xx:\n" + "\n".join(
        bad
    )

    # Nothing was sent, edited or read by any of them ...
    status, history = await api.call("GET", messages, me)
    assert status == 200
    assert [(m["seq"], m["body"], m.get("edited_at")) for m in history] == [
        (seq, {"text": "hi"}, None)
    ]
    status, view = await api.call("GET", f"/v1/conversations/{conv['id']}", me)
    assert status == 200 and view["read_seq"] < seq
    # ... and each template is accepted, so every case above differed from a valid body by its
    # hostile part alone.
    for ep in endpoints:
        status, answer = await api.call(ep.method, ep.path, me if ep.auth else None, json=ep.valid)
        assert status < 300, (ep.method, ep.path, answer)
