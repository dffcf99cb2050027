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
    r"(?:\b(?:open|launch|start|go to)\s+(?:the\s+)?(?P<en>[A-Za-z][\w.-]*(?:\s[A-Z][\w.-]*)?)(?:\s+app)?)"
    r"|(?:(?:打开|启动|进入)(?P<zh>[^\s，,。；;并然后]+?)(?:应用|app)?(?=$|[\s，,。；;]|并|然后))",
    re.IGNORECASE,
)
SETTINGS_KEYWORDS: dict[str, re.Pattern[str]] = {
    "wifi": re.compile(r"wi-?\s?fi|wlan|无线网络|无线", re.IGNORECASE),
    "bluetooth": re.compile(r"blue\s?tooth|蓝牙", re.IGNORECASE),
    "airplane": re.compile(r"air\s?plane|aeroplane|flight\s?mode|飞行模式", re.IGNORECASE),
}
_OFF = re.compile(r"\b(?:off|disable|deactivate)\b|关闭|关掉|关上|停用|禁用", re.IGNORECASE)
_ON = re.compile(r"\b(?:on|enable|activate)\b|打开|开启|启用|开", re.IGNORECASE)


def _quoted(name: str) -> str:
    return _QUOTED.format(name=name)


_CONTACT = [
    re.compile(
        r"\badd\s+(?:a\s+)?(?:new\s+)?contact\s+(?:named\s+|called\s+)?"
        + rf"(?:{_quoted('qname')}|(?P<name>.+?))"
        r"\s*,?\s+(?:with\s+)?(?:the\s+)?(?:phone\s*(?:number)?|number|mobile)\s*(?:is\s+|of\s+)?"
        r"(?P<phone>\+?\d[\d\s-]*\d)",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:添加|新建|创建)(?:一个)?联系人[，,]?\s*(?:名字|姓名)?(?:叫|为|是)?\s*(?P<name>.+?)[，,]?\s*"
        r"(?:电话|手机|号码)(?:号码)?(?:是|为)?\s*(?P<phone>\+?\d[\d\s-]*\d)"
    ),
]
_MESSAGE = [
    re.compile(
        r"\bsend\s+(?:the\s+|an?\s+)?(?:sms|text|message)?\s*(?:message\s+)?"
        + _quoted("body")
        + r"\s+to\s+(?P<to>[^\s,，]+)",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:text|message|send\s+(?:a\s+)?(?:message|text|sms)\s+to)\s+(?P<to>\+?\d[\d-]*)\s*(?:saying\s+|:\s*)?"
        + _quoted("body"),
        re.IGNORECASE,
    ),
    re.compile(
        r"给\s*(?P<to>[^\s，,]+?)\s*发(?:送)?(?:一条)?(?:短信|信息|消息)[：:，,]?\s*" + _quoted("body")
    ),
]
_NOTE = [
    re.compile(
        r"\b(?:create|add|make|write|new)\s+(?:a\s+)?(?:new\s+)?note\s+(?:titled|called|named|with\s+(?:the\s+)?title)\s+"
        + _quoted("title")
        + r"\s*,?\s*(?:and\s+)?(?:with\s+)?(?:the\s+)?(?:text|body|content)\s+"
        + _quoted("body"),
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:新建|创建|写)(?:一条|一个)?笔记[，,]?\s*标题(?:为|是)?\s*"
        + _quoted("title")
        + r"[，,]?\s*(?:并且?|，|,)?"
        r"\s*内容(?:为|是)?\s*" + _quoted("body")
    ),
]
_SEARCH = re.compile(
    r"\bsearch\s+(?:for\s+)?" + _quoted("query") + r"|搜索\s*" + _quoted("zquery"), re.IGNORECASE
)
_ADD_TO_CART = re.compile(
    r"\badd\s+(?:the\s+)?(?P<product>.+?)\s+to\s+(?:the\s+|my\s+)?(?:shopping\s+)?cart"
    r"|把\s*(?P<zproduct>.+?)\s*加入购物车",
    re.IGNORECASE,
)
_BUY = re.compile(
    r"\bbuy\s+(?:the\s+|a\s+)?(?P<product>.+?)(?=$|[,.，。]|\band\b)|购买\s*(?P<zproduct>\S+)", re.IGNORECASE
)
_PAY = re.compile(
    r"\b(?:pay|check\s?out|place\s+the\s+order|complete\s+the\s+purchase)\b|支付|付款|结算", re.IGNORECASE
)
_LOGIN = re.compile(r"\blog\s?in\b|\bsign\s?in\b|登录|登陆", re.IGNORECASE)


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


def _toggle(task: str) -> dict[str, str] | None:
    for clause in _CLAUSE_SPLIT.split(task):
        for key, pattern in SETTINGS_KEYWORDS.items():
            if pattern.search(clause) is None:
                continue
            rest = pattern.sub(" ", clause)
            if _OFF.search(rest):
                return {"setting": key, "state": "off"}
            if _ON.search(rest):
                return {"setting": key, "state": "on"}
    return None


def _first(patterns: list[re.Pattern[str]], task: str) -> re.Match[str] | None:
    return next((m for p in patterns if (m := p.search(task)) is not None), None)


def parse_instruction(task: str) -> Goal | None:
    """The goal of a task, or None when no rule understands it."""
    task = " ".join(task.split())
    if not task:
        return None
    if (m := _first(_CONTACT, task)) is not None:
        name = (m.groupdict().get("qname") or m.group("name")).strip().strip("\"'“”")
        phone = re.sub(r"[\s-]", "", m.group("phone"))
        return Goal(Intent.ADD_CONTACT, *_app_or(task, "Contacts"), slots={"name": name, "phone": phone})
    if (m := _first(_MESSAGE, task)) is not None:
        slots = {"to": m.group("to").strip(), "body": m.group("body")}
        return Goal(Intent.SEND_MESSAGE, *_app_or(task, "Messages"), slots=slots)
    if (m := _first(_NOTE, task)) is not None:
        return Goal(
            Intent.CREATE_NOTE, *_app_or(task, "Notes"), slots={"title": m["title"], "body": m["body"]}
        )
    search, add, buy = _SEARCH.search(task), _ADD_TO_CART.search(task), _BUY.search(task)
    if add or buy:
        product_match = add or buy
        assert product_match is not None
        product = (product_match.group("product") or product_match.group("zproduct") or "").strip(" \"'“”")
        query = (search.group("query") or search.group("zquery")) if search else product
        pay = buy is not None or _PAY.search(task[product_match.end() :]) is not None
        slots = {"query": query, "product": product, "pay": "yes" if pay else ""}
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
    clauses = [c for c in _CLAUSE_SPLIT.split(task.strip(" .。!！")) if c]
    return bool(clauses) and all(_OPEN.fullmatch(c.strip()) for c in clauses)


__all__ = ["SETTINGS_KEYWORDS", "Goal", "Intent", "named_app", "parse_instruction"]
