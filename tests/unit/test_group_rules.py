"""Group rules as plain functions: sizes, titles, who manages whom, succession."""

from __future__ import annotations

import pytest

from wanglai.domain import groups as rules
from wanglai.domain.errors import Conflict, Forbidden, Invalid, TooLarge
from wanglai.domain.groups import Member


def test_title_is_trimmed_and_bounded() -> None:
    assert rules.clean_title("  Family  ") == "Family"
    assert rules.clean_title("x" * 64) == "x" * 64
    for bad in ("", "   ", "x" * 65, 5, None):
        with pytest.raises(Invalid) as info:
            rules.clean_title(bad)
        assert info.value.code == "invalid_title"


def test_announcement_may_be_cleared_but_not_too_long() -> None:
    assert rules.clean_announcement("") == ""
    assert rules.clean_announcement(" a " + "b" * 1997) == "a " + "b" * 1997
    with pytest.raises(TooLarge):
        rules.clean_announcement("x" * 2001)
    with pytest.raises(Invalid):
        rules.clean_announcement(["x"])


def test_user_ids_are_positive_and_deduplicated() -> None:
    assert rules.clean_user_ids([3, 1, 3, 2], required=True) == [3, 1, 2]
    assert rules.clean_user_ids([], required=False) == []
    with pytest.raises(Invalid) as info:
        rules.clean_user_ids([], required=True)
    assert info.value.code == "no_users"
    for bad in ([0], [-1], [True], ["7"], [2**62]):
        with pytest.raises(Invalid):
            rules.clean_user_ids(bad, required=False)


def test_capacity_counts_everyone() -> None:
    rules.check_capacity(1, rules.MAX_MEMBERS - 1)
    rules.check_capacity(rules.MAX_MEMBERS, 0)
    with pytest.raises(Conflict) as info:
        rules.check_capacity(1, rules.MAX_MEMBERS)
    assert info.value.code == "group_full" and "room for 499" in info.value.message
    with pytest.raises(Conflict):
        rules.check_capacity(rules.MAX_MEMBERS, 1)


def test_only_friends_may_be_added() -> None:
    rules.check_friends([2, 3], {2, 3, 4})
    rules.check_friends([], set())
    with pytest.raises(Forbidden) as info:
        rules.check_friends([2, 99], {2})
    assert info.value.code == "not_friends" and "99" not in info.value.message


def test_managing_and_owning() -> None:
    rules.check_manage("owner")
    rules.check_manage("admin")
    with pytest.raises(Forbidden):
        rules.check_manage("member")
    rules.check_owner("owner")
    for role in ("admin", "member"):
        with pytest.raises(Forbidden) as info:
            rules.check_owner(role)
        assert info.value.code == "not_group_owner"


def test_approval_applies_to_plain_members_only() -> None:
    assert rules.needs_approval("member", True)
    assert not rules.needs_approval("admin", True)
    assert not rules.needs_approval("owner", True)
    assert not rules.needs_approval("member", False)


def test_who_removes_whom() -> None:
    rules.check_remove(1, "owner", 2, "admin")
    rules.check_remove(1, "owner", 2, "member")
    rules.check_remove(1, "admin", 2, "member")
    with pytest.raises(Forbidden) as info:
        rules.check_remove(1, "admin", 2, "admin")
    assert info.value.code == "cannot_remove_admin"
    with pytest.raises(Forbidden):
        rules.check_remove(1, "admin", 2, "owner")
    with pytest.raises(Forbidden) as info:
        rules.check_remove(1, "member", 2, "member")
    assert info.value.code == "not_group_admin"
    with pytest.raises(Invalid):
        rules.check_remove(1, "owner", 1, "owner")


def test_roles_and_transfer_are_the_owners() -> None:
    rules.check_role_change(1, "owner", 2)
    with pytest.raises(Forbidden):
        rules.check_role_change(1, "admin", 2)
    with pytest.raises(Invalid):
        rules.check_role_change(1, "owner", 1)
    rules.check_transfer(1, "owner", 2)
    with pytest.raises(Forbidden):
        rules.check_transfer(1, "admin", 2)
    with pytest.raises(Invalid):
        rules.check_transfer(1, "owner", 1)


def test_successor_is_the_longest_standing_admin_then_member() -> None:
    owner = Member(1, "owner", 100, 0)
    early_member = Member(2, "member", 100, 0)
    late_admin = Member(3, "admin", 500, 7)
    earlier_admin = Member(4, "admin", 500, 3)
    assert rules.successor([owner, early_member, late_admin, earlier_admin], 1) == 4
    assert rules.successor([owner, early_member, late_admin], 1) == 3
    same_ms = [owner, Member(6, "member", 200, 9), Member(5, "member", 200, 4)]
    assert rules.successor(same_ms, 1) == 5
    tie = [owner, Member(8, "member", 100, 0), Member(7, "member", 100, 0)]
    assert rules.successor(tie, 1) == 7
    assert rules.successor([owner], 1) is None
