"""Which apps a run's agent may use: a task's ``allowed_apps`` (docs/security.md, "App allowlist").

The agent core checks it (``loop.py``), handed a policy by whoever runs it: the worker's run builds
one from the task's and its personal phone's lists (``AppPolicy.of``), ``phonefleet run`` and
tests pass one or none. Two checks:

- a ``Launch`` of an app outside the list is not carried out: its step's result is
  ``refused: not in allowed_apps`` and the model is told, in the next turn, which apps it may use;
- after an action on the phone, the app in front is read (the capture reads it anyway); one outside
  the list (reached by a link, a notification, an icon) pauses the run with a question to a person,
  once per excursion: after their answer (or their takeover) the run goes on, and asks again only
  after it was back in an allowed app and left once more.

The launcher and system UI (status bar, notification shade, system dialogs) are always allowed: a
phone cannot be used without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ALWAYS_ALLOWED", "REFUSED", "AppPolicy"]

# The launcher (AOSP's, Pixel's) and system UI; ``android`` owns the system's own dialogs.
ALWAYS_ALLOWED = frozenset(
    {"com.android.launcher3", "com.google.android.apps.nexuslauncher", "com.android.systemui", "android"}
)
# A refused Launch's step result.
REFUSED = "refused: not in allowed_apps"


@dataclass(frozen=True)
class AppPolicy:
    """The packages a run may use (``allowed``), the always-allowed ones besides."""

    allowed: frozenset[str]
    always: frozenset[str] = ALWAYS_ALLOWED

    @classmethod
    def of(cls, *lists: Iterable[str] | None) -> AppPolicy | None:
        """The policy of several lists at once (a task's and its personal phone's): the apps all of
        them allow; a list that is None allows any app, and None comes back when all are."""
        given = [frozenset(items) for items in lists if items is not None]
        if not given:
            return None
        return cls(frozenset.intersection(*given))

    def allows(self, package: str) -> bool:
        return package in self.allowed or package in self.always

    def listed(self) -> str:
        """The allowed packages, for a message: sorted, or a word when there are none."""
        return ", ".join(sorted(self.allowed)) or "(none besides the home screen)"
