"""Shell commands run against a real VirtualPhone in a temporary data directory.

Where the effect of a command lives inside the phone's apps (typing into a field), the phone's own
method is wrapped with a recorder (monkeypatch) so the test checks what the shell asked for; the
phone's tests own what typing does to a screen.
"""

from __future__ import annotations

import base64
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_pool.sim.phone import VirtualPhone
from device_pool.sim.shell import ShellResult, ShellSyntaxError, parse, run_shell
from tests.apks import build_apk

ADB_IME = "com.android.adbkeyboard/.AdbIME"


@pytest.fixture
def phone(tmp_path: Path) -> VirtualPhone:
    return VirtualPhone(tmp_path / "phone")


@pytest.fixture(scope="module")
def shared_phone(tmp_path_factory: pytest.TempPathFactory) -> VirtualPhone:
    """For read-only checks and the fuzz test (hypothesis cannot use function-scoped fixtures)."""
    return VirtualPhone(tmp_path_factory.mktemp("shared") / "phone")


def sh(phone: VirtualPhone, line: str) -> ShellResult:
    return run_shell(phone, line)


def out(result: ShellResult) -> str:
    return result.stdout.decode()


def err(result: ShellResult) -> str:
    return result.stderr.decode()


@pytest.fixture
def typed(phone: VirtualPhone, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, object]]]:
    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(phone, "type_text", lambda text: calls.append(("type", text)))
    monkeypatch.setattr(phone, "clear_text", lambda: calls.append(("clear", None)))
    real_key = phone.key
    monkeypatch.setattr(phone, "key", lambda code: (calls.append(("key", code)), real_key(code)))
    yield calls


# ------------------------------------------------------------------ shell language
def test_echo_and_status(phone: VirtualPhone) -> None:
    r = sh(phone, "echo hi; false; echo $?; true && echo yes || echo no; false || echo fallback")
    assert out(r) == "hi\n1\nyes\nfallback\n"
    assert r.exit_code == 0


def test_echo_options_and_escapes(phone: VirtualPhone) -> None:
    assert out(sh(phone, "echo -n abc")) == "abc"
    assert out(sh(phone, r"echo 'a\tb\nc'")) == "a\tb\nc\n"
    assert out(sh(phone, r"echo -E 'a\nb'")) == "a\\nb\n"
    assert out(sh(phone, r"echo 'stop\chere'")) == "stop"
    assert out(sh(phone, "echo -x")) == "-x\n"


def test_exit_status_of_the_last_command(phone: VirtualPhone) -> None:
    assert sh(phone, "false").exit_code == 1
    assert sh(phone, "true; false; true").exit_code == 0
    assert sh(phone, "exit 3; echo never").exit_code == 3
    assert sh(phone, "! false").exit_code == 0


def test_unknown_command(phone: VirtualPhone) -> None:
    r = sh(phone, "foo bar")
    assert r.exit_code == 127
    assert err(r) == "/system/bin/sh: foo: inaccessible or not found\n"
    assert sh(phone, "/system/bin/echo ok").stdout == b"ok\n"


def test_syntax_error_is_reported_by_the_shell(phone: VirtualPhone) -> None:
    r = sh(phone, "echo 'abc")
    assert r.exit_code == 1
    assert r.output == [(2, b"/system/bin/sh: no closing quote\n")]
    r = sh(phone, "echo first\necho ;;")
    assert r.output == [(1, b"first\n"), (2, b"/system/bin/sh: syntax error: unexpected ';;'\n")]
    assert r.exit_code == 1


def test_variables_and_substitution(phone: VirtualPhone) -> None:
    assert out(sh(phone, "X=hello; echo $X ${X} \"$X world\" '$X'")) == "hello hello hello world $X\n"
    assert out(sh(phone, "echo ${NOPE:-default} [$NOPE]")) == "default []\n"
    assert out(sh(phone, "echo $(getprop ro.serialno) `whoami`")) == "PFSIM0000 shell\n"
    assert out(sh(phone, "X='a   b'; echo $X; echo \"$X\"")) == "a b\na   b\n"
    assert out(sh(phone, "echo $EXTERNAL_STORAGE")) == "/sdcard\n"


def test_adbutils_exit_marker_comes_last(phone: VirtualPhone) -> None:
    r = sh(phone, "ls /nope; echo X4EXIT:$?")
    assert r.output[-1] == (1, b"X4EXIT:1\n")
    assert r.output[0] == (2, b"ls: /nope: No such file or directory\n")


def test_pipes(phone: VirtualPhone) -> None:
    r = sh(phone, "dumpsys window | grep mCurrentFocus")
    assert out(r).startswith("  mCurrentFocus=Window{")
    expected = sum(1 for key in phone.props if "ro.product" in key)
    assert out(sh(phone, "getprop | grep -c ro.product")) == f"{expected}\n"
    assert out(sh(phone, "echo 'a\nb\nc' | head -n 2")) == "a\nb\n"
    assert out(sh(phone, "echo 'a\nb\nc' | tail -1")) == "c\n"
    assert out(sh(phone, "echo 'a\nb\nc' | wc -l")) == "3\n"
    assert sh(phone, "echo abc | grep -q zzz").exit_code == 1
    assert out(sh(phone, "echo 'Foo\nbar' | grep -i foo")) == "Foo\n"
    assert out(sh(phone, "echo 'x1\ny22\nz' | grep -E '[0-9]{2}|z'")) == "y22\nz\n"
    assert out(sh(phone, "echo 'a(b' | grep 'a(b'")) == "a(b\n"
    assert out(sh(phone, "echo 'ab\ncd' | grep -v ab")) == "cd\n"


def test_redirections(phone: VirtualPhone) -> None:
    assert sh(phone, "echo one > /sdcard/f.txt; echo two >> /sdcard/f.txt").output == []
    assert out(sh(phone, "cat /sdcard/f.txt")) == "one\ntwo\n"
    assert (phone.host_path("/storage/emulated/0/f.txt")).read_text() == "one\ntwo\n"
    assert sh(phone, "ls /nope 2>/dev/null").output == []
    assert sh(phone, "echo hidden >/dev/null").output == []
    assert sh(phone, "ls /nope 2>&1").output == [(1, b"ls: /nope: No such file or directory\n")]
    assert sh(phone, "echo to-err >&2").output == [(2, b"to-err\n")]
    assert out(sh(phone, "cat < /sdcard/f.txt")) == "one\ntwo\n"
    r = sh(phone, "echo x > /system/x")
    assert (r.exit_code, err(r)) == (1, "/system/bin/sh: can't create /system/x: Read-only file system\n")
    r = sh(phone, "echo x > /sdcard/nodir/x")
    assert err(r) == "/system/bin/sh: can't create /sdcard/nodir/x: No such file or directory\n"


def test_cd_pwd_and_relative_paths(phone: VirtualPhone) -> None:
    assert (
        out(sh(phone, "pwd; cd /sdcard && pwd && echo hi > rel.txt && cat ./rel.txt")) == "/\n/sdcard\nhi\n"
    )
    assert sh(phone, "cd /nope").exit_code != 0


def test_globs(phone: VirtualPhone) -> None:
    sh(phone, "touch /sdcard/Download/a.png /sdcard/Download/b.png /sdcard/Download/c.txt")
    assert out(sh(phone, "echo /sdcard/Download/*.png")) == "/sdcard/Download/a.png /sdcard/Download/b.png\n"
    assert out(sh(phone, "echo '/sdcard/Download/*.png'")) == "/sdcard/Download/*.png\n"
    assert out(sh(phone, "echo /sdcard/Download/*.gif")) == "/sdcard/Download/*.gif\n"
    assert sh(phone, "rm /sdcard/Download/*.png && ls /sdcard/Download").stdout == b"c.txt\n"


def test_sleep_waits(phone: VirtualPhone) -> None:
    start = time.monotonic()
    assert sh(phone, "sleep 0.2").exit_code == 0
    assert time.monotonic() - start >= 0.2
    assert sh(phone, "sleep x").exit_code == 1


def test_id_and_whoami(phone: VirtualPhone) -> None:
    assert out(sh(phone, "whoami")) == "shell\n"
    assert out(sh(phone, "id")).startswith("uid=2000(shell) gid=2000(shell) groups=2000(shell),")


# ---------------------------------------------------------------------------- files
def test_ls(phone: VirtualPhone) -> None:
    listing = out(sh(phone, "ls /sdcard")).splitlines()
    assert "Download" in listing and "DCIM" in listing
    assert listing == sorted(listing)
    r = sh(phone, "ls /x")
    assert (r.exit_code, err(r)) == (1, "ls: /x: No such file or directory\n")
    assert out(sh(phone, "ls -a /sdcard")).splitlines()[:2] == [".", ".."]
    long = out(sh(phone, "ls -l /sdcard")).splitlines()
    assert long[0].startswith("total ")
    assert any(line.startswith("d") and line.endswith(" Download") for line in long)
    sh(phone, "echo data > /sdcard/Download/f.txt")
    assert out(sh(phone, "ls /sdcard/Download/f.txt")) == "/sdcard/Download/f.txt\n"
    assert out(sh(phone, "ls -l /sdcard/Download/f.txt")).split()[4] == "5"
    assert sh(phone, "ls -Z /").exit_code == 1


def test_cat(phone: VirtualPhone) -> None:
    r = sh(phone, "cat /nope")
    assert (r.exit_code, err(r)) == (1, "cat: /nope: No such file or directory\n")
    assert err(sh(phone, "cat /sdcard")) == "cat: /sdcard: Is a directory\n"


def test_rm(phone: VirtualPhone) -> None:
    sh(phone, "mkdir -p /sdcard/d/e && touch /sdcard/d/e/f")
    assert err(sh(phone, "rm /sdcard/d")) == "rm: /sdcard/d: Is a directory\n"
    assert sh(phone, "rm -r /sdcard/d").exit_code == 0
    assert not phone.host_path("/sdcard/d").exists()
    assert err(sh(phone, "rm /sdcard/nope")) == "rm: /sdcard/nope: No such file or directory\n"
    assert sh(phone, "rm -f /sdcard/nope").output == []
    (phone.host_path("/system") / "x").parent.mkdir(parents=True, exist_ok=True)
    (phone.host_path("/system") / "x").write_text("sys")
    r = sh(phone, "rm /system/x")
    assert (r.exit_code, err(r)) == (1, "rm: /system/x: Read-only file system\n")


def test_mkdir_and_touch(phone: VirtualPhone) -> None:
    assert sh(phone, "mkdir /sdcard/new").exit_code == 0
    assert err(sh(phone, "mkdir /sdcard/new")) == "mkdir: '/sdcard/new': File exists\n"
    assert sh(phone, "mkdir -p /sdcard/new/a/b").exit_code == 0
    assert err(sh(phone, "mkdir /sdcard/x/y")) == "mkdir: '/sdcard/x/y': No such file or directory\n"
    assert err(sh(phone, "mkdir /system/z")) == "mkdir: '/system/z': Read-only file system\n"
    assert sh(phone, "touch /sdcard/new/t && ls /sdcard/new").stdout == b"a\nt\n"
    assert err(sh(phone, "touch /system/t")) == "touch: '/system/t': Read-only file system\n"


# ------------------------------------------------------------------- properties, wm
def test_getprop(phone: VirtualPhone) -> None:
    assert out(sh(phone, "getprop ro.serialno")) == "PFSIM0000\n"
    assert out(sh(phone, "getprop ro.build.version.sdk")) == "33\n"
    assert out(sh(phone, "getprop no.such.prop")) == "\n"
    assert out(sh(phone, "getprop no.such.prop fallback")) == "fallback\n"
    lines = out(sh(phone, "getprop")).splitlines()
    assert "[ro.serialno]: [PFSIM0000]" in lines
    assert lines == sorted(lines)


def test_wm(phone: VirtualPhone) -> None:
    assert out(sh(phone, "wm size")) == "Physical size: 1080x2400\n"
    assert out(sh(phone, "wm density")) == "Physical density: 420\n"


# ---------------------------------------------------------------------------- input
def test_input_keyevent_goes_home(phone: VirtualPhone) -> None:
    sh(phone, "am start -n com.android.settings/.Settings")
    assert phone.foreground()[0] == "com.android.settings"
    for key in ("KEYCODE_HOME", "HOME", "3"):
        sh(phone, "am start -n com.android.settings/.Settings")
        assert sh(phone, f"input keyevent {key}").output == []
        assert phone.foreground()[0] == "com.android.launcher3"


def test_input_forms_reach_the_phone(phone: VirtualPhone, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(phone, "tap", lambda x, y: calls.append(("tap", x, y)))
    monkeypatch.setattr(phone, "swipe", lambda *a: calls.append(("swipe", *a)))
    monkeypatch.setattr(phone, "key", lambda code: calls.append(("key", code)))
    sh(phone, "input tap 100 200.5")
    sh(phone, "input touchscreen swipe 1 2 3 4")
    sh(phone, "input swipe 1 2 3 4 800")
    sh(phone, "input keyevent --longpress KEYCODE_BACK 66 NOPE")
    sh(phone, "input -d 0 draganddrop 5 6 7 8 900")
    assert calls == [
        ("tap", 100.0, 200.5),
        ("swipe", 1.0, 2.0, 3.0, 4.0, 300),
        ("swipe", 1.0, 2.0, 3.0, 4.0, 800),
        ("key", 4),
        ("key", 66),
        ("swipe", 5.0, 6.0, 7.0, 8.0, 900),
    ]


def test_input_text(phone: VirtualPhone, typed: list[tuple[str, object]]) -> None:
    assert sh(phone, "input text 'hello%sworld'").exit_code == 0
    assert sh(phone, "input text only first").exit_code == 0
    assert typed == [("type", "hello world"), ("type", "only")]
    r = sh(phone, "input text 你好")
    assert r.exit_code == 255
    assert "NullPointerException" in err(r)
    assert typed == [("type", "hello world"), ("type", "only")]


def test_input_errors(phone: VirtualPhone) -> None:
    r = sh(phone, "input tap 100")
    assert r.exit_code == 255
    assert "Exception occurred while executing 'tap':" in err(r)
    assert 'java.lang.IllegalArgumentException: Argument expected after "100"' in err(r)
    r = sh(phone, "input tap x y")
    assert "Error: Invalid arguments for command: tap" in err(r)
    assert out(sh(phone, "input bogus")) == "Unknown command: bogus\n"
    assert out(sh(phone, "input")).startswith("Usage: input [<source>] [-d DISPLAY_ID] <command> [<arg>...]")


# ------------------------------------------------------------------------- activity
def test_am_start(phone: VirtualPhone) -> None:
    r = sh(phone, "am start -n com.android.settings/.Settings")
    assert (r.exit_code, out(r), err(r)) == (
        0,
        "Starting: Intent { cmp=com.android.settings/.Settings }\n",
        "",
    )
    assert phone.foreground() == ("com.android.settings", "com.android.settings.Settings")
    r = sh(phone, "am start -n com.android.settings/.Settings")
    assert "delivered to currently running top-most instance" in err(r)


def test_am_start_unknown(phone: VirtualPhone) -> None:
    r = sh(phone, "am start -n com.foo/.Bar")
    assert r.exit_code == 0
    assert out(r) == "Starting: Intent { cmp=com.foo/.Bar }\n"
    assert err(r) == "Error type 3\nError: Activity class {com.foo/com.foo.Bar} does not exist.\n"
    r = sh(phone, "am start -a android.intent.action.VIEW -d https://example.com/path")
    assert out(r) == "Starting: Intent { act=android.intent.action.VIEW dat=https://example.com/... }\n"


def test_am_start_wait_and_action(phone: VirtualPhone) -> None:
    r = sh(phone, "am start -W -S -n com.android.settings/.Settings")
    lines = out(r).splitlines()
    assert lines[0] == "Starting: Intent { cmp=com.android.settings/.Settings }"
    assert lines[1:3] == ["Status: ok", "LaunchState: COLD"]
    assert lines[3] == "Activity: com.android.settings/.Settings"
    assert lines[-1] == "Complete"
    sh(phone, "input keyevent HOME")
    r = sh(phone, "am start -a android.settings.SETTINGS")
    assert out(r) == "Starting: Intent { act=android.settings.SETTINGS }\n"
    assert phone.foreground()[0] == "com.android.settings"


def test_am_force_stop(phone: VirtualPhone) -> None:
    sh(phone, "am start -n com.android.settings/.Settings")
    assert sh(phone, "am force-stop com.android.settings").output == []
    assert phone.foreground()[0] == "com.android.launcher3"


def test_monkey(phone: VirtualPhone) -> None:
    r = sh(phone, "monkey -p com.android.settings -c android.intent.category.LAUNCHER 1")
    assert r.exit_code == 0
    assert "  bash arg: -p\n" in out(r)
    assert "Events injected: 1\n" in out(r)
    assert phone.foreground()[0] == "com.android.settings"
    r = sh(phone, "monkey -p com.nope -c android.intent.category.LAUNCHER 1")
    assert r.exit_code == 252
    assert err(r).endswith("** No activities found to run, monkey aborted.\n")


def test_broadcast_without_adb_keyboard_does_nothing(
    phone: VirtualPhone, typed: list[tuple[str, object]]
) -> None:
    r = sh(phone, "am broadcast -a ADB_INPUT_TEXT --es msg hello")
    assert out(r) == (
        "Broadcasting: Intent { act=ADB_INPUT_TEXT flg=0x400000 (has extras) }\nBroadcast completed: result=0\n"
    )
    assert typed == []


def test_adb_keyboard_broadcasts(phone: VirtualPhone, typed: list[tuple[str, object]]) -> None:
    assert sh(phone, f"ime enable {ADB_IME} && ime set {ADB_IME}").exit_code == 0
    assert phone.ime_current() == ADB_IME
    b64 = base64.b64encode("你好 world".encode()).decode()
    sh(phone, "am broadcast -a ADB_INPUT_TEXT --es msg 'hi there'")
    sh(phone, f"am broadcast -a ADB_INPUT_B64 --es msg {b64}")
    sh(phone, "am broadcast -a ADB_CLEAR_TEXT")
    sh(phone, "am broadcast -a ADB_INPUT_CODE --ei code 67")
    assert typed == [("type", "hi there"), ("type", "你好 world"), ("clear", None), ("key", 67)]


def test_am_bad_option(phone: VirtualPhone) -> None:
    r = sh(phone, "am start --bogus")
    assert r.exit_code == 255
    assert "Unknown option: --bogus" in err(r)


# -------------------------------------------------------------------------- dumpsys
def test_dumpsys_focus_lines_parse_like_adbutils(phone: VirtualPhone) -> None:
    sh(phone, "am start -n com.android.settings/.Settings")
    text = out(sh(phone, "dumpsys window windows"))
    m = re.search(r"mCurrentFocus=Window\{.*\s+(?P<package>[^\s]+)/(?P<activity>[^\s]+)\}", text)
    assert m and m.group("package") == "com.android.settings"
    assert m.group("activity") == "com.android.settings.Settings"
    assert re.search(r"  mFocusedApp=ActivityRecord\{\w+ u0 com\.android\.settings/\.Settings t\d+\}", text)
    text = out(sh(phone, "dumpsys activity activities"))
    m = re.search(
        r"mResumedActivity: ActivityRecord\{.*?\s+(?P<package>[^\s]+)/(?P<activity>[^\s]+)\s.*?\}", text
    )
    assert m and (m.group("package"), m.group("activity")) == ("com.android.settings", ".Settings")
    text = out(sh(phone, "dumpsys activity top"))
    assert re.search(r"\s*ACTIVITY com\.android\.settings/\.Settings \w+ pid=\d+", text)


def test_dumpsys_other_services(phone: VirtualPhone) -> None:
    assert "orientation=0" in out(sh(phone, "dumpsys display"))
    assert "mHoldingDisplaySuspendBlocker=true" in out(sh(phone, "dumpsys power"))
    battery = out(sh(phone, "dumpsys battery"))
    assert "  level: 100\n" in battery
    package = out(sh(phone, "dumpsys package com.android.settings"))
    assert "versionName=" in package and "versionCode=" in package
    assert re.search(r"firstInstallTime=[-\d]+\s+[:\d]+", package)
    r = sh(phone, "dumpsys nosuch")
    assert (r.exit_code, err(r)) == (0, "Can't find service: nosuch\n")


# ---------------------------------------------------------------------- pm and ime
def test_pm(phone: VirtualPhone) -> None:
    packages = out(sh(phone, "pm list packages")).splitlines()
    assert "package:com.android.settings" in packages
    assert all(line.startswith("package:") for line in packages)
    third = out(sh(phone, "pm list packages -3")).splitlines()
    system = out(sh(phone, "pm list packages -s")).splitlines()
    assert "package:com.android.settings" in system and "package:com.android.settings" not in third
    assert sorted(third + system) == sorted(packages)
    assert out(sh(phone, "pm list packages settings")).splitlines() == [
        p for p in packages if "settings" in p.removeprefix("package:")
    ]
    assert out(sh(phone, "pm list packages -f com.android.settings")).startswith("package:/system/")
    assert out(sh(phone, "pm path com.android.settings")).startswith("package:/")
    assert sh(phone, "pm path com.nope").exit_code == 1
    assert out(sh(phone, "pm clear com.android.settings")) == "Success\n"
    r = sh(phone, "pm clear com.nope")
    assert (out(r), r.exit_code) == ("Failed\n", 1)


def test_pm_install(phone: VirtualPhone, tmp_path: Path) -> None:
    sh(phone, "echo apk > /data/local/tmp/x.apk")
    r = sh(phone, "pm install -r -t /data/local/tmp/x.apk")
    assert r.exit_code == 1 and out(r).startswith("Failure [INSTALL_PARSE_FAILED_NOT_APK")
    assert sh(phone, "pm install /data/local/tmp/none.apk").exit_code != 0

    phone.host_path("/data/local/tmp/hello.apk").write_bytes(build_apk(tmp_path, "com.example.hello"))
    assert out(sh(phone, "pm install -r /data/local/tmp/hello.apk")) == "Success\n"
    assert "package:com.example.hello" in out(sh(phone, "pm list packages -3")).splitlines()
    assert out(sh(phone, "pm path com.example.hello")).startswith("package:/data/app/")
    assert "installed com.example.hello" in out(sh(phone, "logcat -d -s PackageManager"))
    assert out(sh(phone, "pm uninstall com.example.hello")) == "Success\n"
    assert "com.example.hello" not in out(sh(phone, "pm list packages"))
    # One of the phone's own apps cannot be replaced (its signature is the image's).
    phone.host_path("/data/local/tmp/s.apk").write_bytes(build_apk(tmp_path / "s", "com.android.settings"))
    r = sh(phone, "pm install /data/local/tmp/s.apk")
    assert r.exit_code == 1 and "INSTALL_FAILED_UPDATE_INCOMPATIBLE" in out(r)


def test_logcat(phone: VirtualPhone) -> None:
    sh(phone, "logcat -c")
    assert out(sh(phone, "logcat -d")) == ""
    sh(phone, "am start -n com.android.settings/.Settings")
    sh(phone, "settings put global wifi_on 0")
    lines = out(sh(phone, "logcat -d")).splitlines()
    assert any("ActivityTaskManager: START u0 {cmp=com.android.settings/" in line for line in lines)
    assert out(sh(phone, "logcat -d -v tag -s SettingsProvider")) == "D/SettingsProvider: put global wifi_on=0\n"
    assert out(sh(phone, "logcat -d -v tag *:S SettingsProvider:I")) == ""  # D is below I
    assert out(sh(phone, "logcat -d -v tag -e wifi_on")).count("\n") == 1
    assert len(out(sh(phone, "logcat -t 1")).splitlines()) == 1
    r = sh(phone, "logcat -v nope")
    assert r.exit_code == 1 and "unknown format" in err(r)


def test_ime(phone: VirtualPhone) -> None:
    assert out(sh(phone, "ime list -s")) == "com.android.inputmethod.latin/.LatinIME\n"
    assert ADB_IME in out(sh(phone, "ime list -a -s"))
    assert out(sh(phone, "ime list -a")).count("mId=") == 2
    assert out(sh(phone, f"ime enable {ADB_IME}")) == f"Input method {ADB_IME}: now enabled for user #0\n"
    assert out(sh(phone, f"ime enable {ADB_IME}")) == f"Input method {ADB_IME}: already enabled for user #0\n"
    assert out(sh(phone, f"ime set {ADB_IME}")) == f"Input method {ADB_IME} selected for user #0\n"
    r = sh(phone, "ime enable com.x/.Nope")
    assert r.exit_code != 0 and "Unknown input method com.x/.Nope" in err(r)


# --------------------------------------------------------------------- settings, svc
def test_settings(phone: VirtualPhone) -> None:
    assert out(sh(phone, "settings get system no_such_key")) == "null\n"
    assert sh(phone, "settings put system screen_brightness 200").output == []
    assert out(sh(phone, "settings get system screen_brightness")) == "200\n"
    assert phone.settings_get("system", "screen_brightness") == "200"
    assert out(sh(phone, "settings delete system screen_brightness")) == "Deleted 1 rows\n"
    assert out(sh(phone, "settings get system screen_brightness")) == "null\n"
    listing = out(sh(phone, "settings list global")).splitlines()
    assert "wifi_on=1" in listing and listing == sorted(listing)
    r = sh(phone, "settings get nowhere x")
    assert (r.exit_code, err(r)) == (255, "Invalid namespace 'nowhere'\n")


def test_svc(phone: VirtualPhone) -> None:
    assert sh(phone, "svc wifi disable").output == []
    assert phone.settings_get("global", "wifi_on") == "0"
    sh(phone, "svc wifi enable; svc bluetooth enable; svc data disable")
    assert phone.settings_get("global", "wifi_on") == "1"
    assert phone.settings_get("global", "bluetooth_on") == "1"
    assert phone.settings_get("global", "mobile_data") == "0"


# ------------------------------------------------------------------------- content
def test_content_query_contacts(phone: VirtualPhone) -> None:
    contacts = phone.contacts()
    lines = out(sh(phone, "content query --uri content://contacts/phones")).splitlines()
    first = contacts[0]
    assert (
        lines[0]
        == f"Row: 0 _id={first['_id']}, display_name={first['display_name']}, number={first['number']}"
    )
    assert len(lines) == len(contacts)
    name = contacts[1]["display_name"]
    r = sh(
        phone,
        f"content query --uri content://com.android.contacts/data/phones --projection display_name:number --where \"display_name='{name}'\"",
    )
    assert out(r) == f"Row: 0 display_name={name}, number={contacts[1]['number']}\n"
    r = sh(
        phone, "content query --uri content://com.android.contacts/contacts --where \"display_name='Nobody'\""
    )
    assert out(r) == "No result found.\n"


def test_content_query_sms(phone: VirtualPhone) -> None:
    inbox = phone.sms("inbox")
    r = sh(phone, "content query --uri content://sms/inbox --projection _id:address:body")
    lines = out(r).splitlines()
    assert len(lines) == len(inbox)
    assert lines[0] == f"Row: 0 _id={inbox[0]['_id']}, address={inbox[0]['address']}, body={inbox[0]['body']}"
    unread = [m for m in phone.sms("all") if m["read"] == "0"]
    r = sh(phone, "content query --uri content://sms --where 'read=0' --projection _id")
    assert out(r).splitlines() == [f"Row: {i} _id={m['_id']}" for i, m in enumerate(unread)]


def test_content_errors(phone: VirtualPhone) -> None:
    r = sh(phone, "content query --uri content://nope/x")
    assert r.exit_code == 1
    assert err(r).startswith("Error while accessing provider:nope\n")
    r = sh(phone, "content query --uri content://sms --where 'nosuch=1'")
    assert "no such column: nosuch" in err(r)


# -------------------------------------------------------------------------- screen
def test_screencap_raw_and_png(shared_phone: VirtualPhone) -> None:
    raw = run_shell(shared_phone, "screencap").stdout
    width, height, fmt, colorspace = struct.unpack("<IIII", raw[:16])
    assert (width, height, fmt, colorspace) == (1080, 2400, 1, 0)
    assert len(raw) == 16 + 1080 * 2400 * 4
    png = run_shell(shared_phone, "screencap -p")
    assert png.output == [(1, shared_phone.screencap_png())]
    assert png.stdout.startswith(b"\x89PNG\r\n\x1a\n")


def test_screencap_to_file(phone: VirtualPhone) -> None:
    assert sh(phone, "screencap -p /sdcard/s.png && screencap /sdcard/s.raw").output == []
    assert phone.host_path("/sdcard/s.png").read_bytes().startswith(b"\x89PNG")
    assert phone.host_path("/sdcard/s.raw").read_bytes()[:4] == (1080).to_bytes(4, "little")
    sh(phone, "screencap /sdcard/t.png")
    assert phone.host_path("/sdcard/t.png").read_bytes().startswith(b"\x89PNG")
    assert sh(phone, "screencap -p /system/s.png").exit_code == 1


def test_uiautomator_dump(phone: VirtualPhone) -> None:
    r = sh(
        phone, "rm -f /data/local/tmp/uidump.xml; uiautomator dump /data/local/tmp/uidump.xml && echo success"
    )
    assert out(r) == "UI hierchary dumped to: /data/local/tmp/uidump.xml\nsuccess\n"
    assert phone.host_path("/data/local/tmp/uidump.xml").read_text().startswith("<?xml")
    assert out(sh(phone, "uiautomator dump")) == "UI hierchary dumped to: /sdcard/window_dump.xml\n"
    assert phone.host_path("/sdcard/window_dump.xml").exists()
    tty = out(sh(phone, "uiautomator dump /dev/tty"))
    assert tty.startswith("<?xml") and tty.endswith("UI hierchary dumped to: /dev/tty\n")


# ---------------------------------------------------------------------------- fuzz
_SHELLISH = st.text(alphabet=st.sampled_from(list("ab $?{}()'\"\\`;&|<>!#=-\n")), max_size=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SHELLISH)
def test_bad_syntax_becomes_a_shell_error(shared_phone: VirtualPhone, text: str) -> None:
    try:
        parse(text)
    except ShellSyntaxError as exc:
        if "\n" in text:
            return  # earlier lines run first; covered by test_syntax_error_is_reported_by_the_shell
        r = run_shell(shared_phone, text)
        assert r.exit_code == 1
        assert r.output == [(2, f"/system/bin/sh: {exc.message}\n".encode())]


def test_content_insert_and_delete_contacts_and_sms(phone: VirtualPhone) -> None:
    """What the evaluation suite seeds a phone with (worker/eval): contacts through the legacy People
    table, messages into the SMS boxes, and deletes by a where clause."""
    assert sh(phone, "content delete --uri content://contacts/people").exit_code == 0
    assert out(sh(phone, "content query --uri content://contacts/phones")).strip() == "No result found."
    ok = sh(phone, "content insert --uri content://contacts/people --bind name:s:'Ada Lovelace' --bind number:s:5550100")
    assert ok.exit_code == 0, err(ok)
    assert "display_name=Ada Lovelace, number=5550100" in out(sh(phone, "content query --uri content://contacts/phones"))
    sh(phone, "content insert --uri content://sms/inbox --bind address:s:5550123 --bind body:s:'Gate code 4411'")
    inbox = out(sh(phone, "content query --uri content://sms/inbox --projection address:body"))
    assert "address=5550123, body=Gate code 4411" in inbox
    sh(phone, "content delete --uri content://sms --where \"address='5550123'\"")
    assert "5550123" not in out(sh(phone, "content query --uri content://sms/inbox"))
    refused = sh(phone, "content insert --uri content://contacts/people --bind number:s:1")
    assert refused.exit_code == 1 and "name must not be empty" in err(refused)
