"""Intent resolution: which app and activity `am start` (or a tap on a link) opens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from device_pool.sim.apps import App

LAUNCHER = "com.android.launcher3"
MAIN = "android.intent.action.MAIN"
VIEW = "android.intent.action.VIEW"
SENDTO = "android.intent.action.SENDTO"
CATEGORY_HOME = "android.intent.category.HOME"


class ActivityNotFound(LookupError):
    """No activity matches the intent (what `am start` reports as "Activity not started")."""


# Implicit intents: (action, data scheme or None) -> (package, activity class).
INTENT_FILTERS: dict[tuple[str, str | None], tuple[str, str]] = {
    ("android.settings.SETTINGS", None): ("com.android.settings", "com.android.settings.Settings"),
    ("android.settings.WIFI_SETTINGS", None): (
        "com.android.settings", "com.android.settings.Settings$WifiSettingsActivity"),
    ("android.settings.BLUETOOTH_SETTINGS", None): (
        "com.android.settings", "com.android.settings.Settings$BluetoothSettingsActivity"),
    ("android.settings.AIRPLANE_MODE_SETTINGS", None): ("com.android.settings", "com.android.settings.Settings"),
    ("android.settings.WIRELESS_SETTINGS", None): ("com.android.settings", "com.android.settings.Settings"),
    ("android.settings.DEVICE_INFO_SETTINGS", None): (
        "com.android.settings", "com.android.settings.Settings$MyDeviceInfoActivity"),
    ("android.settings.DISPLAY_SETTINGS", None): (
        "com.android.settings", "com.android.settings.Settings$DisplaySettingsActivity"),
    ("android.settings.LOCALE_SETTINGS", None): (
        "com.android.settings", "com.android.settings.Settings$LanguageSettingsActivity"),
}  # fmt: skip
_CONVERSATION = ("com.android.messaging", "com.android.messaging.ui.conversation.ConversationActivity")
for _action in ("android.intent.action.VIEW", "android.intent.action.SENDTO"):
    for _scheme in ("sms", "smsto", "mms", "mmsto"):
        INTENT_FILTERS[(_action, _scheme)] = _CONVERSATION
INTENT_FILTERS[("android.intent.action.INSERT", None)] = (
    "com.android.contacts",
    "com.android.contacts.activities.ContactEditorActivity",
)


def resolve(apps: Mapping[str, App], component: str | None, package: str | None, action: str | None,
            data: str | None, categories: Sequence[str] = ()) -> tuple[App, str]:  # fmt: skip
    """(app, fully qualified activity) for an intent; raises ActivityNotFound.

    Components are "pkg/.Act" or "pkg/full.Act" (as ComponentName.unflattenFromString); MAIN with
    a package (or a bare package) opens its launcher activity; MAIN with category HOME, or with no
    package, opens the launcher; other actions go through INTENT_FILTERS by action and data scheme.
    """
    if component:
        pkg, _, cls = component.partition("/")
        if cls.startswith("."):
            cls = pkg + cls
        app = apps.get(pkg)
        if app is None or cls not in app.activities:
            raise ActivityNotFound(f"Activity class {{{pkg}/{cls}}} does not exist.")
        return app, cls
    home = apps[LAUNCHER]
    if action == MAIN or (action is None and data is None):
        if CATEGORY_HOME in categories or (package is None and action is not None):
            return home, next(iter(home.activities))
        app = apps.get(package or "")
        cls = app.launcher_class() if app else None
        if app is None or cls is None:
            raise ActivityNotFound(f"No launcher activity for package {package}")
        return app, cls
    scheme = data.split(":", 1)[0].lower() if data and ":" in data else None
    target = INTENT_FILTERS.get((action or VIEW, scheme))
    if target is None and scheme is not None and action in (None, SENDTO):
        target = INTENT_FILTERS.get((VIEW, scheme))
    if target is None or (package is not None and target[0] != package):
        raise ActivityNotFound(f"No Activity found to handle Intent {{ act={action} dat={data} }}")
    return apps[target[0]], target[1]


__all__ = ["INTENT_FILTERS", "LAUNCHER", "ActivityNotFound", "resolve"]
