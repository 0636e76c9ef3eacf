"""Finding the host's routes that would answer in place of the extension's.

Werkzeug picks among matching rules by their shape, not by who registered first,
so with the default empty ``SDKAUTH_URL_PREFIX`` a host's ``POST /`` or
``/<slug>/status`` can take our requests without a word. Each of our rules is
matched with sample values for each of its methods; a host rule that wins is an
error at start-up rather than a widget that silently fails.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule, UUIDConverter
from werkzeug.routing.exceptions import RequestRedirect

__all__ = ["ShadowedRouteError", "find_shadowing"]


class ShadowedRouteError(RuntimeError):
    """A route of the host answers a request meant for the extension."""


def find_shadowing(app: Flask, endpoint_prefix: str) -> str | None:
    """A description of the first host rule that takes one of our requests, or
    ``None``. ``endpoint_prefix`` is our blueprint's name and a dot."""
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(endpoint_prefix):
            continue
        path = adapter.build(rule.endpoint, _sample_values(rule), append_unknown=False)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            try:
                winner, _ = adapter.match(path, method, return_rule=True)
            except (HTTPException, RequestRedirect):
                continue
            if not winner.endpoint.startswith(endpoint_prefix):
                return (
                    f"the app's rule {winner.rule!r} (endpoint {winner.endpoint!r}) "
                    f"answers {method} {path}, which is flask-sdkauth's {rule.endpoint!r}"
                )
    return None


def _sample_values(rule: Rule) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in rule.arguments:
        converter = rule._converters.get(name)
        values[name] = uuid.uuid4() if isinstance(converter, UUIDConverter) else "sample"
    return values
