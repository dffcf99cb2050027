"""System prompts and per-step user messages for AutoGLM-style phone models, in Chinese and English.

The text is data: module-level templates filled by small functions. The action list is generated
from ``ACTIONS``: each action model carries its usage line and its ``Purpose`` in every language
(a dataclass field per language, so none can be left out), so the prompt and the parser cannot
drift apart. The date is passed in by the caller per task, never read from the clock here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from worker.agent.actions import ACTIONS, Purpose

LANGUAGES = ("zh", "en")
assert set(LANGUAGES) == {f.name for f in dataclasses.fields(Purpose)}, "a prompt language without purposes"

_WEEKDAYS = {
    "zh": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}

_RULES = {
    "zh": (
        "先看当前应用是不是任务需要的应用，不是就先用 Launch 打开。",
        "进入了与任务无关的页面就先 Back；Back 之后页面没变，就点页面左上角的返回箭头或右上角的关闭按钮。",
        "页面内容没加载出来就 Wait，但连续 Wait 不要超过三次，之后 Back 再重新进入。",
        "页面提示网络出错时，点“重新加载”或“重试”。",
        "当前页面找不到要找的联系人、商品、店铺等，就用 Swipe 滑动继续找；滑动没效果就换个起点、加大距离，"
        "仍然不动可能已经到头，改往反方向找。",
        "价格、时间等筛选条件没有完全吻合的选项时，可以选最接近的。",
        "需要登录、输入验证码或做身份验证时用 Take_over 交给用户，不要自己猜密码或验证码。",
        "付款、转账、下单、发送消息、删除数据、授予隐私权限等操作，点击时必须带上 message。",
        "有多个同样符合要求的选项、判断不了用户要哪个时，用 Interact 询问。",
        "每一步先看上一步是否生效：点击没反应就先稍等，再微调位置重试；仍然不行就跳过这一步继续，"
        "并在 finish 的 message 里说明。",
        "不要在同一处反复做同样的操作；有多个标签页或分类时逐个查看，避免原地打转。",
        "按用户的本意做事；搜不到时可以换关键词（去掉限定词、换同义词）再搜。",
        "结束前核对任务是否完整、准确地完成，有选错、漏选、多选就回去改正；做完后用 finish，在 message "
        "里写明结果。",
        "每次回复只做一个操作，写在 <answer> 里；思考写在 <think> 里，思考中不要写出操作指令。",
    ),
    "en": (
        "First check whether the current app is the one the task needs; if not, open it with Launch.",
        "On a screen unrelated to the task, use Back; if Back changes nothing, tap the back arrow at the "
        "top-left or the close button at the top-right.",
        "If a page has not loaded, Wait, but no more than three times in a row; then Back and enter again.",
        'If the page reports a network error, tap "Reload" or "Retry".',
        "If the contact, product or shop you need is not on screen, Swipe to look further; if a swipe does "
        "nothing, start elsewhere and swipe farther, and if the list has ended, search the other way.",
        "When no option matches a filter (price, time range) exactly, take the closest one.",
        "For a login, a captcha or any identity check, use Take_over; never guess passwords or codes.",
        "A tap that pays, transfers money, places an order, sends a message, deletes data or grants "
        "access to private data must carry message.",
        "When several options fit equally and you cannot tell which the user wants, ask with Interact.",
        "Before each step, check that the last one worked: if a tap did nothing, wait a little, then tap "
        "slightly elsewhere; if it still fails, move on and say so in the finish message.",
        "Do not repeat the same action in the same place; visit several tabs or categories one by one "
        "instead of going round in circles.",
        "Follow what the user meant; if a search finds nothing, try other words (drop a qualifier, use a "
        "synonym).",
        "Before finishing, check that the task is done completely and correctly, and go back to fix a "
        "wrong, missing or extra choice; then finish with the result in message.",
        "Each reply holds exactly one action, inside <answer>; your reasoning goes inside <think> and "
        "never spells out an action call.",
    ),
}

_TEMPLATES = {
    "zh": """今天是 {date}。
你是操作安卓手机的助手，替用户完成任务。每一步你会看到手机当前的截图和所在的应用，请结合任务和之前的操作，决定下一步做哪一个操作。

回复必须严格采用下面的格式：
<think>简要说明你看到了什么、为什么选这个操作</think>
<answer>一个操作指令</answer>

可用的操作指令：
{actions}

必须遵守的规则：
{rules}
""",
    "en": """Today's date: {date}.
You operate an Android phone to carry out the user's task. At each step you see a screenshot of the phone and the app in front; from the task and the steps so far, choose the single next action.

Reply in exactly this format:
<think>
what you see on the screen and why you choose this action
</think>
<answer>
one action
</answer>

Actions:
{actions}

Rules:
{rules}
""",
}


def _action_lines(lang: str) -> str:
    lines = []
    for cls in ACTIONS.values():
        for usage, purpose in ((cls.usage, cls.purpose), *cls.forms):
            lines.append(f"- {usage}\n    {getattr(purpose, lang)}")
    return "\n".join(lines)


def format_date(lang: str, today: dt.date) -> str:
    """The date with its weekday, as the prompt in ``lang`` states it (no locale involved)."""
    weekday = _WEEKDAYS[_lang(lang)][today.weekday()]
    if lang == "zh":
        return f"{today.year}年{today.month:02d}月{today.day:02d}日 {weekday}"
    return f"{today.isoformat()}, {weekday}"


def _lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown prompt language {lang!r}; expected one of {LANGUAGES}")
    return lang


def system_prompt_template(lang: str) -> str:
    """The AutoGLM system prompt in ``lang`` with its ``{date}`` and ``{actions}`` placeholders still in."""
    rules = "\n".join(f"{i}. {rule}" for i, rule in enumerate(_RULES[_lang(lang)], start=1))
    return _TEMPLATES[lang].replace("{rules}", rules)


def action_lines(lang: str) -> str:
    """The AutoGLM action list in ``lang``, one usage line and its purpose per action."""
    return _action_lines(_lang(lang))


def system_prompt(lang: str, today: dt.date) -> str:
    """The system prompt in ``lang`` ("zh" for AutoGLM-Phone-9B, "en" for the multilingual model)."""
    return system_prompt_template(lang).replace("{date}", format_date(lang, today)).replace(
        "{actions}", _action_lines(lang)
    )


def screen_info(current_app: str) -> str:
    """The per-step screen description, a one-line JSON object such as ``{"current_app": "Settings"}``."""
    return json.dumps({"current_app": current_app}, ensure_ascii=False)


def first_user_message(
    task: str, screen_info: str, earlier_tries: str | None = None, secrets: str | None = None
) -> str:
    """The first user turn: the task, the secrets it may type (``secrets_message``), what went
    wrong on earlier tries (``earlier_tries_message``), then the screen description."""
    blocks = [task, *(b for b in (secrets, earlier_tries) if b), screen_info]
    return "\n\n".join(blocks)


# Under a header line too: the names of the tenant's secrets (never their values), for Type_Secret.
SECRETS_HEADER = "** Secrets **"
_SECRETS = {
    "zh": "可以用 Type_Secret 输入的机密（只有名称，内容由系统输入）：{names}",
    "en": "Secrets you can enter with Type_Secret (names only; the system types the value): {names}",
}


def secrets_message(lang: str, names: list[str]) -> str | None:
    """What the model is told of the secrets it may type: their names; None when there are none."""
    if not names:
        return None
    return f"{SECRETS_HEADER}\n{_SECRETS[_lang(lang)].format(names=', '.join(names))}"


def step_user_message(screen_info: str) -> str:
    """A later user turn: only the screen description, under the header the models were trained on."""
    return f"** Screen Info **\n\n{screen_info}"


_USER_STEPS = {
    "zh": "用户接管期间亲自在手机上做了这些操作（是用户做的，不是你做的；finish 的 message 里要说明哪些是用户做的，"
    "不要说成是你完成的）：\n{steps}",
    "en": "While the user had the phone, they did these actions themselves (they are the user's, not yours; "
    "when you finish, say which part the user did and do not claim it as your own):\n{steps}",
}
_NO_USER_STEPS = {
    "zh": "用户接管期间没有在手机上做任何操作。",
    "en": "While the user had the phone, they did no action on it.",
}


# Under a header line, as "** Screen Info **": a block the reader can tell from the task (a model
# that parses the task, such as the reference model, skips it up to the next blank line).
EARLIER_TRIES_HEADER = "** Earlier tries **"
_EARLIER_TRIES = {
    "zh": "之前的尝试没有完成任务，你现在从手机当前的屏幕重新开始（手机没有重置）。不要重复没有用的做法：\n{tries}",
    "en": "Earlier tries did not complete the task; you start again from the phone's current screen "
    "(the phone was not reset). Do not repeat what did not work:\n{tries}",
}
_TRY_LINE = {"zh": "- 第 {n} 次尝试失败（{reason}）：{message}", "en": "- Try {n} failed ({reason}): {message}"}


def earlier_tries_message(lang: str, failures: list[tuple[str, str]]) -> str:
    """What the model is told on a later try: each earlier try's (reason, message), oldest first."""
    lines = "\n".join(
        _TRY_LINE[_lang(lang)].format(n=n, reason=reason, message=message)
        for n, (reason, message) in enumerate(failures, start=1)
    )
    return f"{EARLIER_TRIES_HEADER}\n{_EARLIER_TRIES[lang].format(tries=lines)}"


# A chain's context, under its header in one block (no blank line), as the earlier tries' block: a
# model that parses the task (the reference model) skips it, a model that reasons reads it.
CHAIN_HEADER = "** Task chain **"
_CHAIN = {
    "zh": "这是一个更大任务的第 {n} 部分（共 {total} 部分）。整个任务：{task}\n各部分依次为：\n{parts}\n"
    "只做当前这一部分（标有 ←），做完就用 finish 报告这一部分的结果。",
    "en": "This is part {n} of {total} of a larger task: {task}\nThe parts, in order:\n{parts}\n"
    "Do only the current part (marked ←) and finish with its result once it is done.",
}
_CHAIN_STATE = {
    "zh": {"done": "已完成", "skipped": "已跳过", "current": "← 当前"},
    "en": {"done": "done", "skipped": "skipped", "current": "← current"},
}


def chain_message(lang: str, task: str, parts: list[tuple[str, str, str | None]], current: int) -> str:
    """What the model is told with one subgoal of a task chain (the subgoal is its task): the whole
    task, and each part's goal with what came of it — ``parts``: (goal, status, result message)."""
    words = _CHAIN_STATE[_lang(lang)]
    lines = []
    for i, (goal, status, message) in enumerate(parts):
        if i == current:
            state = words["current"]
        elif status == "succeeded":
            state = f"{words['done']}: {message}" if message else words["done"]
        elif status == "skipped":
            state = words["skipped"]
        else:
            state = ""
        lines.append(f"{i + 1}. {goal}" + (f" ({state})" if state else ""))
    body = _CHAIN[lang].format(
        n=current + 1, total=len(parts), task=" ".join(task.split()), parts="\n".join(lines)
    )
    return f"{CHAIN_HEADER}\n{body}"


_PROTECTED = {
    "zh": "当前屏幕受保护（安全窗口，例如登录页），截图是黑的，不是手机出了问题。屏幕上的元素"
    "（来自界面结构，坐标为 0–999 网格上的中心点）：\n{elements}",
    "en": "The screen is protected (a secure window, such as a login page): its screenshot is black, "
    "the phone is not broken. The elements on it, from the view tree (centre on the 0–999 grid):\n{elements}",
}
_PROTECTED_UNREAD = {
    "zh": "当前屏幕受保护（安全窗口），截图是黑的，界面结构也读不到。",
    "en": "The screen is protected (a secure window): its screenshot is black and its view tree could not be read.",
}


def protected_screen_message(lang: str, elements: list[tuple[str, tuple[int, int]]] | None) -> str:
    """What the model is told when the screenshot is a secure window's black: the labels of the
    screen's elements and their centres on the grid (None: the view tree could not be read)."""
    if elements is None:
        return _PROTECTED_UNREAD[_lang(lang)]
    lines = "\n".join(f"- {label!r} at [{x},{y}]" for label, (x, y) in elements)
    return _PROTECTED[_lang(lang)].format(elements=lines or "-")


_REDACTED = {
    "zh": "截图中有些区域被涂黑以隐藏隐私内容（元素仍在，可以点击；坐标为 0–999 网格上的中心点）：\n{regions}",
    "en": "Parts of the screenshot are blacked out to hide private data; the elements are still there "
    "and can be tapped (centre on the 0–999 grid):\n{regions}",
}


def redacted_message(lang: str, regions: list[tuple[str, tuple[int, int]]]) -> str:
    """What the model is told of the regions masked in its screenshot: each one's kind ("password"
    or a text pattern's name) and centre on the grid, never what it held."""
    lines = "\n".join(f"- {kind!r} at [{x},{y}]" for kind, (x, y) in regions)
    return _REDACTED[_lang(lang)].format(regions=lines)


def user_steps_message(lang: str, steps: list[str]) -> str:
    """What the model is told after a hand-back: the person's own actions, one line each, so its
    finish message does not claim them (``steps``: their action texts, oldest first)."""
    if not steps:
        return _NO_USER_STEPS[_lang(lang)]
    lines = "\n".join(f"{i}. {step}" for i, step in enumerate(steps, start=1))
    return _USER_STEPS[_lang(lang)].format(steps=lines)


__all__ = [
    "CHAIN_HEADER",
    "EARLIER_TRIES_HEADER",
    "LANGUAGES",
    "SECRETS_HEADER",
    "action_lines",
    "chain_message",
    "earlier_tries_message",
    "first_user_message",
    "format_date",
    "protected_screen_message",
    "redacted_message",
    "screen_info",
    "secrets_message",
    "step_user_message",
    "system_prompt",
    "system_prompt_template",
    "user_steps_message",
]
