"""Reads one action call, without eval: ``do(action="Tap", element=[1, 2])`` → its keyword values.

The grammar is Python's keyword-call syntax cut down to what actions need: a function name, then
``name=value`` arguments whose values are quoted strings (with backslash escapes), numbers,
``None``/``True``/``False``/``null``, or flat lists like ``[x, y]``. ``parser.py`` finds the calls
in a model's reply and decides which one is the action; this module only reads one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Call", "CallReader", "CallSyntaxError", "StringStart", "unescape"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
_KEYWORDS: dict[str, Any] = {"None": None, "True": True, "False": False, "null": None}
# No coordinate needs more digits; a longer literal is hostile text, and int() of one costs O(n²).
_MAX_NUMBER_CHARS = 40


class CallSyntaxError(Exception):
    """The call text breaks the grammar at ``pos``."""

    def __init__(self, reason: str, pos: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pos = pos


@dataclass
class StringStart:
    """Where a keyword's string value opened, to retry it greedily when inner quotes were unescaped."""

    key: str
    quote: str
    pos: int
    kwargs_before: dict[str, Any]


@dataclass
class Call:
    """One call read from ``text[start:end]``: its function name and keyword values."""

    func: str
    start: int
    end: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)
    strings: list[StringStart] = field(default_factory=list)


class CallReader:
    """A small recursive-free reader for one call: keyword args of strings, numbers and flat lists."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.pos = start
        self.call = Call(func="", start=start)

    def read(self) -> Call:
        call = self.call
        call.func = self._ident()
        self._expect("(")
        while True:
            self._ws()
            if self._peek() == ")":
                break
            key = self._ident("an argument name (arguments are written name=value)")
            self._expect("=")
            self._ws()
            if self._peek() in ("'", '"'):
                call.strings.append(StringStart(key, self._peek(), self.pos, dict(call.kwargs)))
            value = self._value()
            if key in call.kwargs:
                raise CallSyntaxError(f"argument {key!r} is given twice", self.pos)
            call.kwargs[key] = value
            self._ws()
            if self._peek() == ",":
                self.pos += 1
            elif self._peek() != ")":
                raise CallSyntaxError("expected ',' or ')' after an argument", self.pos)
        self.pos += 1
        call.end = self.pos
        return call

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _expect(self, char: str) -> None:
        self._ws()
        if self._peek() != char:
            raise CallSyntaxError(f"expected {char!r}", self.pos)
        self.pos += 1

    def _ident(self, what: str = "a name") -> str:
        self._ws()
        match = _IDENT.match(self.text, self.pos)
        if match is None:
            raise CallSyntaxError(f"expected {what}", self.pos)
        self.pos = match.end()
        return match.group()

    def _value(self) -> Any:
        char = self._peek()
        if char in ("[", "("):
            return self._list("]" if char == "[" else ")")
        return self._scalar()

    def _scalar(self) -> Any:
        self._ws()
        char = self._peek()
        if char in ("'", '"'):
            return self._string(char)
        number = _NUMBER.match(self.text, self.pos)
        if number is not None:
            literal = number.group()
            if len(literal) > _MAX_NUMBER_CHARS:
                raise CallSyntaxError("number too long", self.pos)
            self.pos = number.end()
            return float(literal) if "." in literal else int(literal)
        word = _IDENT.match(self.text, self.pos)
        if word is not None and word.group() in _KEYWORDS:
            self.pos = word.end()
            return _KEYWORDS[word.group()]
        raise CallSyntaxError("expected a value: a quoted string, a number or a list like [x,y]", self.pos)

    def _list(self, close: str) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        while True:
            self._ws()
            if self._peek() == close:
                self.pos += 1
                return items
            items.append(self._scalar())
            self._ws()
            if self._peek() == ",":
                self.pos += 1
            elif self._peek() != close:
                raise CallSyntaxError(f"expected ',' or {close!r} in a list", self.pos)

    def _string(self, quote: str) -> str:
        text, i, out = self.text, self.pos + 1, []
        while i < len(text):
            char = text[i]
            if char == "\\" and i + 1 < len(text):
                decoded, i = _escape(text, i)
                out.append(decoded)
                continue
            if char == quote:
                # A quote closes the string only where the grammar can go on (`,` `)` `]`); any other
                # quote is one the model forgot to escape, as in finish(message="He said "hi"").
                j = i + 1
                while j < len(text) and text[j].isspace():
                    j += 1
                if j == len(text) or text[j] in ",)]":
                    self.pos = i + 1
                    return "".join(out)
            out.append(char)
            i += 1
        raise CallSyntaxError("a string is never closed", self.pos)


def _escape(text: str, i: int) -> tuple[str, int]:
    """Decode the backslash escape at ``text[i]``; returns the characters and the index after it."""
    nxt = text[i + 1]
    if nxt in _ESCAPES:
        return _ESCAPES[nxt], i + 2
    if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
        return chr(int(text[i + 2 : i + 6], 16)), i + 6
    # Unknown escapes keep their backslash, as Python does ("C:\data" stays as written).
    return "\\" + nxt, i + 2


def unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            decoded, i = _escape(body, i)
            out.append(decoded)
        else:
            out.append(body[i])
            i += 1
    return "".join(out)
