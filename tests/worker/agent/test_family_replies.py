"""Each family's replies read into typed actions, its coordinates onto the grid, and what cannot run
as a typed error (never a finish); an action added once reaches every family."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

import pytest

from orchestrator.settings import MODEL_FAMILIES
from worker.agent import actions as a
from worker.agent.errors import ActionParseError, ActionRejected, UnknownAction
from worker.agent.families import FAMILIES, family
from worker.agent.families.coords import smart_resize, to_grid
from worker.agent.grammar import ACTIONS, ActionModel, Purpose, in_grammar
from worker.agent.results import Outcome

SIZE = (1092, 2408)  # a 1080x2400 screenshot as Qwen's processor resizes it


def test_the_settings_and_the_agent_know_the_same_families() -> None:
    assert tuple(FAMILIES) == MODEL_FAMILIES
    with pytest.raises(ValueError, match="one of: autoglm, ui-tars, qwen-mobile-use, qwen3-mobile-use"):
        family("gpt")


def test_smart_resize_and_pixels_to_the_grid() -> None:
    assert smart_resize(1080, 2400, 16384 * 28 * 28) == SIZE
    w, h = smart_resize(1080, 2400, 1_000_000)
    assert w % 28 == h % 28 == 0 and w * h <= 1_000_000
    assert to_grid(546, 1204, "pixels", SIZE) == (500, 500)
    assert to_grid(5000, -3, "pixels", SIZE) == (999, 0)  # clamped onto the screen
    assert to_grid(0.25, 0.5, "ratio", SIZE) == (250, 500)


@pytest.mark.parametrize(
    ("reply", "action"),
    [
        (
            "Thought: open it\nAction: click(start_box='<|box_start|>(546,1204)<|box_end|>')",
            a.Tap(element=(500, 500)),
        ),
        (
            "Thought: x\nAction: click(start_box='(0,0,1092,2408)')",
            a.Tap(element=(500, 500)),
        ),  # a box's centre
        (
            "Thought: x\nAction: click(point='<point>546 1204</point>')",
            a.Tap(element=(500, 500)),
        ),  # Doubao form
        ("Thought: x\nAction：press_back()", a.Back()),  # a full-width colon
        ("Thought: x\nAction: type(content='hello\\n')", a.TypeText(text="hello")),
        ("Thought: x\nAction: open_app(app_name='Settings')\n\npress_home()", a.Launch(app="Settings")),
        ("Reflection: y\nAction_Summary: z\nAction: finished(content='done')", a.Finish(message="done")),
        (
            "Thought: x\nAction: scroll(start_box='(546,1204)', direction='down')",
            a.Swipe(start=(500, 500), end=(500, 100)),
        ),
    ],
)
def test_ui_tars_replies(reply: str, action: a.ActionModel) -> None:
    assert family("ui-tars").parse(reply, SIZE).action == action


@pytest.mark.parametrize(
    ("reply", "action"),
    [
        ('<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [546, 1204]}}\n</tool_call>',
         a.Tap(element=(500, 500))),
        ('<thinking>go</thinking><tool_call>{"name": "mobile_use", "arguments": {"action": "system_button", '
         '"button": "Home"}}</tool_call><conclusion>home</conclusion>', a.Home()),
        ('{"name": "mobile_use", "arguments": "{\\"action\\": \\"open\\", \\"text\\": \\"Clock\\"}"}', a.Launch(app="Clock")),
        ('<tool_call>{"name": "mobile_use", "arguments": {"action": "wait", "time": 2}}</tool_call>',
         a.Wait(duration="2 seconds")),
    ],
)  # fmt: skip
def test_qwen_mobile_use_replies(reply: str, action: a.ActionModel) -> None:
    assert family("qwen-mobile-use").parse(reply, SIZE).action == action


def test_a_qwen_failure_is_a_finish_that_says_it_cannot() -> None:
    reply = '<tool_call>{"name": "mobile_use", "arguments": {"action": "terminate", "status": "failure"}}</tool_call>'
    finish = family("qwen-mobile-use").parse(reply, SIZE).action
    assert isinstance(finish, a.Finish) and finish.cannot


@pytest.mark.parametrize(
    ("name", "reply", "error"),
    [
        ("ui-tars", "I think I am done.", ActionParseError),
        ("ui-tars", "Thought: x\nAction: click(start_box='(1)')", ActionRejected),
        ("ui-tars", "Thought: x\nAction: fly(start_box='(1,2)')", UnknownAction),
        ("ui-tars", "Thought: x\nAction: click(start_box='(1,2)'", ActionParseError),
        ("qwen-mobile-use", "All done!", ActionParseError),
        ("qwen-mobile-use", "<tool_call>{not json}</tool_call>", ActionParseError),
        ("qwen-mobile-use", '<tool_call>{"name": "mobile_use", "arguments": {"action": "key", "text": "66"}}</tool_call>',
         ActionRejected),
        ("qwen-mobile-use", '<tool_call>{"name": "mobile_use", "arguments": {"action": "click"}}</tool_call>',
         ActionRejected),
        ("qwen-mobile-use", '<tool_call>{"name": "mobile_use", "arguments": {"action": "teleport"}}</tool_call>',
         UnknownAction),
        ("autoglm", "I am done.", ActionParseError),
    ],
)  # fmt: skip
def test_what_cannot_run_is_a_typed_error_never_a_finish(
    name: str, reply: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        family(name).parse(reply, SIZE)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_action_round_trips_through_every_family(name: str) -> None:
    speaks = family(name)
    samples = [
        a.Launch(app="Settings"), a.Tap(element=(500, 300)), a.Tap(element=(10, 20), message="Pay 5"),
        a.TypeText(text="it's \"quoted\""), a.TypeName(text="Ann"), a.Swipe(start=(500, 800), end=(500, 200)),
        a.LongPress(element=(1, 998)), a.DoubleTap(element=(400, 400)), a.Back(), a.Home(),
        a.TakeOver(message="log in"), a.Note(message="3 items"), a.CallApi(instruction="sum up"),
        a.Finish(message="Done."),
    ]  # fmt: skip
    for action in samples:
        parsed = speaks.parse(speaks.write_reply("why", action, SIZE), SIZE)
        assert parsed.action == action, (name, action, speaks.write_reply("why", action, SIZE))
        again = (
            speaks.parse(speaks.assistant_turn(parsed, SIZE), SIZE) if not name.startswith("qwen") else parsed
        )
        assert again.action == action


def test_an_action_declared_once_reaches_every_family() -> None:
    @in_grammar
    class Shake(ActionModel):  # what a new action in actions.py looks like
        name: Literal["Shake"] = "Shake"
        element: a.Point
        times: str
        usage: ClassVar[str] = 'do(action="Shake", element=[x,y], times="2")'
        purpose: ClassVar[Purpose] = Purpose(zh="摇一摇。", en="Shake the phone at a point.")

        async def execute(self, ctx) -> Outcome:
            return Outcome()

    try:
        # autoglm reads ACTIONS as the parser module loads, and the typed reply's union is made then
        # too: a class declared in actions.py is in both; one declared here only reaches the families'
        # own reading, which is what this checks.
        shake = Shake(element=(500, 500), times="2")
        tars, qwen = family("ui-tars"), family("qwen-mobile-use")
        for speaks in (tars, qwen):
            assert "Shake the phone at a point." in speaks.prompt("en", dt.date(2026, 1, 1), SIZE)
        assert tars.write_reply("x", shake, SIZE).endswith("Action: shake(element='(547,1205)', times='2')")
        assert tars._action("shake", {"element": "(546,1204)", "times": "2"}, SIZE, "") == shake
        assert (
            '"arguments": {"action": "shake", "coordinate": [547, 1205], "times": "2"}'
            in qwen.write_reply("x", shake, SIZE)
        )
        assert qwen._action({"action": "shake", "coordinate": [546, 1204], "times": "2"}, SIZE, "") == shake
    finally:
        del ACTIONS["Shake"]


def test_qwen3_points_are_on_a_999_scale_of_the_image_as_sent() -> None:
    qwen3 = family("qwen3-mobile-use")
    reply = '<tool_call>{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [500, 250]}}</tool_call>'
    assert qwen3.parse(reply, SIZE).action == a.Tap(element=(500, 250))  # whatever the image's size
    assert "The screen's resolution is 999x999." in qwen3.prompt("en", dt.date(2026, 1, 1), SIZE)
    assert not qwen3.resizes and family("qwen-mobile-use").resizes


def test_ui_tars_resizes_with_its_own_smallest_area() -> None:
    assert smart_resize(100, 100, 1_000_000) == (112, 112)  # Qwen2.5-VL's processor: 56×56 at least
    assert smart_resize(100, 100, 1_000_000, min_pixels=family("ui-tars").min_pixels) == (280, 280)


def test_a_planners_targets_in_words_and_the_grounders_point() -> None:
    from worker.agent.families.planner import point_of, read_plan, write_plan

    plan = read_plan('<think>on</think><answer>do(action="Tap", element="the \\"Wi-Fi\\" switch")</answer>')
    assert plan.targets == {"element": 'the "Wi-Fi" switch'} and isinstance(plan.action, a.Tap)
    assert read_plan('<think>x</think><answer>do(action="Tap", element="the \\"Wi-Fi\\" switch")</answer>').action == plan.action
    swipe = read_plan('do(action="Swipe", start="the list", end=[500, 100])')
    assert swipe.targets == {"start": "the list"} and swipe.action.end == (500, 100)  # numbers are not grounded
    written = write_plan("why", a.Swipe(start=(1, 2), end=(3, 4)), {"start": "the list"})
    assert read_plan(written).targets == {"start": "the list"} and read_plan(written).action.end == (3, 4)
    assert read_plan(write_plan("why", a.Back(), {})).action == a.Back()
    tars = family("ui-tars")
    assert point_of(tars.parse("Thought: here\nAction: click(start_box='(546,1204)')", SIZE).action, "x") == (500, 500)
    with pytest.raises(ActionRejected, match="no point"):
        point_of(a.Finish(message="not found"), "the Wi-Fi switch")
