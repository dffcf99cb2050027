"""Logging in with the vault: on a protected login screen, type the password as a secret.

When the task's first turn lists secrets (``** Secrets **``, names only) and one of them is a
password (its name holds "pass", "pin" or "密码"), a secure login screen — black in the screenshot,
its fields listed by the agent from the view tree — is filled in by the model itself instead of
handing the phone to the user:

1. tap the username field (the element before the password field), 2. type the username (a secret
whose name holds "user", else the name the task gives: "as demo", "username demo"), 3. tap the
password field, 4. ``Type_Secret(name=…)``, 5. tap the log-in button. Having done all five and
still facing the login, it hands over to the user (a wrong password is theirs to fix).

The model is stateless: how far it got is the run of these actions at the end of its history.
"""

from __future__ import annotations

import re

from worker.agent.actions import ActionModel, TakeOver, Tap, TypeSecret, TypeText
from worker.reference_model.plan import Decision, History
from worker.reference_model.screen import Screen

__all__ = ["secret_login"]

_PASSWORD_SECRET = re.compile(r"pass|pin|pwd|密码", re.IGNORECASE)
_USER_SECRET = re.compile(r"user|login|account|用户", re.IGNORECASE)
_PASSWORD_LABEL = re.compile(r"^(?:password|passcode|pin|密码|•+|\*+)$", re.IGNORECASE)
_LOGIN_LABEL = re.compile(r"^(?:log\s?in|sign\s?in|登录|登陆)$", re.IGNORECASE)
_USERNAME_IN_TASK = re.compile(
    r"\b(?:as|user(?:name)?|user name)\s*[:=]?\s*[\"'“‘]?(?P<en>[\w.@+-]+)|用户名\s*[:：]?\s*(?P<zh>[\w.@+-]+)",
    re.IGNORECASE,
)


def _username(task: str) -> str | None:
    m = _USERNAME_IN_TASK.search(task)
    return (m.group("en") or m.group("zh")) if m else None


def secret_login(task: str, app: str, screen: Screen, history: History, secret_names: tuple[str, ...]) -> Decision | None:
    """The next action of a login with a secret on this protected screen; None when this does not
    apply (no password secret, no listed fields, no username)."""
    password = next((n for n in secret_names if _PASSWORD_SECRET.search(n)), None)
    elements = list(screen.protected)
    at = next((i for i, (label, _) in enumerate(elements) if _PASSWORD_LABEL.match(label.strip())), None)
    login = next((point for label, point in elements if _LOGIN_LABEL.match(label.strip())), None)
    if password is None or at is None or at == 0 or login is None:
        return None
    user_secret = next((n for n in secret_names if n != password and _USER_SECRET.search(n)), None)
    username = _username(task)
    if user_secret is None and username is None:
        return None
    type_user: ActionModel = TypeSecret(secret=user_secret) if user_secret else TypeText(text=username or "")
    plan: list[tuple[str, ActionModel]] = [
        ("I tap the username field of the protected login screen.", Tap(element=elements[at - 1][1])),
        ("I enter the username.", type_user),
        ("I tap the password field.", Tap(element=elements[at][1])),
        (f'The password is the secret "{password}"; the system types it for me.', TypeSecret(secret=password)),
        ("I press the log-in button.", Tap(element=login)),
    ]
    done = _progress(history, [action for _, action in plan])
    if done == len(plan):
        return Decision(
            f"I entered the credentials from the vault and {app} still asks for a login.",
            TakeOver(message=f"The saved credentials did not log in to {app}. Please log in, then hand the phone back."),
            "secret_login_failed",
        )
    thinking, action = plan[done]
    return Decision(f"{app} asks for a login (a secure window); {thinking}", action, "secret_login")


def _progress(history: History, plan: list[ActionModel]) -> int:
    """How many of ``plan``'s first actions end the history, in order (a tap matches any tap)."""
    actions = history.actions
    for k in range(min(len(plan), len(actions)), 0, -1):
        if all(_same(done, wanted) for done, wanted in zip(actions[-k:], plan[:k], strict=True)):
            return k
    return 0


def _same(done: ActionModel, wanted: ActionModel) -> bool:
    return isinstance(done, Tap) if isinstance(wanted, Tap) else done == wanted
