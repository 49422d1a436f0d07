"""Kore's ``$1, $2, ...`` parameters on top of psycopg2's ``%s`` placeholders.

Kore sends a query and its parameters separately (``PQsendQueryParams``), so
applications write PostgreSQL's numbered placeholders.  psycopg2 interpolates
parameters on the client side with ``%s`` markers, so a query is rewritten
once (and cached): ``$N`` outside string literals, quoted identifiers,
dollar-quoted strings and comments becomes ``%s``, and every literal ``%``
becomes ``%%``.  The order in which the ``$N`` appear gives the order of the
values passed to psycopg2, so ``$2 ... $1 ... $2`` works.
"""

import functools

_IDENT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _dollar_tag(sql, i):
    """If a dollar-quote tag (``$$`` or ``$tag$``) starts at ``i``, return it."""
    j = i + 1
    n = len(sql)
    if j < n and sql[j] == "$":
        return "$$"
    if j < n and (sql[j].isalpha() or sql[j] == "_"):
        while j < n and (sql[j] in _IDENT or ord(sql[j]) > 127):
            j += 1
        if j < n and sql[j] == "$":
            return sql[i:j + 1]
    return None


@functools.lru_cache(maxsize=512)
def translate(sql):
    """Return ``(psycopg2_sql, order)``: ``order`` lists the 0-based index of
    the parameter for each ``%s`` in ``psycopg2_sql``.

    Only used for queries with parameters: without them the query is sent
    unchanged (psycopg2 then leaves ``%`` alone), as Kore sends a
    parameterless query with ``PQsendQuery``."""
    out = []
    order = []
    i = 0
    n = len(sql)
    start = 0
    while i < n:
        c = sql[i]
        if c == "'":
            # '...' with '' escapes; E'...' also has backslash escapes
            backslash = i > 0 and sql[i - 1] in "eE" and (
                i < 2 or sql[i - 2] not in _IDENT)
            i += 1
            while i < n:
                if backslash and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == "'":
                    if i + 1 < n and sql[i + 1] == "'":
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif c == '"':
            end = sql.find('"', i + 1)
            while end != -1 and end + 1 < n and sql[end + 1] == '"':
                end = sql.find('"', end + 2)
            i = n if end == -1 else end + 1
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
        elif c == "/" and sql.startswith("/*", i):
            depth = 1
            i += 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth += 1
                    i += 2
                elif sql.startswith("*/", i):
                    depth -= 1
                    i += 2
                else:
                    i += 1
        elif c == "$":
            if i + 1 < n and sql[i + 1].isdigit() and (i == 0 or sql[i - 1] not in _IDENT):
                j = i + 1
                while j < n and sql[j].isdigit():
                    j += 1
                out.append(sql[start:i].replace("%", "%%"))
                out.append("%s")
                order.append(int(sql[i + 1:j]) - 1)
                i = start = j
                continue
            tag = None if (i > 0 and sql[i - 1] in _IDENT) else _dollar_tag(sql, i)
            if tag is None:
                i += 1
            else:
                end = sql.find(tag, i + len(tag))
                i = n if end == -1 else end + len(tag)
        else:
            i += 1
    out.append(sql[start:].replace("%", "%%"))
    return "".join(out), tuple(order)

