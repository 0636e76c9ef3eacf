"""A flask-smorest blueprint that answers and documents only the contract's errors.

Bad input of any kind is the spec's ``ValidateError``; a wrong method or an unknown
path of ours is answered in the contract's JSON shape; the OpenAPI document lists
only the responses our routes really give.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from itertools import groupby
from typing import Any, NoReturn, TypeVar, cast

import flask
import flask_smorest  # type: ignore[import-untyped]  # no type hints of its own
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from .errors import (
    BadRequestException,
    InternalServerErrorException,
    NoConnectionException,
    RequestNotFoundException,
    SdkAuthError,
    UnauthorizedException,
    ValidateError,
)
from .schemas import ErrorDto

__all__ = ["SECURITY_SCHEME", "MethodNotAllowedError", "SdkAuthBlueprint"]

#: Name of the bearer security scheme in the OpenAPI document.
SECURITY_SCHEME = "sdkauthBearer"

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("flask_sdkauth")


class MethodNotAllowedError(BadRequestException):
    """A method our path does not serve: 405 with ``Allow``.

    ``errors.json`` has no type for it, so it is the generic ``BadRequestException``.
    """

    type = "BadRequestException"
    http_status = 405

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(headers={"Allow": ", ".join(sorted(allowed))})


def _invalid_json(reason: object) -> ValidateError:
    # The reason is logged (without a traceback: it is the client's mistake, not ours).
    logger.info("sdkauth: unreadable JSON body (%s)", reason)
    return ValidateError({"json": ["Invalid JSON body."]})


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def decode_json(data: bytes) -> Any:
    """Parse a body as strict JSON (RFC 8259): UTF-8 without BOM, no ``NaN``, no lone
    surrogates; nesting and number sizes Python cannot take are refused too.

    :raises ValidateError: ``{"json": ["Invalid JSON body."]}``.
    """
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
        # Escaped lone surrogates ("\\ud800") parse but cannot be stored or hashed.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeError, digits
        raise _invalid_json(type(exc).__name__) from None
    return value


class _Parser(FlaskParser):
    """webargs' parser, raising :class:`ValidateError` (400) instead of aborting 422."""

    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: flask.Request) -> Any:
        data = req.get_data(cache=True)
        if not is_json_request(req) or not data:  # no body is missing fields, not bad JSON
            return core.missing
        return decode_json(data)

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        limit = _body_limit()
        too_large = ValidateError({"json": ["Request body is too large."]})
        if req.content_length is not None and req.content_length > limit:
            raise too_large
        # A chunked body has no Content-Length: read at most one byte past the limit.
        req.max_content_length = limit + 1
        try:
            if len(req.get_data(cache=True)) > limit:
                raise too_large
        except RequestEntityTooLarge as exc:
            raise too_large from exc
        return super().load_json(req, schema)

    def load_querystring(self, req: flask.Request, schema: ma.Schema) -> Any:
        if len(req.query_string) > _body_limit():
            raise ValidateError({"query": ["Query string is too large."]})
        _refuse_repeated(req.args, schema, "query")
        return super().load_querystring(req, schema)

    def load_form(self, req: flask.Request, schema: ma.Schema) -> Any:
        limit = _body_limit()
        if req.content_length is not None and req.content_length > limit:
            raise ValidateError({"form": ["Request body is too large."]})
        req.max_content_length = req.max_form_memory_size = limit + 1
        try:
            form = req.form
        except HTTPException as exc:  # too large, or a broken multipart body
            raise ValidateError({"form": ["Invalid form body."]}) from exc
        _refuse_repeated(form, schema, "form")
        return super().load_form(req, schema)

    def handle_error(
        self,
        error: ma.ValidationError,
        req: flask.Request,
        schema: ma.Schema,
        *,
        error_status_code: int | None,
        error_headers: Any,
    ) -> NoReturn:
        raise ValidateError(error.messages)


def _body_limit() -> int:
    return int(flask.current_app.extensions["sdkauth"].settings.max_body_size)


def _refuse_repeated(values: MultiDict[str, str], schema: ma.Schema, location: str) -> None:
    """One value per field: ``?recipient=a&recipient=b`` is ambiguous, so refused."""
    repeated = {
        name: ["Repeated parameter."]
        for name, field in schema.fields.items()
        if len(values.getlist(field.data_key or name)) > 1
    }
    if repeated:
        raise ValidateError({location: repeated})


class SdkAuthBlueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # untyped base
    ARGUMENTS_PARSER = _Parser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(_drop_smorest_responses)

    # flask-smorest ships no type hints: these say that its decorators return the
    # view they were given, so the views keep their signatures under mypy.

    def route(self, rule: str, **options: Any) -> Callable[[F], F]:
        return cast("Callable[[F], F]", super().route(rule, **options))

    def arguments(self, schema: Any, **kwargs: Any) -> Callable[[F], F]:
        return cast("Callable[[F], F]", super().arguments(schema, **kwargs))

    def response(self, status_code: int, schema: Any = None, **kwargs: Any) -> Callable[[F], F]:
        return cast("Callable[[F], F]", super().response(status_code, schema, **kwargs))

    def alt_response(self, status_code: int, **kwargs: Any) -> Callable[[F], F]:
        return cast("Callable[[F], F]", super().alt_response(status_code, **kwargs))

    def doc(self, **kwargs: Any) -> Callable[[F], F]:
        return cast("Callable[[F], F]", super().doc(**kwargs))

    def before_request(self, view: F) -> F:
        return cast(F, super().before_request(view))

    def errorhandler(self, code_or_exception: Any) -> Callable[[F], F]:
        return cast("Callable[[F], F]", super().errorhandler(code_or_exception))

    def operation(
        self, operation_id: str, *errors: type[SdkAuthError]
    ) -> Callable[[F], F]:
        """Document an operation: its id, bearer security and every error it returns.

        Errors sharing a status are documented together, their types listed in the
        description; 401, 404 ``RequestNotFoundException`` (a disabled operation),
        500 and 503 are added to every operation.
        """

        def decorator(view: F) -> F:
            view = self.doc(operationId=operation_id, security=[{SECURITY_SCHEME: []}])(view)
            always: tuple[type[SdkAuthError], ...] = (UnauthorizedException, *ALWAYS)
            documented = sorted({*errors, *always}, key=_by_status_and_type)
            for status, group in groupby(documented, key=_by_status):
                types = ", ".join(error.type for error in group)
                view = self.alt_response(status, schema=ErrorDto, description=types)(view)
            return view

        return decorator

    def refuse_unrouted(self) -> None:
        """App-level ``before_request``: a wrong method on one of our paths, or an
        unknown path under a non-empty ``SDKAUTH_URL_PREFIX``, raises our own error
        (Flask would raise the routing exception after this hook). Any other path
        keeps the host's handling."""
        error = flask.request.routing_exception
        if isinstance(error, MethodNotAllowed):
            methods = list(error.valid_methods or [])
            if self._serves(methods):
                raise MethodNotAllowedError(methods)
        if isinstance(error, NotFound) and self._under_prefix(flask.request.path):
            raise RequestNotFoundException()

    def _serves(self, methods: list[str]) -> bool:
        adapter = flask.current_app.create_url_adapter(flask.request)
        if adapter is None:
            return False
        for method in methods:
            try:
                rule, _ = adapter.match(method=method, return_rule=True)
            except HTTPException:
                continue
            if rule.endpoint.startswith(f"{self.name}."):
                return True
        return False

    def _under_prefix(self, path: str) -> bool:
        prefix: str = flask.current_app.extensions["sdkauth"].settings.url_prefix
        return bool(prefix) and (path == prefix or path.startswith(f"{prefix}/"))


#: Errors every operation can answer, whatever it does.
ALWAYS: tuple[type[SdkAuthError], ...] = (
    RequestNotFoundException,
    InternalServerErrorException,
    NoConnectionException,
)


def _drop_smorest_responses(doc: dict[str, Any], doc_info: Any, **kwargs: Any) -> Any:
    """Remove smorest's own responses (``default`` error, 400/422 of the arguments):
    they name its ``Error`` schema, which our routes never return."""
    responses = doc.get("responses", {})
    for status in [status for status, value in responses.items() if isinstance(value, str)]:
        del responses[status]
    return doc


def _by_status(error: type[SdkAuthError]) -> int:
    return error.http_status


def _by_status_and_type(error: type[SdkAuthError]) -> tuple[int, str]:
    return error.http_status, error.type
