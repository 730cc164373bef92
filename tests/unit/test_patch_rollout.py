"""Sticky rollout: same answer for a user everywhere, raising the percentage only adds users."""

from __future__ import annotations

import subprocess
import sys

import mmh3

from patches.rollout import bucket, in_rollout

USERS = [f"user-{i}" for i in range(10_000)]


def test_bucket_is_the_unleash_formula() -> None:
    for user in USERS[:50]:
        assert bucket("memory_enhancement", user) == mmh3.hash(f"memory_enhancement:{user}", 0, signed=False) % 100 + 1
    assert {bucket("p", user) for user in USERS} == set(range(1, 101))


def test_a_user_keeps_its_variant_across_calls_and_processes() -> None:
    here = [in_rollout("p", user, 30) for user in USERS[:200]]
    assert here == [in_rollout("p", user, 30) for user in USERS[:200]]
    code = (
        "from patches.rollout import in_rollout\n"
        "print(''.join('1' if in_rollout('p', f'user-{i}', 30) else '0' for i in range(200)))"
    )
    elsewhere = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert elsewhere.strip() == "".join("1" if inside else "0" for inside in here)


def test_raising_the_percentage_only_adds_users() -> None:
    previous: set[str] = set()
    for percent in (0, 1, 5, 10, 25, 50, 75, 99, 100):
        inside = {user for user in USERS if in_rollout("p", user, percent)}
        assert previous <= inside
        previous = inside
    assert previous == set(USERS)


def test_the_share_of_users_inside_is_close_to_the_percentage() -> None:
    for percent in (1, 10, 33, 50, 90):
        share = sum(in_rollout("p", user, percent) for user in USERS) / len(USERS) * 100
        assert abs(share - percent) < 2.5, (percent, share)


def test_two_patches_at_50_percent_pick_different_users() -> None:
    first = {user for user in USERS if in_rollout("memory_enhancement", user, 50)}
    second = {user for user in USERS if in_rollout("llm_resilience", user, 50)}
    overlap = len(first & second) / len(USERS)
    assert 0.2 < overlap < 0.3  # independent halves overlap on about a quarter of the users


def test_no_user_means_inside_only_at_100_percent() -> None:
    assert in_rollout("p", None, 100) is True
    assert in_rollout("p", None, 99.9) is False
    assert in_rollout("p", "anyone", 0) is False
