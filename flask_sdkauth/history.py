"""Appending to a session's history inside the statement that writes it.

A session's ``history`` is a JSON array that several writers extend: the launch
records the channels it tried, delivery reports arrive from a gateway's webhook,
the sweep notes a lost launch. Reading the array, adding to it in Python and
writing it back would lose the entries of a writer that came in between, so the
store appends in SQL, one statement per change, with a dialect's own JSON
functions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["REASON_LIMIT", "HistoryAppend", "history_entry"]

#: Characters of a failure's or a report's reason kept in the history.
REASON_LIMIT = 500


def history_entry(
    index: int | None,
    channel: str | None,
    at: datetime,
    outcome: str,
    reason: str | None,
    **details: Any,
) -> dict[str, Any]:
    """One entry of a session's history: what happened to the channel at
    position ``index`` (``outcome``: sent, failed, timeout, retry, skipped,
    refused, fallback, lost, report), and why. ``reason`` must hold no secret."""
    return {
        "index": index,
        "channel": channel,
        "outcome": outcome,
        "reason": reason,
        "at": at.isoformat(),
        **details,
    }


class HistoryAppend(FunctionElement[Any]):
    """``column`` with the entries of ``entries`` (a bound JSON array text, never
    empty) added at its end."""

    type = sa.JSON()
    inherit_cache = True
    name = "history_append"


@compiles(HistoryAppend, "postgresql")
def _postgresql(element: HistoryAppend, compiler: SQLCompiler, **kw: Any) -> str:
    column, entries = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(CAST({column} AS JSONB) || CAST({entries} AS JSONB) AS JSON)"


@compiles(HistoryAppend, "sqlite")
def _sqlite(element: HistoryAppend, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite has no array concatenation: join the two minified texts, "[a,b]" and
    # "[c]" into "[a,b,c]". json() minifies and checks the result.
    column, entries = (compiler.process(clause, **kw) for clause in element.clauses)
    return (
        f"json(CASE WHEN json_array_length({column}) = 0 THEN json({entries}) "
        f"ELSE substr(json({column}), 1, length(json({column})) - 1) "
        f"|| ',' || substr(json({entries}), 2) END)"
    )


@compiles(HistoryAppend)
def _other(element: HistoryAppend, compiler: SQLCompiler, **kw: Any) -> str:
    raise sa.exc.CompileError(
        "flask-sdkauth stores sessions on SQLite and PostgreSQL only; "
        f"{compiler.dialect.name} has no history append"
    )
