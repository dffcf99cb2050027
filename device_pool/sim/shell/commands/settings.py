"""settings (get, put, delete, list) and svc (wifi, data, bluetooth, power): the phone's settings store."""

from __future__ import annotations

from device_pool.sim.shell.registry import CommandContext, command

NAMESPACES = ("system", "secure", "global")

_SETTINGS_USAGE = """Settings provider (settings) commands:
  help
      Print this help text.
  get [--user <USER_ID> | current] NAMESPACE KEY
      Retrieve the current value of KEY.
  put [--user <USER_ID> | current] NAMESPACE KEY VALUE [TAG] [default]
      Change the contents of KEY to VALUE.
  delete [--user <USER_ID> | current] NAMESPACE KEY
      Delete the entry for KEY.
  list [--user <USER_ID> | current] NAMESPACE
      Print all defined keys.
      NAMESPACE is one of {system, secure, global}, case-insensitive"""


@command("settings")
def settings(ctx: CommandContext) -> int:
    args: list[str] = []
    it = iter(ctx.args)
    for arg in it:
        if arg == "--user":
            next(it, None)
        elif arg not in ("--lineage",):
            args.append(arg)
    if not args or args[0] in ("help", "-h"):
        ctx.stdout.println(_SETTINGS_USAGE)
        return 0
    verb, rest = args[0], args[1:]
    needed = {"get": 2, "put": 3, "delete": 2, "list": 1}.get(verb)
    if needed is None or len(rest) < needed:
        ctx.stderr.println("Bad arguments")
        return 255
    namespace = rest[0].lower()
    if namespace not in NAMESPACES:
        ctx.stderr.println(f"Invalid namespace '{rest[0]}'")
        return 255
    phone = ctx.phone
    if verb == "get":
        value = phone.settings_get(namespace, rest[1])
        ctx.stdout.println("null" if value is None else value)
    elif verb == "put":
        phone.settings_put(namespace, rest[1], rest[2])
    elif verb == "delete":
        deleted = phone.settings_delete(namespace, rest[1])
        ctx.stdout.println(f"Deleted {1 if deleted else 0} rows")
    else:
        entries = phone.settings_list(namespace)
        for key in sorted(entries):
            ctx.stdout.println(f"{key}={entries[key]}")
    return 0


_SVC_USAGE = """Available commands:
    help     Show information about the subcommands
    power    Control the power manager
    data     Control mobile data connectivity
    wifi     Control the Wi-Fi manager
    usb      Control Usb state
    nfc      Control NFC functions
    bluetooth Control Bluetooth service"""

# svc SERVICE enable|disable -> the global setting Android flips for it.
_TOGGLES = {"wifi": "wifi_on", "data": "mobile_data", "bluetooth": "bluetooth_on", "nfc": "nfc_on"}
_STAY_ON = {"true": "7", "false": "0", "usb": "2", "ac": "1", "wireless": "4"}


@command("svc")
def svc(ctx: CommandContext) -> int:
    if not ctx.args or ctx.args[0] == "help":
        ctx.stdout.println(_SVC_USAGE)
        return 0
    service, rest = ctx.args[0], ctx.args[1:]
    if service in _TOGGLES:
        if not rest or rest[0] not in ("enable", "disable"):
            ctx.stderr.println(f"usage: svc {service} [enable|disable]")
            return 1
        ctx.phone.settings_put("global", _TOGGLES[service], "1" if rest[0] == "enable" else "0")
        return 0
    if service == "power":
        if len(rest) == 2 and rest[0] == "stayon" and rest[1] in _STAY_ON:
            ctx.phone.settings_put("global", "stay_on_while_plugged_in", _STAY_ON[rest[1]])
            return 0
        if rest and rest[0] in ("reboot", "shutdown"):
            ctx.stderr.println("svc power: reboot is not available on the virtual phone")
            return 1
        ctx.stderr.println("usage: svc power stayon [true|false|usb|ac|wireless]")
        return 1
    if service == "usb":
        return 0  # USB functions do not exist on a network-attached phone; accept as a no-op
    ctx.stdout.println(f"Unknown command '{service}'")
    ctx.stdout.println(_SVC_USAGE)
    return 1
