"""The phone shell's grammar: source text -> a tree of commands, as Android's mksh reads it.

Supported: words with single/double quotes and backslash escapes, ``$?``/``$VAR``/``${VAR}``/
``${VAR:-word}``, ``$(...)`` and backtick command substitution, ``;``, ``&``, newlines, ``&&``,
``||``, ``|``, ``!``, ``( ... )`` subshells, comments, and the redirections ``< > >> >| N> N>&M
&>``. Here-documents and arithmetic are refused with a :class:`ShellSyntaxError`.

Errors carry the text mksh prints after ``/system/bin/sh: `` (for example
``syntax error: unexpected ';;'``, ``syntax error: unexpected EOF``, ``no closing quote``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from device_pool.sim.shell.tree import (
    AndOr,
    Command,
    CommandSub,
    Lit,
    Param,
    Pipeline,
    Redirect,
    Script,
    SimpleCommand,
    Subshell,
    Word,
    WordPart,
)

__all__ = [
    "AndOr",
    "CommandSub",
    "Lit",
    "Param",
    "Pipeline",
    "Redirect",
    "Script",
    "ShellSyntaxError",
    "SimpleCommand",
    "Subshell",
    "Word",
    "iter_commands",
    "parse",
]


class ShellSyntaxError(Exception):
    """The command line is not valid shell; ``message`` is what mksh prints after its name."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Token kinds produced by the lexer.
_WORD, _OP, _REDIR, _NEWLINE, _EOF = "word", "op", "redir", "newline", "eof"
_OPERATORS = ("&&", "||", ";;", ";", "&", "|", "(", ")")
_METACHARS = frozenset(" \t\n;&|()<>")
_REDIR_RE = re.compile(r"(\d*)(>>|>&|>\||<&|<<|<>|&>|>|<)")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_SPECIAL_PARAMS = frozenset("?$#!-@*0123456789")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str  # operator text, or the source text of a word (for error messages)
    word: Word | None = None
    redirect_fd: int | None = None


class _Parser:
    def __init__(self, src: str, pos: int = 0, depth: int = 0, in_parens: bool = False) -> None:
        self.src = src
        self.pos = pos
        self.depth = depth  # nesting level of subshells, substitutions and ${...}
        self.in_parens = in_parens  # EOF here means an unmatched "("
        self._peeked: _Token | None = None
        if depth > 64:
            # Deep nesting only comes from hostile input; refuse it before Python's stack does.
            raise ShellSyntaxError("syntax error: nesting too deep")

    # ----------------------------------------------------------------- lexer
    def peek(self) -> _Token:
        if self._peeked is None:
            self._peeked = self._lex()
        return self._peeked

    def take(self) -> _Token:
        tok = self.peek()
        self._peeked = None
        return tok

    def _lex(self) -> _Token:
        src = self.src
        while self.pos < len(src):
            c = src[self.pos]
            if c in " \t":
                self.pos += 1
            elif src.startswith("\\\n", self.pos):
                self.pos += 2  # line continuation
            elif c == "#":
                end = src.find("\n", self.pos)
                self.pos = len(src) if end < 0 else end
            else:
                break
        if self.pos >= len(src):
            return _Token(_EOF, "EOF")
        c = src[self.pos]
        if c == "\n":
            self.pos += 1
            return _Token(_NEWLINE, "newline")
        m = _REDIR_RE.match(src, self.pos)
        if m and (m.group(1) == "" or len(m.group(1)) < 3):
            op = m.group(2)
            if op in ("<<", "<>"):
                raise ShellSyntaxError(f"syntax error: '{op}' is not supported here")
            self.pos = m.end()
            fd = int(m.group(1)) if m.group(1) else (0 if op.startswith("<") else 1)
            return _Token(_REDIR, m.group(0), redirect_fd=fd)
        for op in _OPERATORS:
            if src.startswith(op, self.pos):
                self.pos += len(op)
                return _Token(_OP, op)
        start = self.pos
        word = self._word(stop=_METACHARS)
        return _Token(_WORD, src[start : self.pos], word=word)

    def _word(self, stop: frozenset[str]) -> Word:
        parts: list[WordPart] = []
        buf: list[str] = []

        def flush() -> None:
            if buf:
                parts.append(Lit("".join(buf), quoted=False))
                buf.clear()

        src = self.src
        while self.pos < len(src):
            c = src[self.pos]
            if c in stop:
                break
            if c == "\\":
                nxt = src[self.pos + 1 : self.pos + 2]
                self.pos += 2
                if nxt == "\n":
                    continue
                flush()
                parts.append(Lit(nxt or "\\", quoted=True))
            elif c == "'":
                end = src.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("no closing quote")
                flush()
                parts.append(Lit(src[self.pos + 1 : end], quoted=True))
                self.pos = end + 1
            elif c == '"':
                flush()
                self.pos += 1
                parts.extend(self._double_quoted())
            elif c == "$":
                flush()
                parts.append(self._dollar(quoted=False))
            elif c == "`":
                flush()
                parts.append(self._backtick(quoted=False))
            else:
                buf.append(c)
                self.pos += 1
        flush()
        return Word(tuple(parts))

    def _double_quoted(self) -> list[WordPart]:
        parts: list[WordPart] = []
        buf: list[str] = []
        src = self.src
        while True:
            if self.pos >= len(src):
                raise ShellSyntaxError("no closing quote")
            c = src[self.pos]
            if c == '"':
                self.pos += 1
                break
            if c == "\\" and src[self.pos + 1 : self.pos + 2] in ("$", "`", '"', "\\", "\n"):
                if src[self.pos + 1] != "\n":
                    buf.append(src[self.pos + 1])
                self.pos += 2
            elif c in "$`":
                if buf:
                    parts.append(Lit("".join(buf), quoted=True))
                    buf.clear()
                parts.append(self._dollar(quoted=True) if c == "$" else self._backtick(quoted=True))
            else:
                buf.append(c)
                self.pos += 1
        # An empty "" still makes a (empty) field, so always leave at least one quoted part.
        if buf or not parts:
            parts.append(Lit("".join(buf), quoted=True))
        return parts

    def _dollar(self, quoted: bool) -> WordPart:
        src = self.src
        self.pos += 1  # the "$"
        nxt = src[self.pos : self.pos + 1]
        if src.startswith("((", self.pos):
            raise ShellSyntaxError("syntax error: arithmetic expansion is not supported")
        if nxt == "(":
            self.pos += 1
            sub = _Parser(src, self.pos, self.depth + 1, in_parens=True)
            body = sub.parse_list(closing=")")
            self.pos = sub.pos
            return CommandSub(body, quoted)
        if nxt == "{":
            return self._braced(quoted)
        if nxt and nxt in _SPECIAL_PARAMS:
            self.pos += 1
            return Param(nxt, quoted)
        m = _NAME_RE.match(src, self.pos)
        if m:
            self.pos = m.end()
            return Param(m.group(0), quoted)
        return Lit("$", quoted=True)  # a lone "$" is just a dollar sign

    def _braced(self, quoted: bool) -> WordPart:
        src = self.src
        self.pos += 1  # the "{"
        m = _NAME_RE.match(src, self.pos)
        if m:
            name = m.group(0)
            self.pos = m.end()
        elif src[self.pos : self.pos + 1] and src[self.pos] in _SPECIAL_PARAMS:
            name = src[self.pos]
            self.pos += 1
        else:
            raise ShellSyntaxError("${...}: bad substitution")
        default: Word | None = None
        if src.startswith(":-", self.pos) or src.startswith("-", self.pos):
            self.pos += 2 if src[self.pos] == ":" else 1
            self.depth += 1
            if self.depth > 64:
                raise ShellSyntaxError("syntax error: nesting too deep")
            default = self._word(stop=frozenset("}"))
            self.depth -= 1
        if src[self.pos : self.pos + 1] != "}":
            raise ShellSyntaxError("${...}: bad substitution" if self.pos < len(src) else "no closing quote")
        self.pos += 1
        return Param(name, quoted, default)

    def _backtick(self, quoted: bool) -> WordPart:
        src = self.src
        self.pos += 1
        inner: list[str] = []
        while True:
            if self.pos >= len(src):
                raise ShellSyntaxError("no closing quote")
            c = src[self.pos]
            if c == "`":
                self.pos += 1
                break
            if c == "\\" and src[self.pos + 1 : self.pos + 2] in ("`", "\\", "$"):
                inner.append(src[self.pos + 1])
                self.pos += 2
            else:
                inner.append(c)
                self.pos += 1
        body = _Parser("".join(inner), 0, self.depth + 1).parse_all()
        return CommandSub(body, quoted)

    # ---------------------------------------------------------------- parser
    def _unexpected(self, tok: _Token) -> ShellSyntaxError:
        if tok.kind == _EOF:
            if self.in_parens:
                return ShellSyntaxError("syntax error: unmatched '('")
            return ShellSyntaxError("syntax error: unexpected EOF")
        return ShellSyntaxError(f"syntax error: unexpected '{tok.text}'")

    def _skip_newlines(self) -> None:
        while self.peek().kind == _NEWLINE:
            self.take()

    def parse_all(self) -> Script:
        items: list[AndOr] = []
        while True:
            chunk = self.next_complete_command()
            if chunk is None:
                return Script(tuple(items))
            items.extend(chunk.items)

    def next_complete_command(self) -> Script | None:
        """One line's worth of commands (mksh runs each line before it reads the next), or None at EOF."""
        self._skip_newlines()
        if self.peek().kind == _EOF:
            return None
        items = [self._and_or()]
        while True:
            tok = self.peek()
            if tok.kind in (_NEWLINE, _EOF):
                return Script(tuple(items))
            if tok.kind == _OP and tok.text in (";", "&"):
                self.take()
                nxt = self.peek()
                if nxt.kind in (_NEWLINE, _EOF):
                    return Script(tuple(items))
                items.append(self._and_or())
                continue
            raise self._unexpected(tok)

    def parse_list(self, closing: str) -> Script:
        """Commands up to the matching ``closing`` operator (consumed), newlines allowed inside."""
        items: list[AndOr] = []
        while True:
            self._skip_newlines()
            tok = self.peek()
            if tok.kind == _OP and tok.text == closing and items:
                self.take()
                return Script(tuple(items))
            items.append(self._and_or())
            tok = self.peek()
            if tok.kind == _OP and tok.text in (";", "&"):
                self.take()
            elif tok.kind == _NEWLINE or (tok.kind == _OP and tok.text == closing):
                continue
            else:
                raise self._unexpected(tok)

    def _and_or(self) -> AndOr:
        first = self._pipeline()
        rest: list[tuple[str, Pipeline]] = []
        while self.peek().kind == _OP and self.peek().text in ("&&", "||"):
            op = self.take().text
            self._skip_newlines()
            rest.append((op, self._pipeline()))
        return AndOr(first, tuple(rest))

    def _pipeline(self) -> Pipeline:
        negated = False
        tok = self.peek()
        if tok.kind == _WORD and tok.text == "!":
            self.take()
            negated = True
        commands = [self._command()]
        while self.peek().kind == _OP and self.peek().text == "|":
            self.take()
            self._skip_newlines()
            commands.append(self._command())
        return Pipeline(tuple(commands), negated)

    def _command(self) -> Command:
        tok = self.peek()
        if tok.kind == _OP and tok.text == "(":
            self.take()
            sub = _Parser(self.src, self.pos, self.depth + 1, in_parens=True)
            body = sub.parse_list(closing=")")
            self.pos = sub.pos
            return Subshell(body, tuple(self._redirects()))
        return self._simple_command()

    def _redirects(self) -> list[Redirect]:
        redirects: list[Redirect] = []
        while self.peek().kind == _REDIR:
            redirects.append(self._redirect())
        return redirects

    def _redirect(self) -> Redirect:
        tok = self.take()
        target = self.take()
        if target.kind != _WORD or target.word is None:
            raise self._unexpected(target)
        op = tok.text.lstrip("0123456789")
        if op == ">|":
            op = ">"
        assert tok.redirect_fd is not None
        return Redirect(tok.redirect_fd, op, target.word)

    def _simple_command(self) -> SimpleCommand:
        assignments: list[tuple[str, Word]] = []
        words: list[Word] = []
        redirects: list[Redirect] = []
        while True:
            tok = self.peek()
            if tok.kind == _REDIR:
                redirects.append(self._redirect())
            elif tok.kind == _WORD and tok.word is not None:
                self.take()
                assignment = None if words else _as_assignment(tok.word)
                if assignment is not None:
                    assignments.append(assignment)
                else:
                    words.append(tok.word)
            else:
                break
        if not (assignments or words or redirects):
            raise self._unexpected(self.peek())
        return SimpleCommand(tuple(assignments), tuple(words), tuple(redirects))


def _as_assignment(word: Word) -> tuple[str, Word] | None:
    """``NAME=value`` (NAME unquoted) before the command name is an assignment, not an argument."""
    if not word.parts or not isinstance(word.parts[0], Lit) or word.parts[0].quoted:
        return None
    m = _ASSIGN_RE.match(word.parts[0].text)
    if not m:
        return None
    rest = word.parts[0].text[m.end() :]
    value_parts: tuple[WordPart, ...] = ((Lit(rest, quoted=False),) if rest else ()) + word.parts[1:]
    return m.group(1), Word(value_parts)


def parse(src: str) -> Script:
    """Parse a whole command line; raises ShellSyntaxError."""
    return _Parser(src).parse_all()


def iter_commands(src: str) -> Iterator[Script]:
    """Parse line by line, so that earlier lines run before a later line's syntax error is reported."""
    parser = _Parser(src)
    while True:
        chunk = parser.next_complete_command()
        if chunk is None:
            return
        yield chunk
