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

from device_pool.sim.shell.lexer import EOF, NEWLINE, OP, REDIR, WORD, Lexer, ShellSyntaxError, Token
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

_ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")


class _Parser(Lexer):
    """mksh's grammar over the lexer's tokens: lists, and-or lists, pipelines, commands, redirections."""

    def _substitution(self, src: str, pos: int, *, in_parens: bool) -> tuple[Script, int]:
        sub = _Parser(src, pos, self.depth + 1, in_parens=in_parens)
        body = sub.parse_list(closing=")") if in_parens else sub.parse_all()
        return body, sub.pos

    def _unexpected(self, tok: Token) -> ShellSyntaxError:
        if tok.kind == EOF:
            if self.in_parens:
                return ShellSyntaxError("syntax error: unmatched '('")
            return ShellSyntaxError("syntax error: unexpected EOF")
        return ShellSyntaxError(f"syntax error: unexpected '{tok.text}'")

    def _skip_newlines(self) -> None:
        while self.peek().kind == NEWLINE:
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
        if self.peek().kind == EOF:
            return None
        items = [self._and_or()]
        while True:
            tok = self.peek()
            if tok.kind in (NEWLINE, EOF):
                return Script(tuple(items))
            if tok.kind == OP and tok.text in (";", "&"):
                self.take()
                nxt = self.peek()
                if nxt.kind in (NEWLINE, EOF):
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
            if tok.kind == OP and tok.text == closing and items:
                self.take()
                return Script(tuple(items))
            items.append(self._and_or())
            tok = self.peek()
            if tok.kind == OP and tok.text in (";", "&"):
                self.take()
            elif tok.kind == NEWLINE or (tok.kind == OP and tok.text == closing):
                continue
            else:
                raise self._unexpected(tok)

    def _and_or(self) -> AndOr:
        first = self._pipeline()
        rest: list[tuple[str, Pipeline]] = []
        while self.peek().kind == OP and self.peek().text in ("&&", "||"):
            op = self.take().text
            self._skip_newlines()
            rest.append((op, self._pipeline()))
        return AndOr(first, tuple(rest))

    def _pipeline(self) -> Pipeline:
        negated = False
        tok = self.peek()
        if tok.kind == WORD and tok.text == "!":
            self.take()
            negated = True
        commands = [self._command()]
        while self.peek().kind == OP and self.peek().text == "|":
            self.take()
            self._skip_newlines()
            commands.append(self._command())
        return Pipeline(tuple(commands), negated)

    def _command(self) -> Command:
        tok = self.peek()
        if tok.kind == OP and tok.text == "(":
            self.take()
            sub = _Parser(self.src, self.pos, self.depth + 1, in_parens=True)
            body = sub.parse_list(closing=")")
            self.pos = sub.pos
            return Subshell(body, tuple(self._redirects()))
        return self._simple_command()

    def _redirects(self) -> list[Redirect]:
        redirects: list[Redirect] = []
        while self.peek().kind == REDIR:
            redirects.append(self._redirect())
        return redirects

    def _redirect(self) -> Redirect:
        tok = self.take()
        target = self.take()
        if target.kind != WORD or target.word is None:
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
            if tok.kind == REDIR:
                redirects.append(self._redirect())
            elif tok.kind == WORD and tok.word is not None:
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
