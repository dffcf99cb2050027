"""Turning a task in plain English or Chinese into a goal: an intent and its slots.

Only the phrasings listed in ``docs/reference-model.md`` are understood, with some latitude (quotes
of any kind, "the"/"a" optional, word order of the toggle). ``parse_instruction`` returns None for
anything else; the policy then hands the phone to a person rather than guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from device_pool.driver.apps import AppCatalog


class Intent(StrEnum):
    OPEN_APP = "open_app"
    TOGGLE = "toggle"
    ADD_CONTACT = "add_contact"
    SEND_MESSAGE = "send_message"
    CREATE_NOTE = "create_note"
    SHOP = "shop"
    BANK_LOGIN = "bank_login"


@dataclass(frozen=True)
class Goal:
    """What the task asks for. ``app`` is the app's name as the task wrote it (what Launch gets)."""

    intent: Intent
    app: str
    package: str
    slots: dict[str, str] = field(default_factory=dict)

    def slot(self, key: str) -> str:
        return self.slots.get(key, "")


_CATALOG = AppCatalog()
_Q = r"[\"'“”‘’「」『』]"  # any quote mark
_QUOTED = rf"{_Q}(?P<{{name}}>[^\"“”「」『』]+?){_Q}"
_CLAUSE_SPLIT = re.compile(r"\s*(?:[,，;；、。]|\band\b|\bthen\b|并且|并|然后|再|和)\s*", re.IGNORECASE)
_OPEN = re.compile(
    r"(?:\b(?:open|launch|start|go to|switch to|show|bring up|pull up)\s+(?:me\s+)?(?:my\s+)?(?:the\s+)?(?P<en>[A-Za-z][\w.-]*(?:\s[A-Z][\w.-]*)?)(?:\s+app)?)"
    r"|(?:(?:打开|启动|进入)(?P<zh>[^\s，,。；;并然后]+?)(?:应用|app)?(?=$|[\s，,。；;]|并|然后))",
    re.IGNORECASE,
)
SETTINGS_KEYWORDS: dict[str, re.Pattern[str]] = {
    "wifi": re.compile(r"wi-?\s?fi|wlan|无线网络|无线", re.IGNORECASE),
    "bluetooth": re.compile(r"blue\s?tooth|蓝牙", re.IGNORECASE),
    "airplane": re.compile(r"air\s?plane|aeroplane|flight\s?mode|飞行模式", re.IGNORECASE),
}
_OFF = re.compile(
    r"\b(?:off|disable|deactivate|kill|stop)\b|\bout\s+of\b|关闭|关掉|关上|停用|禁用", re.IGNORECASE
)
# "put/set the phone in(to) airplane mode" is on, as "get out of" is off.
_ON = re.compile(
    r"\b(?:on|enable|activate)\b|\b(?:put|set)\b.*\bin(?:to)?\b|打开|开启|启用|开", re.IGNORECASE
)


def _quoted(name: str) -> str:
    return _QUOTED.format(name=name)


_PHONE = r"(?P<phone>\+?\(?\d[\d\s()-]*\d)"
_PHONE_WORD = (
    r"(?:(?:the\s+|a\s+)?(?:phone\s*(?:number)?|number|mobile|tel(?:ephone)?|cell)\s*(?:is\s+|of\s+|:\s*)?)"
)
_CONTACT = [
    re.compile(
        r"\b(?:add|create|make|save|new)\s+(?:a\s+)?(?:new\s+)?contact\s*(?:for\s+|named\s+|called\s+|:\s*)?"
        + rf"(?:{_quoted('qname')}|(?P<name>.+?))"
        + rf"\s*[,?.!]?\s+(?:with\s+|and\s+|whose\s+|(?:her|his|their|its)\s+)?{_PHONE_WORD}?"
        + _PHONE,
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:add|save|put)\s+"
        + rf"(?:{_quoted('qname')}|(?P<name>.+?))"
        + r"\s*(?:\(\s*"
        + _PHONE
        + r"\s*\)\s*)?"
        + r"(?:\s+(?:to|in|into)\s+(?:my\s+|the\s+)?(?:contacts?|address\s+book)(?:\s+list)?)"
        + (r"\s*,?\s*(?:with\s+|and\s+|whose\s+)?" + _PHONE_WORD + "?" + _PHONE.replace("phone>", "phone2>"))
        + "?",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bsave\s+"
        + _PHONE
        + r"\s+(?:to\s+(?:my\s+)?contacts\s+)?as\s+(?:a\s+contact\s+)?(?:named\s+|called\s+)?"
        + rf"(?:{_quoted('qname')}|(?P<name>[^,.，。]+?))(?:\s+in\s+(?:my\s+)?contacts)?\s*[.。]?$",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:添加|新建|创建|保存|增加)(?:一个|一位)?(?:新的?)?联系人[：:，,]?\s*(?:名字|姓名)?(?:叫|为|是)?\s*(?P<name>.+?)[，,]?\s*"
        r"(?:(?:电话|手机|号码)(?:号码|号)?(?:是|为)?[：:]?)?\s*" + _PHONE
    ),
    re.compile(
        r"(?:把|将)\s*(?P<name>.+?)\s*[（(]?\s*"
        + _PHONE
        + r"\s*[）)]?\s*(?:添加|加|存|保存)(?:到|进|入)(?:联系人|通讯录)"
    ),
]
_TO = r"(?P<to>\+?\d[\d-]*\d|[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)?|[\u4e00-\u9fff]{1,4})"
_BODY_END = r"\s*[.。!！]?\s*$"
_MESSAGE = [
    re.compile(
        r"\bsend\s+(?:the\s+|an?\s+)?(?:sms|text|message)?\s*(?:message\s+)?"
        + _quoted("body")
        + r"\s+to\s+(?P<to>[^\s,，]+)",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:text|message|sms|send\s+(?:an?\s+)?(?:text\s+message|message|text|sms)\s+to)\s+"
        + _TO
        + r"\s*(?:saying\s+|that\s+(?:says|reads):?\s+|reading\s+|and\s+say\s+|with\s+(?:the\s+)?(?:text|message|words)\s+|:\s*|,\s*)?"
        + _quoted("qbody"),
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:text|message|sms|tell|send\s+(?:an?\s+)?(?:text\s+message|message|text|sms)\s+to)\s+"
        + _TO
        + r"\s*(?:saying\s+|that\s+(?:says|reads):?\s+|reading\s+|and\s+say\s+|that\s+|with\s+(?:the\s+)?(?:text|message|words)\s+|:\s*|,\s*)"
        + r"(?P<body>.+?)"
        + _BODY_END,
        re.IGNORECASE,
    ),
    re.compile(
        r"\bsend\s+(?:an?\s+)?(?:sms|text|message|text\s+message)\s+(?:saying\s+|that\s+says\s+|:\s*)(?P<body>.+?)\s+to\s+"
        + _TO
        + _BODY_END,
        re.IGNORECASE,
    ),
    re.compile(
        r"\bsend\s+(?!an?\s+(?:sms|text|message)\b)(?P<body>.+?)\s+to\s+" + _TO + _BODY_END, re.IGNORECASE
    ),
    re.compile(
        r"给\s*(?P<to>[^\s，,]+?)\s*发(?:送)?(?:一条|个)?(?:短信|信息|消息)[：:，,]?\s*(?:说|内容(?:是|为))?[：:]?\s*"
        + rf"(?:{_quoted('qbody')}|(?P<body>.+?){_BODY_END})"
    ),
    re.compile(
        r"(?:发|发送)(?:一条|个)?(?:短信|信息|消息)(?:给|到)\s*(?P<to>[^\s，,：:]+?)\s*(?:[：:，,\s]|(?=说|内容|[\"'“‘「『]))\s*"
        r"(?:说|内容(?:是|为))?[：:]?\s*" + rf"(?:{_quoted('qbody')}|(?P<body>.+?){_BODY_END})"
    ),
]
_NOTE_WORD = r"(?:create|add|make|write|new|take|jot\s+down)\s+(?:me\s+)?(?:a\s+)?(?:new\s+)?note"
_NOTE = [
    re.compile(
        r"\b"
        + _NOTE_WORD
        + r"\s+(?:titled|called|named|with\s+(?:the\s+)?title)\s+"
        + rf"(?:{_quoted('qtitle')}|(?P<title>.+?))"
        + r"\s*,?\s*(?:and\s+)?(?:with\s+|that\s+says\s+|saying\s+|containing\s+|:\s*)(?:the\s+)?(?:text|body|content)?\s*(?::\s*)?"
        + rf"(?:{_quoted('qbody')}|(?P<body>.+?){_BODY_END})",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b"
        + _NOTE_WORD
        + r"\s*(?:saying\s+|that\s+says\s+|with\s+(?:the\s+)?(?:text|content)\s+|:\s*|,\s*)"
        + rf"(?:{_quoted('qbody')}|(?P<body>.+?){_BODY_END})",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:note|jot|write|put)\s+down\s+"
        + rf"(?:{_quoted('qbody')}|(?P<body>.+?))"
        + r"(?:\s+(?:in|to)\s+(?:my\s+|the\s+)?notes?(?:\s+app)?)?\s*[.。!！?？]?\s*$",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:新建|创建|写|添加|记)(?:一条|一个|一篇|下)?(?:笔记|备忘录?)[，,：:]?\s*标题(?:为|是)?[：:]?\s*"
        + rf"(?:{_quoted('qtitle')}|(?P<title>[^，,；;]+?))"
        + r"\s*[，,；;]?\s*(?:并且?|，|,)?"
        r"\s*内容(?:为|是)?[：:]?\s*" + rf"(?:{_quoted('qbody')}|(?P<body>.+?){_BODY_END})"
    ),
    re.compile(
        r"(?:新建|创建|写|添加|记)(?:一条|一个|一篇|下)?(?:笔记|备忘录?)[，,：:]\s*(?:内容(?:为|是)?[：:]?)?\s*"
        + rf"(?:{_quoted('qbody')}|(?P<body>.+?){_BODY_END})"
    ),
    re.compile(
        r"^(?:记一下|记下来?|记录一下|记住)[，,：:]?\s*" + rf"(?:{_quoted('qbody')}|(?P<body>.+?){_BODY_END})"
    ),
    re.compile(
        r"在(?:笔记|备忘录?)(?:应用)?(?:里|中|上)?(?:写|记|添加|新建)(?:一条|一个|一下|下)?(?:笔记|备忘)?[，,：:]?\s*"
        + rf"(?:{_quoted('qbody')}|(?P<body>.+?){_BODY_END})"
    ),
]
_SEARCH = re.compile(
    r"\bsearch\s+(?:the\s+shop\s+|shop\s+)?(?:for\s+)?"
    + rf"(?:{_quoted('query')}|(?P<uquery>.+?)(?=\s*(?:,|，|\band\b|\bthen\b|$)))"
    + r"|搜索\s*"
    + rf"(?:{_quoted('zquery')}|(?P<uzquery>[^，,。并然后]+?)(?=$|[，,。]|并|然后))",
    re.IGNORECASE,
)
_ADD_TO_CART = re.compile(
    r"\b(?:add|put|place)\s+(?:the\s+|an?\s+|one\s+)?(?P<product>.+?)\s+(?:to|in|into)\s+(?:the\s+|my\s+)?(?:shopping\s+)?(?:cart|basket)"
    r"|(?:把|将)\s*(?P<zproduct>.+?)\s*(?:加入|加到|放进|放入|添加到)购物车"
    r"|(?P<zbare>(?:加入|加到|放进|放入|添加到)购物车)"
    r"|购物车(?:里|中)?(?:加|添加|放)(?:入|进)?\s*(?P<zproduct2>.+?)\s*[。！!]?$",
    re.IGNORECASE,
)
_BUY = re.compile(
    r"\bbuy\s+(?:the\s+|a\s+|an\s+)?(?P<product>.+?)(?=$|[,.，。]|\band\b)|购买\s*(?P<zproduct>[^，,。]+)",
    re.IGNORECASE,
)
_FIRST = re.compile(
    r"^(?:the\s+)?(?:first|top|1st)(?:\s+(?:one|result|item|product|hit))?$|^it$|^第一(?:个|件|项)?(?:商品|结果)?$",
    re.IGNORECASE,
)
_PAY = re.compile(
    r"\b(?:pay|check\s?out|place\s+the\s+order|complete\s+the\s+purchase)\b|支付|付款|结算", re.IGNORECASE
)
_PRONOUN = re.compile(r"^(?:it|them|that|this|one)$", re.IGNORECASE)
_MEASURE = re.compile(
    r"^(?:一个|一件|一份|一只|一双|一把|一本|个|件)\s*"
)  # 一个 Backpack: the product is Backpack
_LOGIN = re.compile(r"\blog\s?in\b|\bsign\s?in\b|登录|登陆", re.IGNORECASE)
_POLITE = re.compile(r"^(?:please\s+|can\s+you\s+|could\s+you\s+|请|帮我|麻烦)+", re.IGNORECASE)


def named_app(task: str) -> tuple[str, str] | None:
    """(name as written, package) of the first app the task opens, when the catalog knows it."""
    for match in _OPEN.finditer(task):
        name = (match.group("en") or match.group("zh") or "").strip()
        for candidate in (name, name.split(" ")[0]):
            package = _CATALOG.resolve(candidate)
            if package is not None:
                return candidate, package
    return None


def _app_or(task: str, default: str) -> tuple[str, str]:
    found = named_app(task)
    if found is not None:
        return found
    return default, _CATALOG.resolve(default) or default


def _state(text: str) -> str | None:
    if _OFF.search(text):
        return "off"
    if _ON.search(text):
        return "on"
    return None


def _toggles(task: str) -> list[tuple[str, str]]:
    """The switches the task flips, in order, as (setting, "on"|"off").

    A switch named without a state takes the next state named ("Wi-Fi and Bluetooth off"), or else
    the last one ("turn on Wi-Fi and Bluetooth").
    """
    found: list[tuple[str, str]] = []
    pending: list[str] = []
    last: str | None = None
    for clause in _CLAUSE_SPLIT.split(task):
        keys = sorted(
            ((m.start(), key) for key, pattern in SETTINGS_KEYWORDS.items() if (m := pattern.search(clause))),
        )
        rest = clause
        for pattern in SETTINGS_KEYWORDS.values():
            rest = pattern.sub(" ", rest)
        state = _state(rest)
        if not keys:
            if state is not None and pending:
                found += [(k, state) for k in pending]
                pending = []
                last = state
            continue
        if state is None:
            pending += [k for _, k in keys]
            continue
        found += [(k, state) for k in pending] + [(k, state) for _, k in keys]
        pending, last = [], state
    if pending and last is not None:
        found += [(k, last) for k in pending]
    unique: list[tuple[str, str]] = []
    for item in found:
        if item[0] not in (k for k, _ in unique):
            unique.append(item)
    return unique


def _toggle(task: str) -> dict[str, str] | None:
    switches = _toggles(task)
    if not switches:
        return None
    slots = {"setting": switches[0][0], "state": switches[0][1]}
    for i, (key, state) in enumerate(switches[1:], start=2):
        slots[f"setting{i}"], slots[f"state{i}"] = key, state
    return slots


def _first(patterns: list[re.Pattern[str]], task: str) -> re.Match[str] | None:
    return next((m for p in patterns if (m := p.search(task)) is not None), None)


def _group(m: re.Match[str], *names: str) -> str:
    groups = m.groupdict()
    return next((groups[n] for n in names if groups.get(n)), "")


def _clean(text: str) -> str:
    return text.strip().strip("\"'“”‘’「」『』").strip(" .。!！").strip()


def _text(m: re.Match[str], quoted: str, plain: str) -> str:
    """A slot's text: what stood in quotes exactly as written ("Happy birthday!"), else the words
    without the sentence's closing full stop."""
    if m.groupdict().get(quoted):
        return m.group(quoted).strip()
    return _clean(_group(m, plain))


# "王强的电话 186…": the name is the part before "'s phone".
_NAME_TAIL = re.compile(
    r"(?:的(?:电话|手机|号码|手机号)(?:号码|号)?|'s\s+(?:phone|number|mobile))$", re.IGNORECASE
)


def _contact(m: re.Match[str]) -> tuple[Intent, dict[str, str]]:
    return Intent.ADD_CONTACT, {
        "name": _NAME_TAIL.sub("", _text(m, "qname", "name")).strip(),
        "phone": re.sub(r"[\s()-]", "", _group(m, "phone", "phone2")),
    }


def _message(m: re.Match[str]) -> tuple[Intent, dict[str, str]]:
    return Intent.SEND_MESSAGE, {"to": _clean(m.group("to")), "body": _text(m, "qbody", "body")}


def _note(m: re.Match[str]) -> tuple[Intent, dict[str, str]]:
    return Intent.CREATE_NOTE, {"title": _text(m, "qtitle", "title"), "body": _text(m, "qbody", "body")}


_CONTENT = ((_CONTACT, _contact, "Contacts"), (_MESSAGE, _message, "Messages"), (_NOTE, _note, "Notes"))
_REQUIRED = {
    Intent.ADD_CONTACT: ("name", "phone"),
    Intent.SEND_MESSAGE: ("to", "body"),
    Intent.CREATE_NOTE: ("body",),
}


def _content_goal(task: str) -> Goal | None:
    """A contact, message or note goal. When several rules match, the one that starts earliest wins:
    the words that come later are the content ("Write a note: text Bob")."""
    found = []
    for patterns, slots_of, default in _CONTENT:
        for pattern in patterns:
            m = pattern.search(task)
            if m is None:
                continue
            intent, slots = slots_of(m)
            if all(slots[k] for k in _REQUIRED[intent]):
                found.append((m.start(), intent, slots, default))
                break
    if not found:
        return None
    _, intent, slots, default = min(found, key=lambda f: f[0])
    return Goal(intent, *_app_or(task, default), slots=slots)


def parse_instruction(task: str) -> Goal | None:
    """The goal of a task, or None when no rule understands it."""
    task = _POLITE.sub("", " ".join(task.split()))
    if not task:
        return None
    content = _content_goal(task)
    if content is not None:
        return content
    search, add, buy = _SEARCH.search(task), _ADD_TO_CART.search(task), _BUY.search(task)
    if add or buy:
        product_match = add or buy
        assert product_match is not None
        product = _MEASURE.sub("", _clean(_group(product_match, "product", "zproduct", "zproduct2")))
        query = _clean(_group(search, "query", "uquery", "zquery", "uzquery")) if search else ""
        if add is not None and buy is not None and _PRONOUN.match(product):
            product = _clean(_group(buy, "product", "zproduct"))  # "I want to buy X, add it to my cart"
        if not product and add is not None and add.group("zbare"):
            product = query  # 搜索X并加入购物车: the searched product itself
        first = bool(_FIRST.match(product)) or (not product and bool(query))
        if first:
            product = ""
        query = query or product
        if query:
            # "buy X" alone is buy and pay; with "add it to the cart" the cart is what was asked.
            pay = (buy is not None and add is None) or _PAY.search(task[product_match.end() :]) is not None
            slots = {"query": query, "product": product, "pay": "yes" if pay else ""}
            if first:
                slots["pick"] = "first"
            return Goal(Intent.SHOP, *_app_or(task, "Shop"), slots=slots)
    # Quoted text is content (a message, a note), never a switch to flip.
    toggle = _toggle(re.sub(_quoted("q"), " ", task))
    if toggle is not None:
        return Goal(Intent.TOGGLE, *_app_or(task, "Settings"), slots=toggle)
    app = named_app(task)
    if app is not None and app[1] == "com.phonefleet.bank" and _LOGIN.search(task):
        return Goal(Intent.BANK_LOGIN, *app)
    if app is not None and _only_opens(task):
        return Goal(Intent.OPEN_APP, *app)
    return None


def _only_opens(task: str) -> bool:
    """Whether every clause of the task just opens an app (nothing else to do once it is open)."""
    clauses = [c for c in _CLAUSE_SPLIT.split(task.strip(" .。!！?？")) if c]
    return bool(clauses) and all(_OPEN.fullmatch(c.strip()) for c in clauses)


__all__ = ["SETTINGS_KEYWORDS", "Goal", "Intent", "named_app", "parse_instruction"]
