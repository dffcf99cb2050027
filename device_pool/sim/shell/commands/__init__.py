"""Shell commands by domain; importing this package registers every one of them."""

from device_pool.sim.shell.commands import (
    activity,
    builtins,
    content,
    files,
    input,
    logcat,
    package,
    props,
    record,
    screen,
    settings,
    simctl,
    text,
    window,
)

__all__ = [
    "activity",
    "builtins",
    "content",
    "files",
    "input",
    "logcat",
    "package",
    "props",
    "record",
    "screen",
    "settings",
    "simctl",
    "text",
    "window",
]
