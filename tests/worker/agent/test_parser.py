"""The reply parser: the forms models send in the wild, round trips, and fuzzing for crashes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from worker.agent.actions import (
    ACTIONS,
    Back,
    CallApi,
    DoubleTap,
    Finish,
    Home,
    Interact,
    Launch,
    LongPress,
    Note,
    Swipe,
    TakeOver,
    Tap,
    TypeName,
    TypeSecret,
    TypeText,
    Wait,
)
from worker.agent.errors import ActionError, ActionParseError, ActionRejected, UnknownAction
from worker.agent.parser import format_action, format_reply, parse_action, parse_reply

# Pieces that break naive parsers: quotes, separators, brackets, escapes, markers, CJK and emoji.
TRICKY = [
    '"', "'", ",", "[", "]", "(", ")", "\n", "\r\n", "\\", "\\n", '\\"', '")', "'", "=", "\t",
    "微信", "海盐咖啡", "😀", "👍🏽", "</answer>", "<answer>", "<think>", "```", "<|end_of_box|>",
    'do(action="Back")', "do(action='Home')", 'finish(message="x")', "finish(", "do(",
]  # fmt: skip
text = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(TRICKY)), max_size=10).map("".join)
point = st.tuples(st.integers(0, 999), st.integers(0, 999))
duration = st.one_of(
    st.integers(0, 3600).map(lambda n: f"{n} seconds"),
    st.sampled_from(["2", "2s", "1.5 秒", "500 ms", "1 second", "0.25 seconds"]),
)
actions = st.one_of(
    st.builds(Launch, app=text.filter(bool)),
    st.builds(Tap, element=point, message=st.none() | text),
    st.builds(TypeText, text=text),
    st.builds(TypeName, text=text),
    st.builds(Swipe, start=point, end=point),
    st.builds(LongPress, element=point),
    st.builds(DoubleTap, element=point),
    st.just(Back()),
    st.just(Home()),
    st.builds(Wait, duration=duration),
    st.builds(TakeOver, message=text),
    st.builds(Interact, message=st.none() | text),
    st.builds(Note, message=text),
    st.builds(CallApi, instruction=text),
    st.builds(Finish, message=text),
)
MARKUP = ("<think>", "</think>", "<answer>", "</answer>", "<|", "`")
thinking = st.text().filter(lambda t: not any(m in t for m in MARKUP))


# --- the canonical grammar ---------------------------------------------------------------------


def test_format_writes_the_canonical_grammar() -> None:
    assert format_action(Tap(element=(500, 100))) == 'do(action="Tap", element=[500, 100])'
    assert format_action(Tap(element=(1, 2), message="付款")) == (
        'do(action="Tap", element=[1, 2], message="付款")'
    )
    assert format_action(Swipe(start=(1, 2), end=(3, 4))) == 'do(action="Swipe", start=[1, 2], end=[3, 4])'
    assert format_action(LongPress(element=(5, 6))) == 'do(action="Long Press", element=[5, 6])'
    assert format_action(Back()) == 'do(action="Back")'
    assert format_action(Interact()) == 'do(action="Interact")'
    assert format_action(Wait(duration="2 seconds")) == 'do(action="Wait", duration="2 seconds")'
    assert format_action(Launch(app="微信")) == 'do(action="Launch", app="微信")'
    assert format_action(Finish(message='他说 "好", C:\\tmp\n完')) == (
        'finish(message="他说 \\"好\\", C:\\\\tmp\\n完")'
    )
    assert format_reply("想一想", Home()) == '<think>想一想</think><answer>do(action="Home")</answer>'


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_every_action_round_trips(action) -> None:
    written = format_action(action)
    assert "\n" not in written  # one line, as the prompt asks of the model
    parsed = parse_reply(written)
    assert parsed.action == action
    assert parsed.action_text == written
    assert parsed.thinking == ""


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(thinking, actions)
def test_every_reply_round_trips(thought: str, action) -> None:
    parsed = parse_reply(format_reply(thought, action))
    assert parsed.action == action
    assert parsed.thinking == thought.strip()


# --- forms seen in the wild (docs/model-replies.md) --------------------------------------------

FORMS = [
    # 1: the documented form
    (
        '<think>用户要打开微信，当前在桌面。</think>\n<answer>do(action="Launch", app="微信")</answer>',
        Launch(app="微信"),
        "用户要打开微信，当前在桌面。",
    ),
    # 2: plain thinking, then the call on its own line (hosted autoglm-phone, issue 390)
    (
        '用户要求打开微信。根据允许的应用列表，微信的名称是"微信"。\n当前屏幕是系统桌面。\n'
        '我需要使用Launch action来打开微信。\ndo(action="Launch", app="微信")',
        Launch(app="微信"),
        '用户要求打开微信。根据允许的应用列表，微信的名称是"微信"。\n当前屏幕是系统桌面。\n'
        "我需要使用Launch action来打开微信。",
    ),
    # 3: <answer> with no thinking before it
    ('<answer>do(action="Back")</answer>', Back(), ""),
    ('<answer>\ndo(action="Home")\n</answer>\n', Home(), ""),
    # 4: GLM-4.6v box markers, thinking boxed too (issues 59/60)
    (
        "<|begin_of_box|>I can see the Android home screen with app icons.<|end_of_box|>\n"
        '<|begin_of_box|>do(action="Launch", app="Settings")<|end_of_box|>',
        Launch(app="Settings"),
        "I can see the Android home screen with app icons.",
    ),
    (
        'The button is at the top.\n<|begin_of_box|>do(action="Tap", element=[500,100])<|end_of_box|>',
        Tap(element=(500, 100)),
        "The button is at the top.",
    ),
    # 5: a stray </answer> after the action (upstream PR 347)
    ('Need to go back.\ndo(action="Back")</answer>', Back(), "Need to go back."),
    ('<think>x</think>do(action="Tap", element=[1, 2])\n</answer>\n\n', Tap(element=(1, 2)), "x"),
    # 7: finish messages with quotes, commas, brackets, newlines, Chinese
    (
        '<think>完成了</think><answer>finish(message="已找到 \\"海盐咖啡\\"，价格[25元] (含税), 共2杯\\n下单成功")'
        "</answer>",
        Finish(message='已找到 "海盐咖啡"，价格[25元] (含税), 共2杯\n下单成功'),
        "完成了",
    ),
    (
        '<think>done</think><answer>finish(message="Found "Blue Bottle", "Verve" and (3) more [cafes]\n'
        'second line")</answer>',
        Finish(message='Found "Blue Bottle", "Verve" and (3) more [cafes]\nsecond line'),
        "done",
    ),
    ("finish(message='It\\'s done, all 3 items')", Finish(message="It's done, all 3 items"), ""),
    ("finish(message='It's done')", Finish(message="It's done"), ""),
    # trailing whitespace, backticks, code fences
    (
        'Swipe up.\n```python\ndo(action="Swipe", start=[500,800], end=[500,200])\n```\n',
        Swipe(start=(500, 800), end=(500, 200)),
        "Swipe up.",
    ),
    ('`do(action="Back")`  ', Back(), ""),
    # unescaped quotes in Type text: tolerant where the end of the call is unambiguous
    ('do(action="Type", text="say "hi", then "bye"")', TypeText(text='say "hi", then "bye"'), ""),
    ('do(action="Type", text="5" screen")', TypeText(text='5" screen'), ""),
    # loose spellings that name exactly one action
    ('do(action="long_press", element=(10, 20),)', LongPress(element=(10, 20)), ""),
    ('do( action = "Double Tap" , element = [ 1 , 2 ] )', DoubleTap(element=(1, 2)), ""),
    ('do(action="Take_over", message="请输入验证码")', TakeOver(message="请输入验证码"), ""),
    (
        'do(action="Tap", element=[1,2], message="确认支付 ¥25")',
        Tap(element=(1, 2), message="确认支付 ¥25"),
        "",
    ),
    ('do(action="Wait", duration="2 seconds")', Wait(duration="2 seconds"), ""),
    ('do(action="Wait", duration=3)', Wait(duration="3 seconds"), ""),
    ('do(action="Note", message="True")', Note(message="True"), ""),
    ('do(action="Call_API", instruction="总结评论")', CallApi(instruction="总结评论"), ""),
    ('do(action="Interact")', Interact(), ""),
    ('do(action="Type_Name", text="张三")', TypeName(text="张三"), ""),
    ('do(action="Type_Secret", name="bank_password")', TypeSecret(secret="bank_password"), ""),
    ('do(action="type secret", name="bank_password")', TypeSecret(secret="bank_password"), ""),
    # a multi-line string written raw, as models do
    ('do(action="Type", text="line one\nline two")', TypeText(text="line one\nline two"), ""),
]


@pytest.mark.parametrize(("reply", "action", "thought"), FORMS)
def test_forms_seen_in_the_wild(reply: str, action, thought: str) -> None:
    parsed = parse_reply(reply)
    assert parsed.action == action
    assert parsed.thinking == thought
    assert parsed.action_text.startswith(("do", "finish"))
    assert parse_action(reply) == action


def test_the_last_call_is_the_action() -> None:
    reply = '<think>I could do(action="Back") but the tab is right there.</think><answer>do(action="Tap", element=[5, 6])</answer>'
    assert parse_reply(reply).action == Tap(element=(5, 6))
    # a call quoted inside a finish message is part of the message, not the action
    reply = '<answer>finish(message="I ran do(action="Back") and it worked")</answer>'
    assert parse_reply(reply).action == Finish(message='I ran do(action="Back") and it worked')


def test_text_after_the_action_is_tolerated() -> None:
    parsed = parse_reply('Pay now.\ndo(action="Tap", element=[1,2], message="支付")\nThis opens the dialog.')
    assert parsed.action == Tap(element=(1, 2), message="支付")
    assert parsed.thinking == "Pay now."


@pytest.mark.parametrize(
    "reply",
    [
        # a finish mentioned in the thinking never stands in for a broken action after it
        'I will finish(message="done") later.\ndo(action="Tap", element=[1',
        '<think>then finish(message="done")</think><answer>do(action="Tap", element=[1</answer>',
        '<think>do(action="Back")</think><answer>I do not know</answer>',
        # a finish must end the reply
        'finish(message="done") but first I should check the cart',
    ],
)
def test_calls_in_the_thinking_are_not_the_action(reply: str) -> None:
    with pytest.raises(ActionParseError):
        parse_reply(reply)


# --- failures: never a silent finish -------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "我需要点击屏幕上的按钮来完成任务。" * 800,
        "The the the the the " * 3000,
        "finish finish finish the task " * 500,  # a word, not a call
        "",
        "   \n\n",
        "<think>I am thinking</think><answer></answer>",
        'finish(message="the reply was cut off here',
        'finish(message="cut" + "',
        "finish(message=done)",
        'do(action="Tap", element=[1,2]',
        "do(Tap, [1, 2])",
    ],
)
def test_no_readable_action_is_a_parse_error(reply: str) -> None:
    with pytest.raises(ActionParseError) as info:
        parse_reply(reply)
    assert info.value.agent_feedback
    assert info.value.raw == reply


def test_unknown_action() -> None:
    with pytest.raises(UnknownAction) as info:
        parse_reply('<answer>do(action="Fly", element=[1, 2])</answer>')
    assert info.value.name == "Fly"
    # a mention of a known action in the thinking does not hide the unknown one in the answer
    with pytest.raises(UnknownAction):
        parse_reply('<think>maybe do(action="Back")</think><answer>do(action="Tapp")</answer>')


@pytest.mark.parametrize(
    ("reply", "hint"),
    [
        ('do(action="Tap", element=[1000, 5])', "0–999"),
        ('do(action="Tap", element=[-1, 5])', "0–999"),
        ('do(action="Swipe", start=[1, 2], end=[500, 1200])', "0–999"),
        ('do(action="Double Tap", element=[1, 2, 3])', "[x,y]"),
        ('do(action="Swipe", start=[1, 2], end=[3])', "end= must be a point [x,y]"),  # short, not missing
        ('do(action="Tap", element=[1.5, 2])', "[x,y]"),
        ('do(action="Tap")', "element"),
        ('do(action="Launch")', "app"),
        ('do(action="Back", app="x")', "app"),
        ('do(action="Wait", duration="forever")', "duration"),
        ('do(action="finish", message="x")', "finish(message="),
        ('finish(message="a", extra="b")', "extra"),
        ("finish()", "message"),
        ("do(element=[1, 2])", "action"),
    ],
)
def test_known_action_with_bad_arguments_is_rejected(reply: str, hint: str) -> None:
    with pytest.raises(ActionRejected) as info:
        parse_reply(reply)
    assert hint in info.value.agent_feedback


def test_hostile_text_is_refused() -> None:
    # How fast it is refused is a figure in bench/bench_reactions.py, not a bound here.
    hostile = 'do(action="' * 20000 + "finish(message='" * 20000
    with pytest.raises(ActionError):
        parse_reply(hostile)


FRAGMENTS = [
    *TRICKY,
    "do(action=",
    "finish(message=",
    "element=",
    "[1, 2]",
    "Tap",
    "Back",
    " ",
    "99999999999",
]


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.text(), st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3))).map("".join))
)
@example("finish(message=" + "9" * 5000 + ")")
@example('do(action="Wait", duration=' + "9" * 5000 + ")")
@example("do(action=[[[[[[[[[[[[[")
def test_random_text_never_crashes(reply: str) -> None:
    try:
        parsed = parse_reply(reply)
    except ActionError:
        return
    assert parsed.action.name in ACTIONS
    if isinstance(parsed.action, Finish):
        assert "finish" in reply


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(thinking, actions, st.data())
def test_damaged_replies_never_crash(thought: str, action, data: st.DataObject) -> None:
    reply = format_reply(thought, action)
    cut = data.draw(st.integers(0, len(reply)))
    junk = data.draw(st.sampled_from(["", *TRICKY]))
    damaged = reply[:cut] + junk + reply[cut + data.draw(st.integers(0, 3)) :]
    try:
        parse_reply(damaged)
    except ActionError:
        pass


def test_type_secret_is_written_with_the_grammars_name_argument() -> None:
    """The grammar's ``name=`` is held in the field ``secret`` (``name`` is the action's own)."""
    action = parse_action('do(action="Type_Secret", name="bank_password")')
    assert action.model_dump(mode="json") == {"name": "Type_Secret", "secret": "bank_password"}
    assert format_action(action) == 'do(action="Type_Secret", name="bank_password")'
    with pytest.raises(ActionRejected, match="missing"):
        parse_action('do(action="Type_Secret")')
    with pytest.raises(ActionRejected, match="no argument secret"):
        parse_action('do(action="Type_Secret", secret="bank_password")')
