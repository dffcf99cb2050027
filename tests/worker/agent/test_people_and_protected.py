"""What the model is told about a person's part and about a screen it cannot see, on a real virtual
phone with a scripted model server (tests/worker/agent/model_servers.py) that keeps every request."""

from __future__ import annotations

from device_pool.driver import AdbDevice, is_secure_frame
from tests.aio import run
from tests.worker.agent.model_servers import ModelServer, Reply, serve
from tests.worker.agent.test_loop import Recorder, client
from worker.agent.loop import run_agent
from worker.agent.results import RunStatus


class Person(Recorder):
    """Takes over when asked, and reports the steps the person made meanwhile."""

    def __init__(self, note: str, steps: list[str] | None) -> None:
        super().__init__(takeover_note=note)
        self.done = steps

    async def user_steps(self) -> list[str] | None:
        return self.done


def _texts(body: dict) -> str:
    last = body["messages"][-1]["content"]
    return last if isinstance(last, str) else last[-1]["text"]


def test_after_a_takeover_the_model_hears_what_the_person_did(fresh_device: AdbDevice) -> None:
    script = [
        Reply('do(action="Take_over", message="Please pick the product")'),
        Reply('finish(message="ok")'),
    ]
    did = ['do(action="Tap", element=[500,300]) in Shop', 'do(action="Type", text="•••") (password field)']

    async def body(steps: list[str] | None) -> tuple[RunStatus, str]:
        with serve(ModelServer(*script)) as server:
            async with client(server.base_url) as model:
                result = await run_agent("Buy it", fresh_device, model, hooks=Person("added it", steps))
            return result.status, _texts(server.requests[1].body)

    status, told = run(body(did))
    assert status == RunStatus.SUCCEEDED
    assert "added it" in told  # the hand-back note
    assert "they did these actions themselves" in told and "do not claim it as your own" in told
    assert f"1. {did[0]}\n2. {did[1]}" in told

    _status, told = run(body([]))
    assert "they did no action on it" in told

    _status, told = run(body(None))  # nobody records steps (phonefleet run): the note alone
    assert "added it" in told and "themselves" not in told and "no action" not in told


def test_a_protected_screen_is_described_to_the_model_not_only_shown_black(fresh_device: AdbDevice) -> None:
    script = [Reply('do(action="Launch", app="Bank")'), Reply('finish(message="seen")')]

    async def body() -> tuple[str, str, bool]:
        with serve(ModelServer(*script)) as server:
            async with client(server.base_url) as model:
                result = await run_agent("Open my bank", fresh_device, model)
            assert result.status == RunStatus.SUCCEEDED, result
            black = is_secure_frame(await fresh_device.screenshot())
            return _texts(server.requests[0].body), _texts(server.requests[1].body), black

    first, second, black = run(body())
    assert black  # the login window is secure: its screenshot is black, as on Android
    assert "protected" not in first  # the home screen is not
    assert "The screen is protected" in second
    # The view tree's labels, each with its centre on the grid, so the model can still act.
    for label in ("'Username'", "'Password'", "'Log in'"):
        assert label in second, second
