"""wm and dumpsys: the window manager's and system services' views of the phone.

Only the lines clients parse are guaranteed (``mCurrentFocus=Window{…}``,
``mResumedActivity: ActivityRecord{…}``, ``ACTIVITY pkg/act hex pid=N``, ``orientation=N``,
``mHoldingDisplaySuspendBlocker=``, ``versionName=``); the rest gives them realistic company.
"""

from __future__ import annotations

from collections.abc import Callable

from device_pool.sim.shell.commands.android_ids import (
    app_uid,
    is_system_package,
    object_hash,
    pid_of,
    short_component,
    task_id,
)
from device_pool.sim.shell.registry import CommandContext, OutputStream, command

# Install time Android shows for apps that came with the image (the image's build date).
_IMAGE_INSTALL_TIME = "2023-09-01 00:00:00"


@command("wm")
def wm(ctx: CommandContext) -> int:
    config = ctx.phone.config
    if not ctx.args:
        ctx.stdout.println("Window manager (window) commands:")
        ctx.stdout.println("  size [reset|WxH|WdpxHdp] [-d DISPLAY_ID]")
        ctx.stdout.println("  density [reset|DENSITY] [-d DISPLAY_ID]")
        return 0
    sub, rest = ctx.args[0], [a for a in ctx.args[1:] if a != "-d"]
    if sub == "size":
        if rest and rest[0] != "0":
            # The sim's display is fixed by its config; a silent success would be a lie.
            ctx.stderr.println("Error: changing the display size is not supported on this device")
            return 255
        ctx.stdout.println(f"Physical size: {config.width}x{config.height}")
        return 0
    if sub == "density":
        if rest and rest[0] != "0":
            ctx.stderr.println("Error: changing the display density is not supported on this device")
            return 255
        ctx.stdout.println(f"Physical density: {config.density}")
        return 0
    ctx.stdout.println(f"Unknown command: {sub}")
    return 255


# ------------------------------------------------------------------------ dumpsys
def _focus(ctx: CommandContext) -> tuple[str, str, str, str]:
    """(package, activity class, hash of its window, hash of its ActivityRecord)."""
    package, cls = ctx.phone.foreground()
    return package, cls, object_hash("window", package, cls), object_hash("record", package, cls)


def _record(package: str, cls: str, record_hash: str) -> str:
    return f"ActivityRecord{{{record_hash} u0 {short_component(package, cls)} t{task_id(package)}}}"


def _dump_window(ctx: CommandContext, out: OutputStream) -> None:
    package, cls, window_hash, record_hash = _focus(ctx)
    c = ctx.phone.config
    title = f"{package}/{cls}"
    out.println("WINDOW MANAGER WINDOWS (dumpsys window windows)")
    out.println(f"  Window #0 Window{{{object_hash('statusbar')} u0 StatusBar}}:")
    out.println(
        "    mDisplayId=0 rootTaskId=1 mSession=Session{5e1a2f0 1322:u0a10090} mClient=android.os.BinderProxy@9d3e1c1"
    )
    out.println("    mOwnerUid=10090 showForAllUsers=true package=com.android.systemui appop=NONE")
    out.println(
        f"    mAttrs={{(0,0)(fillx{round(24 * c.density / 160)}) gr=TOP CENTER_VERTICAL sim={{adjust=pan}} ty=STATUS_BAR fmt=TRANSLUCENT}}"
    )
    out.println("    mHasSurface=true isReadyForDisplay()=true mWindowRemovalAllowed=false")
    out.println(f"  Window #1 Window{{{window_hash} u0 {title}}}:")
    out.println(
        f"    mDisplayId=0 rootTaskId={task_id(package)} mSession=Session{{{object_hash('session', package)} {pid_of(package)}:u0a{app_uid(package) % 10000}}} mClient=android.os.BinderProxy@{object_hash('client', package)}"
    )
    out.println(f"    mOwnerUid={app_uid(package)} showForAllUsers=false package={package} appop=NONE")
    out.println(
        "    mAttrs={(0,0)(fillxfill) sim={adjust=resize forwardNavigation} ty=BASE_APPLICATION fmt=TRANSLUCENT wanim=0x10302f8"
    )
    out.println(
        "      fl=LAYOUT_IN_SCREEN LAYOUT_INSET_DECOR SPLIT_TOUCH HARDWARE_ACCELERATED DRAWS_SYSTEM_BAR_BACKGROUNDS}"
    )
    out.println(f"    Requested w={c.width} h={c.height} mLayoutSeq=214")
    out.println(f"    mActivityRecord={_record(package, cls, record_hash)}")
    out.println("    mHasSurface=true isReadyForDisplay()=true mWindowRemovalAllowed=false")
    out.println(
        f"    Frames: parent=[0,0][{c.width},{c.height}] display=[0,0][{c.width},{c.height}] frame=[0,0][{c.width},{c.height}]"
    )
    out.println()
    sw = round(min(c.width, c.height) * 160 / c.density)
    out.println(
        f"  mGlobalConfiguration={{1.0 ?mcc?mnc [en_US] ldltr sw{sw}dp w{sw}dp h{round(c.height * 160 / c.density)}dp {c.density}dpi nrml long port finger qwerty/v/v dpad/v winConfig={{ mBounds=Rect(0, 0 - {c.width}, {c.height}) mAppBounds=Rect(0, 0 - {c.width}, {c.height}) mWindowingMode=fullscreen mDisplayWindowingMode=fullscreen mActivityType=undefined mAlwaysOnTop=undefined mRotation=ROTATION_0}} s.42 fontWeightAdjustment=0}}"
    )
    out.println("  mHasPermanentDpad=false")
    out.println("  mTopFocusedDisplayId=0")
    out.println(f"  imeLayeringTarget in display# 0 Window{{{window_hash} u0 {title}}}")
    out.println(f"  imeInputTarget in display# 0 Window{{{window_hash} u0 {title}}}")
    out.println(f"  imeControlTarget in display# 0 Window{{{window_hash} u0 {title}}}")
    out.println(f"  mCurrentFocus=Window{{{window_hash} u0 {title}}}")
    out.println(f"  mFocusedApp={_record(package, cls, record_hash)}")
    out.println("  mInTouchMode=true")
    out.println("  mDisplayFrozen=false windowsAreFocusable=true")


def _dump_activities(ctx: CommandContext, out: OutputStream) -> None:
    package, cls, _window_hash, record_hash = _focus(ctx)
    record = _record(package, cls, record_hash)
    tid = task_id(package)
    out.println("ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)")
    out.println("Display #0 (activities from top to bottom):")
    out.println(
        f"  * Task{{{object_hash('task', package)} #{tid} type=standard A={app_uid(package)}:{package} U=0 visible=true visibleRequested=true mode=fullscreen translucent=false sz=1}}"
    )
    out.println(f"    mResumedActivity: {record}")
    out.println(f"    * Hist  #0: {record}")
    out.println(f"      packageName={package} processName={package}")
    out.println("      launchedFromUid=2000 launchedFromPackage=com.android.shell userId=0")
    out.println(
        f"      intent={{act=android.intent.action.MAIN cat=[android.intent.category.LAUNCHER] flg=0x10000000 cmp={short_component(package, cls)}}}"
    )
    out.println("      state=RESUMED")
    out.println()
    out.println(f"  ResumedActivity: {record}")
    out.println(f"  mFocusedApp={record}")


def _dump_top(ctx: CommandContext, out: OutputStream) -> None:
    package, cls, _window_hash, record_hash = _focus(ctx)
    out.println(f"TASK {app_uid(package)}:{package} id={task_id(package)} userId=0")
    out.println(f"  ACTIVITY {short_component(package, cls)} {record_hash} pid={pid_of(package)}")
    out.println("    Local Activity " + record_hash + " State:")
    out.println("      mResumed=true mStopped=false mFinished=false")
    out.println("      mIsChangingConfigurations=false")
    out.println(
        f"      mCurrentConfig={{1.0 ?mcc?mnc [en_US] ldltr {ctx.phone.config.density}dpi nrml long port}}"
    )


def _dump_display(ctx: CommandContext, out: OutputStream) -> None:
    c = ctx.phone.config
    out.println("DISPLAY MANAGER (dumpsys display)")
    out.println("  mOnlyCode=false")
    out.println("  mSafeMode=false")
    out.println("  mPendingTraversal=false")
    out.println("  mViewports=[DisplayViewport{type=INTERNAL, valid=true, isActive=true, displayId=0, uniqueId='local:0', physicalPort=0, orientation=0, logicalFrame=Rect(0, 0 - "
                f"{c.width}, {c.height}), physicalFrame=Rect(0, 0 - {c.width}, {c.height}), deviceWidth={c.width}, deviceHeight={c.height}}}]")  # fmt: skip
    out.println("Display Devices: size=1")
    out.println(
        f'  DisplayDeviceInfo{{"Built-in Screen": uniqueId="local:0", {c.width} x {c.height}, modeId 1, defaultModeId 1, density {c.density}, {c.density}.0 x {c.density}.0 dpi, appVsyncOff 0, presDeadline 16666666, touch INTERNAL, rotation 0, type INTERNAL, state ON, FLAG_DEFAULT_DISPLAY, FLAG_ROTATES_WITH_CONTENT, FLAG_SECURE, FLAG_SUPPORTS_PROTECTED_BUFFERS}}'
    )
    out.println(
        f'  mOverrideDisplayInfo=DisplayInfo{{"Built-in Screen", displayId 0, real {c.width} x {c.height}, largest app {c.width} x {c.height}, smallest app {c.width} x {c.height}, appVsyncOff 0, rotation 0, density {c.density} ({c.density}.0 x {c.density}.0) dpi, layerStack 0, type INTERNAL, state ON}}'
    )
    out.println("  mCurrentOrientation=0")


def _dump_power(ctx: CommandContext, out: OutputStream) -> None:
    on = ctx.phone.screen_on()
    out.println("POWER MANAGER (dumpsys power)")
    out.println()
    out.println("Power Manager State:")
    out.println("  mDirty=0x0")
    out.println(f"  mWakefulness={'Awake' if on else 'Asleep'}")
    out.println("  mWakefulnessChanging=false")
    out.println("  mIsPowered=true")
    out.println("  mPlugType=1")
    out.println("  mStayOn=false")
    out.println("  mHoldingWakeLockSuspendBlocker=false")
    out.println(f"  mHoldingDisplaySuspendBlocker={'true' if on else 'false'}")
    out.println(f"  Display Power: state={'ON' if on else 'OFF'}")


def _dump_battery(ctx: CommandContext, out: OutputStream) -> None:
    out.println("Current Battery Service state:")
    for line in ("AC powered: true", "USB powered: false", "Wireless powered: false", "Max charging current: 0",
                 "Max charging voltage: 0", "Charge counter: 10000", "status: 2", "health: 2", "present: true",
                 "level: 100", "scale: 100", "voltage: 5000", "temperature: 250", "technology: Li-ion"):  # fmt: skip
        out.println(f"  {line}")


def _dump_input_method(ctx: CommandContext, out: OutputStream) -> None:
    current = ctx.phone.ime_current()
    out.println(f"  mCurMethodId={current}")
    out.println(f"  mCurId={current} mHaveConnection=true mBoundToMethod=true mVisibleBound=false")
    out.println("  mInputShown=false")
    out.println(f"  Enabled input methods: {':'.join(ctx.phone.ime_list(enabled_only=True))}")


def _dump_package(ctx: CommandContext, out: OutputStream, names: list[str]) -> None:
    installed = set(ctx.phone.packages())
    for package in names:
        if package not in installed:
            continue  # Android prints nothing about a package it does not know
        system = is_system_package(package)
        code_path = (
            f"/system/priv-app/{package}"
            if system
            else f"/data/app/~~{object_hash('dir', package)}==/{package}-1"
        )
        out.println("Packages:")
        out.println(f"  Package [{package}] ({object_hash('pkg', package)}):")
        out.println(f"    userId={app_uid(package)}")
        out.println(f"    pkg=Package{{{object_hash('pkgobj', package)} {package}}}")
        out.println(f"    codePath={code_path}")
        out.println(f"    resourcePath={code_path}")
        out.println(
            "    versionCode=33 minSdk=29 targetSdk=33"
            if system
            else "    versionCode=1 minSdk=24 targetSdk=33"
        )
        out.println("    versionName=13" if system else "    versionName=1.0")
        out.println(f"    flags=[ {'SYSTEM ' if system else ''}HAS_CODE ALLOW_CLEAR_USER_DATA ALLOW_BACKUP ]")
        out.println(f"    timeStamp={_IMAGE_INSTALL_TIME}")
        out.println(f"    firstInstallTime={_IMAGE_INSTALL_TIME}")
        out.println(f"    lastUpdateTime={_IMAGE_INSTALL_TIME}")
        out.println("    installerPackageName=" + ("null" if system else "com.android.shell"))
        launcher = ctx.phone.launcher_activity(package)
        if launcher:
            out.println("  Activity Resolver Table:")
            out.println("    Non-Data Actions:")
            out.println("        android.intent.action.MAIN:")
            out.println(
                f"          {object_hash('filter', package)} {launcher} filter {object_hash('f', package)}"
            )
        out.println()
        out.println(
            "  User 0: ceDataInode=0 installed=true hidden=false suspended=false stopped=false notLaunched=false enabled=0 instant=false virtual=false"
        )


_SERVICES: dict[str, Callable[[CommandContext, OutputStream], None]] = {
    "window": _dump_window,
    "activity": _dump_activities,
    "display": _dump_display,
    "power": _dump_power,
    "battery": _dump_battery,
    "input_method": _dump_input_method,
}
_LISTED = sorted(
    [*_SERVICES, "package", "settings", "input", "statusbar", "wifi", "uimode", "meminfo", "cpuinfo"]
)


@command("dumpsys")
def dumpsys(ctx: CommandContext) -> int:
    args = [a for a in ctx.args if a not in ("-a", "--proto")]
    if not args or args[0] == "-l":
        ctx.stdout.println("Currently running services:")
        for name in _LISTED:
            ctx.stdout.println(f"  {name}")
        return 0
    service, rest = args[0], args[1:]
    out = ctx.stdout
    if service == "window":
        _dump_window(ctx, out)
    elif service == "activity":
        what = rest[0] if rest else "activities"
        if what == "top":
            _dump_top(ctx, out)
        else:
            _dump_activities(ctx, out)
    elif service == "package":
        _dump_package(ctx, out, [a for a in rest if not a.startswith("-")])
    elif service in _SERVICES:
        _SERVICES[service](ctx, out)
    elif service in _LISTED:
        pass  # a known service with nothing worth modelling prints nothing
    else:
        # dumpsys carries on after a missing service and still exits 0.
        ctx.stderr.println(f"Can't find service: {service}")
    return 0
