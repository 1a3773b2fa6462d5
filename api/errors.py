"""Errors in Lago's shapes, so Lago clients understand them unchanged.

- 401 ``{"status": 401, "error": "Unauthorized"}``
- 404 ``{"status": 404, "error": "Not Found", "code": "<resource>_not_found"}``
- 422 ``{"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
  "error_details": {"field": ["error_code", ...]}}``
- 400 ``{"status": 400, "error": "Bad Request", "code": "bad_request", ...}`` for bodies that are
  not JSON objects or lack the resource envelope (Lago's "param is missing").
- 503 ``{"status": 503, "error": "Service Unavailable", "code": "usage_not_available", ...}``
  when usage is asked for before rating has built the views that compute it, and
  ``"analytics_not_available"`` when analytics are asked for before their marts are built.
- 503 ``{"status": 503, "error": "Service Unavailable", "code": "warehouse_unavailable", ...}``
  with ``Retry-After`` when the warehouse cannot be reached (down, restarting): worth a retry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clickhouse_connect.driver.exceptions import OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answered to the client in Lago's shape."""

    def __init__(self, status: int, code: str | None = None, **extra: Any) -> None:
        super().__init__(code or REASONS.get(status, str(status)))
        self.status = status
        self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "error": REASONS.get(self.status, "Error")}
        if self.code:
            body["code"] = self.code
        body.update(self.extra)
        return body


class NotFound(ApiError):
    def __init__(self, resource: str) -> None:
        super().__init__(404, f"{resource}_not_found")


class Unauthorized(ApiError):
    def __init__(self) -> None:
        super().__init__(401)


class BadRequest(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(400, "bad_request", message=message)


class ValidationFailed(ApiError):
    """422 validation_errors; ``details`` maps each bad field to its error codes."""

    def __init__(self, details: Mapping[str, Sequence[str]]) -> None:
        super().__init__(
            422, "validation_errors", error_details={k: list(v) for k, v in details.items()}
        )


class FieldErrors:
    """Collects field errors while validating, raised at once so every bad field is named."""

    def __init__(self) -> None:
        self.details: dict[str, list[str]] = {}

    def add(self, field: str, code: str) -> None:
        codes = self.details.setdefault(field, [])
        if code not in codes:
            codes.append(code)

    def __bool__(self) -> bool:
        return bool(self.details)

    def raise_if_any(self) -> None:
        if self.details:
            raise ValidationFailed(self.details)


def _field_path(location: Sequence[Any]) -> str:
    # ("body", "customer", "billing_configuration", "invoice_grace_period") names the field
    # below the envelope, dotted; the envelope key itself is not a field of the resource.
    # ("query", "status[]", 1) names the query parameter, whichever of its values is bad.
    source, parts = (str(location[0]) if location else "body"), [str(p) for p in location[1:]]
    if source != "body":
        return parts[0].removesuffix("[]") if parts else source
    if len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _error_code(pydantic_type: str) -> str:
    return "value_is_mandatory" if pydantic_type == "missing" else "value_is_invalid"


def request_validation_details(exc: RequestValidationError) -> dict[str, list[str]]:
    errors = FieldErrors()
    for error in exc.errors():
        errors.add(_field_path(error.get("loc", ())), _error_code(error.get("type", "")))
    return errors.details


async def _api_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


def _is_body_shape_error(error: Mapping[str, Any]) -> bool:
    location = tuple(error.get("loc", ()))
    return error.get("type") == "json_invalid" or (location[:1] == ("body",) and len(location) <= 2)


async def _request_validation_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # A body that is not JSON, not an object, or lacks the envelope is a bad request in Lago.
    if any(_is_body_shape_error(error) for error in exc.errors()):
        error = BadRequest("the body must be a JSON object holding the resource under its root key")
        return JSONResponse(error.body(), status_code=400)
    return JSONResponse(ValidationFailed(request_validation_details(exc)).body(), status_code=422)


async def _http_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = "not_found" if exc.status_code == 404 else None
    return JSONResponse(ApiError(exc.status_code, code).body(), status_code=exc.status_code)


async def _warehouse_unreachable_handler(request: Request, exc: Exception) -> JSONResponse:
    # clickhouse-connect's OperationalError: no answer from the warehouse at all (a refused or
    # dropped connection, a timeout), as opposed to an answered query error. The message stays
    # generic: the client's error names the warehouse's address.
    error = ApiError(503, "warehouse_unavailable", message="the warehouse cannot be reached")
    retry_after = str(request.app.state.settings.ingest_retry_after_s)
    return JSONResponse(error.body(), status_code=503, headers={"Retry-After": retry_after})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(OperationalError, _warehouse_unreachable_handler)
