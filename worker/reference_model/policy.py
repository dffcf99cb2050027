"""The reference model's rules: a goal becomes ordered plan parts; the screen says how far along it is.

``decide`` applies, in order:

1. a black screen (secure window) → Take_over, asking the user to log in (a Bank login with a
   password among the task's secrets is filled in instead: ``secret_login.py``; Launch instead when the
   screen info says another app than the task's is in front);
2. no plan for the task → Take_over once, explaining; after the user hands back → finish;
3. a starting window or blank screen → Wait (three in a row → Back);
4. an advert pop-up → tap its close "×" (Back if no × is found);
5. the last plan part's outcome is visible → finish with what was achieved;
6. otherwise the furthest plan part whose outcome is visible decides the next one, whose rule gives
   the action; if it finds nothing to act on here → Back (four Backs in a row → Take_over).

A Tap or Type that would repeat the previous two identical actions becomes Back instead: the
screen did not change, so doing it again will not help.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace

from worker.agent.actions import ActionModel, Back, Finish, Swipe, TakeOver, Tap, TypeText, Wait
from worker.reference_model.instructions import Goal, Intent
from worker.reference_model.plan import (
    Decision,
    Fill,
    History,
    HumanLogin,
    OpenApp,
    PickContact,
    PlanPart,
    SetSwitch,
    SetSwitches,
    SubmitSearch,
    TapResult,
    TapText,
)
from worker.reference_model.screen import Screen
from worker.reference_model.secret_login import secret_login

logger = logging.getLogger(__name__)

SAVE = ("Save", "保存")
SWITCH_LABELS = {
    "wifi": ("Wi-Fi", "WLAN", "无线局域网"),
    "bluetooth": ("Bluetooth", "蓝牙"),
    "airplane": ("Airplane mode", "飞行模式", "Flight mode"),
}
SWITCH_NAMES = {"wifi": "Wi-Fi", "bluetooth": "Bluetooth", "airplane": "Airplane mode"}
AD_WORDS = ("Flash Sale", "Shop now", "限时抢购", "立即抢购", "Advertisement", "Sponsored", "广告")
_CART_BUTTON = re.compile(r"^(?:cart|购物车)\((\d+)\)$")
_ORDER = re.compile(r"ORD-[\w-]+")
_CART_TOTAL = re.compile(r"^(?:total|合计)[:：]")
_PAY_BUTTON = re.compile(r"^(?:pay|支付)\$")
_MONEY = re.compile(r"\$[\d,]+\.\d\d")
_BALANCE = re.compile(r"^\$[\d,]+\.\d\d$")


def switch_slots(goal: Goal) -> list[tuple[str, str]]:
    """The (setting, state) pairs of a toggle goal, in the task's order."""
    pairs = [(goal.slot("setting"), goal.slot("state"))]
    i = 2
    while goal.slot(f"setting{i}"):
        pairs.append((goal.slot(f"setting{i}"), goal.slot(f"state{i}")))
        i += 1
    return pairs


def _pay_message(button_text: str) -> str:
    amount = _MONEY.search(button_text.replace(" ", ""))
    return f"Pay {amount.group()}" if amount else button_text


def _is_number(recipient: str) -> bool:
    return re.fullmatch(r"[+\d][\d\s()-]*", recipient.strip()) is not None


def plan(goal: Goal) -> list[PlanPart]:
    """The ordered plan parts that reach ``goal``."""
    steps: list[PlanPart] = [OpenApp(goal.app, goal.package)]
    s = goal.slot
    if goal.intent is Intent.TOGGLE:
        switches = tuple(
            SetSwitch(SWITCH_LABELS[key], state == "on", SWITCH_NAMES[key])
            for key, state in switch_slots(goal)
        )
        steps.append(switches[0] if len(switches) == 1 else SetSwitches(switches))
    elif goal.intent is Intent.ADD_CONTACT:
        name, phone = s("name"), s("phone")
        steps += [
            TapText(("Create contact", "新建联系人"), lambda v: v.has_exact(*SAVE), "to open a new contact"),
            Fill(("Name", "姓名"), name, SAVE, "Name"),
            Fill(("Phone", "电话"), phone, SAVE, "Phone"),
            TapText(SAVE, lambda v: v.has_exact(name) and v.has_exact(phone) and not v.has_exact(*SAVE),
                    "to save the contact"),
        ]  # fmt: skip
    elif goal.intent is Intent.SEND_MESSAGE:
        to, body = s("to"), s("body")
        compose = ("New conversation", "新对话")
        steps += [
            TapText(("Start chat", "发起聊天"), lambda v: v.has(*compose) or v.has_exact("Text message", "短信"),
                    "to start a new conversation"),
            Fill(("Type name or phone number", "输入姓名或电话号码"), to, compose, "recipient"),
            # A name is no address: tap the contact the app suggests for it.
            *([] if _is_number(to) else [PickContact(to, lambda v: not v.has(*compose)
                                                     and v.has_exact("Text message", "短信"))]),
            Fill(("Text message", "短信"), body, ("Send", "发送"), "message"),
            TapText(("Send", "发送"), lambda v: v.has_exact(body) and v.has_exact("Text message", "短信")
                    and not v.has(*compose), "to send the message"),
        ]  # fmt: skip
    elif goal.intent is Intent.CREATE_NOTE:
        title, body = s("title"), s("body")
        first_line = next((line for line in body.splitlines() if line.strip()), body)
        steps += [
            TapText(("New note", "新建笔记"), lambda v: v.has_exact(*SAVE), "to start a note"),
            *([Fill(("Title", "标题"), title, SAVE, "Title")] if title else []),
            Fill(("Note", "笔记内容"), body, SAVE, "note text"),
            # Without a title the app names the note after its first line.
            TapText(SAVE, lambda v: not v.has_exact(*SAVE) and v.has_exact(title or first_line[:40])
                    and v.has_exact(first_line), "to save the note"),
        ]  # fmt: skip
    elif goal.intent is Intent.SHOP:
        query, product = s("query"), s("product")
        search = ("Search products", "搜索商品")
        steps += [
            Fill(search, query, ("Recommended for you", "为你推荐", "Results", "搜索结果"), "search"),
            SubmitSearch(query, search, ("results for", "No results", "的搜索结果", "没有找到")),
            TapResult(query, ("results for", "的搜索结果"), lambda v: v.has("Add to cart", "加入购物车"),
                      "" if s("pick") == "first" else product),
            TapText(("Add to cart", "加入购物车"), lambda v: v.has_exact("Added to cart", "已加入购物车"),
                    "to put the product in the cart"),
        ]  # fmt: skip
        if s("pay"):
            steps += [
                TapText((_CART_BUTTON,), lambda v: v.has(_CART_TOTAL), "to open the cart"),
                TapText(("Checkout", "去结算"), lambda v: v.has("Order total", "订单金额"), "to check out"),
                TapText((_PAY_BUTTON,), lambda v: v.has("Payment successful", "支付成功"), "to pay",
                        message=_pay_message),
            ]  # fmt: skip
    elif goal.intent is Intent.BANK_LOGIN:
        steps.append(HumanLogin(goal.app, ("Recent transactions", "Log out", "最近交易", "退出")))
    return steps


def _result(goal: Goal, screen: Screen, history: History) -> str:
    """What the finished task achieved, for finish(message=…)."""
    s = goal.slot
    if goal.intent is Intent.TOGGLE:
        switches = [(SWITCH_NAMES[key], state) for key, state in switch_slots(goal)]
        if not history.has(Tap):
            return " ".join(f"{name} was already {state}." for name, state in switches)
        if len(switches) == 1:
            name, state = switches[0]
            return f"Turned {name} {state}."
        return "Done: " + ", ".join(f"{name} is {state}" for name, state in switches) + "."
    if goal.intent is Intent.ADD_CONTACT:
        return f"Saved the contact {s('name')} ({s('phone')})."
    if goal.intent is Intent.SEND_MESSAGE:
        return f'Sent "{s("body")}" to {s("to")}.'
    if goal.intent is Intent.CREATE_NOTE:
        if not s("title"):
            return f'Saved a note: "{s("body")}".'
        return f'Saved the note "{s("title")}": "{s("body")}".'
    if goal.intent is Intent.SHOP:
        if s("pay"):
            order = next((m.group() for b in screen.content if (m := _ORDER.search(b.text))), None)
            return f"Paid for {s('product')}." + (f" Order {order}." if order else "")
        cart = next((m for b in screen.content if (m := _CART_BUTTON.match(b.norm))), None)
        what = s("product") or f'the first result for "{s("query")}"'
        return f"Added {what} to the cart" + (f" (Cart ({cart.group(1)}))." if cart else ".")
    if goal.intent is Intent.BANK_LOGIN:
        balances = [b for b in screen.content if _BALANCE.match(b.norm)]
        if balances:
            return f"Logged in to {goal.app}. The balance is {max(balances, key=lambda b: b.height).text}."
        return f"Logged in to {goal.app}."
    return f"{goal.app} is open."


def _advert(screen: Screen) -> Decision | None:
    title = screen.find(*AD_WORDS)
    if title is None:
        return None
    anchor = screen.find(AD_WORDS[0], AD_WORDS[2]) or title
    point = screen.close_button(anchor)
    if point is None:
        return Decision(
            "An advert covers the screen and I see no close button; Back closes it.", Back(), "advert"
        )
    return Decision(
        "An advert pop-up covers the app; I close it with its × button.",
        Tap(element=screen.to_grid(*point)),
        "advert",
    )


def _furthest(steps: list[PlanPart], screen: Screen, history: History) -> int:
    """Index of the furthest plan part whose outcome shows, or -1."""
    for i in range(len(steps) - 1, -1, -1):
        if steps[i].done(screen, history):
            return i
    return -1


def decide(
    goal: Goal | None, task: str, screen: Screen, history: History, *, secret_names: tuple[str, ...] = ()
) -> Decision:
    """The next action for ``task`` on ``screen``, given the actions already taken; ``secret_names``:
    the secrets the task may type (a protected login is then filled in with them)."""
    if screen.is_black():
        opener = OpenApp(goal.app, goal.package) if goal is not None else None
        if opener is not None and screen.current_app and not opener.done(screen, history):
            # Another app's secure screen: leave it for ours rather than asking the user to log in there.
            return opener.next(screen, history)
        if (
            goal is not None
            and goal.intent is Intent.OPEN_APP
            and opener is not None
            and opener.done(screen, history)
        ):
            # Opening was the whole task: a login in front is the user's next step, not ours.
            return Decision(
                "The app is open (its screen is a secure window).",
                Finish(message=_result(goal, screen, history)),
                "done",
            )
        app = goal.app if goal is not None else "the app"
        if goal is not None and goal.intent is Intent.BANK_LOGIN and secret_names:
            login = secret_login(task, app, screen, history, secret_names)
            if login is not None:
                return login
        return Decision(
            "The screen is black: a secure window, most likely a login, which only the user can fill in.",
            TakeOver(
                message=f"The screen is hidden (secure window). Please log in to {app}, then hand the phone back."
            ),
            "secure_screen",
        )
    if goal is None:
        return _unplanned(task, history)
    if screen.looks_like_starting_window():
        if history.trailing(Wait) < 3:
            return Decision(
                "The app is still starting; I wait for its first screen.",
                Wait(duration="1 second"),
                "starting",
            )
        return Decision("The screen stays blank; I go back and try again.", Back(), "blank")
    advert = _advert(screen)
    if advert is not None:
        return advert
    steps = plan(goal)
    if goal.intent is Intent.BANK_LOGIN and secret_names and not steps[-1].done(screen, history):
        # A login screen in plain sight (no secure window): its fields as the screenshot shows them.
        # Its fields as the screenshot shows them, and those blacked out (the agent lists them), top down.
        read = [(box.text, screen.to_grid(*box.centre)) for box in screen.content]
        shown = tuple(sorted([*read, *screen.protected], key=lambda element: element[1][1]))
        login = secret_login(task, goal.app, replace(screen, protected=shown), history, secret_names)
        if login is not None:
            return login
    reached = _furthest(steps, screen, history)
    if reached == len(steps) - 1:
        message = _result(goal, screen, history)
        return Decision(
            "The goal is visible on the screen, so the task is complete.", Finish(message=message), "done"
        )
    step = steps[reached + 1]
    decision = step.next(screen, history)
    if decision is None:
        return _stuck(task, screen, history, type(step).__name__)
    return _another_way(task, screen, history, decision)


def _describe(action: ActionModel) -> str:
    if isinstance(action, TypeText):
        return f'typing "{action.text}"'
    if isinstance(action, Tap):
        return f"tapping at {list(action.element)}"
    return f"{action.name}"


def _screen_name(screen: Screen) -> str:
    top = screen.content[:1]
    return f'the "{top[0].text}" screen' if top else "this screen"


def _another_way(task: str, screen: Screen, history: History, decision: Decision) -> Decision:
    """``decision``, unless it repeats an action that just changed nothing: then another way to the
    same end once (the decision's alternative, else Back), and when that changed nothing either, a
    person, told what was tried."""
    unchanged = history.trailing_unchanged()
    recent = [a for a in history.actions[-unchanged:]] if unchanged else []
    repeats_a_dud = isinstance(decision.action, Tap | TypeText | Swipe) and decision.action in recent
    if repeats_a_dud and unchanged >= 2:
        tried = " and then ".join(_describe(a) for a in recent[-2:])
        return Decision(
            "My last actions did not change the screen; a person should take it from here.",
            TakeOver(
                message=f"I'm stuck on {_screen_name(screen)}: I tried {tried}, and nothing changed. "
                f"Please do it ({task}) or tell me how, then hand the phone back."
            ),
            "stuck_unchanged",
        )
    if repeats_a_dud:
        last = _describe(decision.action)
        if decision.alternative is not None and decision.alternative not in recent:
            return Decision(f"{last.capitalize()} changed nothing, so I try another way.", decision.alternative,
                            "another_way")  # fmt: skip
        return Decision(f"{last.capitalize()} changed nothing; I go back and try again.", Back(), "unchanged")
    if isinstance(decision.action, Tap | TypeText) and history.repeats(decision.action) >= 2:
        # Without fingerprints (a client that drops the reasoning): the same action twice did nothing.
        return Decision("The same action twice did not change the screen; I go back.", Back(), "repeat")
    return decision


def _unplanned(task: str, history: History) -> Decision:
    # A person can do what the rules cannot; after they hand back, the task is theirs and it ends.
    if history.has(TakeOver):
        return Decision(
            "The user took over this task and handed it back.",
            Finish(message=f"Handed to the user: the reference model has no rule for this task ({task})."),
            "unplanned_done",
        )
    return Decision(
        "No rule of mine covers this task, so a person should do it.",
        TakeOver(
            message=f"The reference model cannot do this task: {task}. Please do it, then hand the phone back."
        ),
        "unplanned",
    )


def _stuck(task: str, screen: Screen, history: History, waiting_for: str) -> Decision:
    if history.trailing(Back) >= 4:
        return Decision(
            "Going back did not lead anywhere I know.",
            TakeOver(
                message=f"I'm stuck on {_screen_name(screen)}: I went back {history.trailing(Back)} times "
                f"and found nothing that leads to the goal. Please do it ({task}) or tell me how, "
                "then hand the phone back."
            ),
            "stuck",
        )
    logger.debug("nothing to act on for %s; going back", waiting_for)
    return Decision("Nothing on this screen leads towards the goal; I go back.", Back(), "back")


Rule = Callable[[Goal | None, str, Screen, History], Decision]

__all__ = ["AD_WORDS", "Rule", "decide", "plan"]
