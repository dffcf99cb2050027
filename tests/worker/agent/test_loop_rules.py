"""The loop rules (docs/agent.md, "Asking instead of looping") on sequences of (screen, action)
pairs, and the rule that tells a finish saying "I cannot" from one that reports a result."""

from __future__ import annotations

import datetime as dt

import pytest

from device_pool.driver import AppCatalog
from worker.agent import actions as a
from worker.agent.loop import AgentConfig, _AgentLoop
from worker.agent.steering import AgentHooks, AgentSteering


def found(pairs: str, config: AgentConfig | None = None, no_change: int = 0) -> str | None:
    """Why the loop rules stop a run whose steps were ``pairs`` ("a1 b2 a1 b2": screen a, action 1…)."""
    loop = _AgentLoop(
        "task",
        None,
        None,
        config or AgentConfig(),
        AgentHooks(),
        AgentSteering(),
        AppCatalog(),
        dt.date.today(),
    )  # type: ignore[arg-type]
    for pair in pairs.split():
        loop.history.append((pair[0].encode(), pair[1:]))
        loop.tried.append(f"action {pair[1:]}")
    loop.no_change = [f"tap {i}" for i in range(no_change)]
    why = loop._loop_found()
    return None if why is None else why[0]


@pytest.mark.parametrize(
    ("pairs", "why"),
    [
        ("a1 b2 a1 b2", "a loop of 2 actions on the same screens 2 times over"),  # A B A B
        ("x9 a1 b2 c3 a1 b2 c3", "a loop of 3 actions on the same screens 2 times over"),  # A B C A B C
        ("a1 b2 c3 d4 a1 b2 c3 d4", "a loop of 4 actions on the same screens 2 times over"),
        ("a1 a1 a1 a1", "the same action on the same screen 4 times"),
    ],
)
def test_loops_are_found(pairs: str, why: str) -> None:
    assert found(pairs) == why


@pytest.mark.parametrize(
    "pairs",
    [
        "a1 b2 c3 d4 e5 f6",  # progress: every screen new
        "a1 b1 c1 d1 e1 f1",  # the same action (a scroll) on screens that change
        "a1 b2 a1 c3",  # came back once, then went elsewhere
        "a1 b2 a3 b2",  # the same screens, other actions
        "a1 a1 a1",  # a repeat, not yet stuck_repeats times
        "a1 b2 c3 d4 e5 a1 b2 c3 d4 e5",  # a cycle longer than stuck_cycle_max
    ],
)
def test_progress_is_no_loop(pairs: str) -> None:
    assert found(pairs) is None


def test_rules_can_be_turned_off_and_no_change_counts() -> None:
    off = AgentConfig(stuck_repeats=0, stuck_cycle_repeats=0, stuck_no_change=0)
    assert found("a1 b2 a1 b2 a1 b2", off, no_change=9) is None
    assert found("a1 b2 a1 b2 a1 b2", AgentConfig(stuck_cycle_repeats=3)) is not None
    assert found("a1 b2 a1 b2", AgentConfig(stuck_cycle_repeats=3)) is None
    assert found("a1", no_change=3) is None
    assert found("a1", no_change=4) == "4 actions in a row changed nothing on screen"


@pytest.mark.parametrize(
    "message",
    ["I cannot find the Notes app", "Can't log in without a password", "Unable to open Shop",
     "I’m unable to do that", "  I could not send the message", "无法找到该应用", "Failed to add the contact"],
)  # fmt: skip
def test_a_finish_that_says_it_cannot(message: str) -> None:
    assert a.Finish(message=message).cannot


@pytest.mark.parametrize(
    "message",
    ["Wi-Fi is on", "Turned Wi-Fi off; the toggle cannot be missed", "The download failed earlier; 3 files",
     "Note saved", "已完成"],
)  # fmt: skip
def test_a_finish_that_reports_a_result(message: str) -> None:
    assert not a.Finish(message=message).cannot
