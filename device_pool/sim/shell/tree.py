"""The shell's syntax tree: what the parser (syntax.py) builds and the interpreter walks."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AndOr",
    "Command",
    "CommandSub",
    "Lit",
    "Param",
    "Pipeline",
    "Redirect",
    "Script",
    "SimpleCommand",
    "Subshell",
    "Word",
    "WordPart",
]


@dataclass(frozen=True)
class Lit:
    text: str
    quoted: bool  # quoted text is neither field-split nor globbed


@dataclass(frozen=True)
class Param:
    name: str  # "?", "$", "#", "0".."9", "@", "*", or a variable name
    quoted: bool
    default: Word | None = None  # ${NAME:-default}


@dataclass(frozen=True)
class CommandSub:
    body: Script
    quoted: bool


WordPart = Lit | Param | CommandSub


@dataclass(frozen=True)
class Word:
    parts: tuple[WordPart, ...]

    def literal(self) -> str | None:
        """The word's text when it holds no expansions, else None."""
        if all(isinstance(p, Lit) for p in self.parts):
            return "".join(p.text for p in self.parts)  # type: ignore[union-attr]
        return None


@dataclass(frozen=True)
class Redirect:
    fd: int
    op: str  # "<", ">", ">>", ">&", "<&", "&>"
    target: Word


@dataclass(frozen=True)
class SimpleCommand:
    assignments: tuple[tuple[str, Word], ...]
    words: tuple[Word, ...]
    redirects: tuple[Redirect, ...]


@dataclass(frozen=True)
class Subshell:
    body: Script
    redirects: tuple[Redirect, ...]


Command = SimpleCommand | Subshell


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Command, ...]
    negated: bool = False


@dataclass(frozen=True)
class AndOr:
    first: Pipeline
    rest: tuple[tuple[str, Pipeline], ...] = ()  # ("&&" | "||", pipeline)


@dataclass(frozen=True)
class Script:
    items: tuple[AndOr, ...]
