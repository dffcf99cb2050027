"""Every template of the built-in suite, on a virtual phone: the start state does not pass its check,
its scripted solution does, and the same seed gives the same tasks.

The phone is a real ``VirtualPhone`` and the template's commands go through its real shell
(``run_shell``), in this process rather than over adb: so all 42 templates are checked in seconds.
The whole path (API → worker → adb → reference model) is ``tests/system/test_evals.py``'s; the
actions are played here as the agent's executor plays them (Launch by label, Tap on the 0–999 grid,
Type into the focused field, Back), and the scripted person answers as in a run (``person.py``).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from device_pool.driver.shell import ShellOutput
from device_pool.sim.phone import PhoneConfig, VirtualPhone
from device_pool.sim.shell import run_shell
from tests.aio import run
from worker.agent import actions as a
from worker.agent.parser import parse_reply
from worker.eval.phone import EvalPhone
from worker.eval.suites import SUITES, match_instruction, plan
from worker.eval.template import CANCEL, Template

KEYCODE_BACK, KEYCODE_HOME = 4, 3


class ShellDevice:
    """The driver calls a template uses, answered by the phone's own shell in process (no adb)."""

    def __init__(self, phone: VirtualPhone) -> None:
        self.phone = phone

    async def shell(self, command: str, *, timeout: float | None = None, check: bool = False) -> ShellOutput:
        result = run_shell(self.phone, command)
        out = ShellOutput(result.stdout.decode(), result.stderr.decode(), result.exit_code)
        assert not check or out.ok, f"{command!r} failed: {out.stderr}"
        return out

    async def foreground(self, *, timeout: float | None = None) -> tuple[str, str]:
        return self.phone.foreground()

    async def ui_dump(self, *, timeout: float | None = None) -> str:
        return self.phone.ui_xml()


async def _play(phone: VirtualPhone, template: Template, params: dict[str, str]) -> bool:
    """Play the solution as the agent would; returns whether the agent asked a question."""
    labels = {app.label_en: app.package for app in phone.launchable_apps()}
    w, h = phone.config.width, phone.config.height
    for text in template.solution(params):
        action = parse_reply(f"<think>x</think><answer>{text}").action
        if isinstance(action, a.Launch):
            phone.start_activity(package=labels[action.app])
        elif isinstance(action, a.Tap):
            phone.tap(action.element[0] * w / 1000, action.element[1] * h / 1000)
        elif isinstance(action, a.TypeText):
            phone.clear_text()
            phone.type_text(action.text)
        elif isinstance(action, a.Back):
            phone.key(KEYCODE_BACK)
        elif isinstance(action, a.TakeOver):
            assert template.takeover is not None
            await template.takeover(EvalPhone(ShellDevice(phone)), params)
        elif isinstance(action, a.Interact):
            assert template.answer(action.message or "", params) == CANCEL
            return True
        elif isinstance(action, a.Finish):
            return False
        else:
            raise AssertionError(f"no player for {action!r}")
    return False


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> VirtualPhone:
    return VirtualPhone(tmp_path_factory.mktemp("eval") / "phone", PhoneConfig(launch_delay_ms=0))


@pytest.mark.parametrize("template", SUITES["builtin"], ids=lambda t: t.name)
def test_start_state_fails_and_the_scripted_solution_passes(phone: VirtualPhone, template: Template) -> None:
    params = template.generate_params(random.Random(3))
    device = EvalPhone(ShellDevice(phone))

    async def go() -> tuple[float, float]:
        phone.factory_reset()
        await template.initialize(device, params)
        before_digest = await device.digest()
        before = await template.is_successful(device, params)
        asked = await _play(phone, template, params)
        after = await template.is_successful(device, params)
        if template.infeasible:  # as evaluation.py scores it: asked, and nothing changed
            before = 0.0
            after = float(asked and await device.digest() == before_digest)
        await template.tear_down(device, params)
        return before, after

    before, after = run(go())
    assert before == 0.0, f"{template.name}: the start state already passes"
    assert after == 1.0, f"{template.name}: its scripted solution scores {after}"


def test_the_suite_is_graded_seeded_and_each_instruction_names_its_template() -> None:
    builtin = SUITES["builtin"]
    assert len(builtin) >= 40 and len({t.name for t in builtin}) == len(builtin)
    assert {str(t.category) for t in builtin} == {
        "one_step", "multi_step", "two_apps", "popup", "confirmation", "person", "infeasible"}
    assert plan("builtin", seed=5, repeat=2) == plan("builtin", seed=5, repeat=2)
    assert plan("builtin", seed=5) != plan("builtin", seed=6)
    for entry in plan("builtin", seed=11, repeat=2):
        found = match_instruction(entry["instruction"])
        assert found is not None and found[0].name == entry["template"] and found[1] == entry["params"]


def test_layout_points_hit_their_controls(tmp_path: Path) -> None:
    """The grid points of ``layout.py`` land on the controls they name, in the phone's own view tree."""
    from worker.eval import layout

    phone = VirtualPhone(tmp_path / "p", PhoneConfig(launch_delay_ms=0))
    phone.start_activity(package="com.android.settings")
    for name, rid in (("WIFI_SWITCH", "switch_wifi"), ("BLUETOOTH_SWITCH", "switch_bluetooth"),
                      ("AIRPLANE_SWITCH", "switch_airplane")):  # fmt: skip
        x, y = getattr(layout, name)
        view = phone.find(rid=f"com.android.settings:id/{rid}")
        assert view is not None
        left, top, right, bottom = view.bounds
        assert left <= x * 1080 / 1000 <= right and top <= y * 2400 / 1000 <= bottom, name
