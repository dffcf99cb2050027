"""The phone shell's parser: words, quotes, operators, redirections, and mksh's syntax errors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_pool.sim.shell import ShellSyntaxError, parse
from device_pool.sim.shell.syntax import (
    AndOr,
    CommandSub,
    Lit,
    Param,
    Redirect,
    Script,
    SimpleCommand,
    Subshell,
    Word,
    iter_commands,
)


def _simple(script: Script, index: int = 0) -> SimpleCommand:
    cmd = script.items[index].first.commands[0]
    assert isinstance(cmd, SimpleCommand)
    return cmd


def _literal_words(cmd: SimpleCommand) -> list[str | None]:
    return [w.literal() for w in cmd.words]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("echo hi", ["echo", "hi"]),
        ("  echo   a\tb  ", ["echo", "a", "b"]),
        ("input text 'hello world'", ["input", "text", "hello world"]),
        ('echo "a  b" c', ["echo", "a  b", "c"]),
        (r"echo a\ b", ["echo", "a b"]),
        (r"echo \'x\'", ["echo", "'x'"]),
        ("echo 'it'\\''s'", ["echo", "it's"]),
        (r'echo "q\"uote\\d"', ["echo", 'q"uote\\d']),
        (r'echo "keep\n"', ["echo", "keep\\n"]),
        ("echo ''", ["echo", ""]),
        ('echo ""', ["echo", ""]),
        ("echo a#b #comment", ["echo", "a#b"]),
        ("echo 'a;b' \"c|d\"", ["echo", "a;b", "c|d"]),
        ("echo $", ["echo", "$"]),
        ("echo a\\\nb", ["echo", "ab"]),
    ],
)
def test_words_and_quotes(line: str, words: list[str]) -> None:
    assert _literal_words(_simple(parse(line))) == words


def test_quoted_and_unquoted_parts_are_kept_apart() -> None:
    word = _simple(parse("echo ab'*'\"$X\""))
    assert word.words[1].parts == (Lit("ab", False), Lit("*", True), Param("X", True))


def test_operators_build_and_or_lists() -> None:
    script = parse("a && b || c; d & e")
    assert len(script.items) == 3
    first = script.items[0]
    assert isinstance(first, AndOr)
    assert [op for op, _ in first.rest] == ["&&", "||"]


def test_pipeline_and_negation() -> None:
    script = parse("! dumpsys window | grep -E 'mCurrentFocus|mFocusedApp' | head -n 1")
    pipeline = script.items[0].first
    assert pipeline.negated
    assert len(pipeline.commands) == 3
    grep = pipeline.commands[1]
    assert isinstance(grep, SimpleCommand)
    assert _literal_words(grep) == ["grep", "-E", "mCurrentFocus|mFocusedApp"]


def test_parameters() -> None:
    cmd = _simple(parse("echo $? $HOME ${USER} ${NOPE:-dflt} $1x"))
    parts = [w.parts for w in cmd.words[1:]]
    assert parts[0] == (Param("?", False),)
    assert parts[1] == (Param("HOME", False),)
    assert parts[2] == (Param("USER", False),)
    assert parts[3] == (Param("NOPE", False, Word((Lit("dflt", False),))),)
    assert parts[4] == (Param("1", False), Lit("x", False))


def test_command_substitution() -> None:
    cmd = _simple(parse('echo "serial=$(getprop ro.serialno)" `id -u`'))
    inner = cmd.words[1].parts[1]
    assert isinstance(inner, CommandSub) and inner.quoted
    assert _literal_words(_simple(inner.body)) == ["getprop", "ro.serialno"]
    backtick = cmd.words[2].parts[0]
    assert isinstance(backtick, CommandSub) and not backtick.quoted


@pytest.mark.parametrize(
    ("line", "redirects"),
    [
        ("ls > /sdcard/x", [Redirect(1, ">", Word((Lit("/sdcard/x", False),)))]),
        ("ls >>/sdcard/x", [Redirect(1, ">>", Word((Lit("/sdcard/x", False),)))]),
        ("ls 2>/dev/null", [Redirect(2, ">", Word((Lit("/dev/null", False),)))]),
        (
            "ls >/dev/null 2>&1",
            [Redirect(1, ">", Word((Lit("/dev/null", False),))), Redirect(2, ">&", Word((Lit("1", False),)))],
        ),
        ("cat < /x", [Redirect(0, "<", Word((Lit("/x", False),)))]),
        ("ls &>/x", [Redirect(1, "&>", Word((Lit("/x", False),)))]),
        ("ls >| /x", [Redirect(1, ">", Word((Lit("/x", False),)))]),
    ],
)
def test_redirections(line: str, redirects: list[Redirect]) -> None:
    cmd = _simple(parse(line))
    assert list(cmd.redirects) == redirects
    assert [w.literal() for w in cmd.words] == [line.split()[0]]


def test_digits_glued_to_a_word_are_an_argument() -> None:
    cmd = _simple(parse("echo a2>x"))
    assert _literal_words(cmd) == ["echo", "a2"]
    assert cmd.redirects[0].fd == 1


def test_assignments_only_before_the_command_name() -> None:
    cmd = _simple(parse("A=1 B='x y' env C=2"))
    assert [name for name, _ in cmd.assignments] == ["A", "B"]
    assert _literal_words(cmd) == ["env", "C=2"]


def test_subshell() -> None:
    script = parse("(cd /sdcard; ls) > /x")
    sub = script.items[0].first.commands[0]
    assert isinstance(sub, Subshell)
    assert len(sub.body.items) == 2
    assert sub.redirects[0].op == ">"


def test_empty_input_is_an_empty_script() -> None:
    assert parse("") == Script(())
    assert parse("  # just a comment\n\n") == Script(())


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (";;", "syntax error: unexpected ';;'"),
        ("echo a;;", "syntax error: unexpected ';;'"),
        ("; echo", "syntax error: unexpected ';'"),
        ("&& echo", "syntax error: unexpected '&&'"),
        ("| grep x", "syntax error: unexpected '|'"),
        ("echo a &&", "syntax error: unexpected EOF"),
        ("echo a |", "syntax error: unexpected EOF"),
        ("echo >", "syntax error: unexpected EOF"),
        ("echo > ;", "syntax error: unexpected ';'"),
        ("echo )", "syntax error: unexpected ')'"),
        ("(echo", "syntax error: unmatched '('"),
        ("echo $(ls", "syntax error: unmatched '('"),
        ("echo 'abc", "no closing quote"),
        ('echo "abc', "no closing quote"),
        ("echo `abc", "no closing quote"),
    ],
)
def test_syntax_errors_read_like_mksh(line: str, message: str) -> None:
    with pytest.raises(ShellSyntaxError) as info:
        parse(line)
    assert info.value.message == message


def test_iter_commands_yields_line_by_line_before_a_later_error() -> None:
    chunks = iter_commands("echo one\necho two ;;")
    first = next(chunks)
    assert _literal_words(_simple(first)) == ["echo", "one"]
    with pytest.raises(ShellSyntaxError):
        next(chunks)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(ShellSyntaxError):
        parse("(" * 500 + "echo" + ")" * 500)
    with pytest.raises(ShellSyntaxError):
        parse("echo " + "${A:-" * 500 + "x" + "}" * 500)


_SHELLISH = st.text(alphabet=st.sampled_from(list("ab $?{}()'\"\\`;&|<>!#*=-12\n\t")), max_size=40)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_SHELLISH, st.text(max_size=60)))
def test_random_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        parse(text)
    except ShellSyntaxError as exc:
        assert exc.message
