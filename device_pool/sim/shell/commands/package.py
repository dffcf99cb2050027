"""pm (list packages, path, clear, install — which reads the APK's manifest —, uninstall, grant) and ime (list, enable, disable, set)."""

from __future__ import annotations

from device_pool.apk import ApkError, read_manifest
from device_pool.sim.shell.commands.android_ids import is_system_package, object_hash
from device_pool.sim.shell.registry import CommandContext, command


def _apk_path(package: str) -> str:
    if is_system_package(package):
        name = package.rsplit(".", 1)[-1].capitalize()
        return f"/system/priv-app/{name}/{name}.apk"
    return f"/data/app/~~{object_hash('dir', package)}==/{package}-{object_hash('inst', package)}==/base.apk"


def _exception(ctx: CommandContext, sub: str, java_class: str, message: str) -> int:
    ctx.stderr.println()
    ctx.stderr.println(f"Exception occurred while executing '{sub}':")
    ctx.stderr.println(f"{java_class}: {message}")
    ctx.stderr.println(
        "\tat com.android.server.pm.PackageManagerShellCommand.onCommand(PackageManagerShellCommand.java:253)"
    )
    ctx.stderr.println(
        "\tat com.android.modules.utils.BasicShellCommandHandler.exec(BasicShellCommandHandler.java:97)"
    )
    return 255


@command("pm")
def pm(ctx: CommandContext) -> int:
    if not ctx.args:
        ctx.stdout.println("Package manager (package) commands:")
        ctx.stdout.println(
            "  list packages [-f] [-d] [-e] [-s] [-3] [-i] [-l] [-u] [-U] [--user USER_ID] [FILTER]"
        )
        ctx.stdout.println("  path [--user USER_ID] PACKAGE")
        ctx.stdout.println("  clear [--user USER_ID] PACKAGE")
        ctx.stdout.println("  install [-r] [-t] [-g] PATH")
        return 0
    sub, rest = ctx.args[0], ctx.args[1:]
    operands = _operands(rest)
    if sub == "list":
        if not rest or rest[0] != "packages":
            ctx.stderr.println(f"Error: unknown list type '{rest[0] if rest else ''}'")
            return 255
        return _list_packages(ctx, rest[1:])
    if sub == "path":
        if not operands:
            return _exception(
                ctx, sub, "java.lang.IllegalArgumentException", 'Argument expected after "path"'
            )
        if operands[0] not in ctx.phone.packages():
            return 1
        ctx.stdout.println(f"package:{_apk_path(operands[0])}")
        return 0
    if sub == "clear":
        if not operands:
            ctx.stderr.println("Error: no package specified")
            return 255
        ok = ctx.phone.clear_package(operands[0])
        ctx.stdout.println("Success" if ok else "Failed")
        return 0 if ok else 1
    if sub == "install":
        return _install(ctx, operands)
    if sub == "uninstall":
        # Only what `pm install` added can go: the sim's own apps are part of its image.
        if operands and ctx.phone.uninstall_package(operands[0]):
            ctx.stdout.println("Success")
            return 0
        ctx.stdout.println("Failure [DELETE_FAILED_INTERNAL_ERROR]")
        return 1
    if sub in ("grant", "revoke"):
        if len(operands) < 2:
            return _exception(
                ctx, sub, "java.lang.IllegalArgumentException", f'Argument expected after "{sub}"'
            )
        if operands[0] not in ctx.phone.packages():
            return _exception(
                ctx, sub, "java.lang.IllegalArgumentException", f"Unknown package: {operands[0]}"
            )
        return 0  # runtime permissions are not modelled: every app already has what it asks for
    ctx.stdout.println(f"Unknown command: {sub}")
    return 255


def _operands(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--user", "-i", "--install-reason", "-S", "--abi"):
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def _list_packages(ctx: CommandContext, args: list[str]) -> int:
    flags = {a for a in args if a.startswith("-")}
    operands = _operands(args)
    name_filter = operands[0] if operands else ""
    for package in ctx.phone.packages():
        system = is_system_package(package)
        if ("-3" in flags and system) or ("-s" in flags and not system) or "-d" in flags:
            continue
        if name_filter not in package:
            continue
        line = f"package:{_apk_path(package)}={package}" if "-f" in flags else f"package:{package}"
        if "-U" in flags:
            line += " uid:1000" if system else " uid:10100"
        if "-i" in flags:
            line += "  installer=null" if system else "  installer=com.android.shell"
        ctx.stdout.println(line)
    return 0


def _install(ctx: CommandContext, operands: list[str]) -> int:
    if not operands:
        ctx.stderr.println("Error: must either specify a package size or an APK file")
        return 1
    path = operands[-1]
    host = ctx.phone.host_path(ctx.path(path))
    if not host.is_file():
        ctx.stderr.println(f"Error: Unable to open file: {path}")
        ctx.stderr.println("Consider using a file under /data/local/tmp/")
        ctx.stderr.println(f"Error: Can't open file: {path}")
        ctx.stderr.println()
        ctx.stderr.println("Exception occurred while executing 'install':")
        ctx.stderr.println(f"java.lang.IllegalArgumentException: Error: Can't open file: {path}")
        return 255
    try:
        manifest = read_manifest(host.read_bytes())
    except ApkError as exc:
        ctx.stdout.println(f"Failure [{exc.reason}: Failed to parse {path}: {exc}]")
        return 1
    if not ctx.phone.install_package(manifest, _apk_path(manifest.package)):
        # A package of the phone's image: Android refuses an update not signed with its key.
        ctx.stdout.println(
            f"Failure [INSTALL_FAILED_UPDATE_INCOMPATIBLE: Existing package {manifest.package} "
            "signatures do not match newer version; ignoring!]"
        )
        return 1
    # The sim cannot run an APK's code: the package is listed, and has no activity to start.
    ctx.stdout.println("Success")
    return 0


# ----------------------------------------------------------------------------- ime
@command("ime")
def ime(ctx: CommandContext) -> int:
    if not ctx.args:
        ctx.stdout.println("ime <command>:")
        ctx.stdout.println("  list [-a] [-s]")
        ctx.stdout.println("  enable [--user <USER_ID>] <ID>")
        ctx.stdout.println("  disable [--user <USER_ID>] <ID>")
        ctx.stdout.println("  set [--user <USER_ID>] <ID>")
        return 0
    sub, rest = ctx.args[0], ctx.args[1:]
    operands = _operands(rest)
    phone = ctx.phone
    if sub == "list":
        flags = {f for a in rest if a.startswith("-") for f in a[1:]}
        ids = phone.ime_list(enabled_only="a" not in flags)
        for ime_id in ids:
            if "s" in flags:
                ctx.stdout.println(ime_id)
            else:
                _describe_ime(ctx, ime_id)
        return 0
    if sub in ("enable", "disable"):
        if not operands:
            ctx.stderr.println(f'Error: Argument expected after "{sub}"')
            return 255
        ime_id, enable = operands[0], sub == "enable"
        was_enabled = ime_id in phone.ime_list(enabled_only=True)
        if not phone.ime_enable(ime_id, enable):
            ctx.stderr.println(f"Unknown input method {ime_id} cannot be {sub}d for user #0")
            return 255
        state = "already " if was_enabled == enable else "now "
        ctx.stdout.println(f"Input method {ime_id}: {state}{sub}d for user #0")
        return 0
    if sub == "set":
        if not operands:
            ctx.stderr.println('Error: Argument expected after "set"')
            return 255
        if not phone.ime_set(operands[0]):
            ctx.stderr.println(f"Unknown input method {operands[0]} cannot be selected for user #0")
            return 255
        ctx.stdout.println(f"Input method {operands[0]} selected for user #0")
        return 0
    ctx.stdout.println(f"Unknown command: {sub}")
    return 255


def _describe_ime(ctx: CommandContext, ime_id: str) -> None:
    package, _, cls = ime_id.partition("/")
    full = package + cls if cls.startswith(".") else cls
    out = ctx.stdout
    out.println(f"{ime_id}:")
    out.println(
        f"  mId={ime_id} mSettingsActivityName=null mIsVrOnly=false mSupportsSwitchingToNextInputMethod=false"
    )
    out.println("  mIsDefaultResId=0x0")
    out.println("  Service:")
    out.println("    priority=0 preferredOrder=0 match=0x108000 specificIndex=-1 isDefault=false")
    out.println("    ServiceInfo:")
    out.println(f"      name={full}")
    out.println(f"      packageName={package}")
    out.println("      enabled=true exported=true directBootAware=false")
    out.println("      permission=android.permission.BIND_INPUT_METHOD")
    out.println("      flags=0x0")
