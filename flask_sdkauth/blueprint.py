"""A flask-smorest blueprint that reports bad input as the spec's ``ValidateError``."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from typing import Any, NoReturn, TypeVar

import flask
import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .errors import (
    InternalServerErrorException,
    SdkAuthError,
    UnauthorizedException,
    ValidateError,
)
from .schemas import ErrorDto

__all__ = ["SECURITY_SCHEME", "SdkAuthBlueprint"]

#: Name of the bearer security scheme in the OpenAPI document.
SECURITY_SCHEME = "sdkauthBearer"

F = TypeVar("F", bound=Callable[..., Any])


class _Parser(FlaskParser):
    """webargs' parser, raising :class:`ValidateError` (400) instead of aborting 422."""

    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        limit = flask.current_app.extensions["sdkauth"].settings.max_body_size
        too_large = ValidateError({"json": ["Request body is too large."]})
        if req.content_length is not None and req.content_length > limit:
            raise too_large
        # A chunked body has no Content-Length: read at most one byte past the limit.
        req.max_content_length = limit + 1
        try:
            if len(req.get_data(cache=True)) > limit:
                raise too_large
            return super().load_json(req, schema)
        except RequestEntityTooLarge as exc:
            raise too_large from exc
        except HTTPException as exc:
            # webargs aborts with the messages of a body that is not valid JSON.
            data = getattr(exc, "data", None) or {}
            raise ValidateError(data.get("messages", {"json": ["Invalid JSON body."]})) from exc

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


class SdkAuthBlueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _Parser()

    def operation(
        self, operation_id: str, *errors: type[SdkAuthError]
    ) -> Callable[[F], F]:
        """Document an operation: its id, bearer security and every error it returns.

        Errors sharing a status are documented together, their types listed in the
        description; 401 and 500 are added to every operation.
        """

        def decorator(view: F) -> F:
            view = self.doc(operationId=operation_id, security=[{SECURITY_SCHEME: []}])(view)
            always: set[type[SdkAuthError]] = {
                UnauthorizedException,
                InternalServerErrorException,
            }
            documented = sorted({*errors, *always}, key=_by_status_and_type)
            for status, group in groupby(documented, key=_by_status):
                types = ", ".join(error.type for error in group)
                view = self.alt_response(status, schema=ErrorDto, description=types)(view)
            return view

        return decorator


def _by_status(error: type[SdkAuthError]) -> int:
    return error.http_status


def _by_status_and_type(error: type[SdkAuthError]) -> tuple[int, str]:
    return error.http_status, error.type
