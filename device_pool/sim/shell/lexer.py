"""The phone shell's lexer: source text -> tokens (operators, redirections, words with their quoting).

Words keep their parts (literal text, quoted or not; ``$VAR`` and ``${VAR:-word}``; command
substitutions), because expansion needs them; the grammar (``syntax.py``) builds commands from the
tokens and parses the bodies of command substitutions for the lexer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from device_pool.sim.shell.tree import CommandSub, Lit, Param, Script, Word, WordPart


class ShellSyntaxError(Exception):
    """The command line is not valid shell; ``message`` is what mksh prints after its name."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Token kinds produced by the lexer.
WORD, OP, REDIR, NEWLINE, EOF = "word", "op", "redir", "newline", "eof"
_OPERATORS = ("&&", "||", ";;", ";", "&", "|", "(", ")")
_METACHARS = frozenset(" \t\n;&|()<>")
_REDIR_RE = re.compile(r"(\d*)(>>|>&|>\||<&|<<|<>|&>|>|<)")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_PARAMS = frozenset("?$#!-@*0123456789")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str  # operator text, or the source text of a word (for error messages)
    word: Word | None = None
    redirect_fd: int | None = None


class Lexer:
    """Tokens of ``src`` from ``pos``; ``depth`` bounds the nesting of substitutions and ``${...}``."""

    def __init__(self, src: str, pos: int = 0, depth: int = 0, in_parens: bool = False) -> None:
        self.src = src
        self.pos = pos
        self.depth = depth  # nesting level of subshells, substitutions and ${...}
        self.in_parens = in_parens  # EOF here means an unmatched "("
        self._peeked: Token | None = None
        if depth > 64:
            # Deep nesting only comes from hostile input; refuse it before Python's stack does.
            raise ShellSyntaxError("syntax error: nesting too deep")

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._lex()
        return self._peeked

    def take(self) -> Token:
        tok = self.peek()
        self._peeked = None
        return tok

    def _lex(self) -> Token:
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
            return Token(EOF, "EOF")
        c = src[self.pos]
        if c == "\n":
            self.pos += 1
            return Token(NEWLINE, "newline")
        m = _REDIR_RE.match(src, self.pos)
        if m and (m.group(1) == "" or len(m.group(1)) < 3):
            op = m.group(2)
            if op in ("<<", "<>"):
                raise ShellSyntaxError(f"syntax error: '{op}' is not supported here")
            self.pos = m.end()
            fd = int(m.group(1)) if m.group(1) else (0 if op.startswith("<") else 1)
            return Token(REDIR, m.group(0), redirect_fd=fd)
        for op in _OPERATORS:
            if src.startswith(op, self.pos):
                self.pos += len(op)
                return Token(OP, op)
        start = self.pos
        word = self._word(stop=_METACHARS)
        return Token(WORD, src[start : self.pos], word=word)

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
            body, self.pos = self._substitution(src, self.pos, in_parens=True)
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
        body, _ = self._substitution("".join(inner), 0, in_parens=False)
        return CommandSub(body, quoted)

    def _substitution(self, src: str, pos: int, *, in_parens: bool) -> tuple[Script, int]:
        """The commands of a substitution: ``$(`` … up to its ``)`` (in_parens), or a whole backtick body.
        Returns them and the position after them; the grammar (``syntax.py``) provides it."""
        raise NotImplementedError


__all__ = ["EOF", "NEWLINE", "OP", "REDIR", "WORD", "Lexer", "ShellSyntaxError", "Token"]
