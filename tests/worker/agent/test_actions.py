"""The typed actions: grid bounds, immutability, the name table, Wait durations."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from worker.agent.actions import (
    ACTIONS,
    Action,
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
    TypeText,
    Wait,
    is_sensitive,
    is_terminal,
    parse_duration,
)

GRAMMAR_NAMES = [
    "Launch", "Tap", "Type", "Type_Name", "Type_Secret", "Swipe", "Long Press", "Double Tap", "Back", "Home",
    "Wait", "Take_over", "Interact", "Note", "Call_API", "finish",
]  # fmt: skip


def test_table_maps_every_grammar_name_to_its_model() -> None:
    assert list(ACTIONS) == GRAMMAR_NAMES
    for name, cls in ACTIONS.items():
        assert cls.model_fields["name"].default == name
        assert name in cls.usage


def test_union_dispatches_on_name() -> None:
    adapter = TypeAdapter(Action)
    assert adapter.validate_python({"name": "Tap", "element": [1, 2]}) == Tap(element=(1, 2))
    assert adapter.validate_python({"name": "Long Press", "element": [3, 4]}) == LongPress(element=(3, 4))
    assert adapter.validate_python({"name": "finish", "message": "ok"}) == Finish(message="ok")
    with pytest.raises(ValidationError):
        adapter.validate_python({"name": "Fly", "element": [1, 2]})


@pytest.mark.parametrize("point", [(0, 0), (999, 999), (500, 1)])
def test_points_on_the_grid_are_accepted(point: tuple[int, int]) -> None:
    assert Tap(element=point).element == point
    assert Swipe(start=point, end=(0, 999)).start == point


@pytest.mark.parametrize("point", [(1000, 0), (0, 1000), (-1, 5), (5, -1), (0, 10**9)])
def test_points_off_the_grid_are_refused(point: tuple[int, int]) -> None:
    for make in (
        lambda: Tap(element=point),
        lambda: DoubleTap(element=point),
        lambda: LongPress(element=point),
        lambda: Swipe(start=point, end=(1, 1)),
        lambda: Swipe(start=(1, 1), end=point),
    ):
        with pytest.raises(ValidationError):
            make()


def test_points_need_two_whole_numbers() -> None:
    for bad in ([1], [1, 2, 3], [1.5, 2], ["a", 2], "1,2"):
        with pytest.raises(ValidationError):
            Tap(element=bad)  # type: ignore[arg-type]


def test_actions_are_frozen_and_refuse_unknown_arguments() -> None:
    tap = Tap(element=(1, 2))
    with pytest.raises(ValidationError):
        tap.element = (3, 4)  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Back(extra="x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Launch(app="")
    assert hash(tap) == hash(Tap(element=(1, 2)))


def test_required_and_optional_arguments() -> None:
    assert Interact().message is None
    assert Interact(message="which one?").message == "which one?"
    for cls in (TakeOver, Note, Finish):
        with pytest.raises(ValidationError):
            cls()  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        CallApi()  # type: ignore[call-arg]
    assert TypeText(text="").text == ""
    assert TypeName(text="张三").text == "张三"


def test_terminal_and_sensitive() -> None:
    assert is_terminal(Finish(message="done"))
    assert not any(is_terminal(a) for a in (Back(), Home(), TakeOver(message="login"), Interact()))
    assert is_sensitive(Tap(element=(1, 2), message="pay 5 yuan"))
    assert not is_sensitive(Tap(element=(1, 2)))
    assert not is_sensitive(LongPress(element=(1, 2)))


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("2", 2.0),
        ("2s", 2.0),
        ("2 s", 2.0),
        ("2 seconds", 2.0),
        ("1 second", 1.0),
        ("2 Seconds ", 2.0),
        ("1.5 秒", 1.5),
        ("3秒", 3.0),
        ("0.5 sec", 0.5),
        ("500 ms", 0.5),
        ("1 minute", 60.0),
        (".5", 0.5),
        ("0", 0.0),
    ],
)
def test_wait_seconds(duration: str, seconds: float) -> None:
    assert Wait(duration=duration).seconds == pytest.approx(seconds)
    assert parse_duration(duration) == pytest.approx(seconds)


@pytest.mark.parametrize("duration", ["x seconds", "forever", "", "-1 seconds", "2 fortnights", "1e3"])
def test_wait_refuses_unreadable_durations(duration: str) -> None:
    with pytest.raises(ValidationError):
        Wait(duration=duration)


def test_wait_accepts_a_bare_number_as_seconds() -> None:
    assert Wait(duration=3) == Wait(duration="3 seconds")  # type: ignore[arg-type]
    assert Wait(duration=1.5).seconds == 1.5  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Wait(duration=float("inf"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Wait(duration=True)  # type: ignore[arg-type]
