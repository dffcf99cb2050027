"""The reference model on ordinary phrasings: how many instructions it carries out, checked from the phone.

Each instruction runs as a user would run it, ``phonefleet run "…" --max-steps 15``, against its own
factory-fresh virtual phone (``phonefleet sim``, one phone per instruction), through a private adb
server, with ``phonefleet reference-model`` as the model. Success is read from the phone's state, never
from the agent's message: the sim's state files (settings, contacts, SMS, notes, the shop's cart) and,
for "open an app", the foreground window over adb. An instruction that ends ``needs_user`` or
``failed``, or succeeds without the state change, is a failure.

Some instructions start from a prepared phone (``setup``: ``settings put`` over adb), so that "turn
Wi-Fi on" has something to do (a fresh phone has Wi-Fi on, Bluetooth and airplane mode off).

Run from the repository root (Debian's adb):

    .venv/bin/python bench/bench_phrasings.py [--set own|tuning|final|all] [--jobs 2] [--only REGEX] [--json FILE]

``--set tuning`` / ``final`` run the held-out sets of ``phrasings_heldout.py`` (written blind, by someone
who had not seen the rules; see docs/reference-model.md for how they were used).

Prints one line per instruction and the rate; exits 0 whatever the rate (it is a bench). Not part of
the test suite; ``tests/worker/reference_model/test_policy.py`` runs a sample of them in process (``SAMPLE``).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device_pool.sim.apps.shop import CATALOG  # noqa: E402
from device_pool.sim.state import PhoneState  # noqa: E402
from tests.processes import (  # noqa: E402
    AdbServer,
    adb_binary,
    start_adb_server,
    start_reference_model,
    start_sim,
)

Check = Callable[[PhoneState, str], bool]  # (phone state, foreground package) → done?


def _setting(key: str, value: str) -> Check:
    return lambda s, _fg: s.settings_get("global", key) == value


def switches(**wanted: str) -> Check:
    """wifi="1", bluetooth="0", airplane="1" …: every named switch in that state."""
    keys = {"wifi": "wifi_on", "bluetooth": "bluetooth_on", "airplane": "airplane_mode_on"}
    checks = [_setting(keys[k], v) for k, v in wanted.items()]
    return lambda s, fg: all(c(s, fg) for c in checks)


def contact(name: str, phone: str) -> Check:
    digits = re.sub(r"\D", "", phone)
    return lambda s, _fg: any(
        c["display_name"] == name and re.sub(r"\D", "", c["number"]) == digits for c in s.contacts()
    )


def sms(to: str, body: str) -> Check:
    return lambda s, _fg: any(m["address"] == to and m["body"] == body for m in s.sms("sent"))


def named_contact(state: PhoneState) -> dict[str, str] | None:
    """The phone's first contact (by name) whose first name no other contact has: what
    ``{first_name}`` in an instruction stands for (the sim seeds each phone's contacts differently)."""
    people = state.contacts()
    firsts = [c["display_name"].split()[0] for c in people]
    return next((c for c, f in zip(people, firsts, strict=True) if firsts.count(f) == 1), None)


def sms_to_contact(body: str) -> Check:
    """An SMS with ``body`` sent to the number of the contact ``{first_name}`` names."""

    def check(s: PhoneState, _fg: str) -> bool:
        person = named_contact(s)
        return person is not None and any(
            m["address"] == person["number"] and m["body"] == body for m in s.sms("sent")
        )

    return check


def note(title: str | None, body: str) -> Check:
    return lambda s, _fg: any((title is None or t == title) and b == body for t, b in s.notes())


def in_cart(product: str) -> Check:
    pid = f"p{CATALOG.index(product) + 1:02d}"
    return lambda s, _fg: (s.app_data("com.phonefleet.shop") or {}).get("cart", {}).get(pid, 0) >= 1


def foreground(package: str) -> Check:
    return lambda _s, fg: fg == package


WIFI_OFF = {"wifi_on": "0"}
BT_ON = {"bluetooth_on": "1"}
AIR_ON = {"airplane_mode_on": "1", "wifi_on": "0"}
ZH = {"system:system_locales": "zh-CN"}  # a phone in Chinese


@dataclass(frozen=True)
class Case:
    intent: str
    instruction: str
    check: Check
    # Settings put before the run: "key" (global) or "namespace:key".
    setup: dict[str, str] = field(default_factory=dict)

    def on(self, state: PhoneState) -> Case:
        """The case for one phone: ``{first_name}`` becomes the first name of one of its contacts."""
        if "{first_name}" not in self.instruction:
            return self
        person = named_contact(state)
        first = person["display_name"].split()[0] if person else "Nobody"
        return replace(self, instruction=self.instruction.replace("{first_name}", first))


CASES: list[Case] = [
    # Wi-Fi
    Case("wifi", "Turn on Wi-Fi", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "Open Settings and switch Wi-Fi on", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "Enable WLAN", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "打开WLAN", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "打开无线网络", switches(wifi="1"), WIFI_OFF),
    Case("wifi", "Turn off Wi-Fi", switches(wifi="0")),
    Case("wifi", "Disable wifi", switches(wifi="0")),
    Case("wifi", "Please switch the Wi-Fi off", switches(wifi="0")),
    Case("wifi", "关闭WLAN", switches(wifi="0")),
    Case("wifi", "把无线关掉", switches(wifi="0")),
    # Bluetooth
    Case("bluetooth", "Turn on Bluetooth", switches(bluetooth="1")),
    Case("bluetooth", "Enable bluetooth in Settings", switches(bluetooth="1")),
    Case("bluetooth", "Open Settings and switch Bluetooth on", switches(bluetooth="1")),
    Case("bluetooth", "打开蓝牙", switches(bluetooth="1")),
    Case("bluetooth", "开启蓝牙", switches(bluetooth="1")),
    Case("bluetooth", "Turn Bluetooth off", switches(bluetooth="0"), BT_ON),
    Case("bluetooth", "Disable Bluetooth", switches(bluetooth="0"), BT_ON),
    Case("bluetooth", "关闭蓝牙", switches(bluetooth="0"), BT_ON),
    # Airplane mode
    Case("airplane", "Open Settings and turn on airplane mode", switches(airplane="1")),
    Case("airplane", "Turn on flight mode", switches(airplane="1")),
    Case("airplane", "Enable airplane mode", switches(airplane="1")),
    Case("airplane", "打开飞行模式", switches(airplane="1")),
    Case("airplane", "开启飞行模式", switches(airplane="1")),
    Case("airplane", "Turn off airplane mode", switches(airplane="0"), AIR_ON),
    Case("airplane", "Disable flight mode", switches(airplane="0"), AIR_ON),
    Case("airplane", "关闭飞行模式", switches(airplane="0"), AIR_ON),
    # Two switches in one instruction
    Case("two switches", "Turn on Bluetooth and turn off Wi-Fi", switches(bluetooth="1", wifi="0")),
    Case("two switches", "Turn off Wi-Fi and turn on Bluetooth", switches(bluetooth="1", wifi="0")),
    Case("two switches", "Turn on Wi-Fi and Bluetooth", switches(bluetooth="1", wifi="1"), WIFI_OFF),
    Case("two switches", "打开蓝牙并关闭WLAN", switches(bluetooth="1", wifi="0")),
    Case("two switches", "关闭WLAN，打开蓝牙", switches(bluetooth="1", wifi="0")),
    Case("two switches", "Switch Wi-Fi off, then enable Bluetooth", switches(bluetooth="1", wifi="0")),
    # A contact
    Case("contact", "Add a contact named Ada Lovelace with phone number 5550100", contact("Ada Lovelace", "5550100")),
    Case("contact", "Add Grace Hopper to my contacts with number 5550101", contact("Grace Hopper", "5550101")),
    Case("contact", "Create a new contact: Alan Turing, 555-0102", contact("Alan Turing", "5550102")),
    Case("contact", "Save 5550103 as Linus Torvalds", contact("Linus Torvalds", "5550103")),
    Case("contact", "Open Contacts and add a contact called Margaret Hamilton, phone 5550104",
         contact("Margaret Hamilton", "5550104")),
    Case("contact", "添加联系人张三，电话13800138000", contact("张三", "13800138000")),
    Case("contact", "新建一个联系人，名字叫李四，手机号13900139000", contact("李四", "13900139000")),
    Case("contact", "把王五 13700137000 存到通讯录", contact("王五", "13700137000")),
    # An SMS to a number
    Case("sms", "Send a message to 5550123 saying hello", sms("5550123", "hello")),
    Case("sms", "Text 5550124: See you at 7", sms("5550124", "See you at 7")),
    Case("sms", "Send 'On my way' to 5550125", sms("5550125", "On my way")),
    Case("sms", "Open Messages and send the message 'Running late' to 5550126", sms("5550126", "Running late")),
    Case("sms", "Send an SMS to 5550127 that says call me back", sms("5550127", "call me back")),
    Case("sms", "Tell 5550128 that dinner is ready", sms("5550128", "dinner is ready")),
    Case("sms", "给5550129发短信说你好", sms("5550129", "你好")),
    Case("sms", "发短信给5550130：明天见", sms("5550130", "明天见")),
    Case("sms", "给5550131发一条消息“晚上吃饭”", sms("5550131", "晚上吃饭")),
    # An SMS to a contact by first name ("Bob" for the contact "Bob Smith")
    Case("sms", "Send a message to {first_name} saying hello", sms_to_contact("hello")),
    Case("sms", "Text {first_name}: running 10 minutes late", sms_to_contact("running 10 minutes late")),
    Case("sms", "给{first_name}发短信说明天见", sms_to_contact("明天见")),
    # A note with a title and text
    Case("note", "Write a note titled Shopping with the text buy milk", note("Shopping", "buy milk")),
    Case("note", "Create a note called Ideas that says try the new cafe", note("Ideas", "try the new cafe")),
    Case("note", "Open Notes and create a note titled 'Groceries' with the text 'milk, eggs'",
         note("Groceries", "milk, eggs")),
    Case("note", "Write a note: buy milk", note(None, "buy milk")),
    Case("note", "Make a new note titled Trip with the content pack the tent", note("Trip", "pack the tent")),
    Case("note", "Take a note saying call the dentist", note(None, "call the dentist")),
    Case("note", "新建笔记，标题是购物，内容是买牛奶", note("购物", "买牛奶")),
    Case("note", "写一条笔记：明天开会", note(None, "明天开会")),
    Case("note", "新建一个笔记，标题为待办，内容为交电费", note("待办", "交电费")),
    # A named product in the shop's cart
    Case("shop", "Add Wireless Earbuds to the cart", in_cart("Wireless Earbuds")),
    Case("shop", "Open Shop, search for 'earbuds' and add Wireless Earbuds to the cart", in_cart("Wireless Earbuds")),
    Case("shop", "Put a Yoga Mat in my cart", in_cart("Yoga Mat")),
    Case("shop", "Search the shop for coffee mug and add the first one to the cart", in_cart("Coffee Mug")),
    Case("shop", "Add the Backpack to my shopping cart", in_cart("Backpack")),
    Case("shop", "Search for headphones and add the first result to the cart", in_cart("Headphones")),
    Case("shop", "把Coffee Mug加入购物车", in_cart("Coffee Mug")),
    Case("shop", "打开商城，搜索Backpack并加入购物车", in_cart("Backpack")),
    # Products by their Chinese names, on an English phone and on a Chinese one
    Case("shop", "把无线耳机加入购物车", in_cart("Wireless Earbuds")),
    Case("shop", "把瑜伽垫加入购物车", in_cart("Yoga Mat"), ZH),
    Case("shop", "打开商城，搜索咖啡杯并加入购物车", in_cart("Coffee Mug"), ZH),
    # Opening an app
    Case("open app", "Open Contacts", foreground("com.android.contacts")),
    Case("open app", "Launch the Notes app", foreground("com.phonefleet.notes")),
    Case("open app", "Go to Messages", foreground("com.android.messaging")),
    Case("open app", "Open the Shop", foreground("com.phonefleet.shop")),
    Case("open app", "打开设置", foreground("com.android.settings")),
    Case("open app", "打开联系人", foreground("com.android.contacts")),
    Case("open app", "启动笔记", foreground("com.phonefleet.notes")),
]  # fmt: skip


@dataclass
class Outcome:
    case: Case
    ok: bool
    status: str
    steps: int
    seconds: float
    message: str
    why: str = ""


_RESULT = re.compile(r"^(succeeded|failed|cancelled|timed_out)[^:]*: (.*)$", re.MULTILINE)
_STEPS = re.compile(r"^(\d+) steps in", re.MULTILINE)
_FOCUS = re.compile(r"mCurrentFocus=Window\{\S+ \S+ ([\w.]+)/")


def foreground_package(adb: AdbServer, serial: str) -> str:
    out = adb.run("-s", serial, "shell", "dumpsys window", timeout=20).stdout.decode(errors="replace")
    m = _FOCUS.search(out)
    return m.group(1) if m else ""


@dataclass(frozen=True)
class Run:
    """What a client's run said about itself (the phone's state decides success, not this)."""

    status: str  # "succeeded" when the client says it finished; else why not
    steps: int
    message: str


# (case, serial, adb server, model base URL, output folder, max steps) → what the client said
Client = Callable[[Case, str, AdbServer, str, Path, int], Run]
BUDGET_S = 240  # a run's wall-clock budget (--budget); raise it on a loaded machine, where steps crawl


def phonefleet_run(
    case: Case,
    serial: str,
    adb: AdbServer,
    model_url: str,
    out: Path,
    max_steps: int,
    budget_s: int = BUDGET_S,
) -> Run:
    """The instruction through ``phonefleet run``."""
    cmd = [
        sys.executable, "-m", "orchestrator.cli", "run", case.instruction, "--device", serial,
        "--model-url", model_url, "--max-steps", str(max_steps), "--budget", str(budget_s),
        "--adb-port", str(adb.port), "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        cmd,
        cwd=REPO,
        env=adb.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=budget_s + 60,
    )
    text = done.stdout + done.stderr
    result, steps = _RESULT.search(text), _STEPS.search(text)
    status = result.group(1) if result else f"exit {done.returncode}"
    message = result.group(2) if result else text.strip().splitlines()[-1:][0] if text.strip() else ""
    return Run(status, int(steps.group(1)) if steps else 0, message)


def run_case(
    case: Case, serial: str, fs_root: Path, adb: AdbServer, model_url: str, out: Path, max_steps: int,
    client: Client = phonefleet_run,
) -> Outcome:  # fmt: skip
    adb.connect(serial)
    case = case.on(PhoneState(fs_root))
    for key, value in case.setup.items():
        namespace, _, name = key.rpartition(":")
        adb.run("-s", serial, "shell", f"settings put {namespace or 'global'} {name} {value}", check=True)
    t0 = time.monotonic()
    run = client(case, serial, adb, model_url, out, max_steps)
    seconds = time.monotonic() - t0
    state = PhoneState(fs_root)
    ok = case.check(state, foreground_package(adb, serial))
    why = "" if ok else ("state unchanged" if run.status == "succeeded" else run.status)
    if ok and run.status != "succeeded":
        ok, why = False, f"state right but the run ended {run.status}"
    return Outcome(case, ok, run.status, run.steps, seconds, run.message, why)


def run_all(cases: list[Case], client: Client, jobs: int, batch_size: int, max_steps: int) -> list[Outcome]:
    """Every case on its own fresh phone, ``jobs`` at a time; prints a line per case as it ends."""
    binary = adb_binary()
    if binary is None:
        raise SystemExit("adb is not installed")
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-phrasings-") as tmp:
        root = Path(tmp)
        adb = start_adb_server(root / "adb-home", binary)
        model = start_reference_model(root / "model")
        try:
            # One phone per instruction, started a batch at a time (each batch its own `phonefleet sim`).
            for start in range(0, len(cases), batch_size):
                batch = cases[start : start + batch_size]
                phones = root / f"phones-{start}"
                phones.mkdir()
                sim = start_sim(phones, count=len(batch), timeout=120)
                try:

                    def one(
                        i: int, batch: list[Case] = batch, sim=sim, phones: Path = phones, start: int = start
                    ) -> Outcome:
                        outcome = run_case(
                            batch[i], sim.serial(i), phones / f"phone-{i}" / "fs", adb, model.base_url,
                            root / f"run-{start + i}", max_steps, client,
                        )  # fmt: skip
                        mark = "ok  " if outcome.ok else "FAIL"
                        print(
                            f"{mark} {outcome.case.intent:<12} {outcome.steps:>2} steps {outcome.seconds:5.1f} s  "
                            f"{outcome.case.instruction}  →  {outcome.status}: {outcome.message[:90]}"
                            + (f"  [{outcome.why}]" if outcome.why else ""),
                            flush=True,
                        )
                        return outcome

                    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                        outcomes += list(pool.map(one, range(len(batch))))
                finally:
                    sim.stop()
        finally:
            model.stop()
            adb.stop()
    return outcomes


def report(outcomes: list[Outcome], json_path: str | None) -> None:
    """The rate, the rate per intent, the failures; every outcome as JSON if asked."""
    passed = sum(o.ok for o in outcomes)
    print(f"\n{passed}/{len(outcomes)} instructions succeeded ({100 * passed / max(1, len(outcomes)):.0f}%)")
    by_intent: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_intent.setdefault(o.case.intent, []).append(o)
    for intent, group in by_intent.items():
        print(f"  {intent:<12} {sum(o.ok for o in group)}/{len(group)}")
    failures = [o for o in outcomes if not o.ok]
    if failures:
        print("failures:")
        for o in failures:
            print(f"  {o.case.instruction}  →  {o.status} after {o.steps} steps: {o.message[:120]} [{o.why}]")
    if json_path:
        rows = [
            {"instruction": o.case.instruction, "intent": o.case.intent, "ok": o.ok, "status": o.status,
             "steps": o.steps, "seconds": round(o.seconds, 1), "message": o.message, "why": o.why}
            for o in outcomes
        ]  # fmt: skip
        Path(json_path).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


SETS = ("own", "tuning", "final", "all")


def phrasing_set(name: str) -> list[Case]:
    """``own``: CASES, written with the rules; ``tuning``/``final``: the held-out sets written blind
    (``phrasings_heldout.py``); ``all``: the three."""
    if name == "own":
        return list(CASES)
    import phrasings_heldout  # the held-out sets build their cases from this module's checks

    held = {"tuning": phrasings_heldout.TUNING, "final": phrasings_heldout.FINAL}
    if name in held:
        return list(held[name])
    return [*CASES, *phrasings_heldout.TUNING, *phrasings_heldout.FINAL]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2, help="instructions run at once (default 2)")
    parser.add_argument("--only", default=None, help="run only instructions matching this regex")
    parser.add_argument("--max-steps", type=int, default=15)
    parser.add_argument("--budget", type=int, default=BUDGET_S, help="seconds a run may take (default 240)")
    parser.add_argument("--batch", type=int, default=12, help="phones per `phonefleet sim` (default 12)")
    parser.add_argument("--json", default=None, help="write every outcome here")
    parser.add_argument(
        "--set",
        default="own",
        choices=sorted(SETS),
        help="own (this file's), tuning or final (held out), all",
    )
    args = parser.parse_args()
    cases = [c for c in phrasing_set(args.set) if args.only is None or re.search(args.only, c.instruction)]
    client = functools.partial(phonefleet_run, budget_s=args.budget)
    report(run_all(cases, client, args.jobs, args.batch, args.max_steps), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
