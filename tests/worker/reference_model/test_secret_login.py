"""The reference model's login with the vault on a secure (black) Bank login: the five actions in
order from the elements the agent lists, then a person when the login still shows; nothing without
a password secret or a username."""

from __future__ import annotations

import numpy as np

from worker.agent import actions as a
from worker.reference_model.instructions import parse_instruction
from worker.reference_model.plan import History
from worker.reference_model.policy import decide
from worker.reference_model.screen import Screen

TASK = "Open Bank and log in as demo"
ELEMENTS = (("My Bank", (500, 120)), ("Username", (500, 300)), ("Password", (500, 380)), ("Log in", (500, 460)))


def _black() -> Screen:
    return Screen(np.zeros((240, 108, 3), dtype=np.uint8), [], current_app="Bank", protected=ELEMENTS)


def test_a_secure_login_is_filled_from_the_vault_then_handed_over_if_it_stays() -> None:
    goal = parse_instruction(TASK)
    done: list[a.ActionModel] = [a.Launch(app="Bank")]
    expected = [
        a.Tap(element=(500, 300)), a.TypeText(text="demo"), a.Tap(element=(500, 380)),
        a.TypeSecret(secret="bank_password"), a.Tap(element=(500, 460)),
    ]  # fmt: skip
    for wanted in expected:
        decision = decide(goal, TASK, _black(), History(tuple(done)), secret_names=("bank_password",))
        assert decision.action == wanted, (decision, done)
        done.append(decision.action)
    last = decide(goal, TASK, _black(), History(tuple(done)), secret_names=("bank_password",))
    assert isinstance(last.action, a.TakeOver) and last.rule == "secret_login_failed", last
    # A username secret is typed as a secret too.
    first = [a.Launch(app="Bank"), a.Tap(element=(500, 300))]
    names = ("bank_password", "bank_username")
    typed = decide(goal, "Open Bank and log in", _black(), History(tuple(first)), secret_names=names)
    assert typed.action == a.TypeSecret(secret="bank_username"), typed


def test_without_a_password_secret_the_user_logs_in() -> None:
    goal = parse_instruction(TASK)
    history = History((a.Launch(app="Bank"),))
    for names in ((), ("api_token",)):
        decision = decide(goal, TASK, _black(), history, secret_names=names)
        assert isinstance(decision.action, a.TakeOver), (names, decision)
    # No username anywhere: a person too.
    decision = decide(goal, "Open Bank and log in", _black(), history, secret_names=("bank_password",))
    assert isinstance(decision.action, a.TakeOver), decision
