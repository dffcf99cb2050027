"""The executor's side of Type_Secret: the value comes from the hooks and goes to the device's
typing only; an unknown name or an unreadable vault is a rejection the model hears, naming the
secrets there are, never a value; the driver's command log is masked while it types."""

from __future__ import annotations

import pytest

from device_pool.driver import SECRET_INPUT
from orchestrator.errors import VaultUnavailable
from tests.aio import run
from worker.agent import actions as a
from worker.agent.errors import ActionRejected
from worker.agent.executor import ActionExecutor
from worker.agent.steering import AgentHooks, AgentSteering

VALUE = "typed-not-told-5521"


class Typist:
    """Records what is typed and whether the driver's log was masked then: a stand-in for the phone,
    since what is checked here is what the executor hands the driver (the real typing on the virtual
    phone is tests/worker/runtask/test_secrets.py)."""

    def __init__(self) -> None:
        self.typed: list[tuple[str, bool]] = []

    async def type_text(self, text: str) -> None:
        self.typed.append((text, SECRET_INPUT.get()))


class Vault(AgentHooks):
    def __init__(self, values: dict[str, str], broken: bool = False) -> None:
        self.values, self.broken = values, broken

    async def secret_names(self) -> list[str]:
        return sorted(self.values)

    async def secret_value(self, name: str) -> str | None:
        if self.broken:
            raise VaultUnavailable("the secrets vault needs vault.key set")
        return self.values.get(name)


def _executor(hooks: AgentHooks) -> tuple[ActionExecutor, Typist]:
    device = Typist()
    return ActionExecutor(device, (1080, 2400), hooks, AgentSteering()), device  # type: ignore[arg-type]


def test_the_value_goes_to_the_driver_only_with_its_log_masked() -> None:
    executor, device = _executor(Vault({"bank_password": VALUE}))
    outcome = run(a.TypeSecret(secret="bank_password").execute(executor))
    assert device.typed == [(VALUE, True)] and not SECRET_INPUT.get()
    assert VALUE not in repr(outcome)


def test_an_unknown_name_or_an_unreadable_vault_is_told_to_the_model_without_a_value() -> None:
    executor, device = _executor(Vault({"bank_password": VALUE, "pin": "0000"}))
    with pytest.raises(ActionRejected) as unknown:
        run(a.TypeSecret(secret="bank_pasword").execute(executor))
    assert '"bank_password", "pin"' in unknown.value.agent_feedback and VALUE not in str(unknown.value)
    executor, device = _executor(Vault({"bank_password": VALUE}, broken=True))
    with pytest.raises(ActionRejected, match="cannot be read"):
        run(a.TypeSecret(secret="bank_password").execute(executor))
    assert device.typed == []
