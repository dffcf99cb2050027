"""`content query|insert|delete`: the contacts, SMS and settings providers as rows.

``--where`` understands what scripts write in practice: ``col OP value`` terms (``= == != <> < > <= >=
LIKE``, ``IS [NOT] NULL``) joined by AND/OR (AND binds tighter), values quoted or bare numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from device_pool.sim.shell.registry import CommandContext, command

Row = dict[str, str | None]

_USAGE = """usage: adb shell content [subcommand] [options]

usage: adb shell content insert --uri <URI> [--user <USER_ID>] --bind <BINDING> [--bind <BINDING>...]
usage: adb shell content delete --uri <URI> [--user <USER_ID>] --where <WHERE>
usage: adb shell content query --uri <URI> [--user <USER_ID>] [--projection <PROJECTION>] [--where <WHERE>] [--sort <SORT_ORDER>]"""


class _ProviderError(Exception):
    def __init__(self, java_class: str, message: str) -> None:
        super().__init__(message)
        self.java_class = java_class
        self.message = message


def _contacts(ctx: CommandContext, with_number: bool) -> list[Row]:
    rows: list[Row] = []
    for c in ctx.phone.contacts():
        row: Row = {"_id": c.get("_id"), "display_name": c.get("display_name")}
        if with_number:
            row["number"] = c.get("number")
        rows.append(row)
    return rows


def _rows_for(ctx: CommandContext, uri: str) -> tuple[str, list[Row], dict[str, str]]:
    """(authority, rows, column aliases usable in projection/where) for a content URI."""
    m = re.fullmatch(r"content://([^/]+)(/.*)?", uri)
    if not m:
        raise _ProviderError("java.lang.IllegalArgumentException", f"Unknown URI {uri}")
    authority, path = m.group(1), (m.group(2) or "").rstrip("/")
    if authority in ("contacts", "com.android.contacts"):
        if path in ("/phones", "/data/phones", "/people/phones"):
            return authority, _contacts(ctx, True), {"data1": "number", "name": "display_name"}
        if path in ("/contacts", "/people", ""):
            return authority, _contacts(ctx, False), {"name": "display_name"}
    if authority in ("sms", "mms-sms"):
        box = {"": "all", "/inbox": "inbox", "/sent": "sent"}.get(path)
        if box is not None:
            return authority, [dict(r) for r in ctx.phone.sms(box)], {}
    if authority == "settings" and path.lstrip("/") in ("system", "secure", "global"):
        entries = ctx.phone.settings_list(path.lstrip("/"))
        rows: list[Row] = [
            {"_id": str(i + 1), "name": k, "value": entries[k]} for i, k in enumerate(sorted(entries))
        ]
        return authority, rows, {}
    if authority not in ("contacts", "com.android.contacts", "sms", "mms-sms", "settings"):
        raise _ProviderError("java.lang.IllegalStateException", f"Could not find provider: {authority}")
    raise _ProviderError("java.lang.IllegalArgumentException", f"Unknown URL {uri}")


# ------------------------------------------------------------------------- where
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|<>|<=|>=|=|<|>|\(|\))|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)


def _tokens(where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(where):
        if not where[pos:].strip():
            break
        m = _TOKEN.match(where, pos)
        if not m:
            raise _ProviderError("android.database.sqlite.SQLiteException",
                                 f'unrecognized token: "{where[pos:].strip()}" (code 1 SQLITE_ERROR)')  # fmt: skip
        kind = m.lastgroup or "word"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _compile_where(where: str, column: Callable[[Row, str], str | None]) -> Callable[[Row], bool]:
    tokens = _tokens(where)
    clauses: list[list[Callable[[Row], bool]]] = [[]]
    i = 0

    def syntax(near: str) -> _ProviderError:
        return _ProviderError(
            "android.database.sqlite.SQLiteException", f'near "{near}": syntax error (code 1 SQLITE_ERROR)'
        )

    while i < len(tokens):
        kind, text = tokens[i]
        if kind != "word":
            raise syntax(text)
        name = text
        i += 1
        if i >= len(tokens):
            raise syntax(name)
        kind, op = tokens[i]
        upper = op.upper()
        if kind == "word" and upper == "IS":
            negate = i + 1 < len(tokens) and tokens[i + 1][1].upper() == "NOT"
            i += 2 if negate else 1
            if i >= len(tokens) or tokens[i][1].upper() != "NULL":
                raise syntax(op)
            i += 1
            clauses[-1].append(lambda r, n=name, neg=negate: (column(r, n) is None) != neg)
        else:
            negate = kind == "word" and upper == "NOT"
            if negate:
                i += 1
                if i >= len(tokens):
                    raise syntax("NOT")
                kind, op = tokens[i]
                upper = op.upper()
            if not (kind == "op" or upper == "LIKE") or i + 1 >= len(tokens):
                raise syntax(op)
            vkind, vtext = tokens[i + 1]
            if vkind == "str":
                value = vtext[1:-1].replace(vtext[0] * 2, vtext[0])
            elif vkind == "num":
                value = vtext
            else:
                raise syntax(vtext)
            i += 2
            clauses[-1].append(_comparison(name, upper, value, negate, column))
        if i < len(tokens):
            joiner = tokens[i][1].upper()
            if joiner == "OR":
                clauses.append([])
            elif joiner != "AND":
                raise syntax(tokens[i][1])
            i += 1
            if i >= len(tokens):
                raise _ProviderError(
                    "android.database.sqlite.SQLiteException", "incomplete input (code 1 SQLITE_ERROR)"
                )
    return lambda row: any(all(term(row) for term in clause) for clause in clauses if clause)


def _comparison(name: str, op: str, value: str, negate: bool,
                column: Callable[[Row, str], str | None]) -> Callable[[Row], bool]:  # fmt: skip
    def test(row: Row) -> bool:
        have = column(row, name)
        if have is None:
            return False
        if op == "LIKE":
            pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value)
            result = re.fullmatch(pattern, have, re.IGNORECASE | re.DOTALL) is not None
        else:
            a: str | float = have
            b: str | float = value
            try:
                a, b = float(have), float(value)
            except ValueError:
                pass
            result = {
                "=": a == b, "==": a == b, "!=": a != b, "<>": a != b,
                "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b,  # type: ignore[operator]
            }[op]  # fmt: skip
        return result != negate

    return test


# ------------------------------------------------------------------------ command
def _options(args: list[str]) -> dict[str, list[str]]:
    opts: dict[str, list[str]] = {}
    it = iter(args)
    for arg in it:
        if arg.startswith("--"):
            opts.setdefault(arg[2:], []).append(next(it, ""))
    return opts


@command("content")
def content(ctx: CommandContext) -> int:
    if not ctx.args:
        ctx.stdout.println(_USAGE)
        return 0
    sub, opts = ctx.args[0], _options(ctx.args[1:])
    uri = (opts.get("uri") or [""])[0]
    if sub not in ("query", "insert", "delete", "update"):
        ctx.stderr.println(_USAGE)
        ctx.stderr.println()
        ctx.stderr.println(f"[ERROR] Unsupported operation: {sub}")
        return 1
    if not uri:
        ctx.stderr.println(_USAGE)
        ctx.stderr.println()
        ctx.stderr.println("[ERROR] Content provider URI not specified. Did you specify --uri argument?")
        return 1
    authority = uri.removeprefix("content://").split("/", 1)[0]
    try:
        if sub == "query":
            _query(ctx, uri, opts)
        else:
            _write(ctx, sub, uri, opts)
    except _ProviderError as exc:
        ctx.stderr.println(f"Error while accessing provider:{authority}")
        ctx.stderr.println(f"{exc.java_class}: {exc.message}")
        ctx.stderr.println("\tat com.android.commands.content.Content$Command.execute(Content.java:530)")
        ctx.stderr.println("\tat com.android.commands.content.Content.main(Content.java:749)")
        return 1
    return 0


def _query(ctx: CommandContext, uri: str, opts: dict[str, list[str]]) -> None:
    _authority, rows, aliases = _rows_for(ctx, uri)
    known = set(rows[0]) if rows else set()

    def column(row: Row, name: str) -> str | None:
        real = aliases.get(name, name)
        if rows and real not in known:
            raise _ProviderError(
                "android.database.sqlite.SQLiteException", f"no such column: {name} (code 1 SQLITE_ERROR)"
            )
        return row.get(real)

    if opts.get("where"):
        test = _compile_where(opts["where"][0], column)
        rows = [r for r in rows if test(r)]
    if opts.get("sort"):
        parts = opts["sort"][0].split()
        key, descending = parts[0], len(parts) > 1 and parts[1].upper() == "DESC"

        def sort_key(r: Row) -> tuple[int, float | str]:
            v = column(r, key) or ""
            return (0, float(v)) if re.fullmatch(r"-?\d+(\.\d+)?", v) else (1, v)

        rows.sort(key=sort_key, reverse=descending)
    projection = (
        [p for p in opts["projection"][0].replace(",", ":").split(":") if p]
        if opts.get("projection")
        else None
    )
    if not rows:
        ctx.stdout.println("No result found.")
        return
    for index, row in enumerate(rows):
        names = projection or list(row)
        cells = []
        for name in names:
            value = column(row, name)
            cells.append(f"{name}={'NULL' if value is None else value}")
        ctx.stdout.println(f"Row: {index} " + ", ".join(cells))


def _binding(spec: str) -> tuple[str, str]:
    # --bind name:s:value (type letter ignored: settings store strings).
    name, _, rest = spec.partition(":")
    _type, _, value = rest.partition(":")
    return name, value


def _write(ctx: CommandContext, sub: str, uri: str, opts: dict[str, list[str]]) -> None:
    m = re.fullmatch(r"content://settings/(system|secure|global)/?", uri)
    if not m and _write_record(ctx, sub, uri, opts):
        return
    if not m:
        _rows_for(ctx, uri)  # unknown providers and paths fail as in a query
        raise _ProviderError("java.lang.UnsupportedOperationException", f"{sub} is not supported by {uri}")
    namespace = m.group(1)
    binds = dict(_binding(b) for b in opts.get("bind", []))
    if sub == "insert":
        if "name" not in binds:
            raise _ProviderError("java.lang.IllegalArgumentException", "name must not be null")
        ctx.phone.settings_put(namespace, binds["name"], binds.get("value", ""))
        return
    where = (opts.get("where") or [""])[0]
    rows = [{"name": k, "value": v} for k, v in ctx.phone.settings_list(namespace).items()]
    test = _compile_where(where, lambda r, n: r.get(n)) if where else (lambda r: True)
    for row in rows:
        if test(row):
            name = row["name"]
            if sub == "delete":
                ctx.phone.settings_delete(namespace, name)
            elif "value" in binds:
                ctx.phone.settings_put(namespace, name, binds["value"])


def _write_record(ctx: CommandContext, sub: str, uri: str, opts: dict[str, list[str]]) -> bool:
    """Inserts and deletes of contacts and SMS, as Android's providers take them from a shell: a contact
    through the legacy People table (``content://contacts/people``, columns ``name`` and ``number``),
    a message into ``content://sms/inbox`` or ``/sent`` (``address``, ``body``, ``date``, ``read``).
    False for any other URI (the caller refuses it as before)."""
    m = re.fullmatch(r"content://(contacts|com\.android\.contacts|sms)(/[a-z]+)?/?", uri)
    if m is None or sub not in ("insert", "delete"):
        return False
    authority, path = m.group(1), m.group(2) or ""
    binds = dict(_binding(b) for b in opts.get("bind", []))
    state = ctx.phone.state
    with ctx.phone._lock:  # the phone's state is shared with its apps: one lock
        if authority == "sms" and path in ("/inbox", "/sent", ""):
            if sub == "insert":
                if "address" not in binds or "body" not in binds:
                    raise _ProviderError("java.lang.IllegalArgumentException", "address and body are required")
                date = int(binds.get("date") or ctx.phone.now_ms())
                state.add_sms(binds["address"], binds["body"], sent=path == "/sent", date_ms=date,
                              read=binds.get("read", "1") != "0")  # fmt: skip
                return True
            return _delete_rows(ctx, opts, state.sms("sent" if path == "/sent" else "inbox" if path else "all"),
                                lambda row: state.delete_sms(row["_id"]))  # fmt: skip
        if authority != "sms" and path == "/people":
            if sub == "insert":
                if not binds.get("name"):
                    raise _ProviderError("java.lang.IllegalArgumentException", "name must not be empty")
                state.add_contact(binds["name"], binds.get("number", ""))
                return True
            return _delete_rows(ctx, opts, state.contacts(), lambda row: state.delete_contact(row["_id"]))
    return False


def _delete_rows(ctx: CommandContext, opts: dict[str, list[str]], rows: list[Row], delete: Callable[[Row], object]) -> bool:
    where = (opts.get("where") or [""])[0]
    test = _compile_where(where, lambda r, n: r.get({"name": "display_name"}.get(n, n))) if where else (lambda r: True)
    for row in rows:
        if test(row):
            delete(row)
    return True
