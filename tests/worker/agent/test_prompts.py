"""The prompts: the date is the caller's, and every action of the grammar is described in each language."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from worker.agent.actions import ACTIONS
from worker.agent.parser import parse_reply
from worker.agent.prompts import (
    CHAIN_HEADER,
    EARLIER_TRIES_HEADER,
    LANGUAGES,
    chain_message,
    earlier_tries_message,
    first_user_message,
    format_date,
    screen_info,
    step_user_message,
    system_prompt,
)

DAY = dt.date(2025, 1, 2)  # a Thursday


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_action_appears_with_its_usage(lang: str) -> None:
    prompt = system_prompt(lang, DAY)
    for name, cls in ACTIONS.items():
        assert f'"{name}"' in prompt or f"{name}(" in prompt, name
        assert cls.usage in prompt, cls.usage
    assert 'message="…"' in prompt  # the sensitive tap form


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_usage_line_in_the_prompt_parses(lang: str) -> None:
    """The examples the model copies from must be readable by our parser once filled in."""
    for cls in ACTIONS.values():
        filled = (
            cls.usage.replace("[x,y]", "[1,2]")
            .replace("[x1,y1]", "[1,2]")
            .replace("[x2,y2]", "[3,4]")
            .replace('"x seconds"', '"2 seconds"')
        )
        assert parse_reply(filled).action.name == cls.model_fields["name"].default


def test_the_date_comes_from_the_caller() -> None:
    assert "2025年01月02日 星期四" in system_prompt("zh", DAY)
    assert "2025-01-02, Thursday" in system_prompt("en", DAY)
    assert "2024-02-29, Thursday" in system_prompt("en", dt.date(2024, 2, 29))
    assert "星期日" in system_prompt("zh", dt.date(2025, 1, 5))
    assert format_date("en", dt.date(2025, 1, 6)) == "2025-01-06, Monday"
    assert system_prompt("en", DAY) != system_prompt("en", DAY + dt.timedelta(days=1))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_rules_cover_the_fleet_states(lang: str) -> None:
    prompt = system_prompt(lang, DAY)
    for word in ("Take_over", "Interact", "Wait", "Back", "finish", "999", "<think>", "<answer>"):
        assert word in prompt, word
    assert "{" not in prompt and "}" not in prompt  # every template field was filled


def test_zh_prompt_is_chinese_and_en_prompt_is_not() -> None:
    assert "规则" in system_prompt("zh", DAY)
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in system_prompt("en", DAY))


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError):
        system_prompt("fr", DAY)


def test_user_messages() -> None:
    info = screen_info("设置")
    assert info == '{"current_app": "设置"}'
    assert json.loads(info) == {"current_app": "设置"}
    assert first_user_message("打开 Wi-Fi", info) == '打开 Wi-Fi\n\n{"current_app": "设置"}'
    step = step_user_message(screen_info("Settings"))
    assert step.endswith('{"current_app": "Settings"}')
    assert "Screen Info" in step


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_later_try_is_told_what_went_wrong_on_the_earlier_ones(lang: str) -> None:
    from worker.reference_model.chat import parse_request, read_chat

    earlier = earlier_tries_message(lang, [("max_steps", "no result in 2 steps"), ("stuck", "stuck: Back")])
    assert earlier.startswith(EARLIER_TRIES_HEADER) and "no result in 2 steps" in earlier
    assert "stuck: Back" in earlier and earlier.index("max_steps") < earlier.index("stuck: Back")
    first = first_user_message("Open Settings and turn on Wi-Fi", screen_info("Settings"), earlier)
    assert first.startswith("Open Settings and turn on Wi-Fi\n\n" + EARLIER_TRIES_HEADER), first
    assert first.endswith('{"current_app": "Settings"}'), first
    # The reference model reads the task without the block (it parses tasks, it does not reason).
    body = json.dumps({"messages": [{"role": "user", "content": first}]}).encode()
    view = read_chat(parse_request(body))
    assert view.task == "Open Settings and turn on Wi-Fi" and view.current_app == "Settings", view


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_subgoal_is_told_the_whole_task_and_what_came_of_the_parts_done(lang: str) -> None:
    from worker.reference_model.chat import parse_request, read_chat

    parts = [("Open Settings", "succeeded", "Settings is open"), ("Skip me", "skipped", None),
             ("Turn on Wi-Fi", "running", None), ("Open Notes", "pending", None)]  # fmt: skip
    chain = chain_message(lang, "Get the phone\n online", parts, 2)
    assert chain.startswith(CHAIN_HEADER + "\n") and "\n\n" not in chain, chain  # one block
    assert "3" in chain.splitlines()[1] and "4" in chain.splitlines()[1], chain  # part 3 of 4
    assert "Get the phone online" in chain and "Settings is open" in chain, chain
    lines = chain.splitlines()
    assert lines[-5].startswith("1. Open Settings (") and lines[-2] == "4. Open Notes", lines
    assert lines[-3].startswith("3. Turn on Wi-Fi (←"), lines
    earlier = earlier_tries_message(lang, [("max_steps", "no result in 2 steps")])
    first = first_user_message("Turn on Wi-Fi", screen_info("Settings"), f"{chain}\n\n{earlier}")
    # The reference model reads the subgoal alone: both blocks are context for a model that reasons.
    view = read_chat(parse_request(json.dumps({"messages": [{"role": "user", "content": first}]}).encode()))
    assert view.task == "Turn on Wi-Fi", view
