"""Dolibarr's response shapes: Restler's JSON error body, bare JSON, and the plain-text pages.

Restler builds every error as ``{"error": {"code", "message": "<Reason>: <text>", "0": detail...},
"debug": {"source", "stages"}}`` (protocols.md §1.2); ``debug`` is left out in production mode.
A 304 is thrown like an error but reaches the client with no body. A few answers come from
``index.php`` before Restler runs and are plain text with PHP's own headers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aiohttp import web

REASONS = {
    200: "OK",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

RESTLER_HEADERS = {
    "Cache-Control": "no-cache, must-revalidate",
    "X-Powered-By": "Luracast Restler v3.1.0",
    "Content-Language": "en",
    "Access-Control-Allow-Origin": "*",
}
PHP_HEADERS = {"X-Powered-By": "PHP/8.2.36", "Access-Control-Allow-Origin": "*"}
JSON_TYPE = "application/json; charset=utf-8"

# Restler's stage lists, by the stage at which the exception was thrown.
_STAGES: dict[str, tuple[list[str], list[str]]] = {
    "setup": ([], ["get", "route", "negotiate", "message"]),
    "route": (["get"], ["route", "negotiate", "message"]),
    "authenticate": (["get", "route", "negotiate"], ["authenticate", "message"]),
    "call": (["get", "route", "negotiate", "authenticate", "validate"], ["call", "message"]),
    "public": (["get", "route", "negotiate", "validate"], ["call", "message"]),
}


class RestError(Exception):
    """A ``RestException`` as Dolibarr throws it: status, message, numbered details, origin.

    ``source`` is the PHP file and line Restler names in ``debug``; ``stage`` picks the
    success/failure stage lists ("call" for API methods, "public" for classes without
    authentication such as login, "authenticate", "route" or "setup").
    """

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        details: Sequence[str] = (),
        source: str = "api.class.php:0",
        stage: str = "call",
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.details = list(details)
        self.source = source
        self.stage = stage

    def body(self, production_mode: bool) -> dict[str, object]:
        """The JSON body Restler sends for this error."""
        reason = REASONS.get(self.status, "Error")
        error: dict[str, object] = {
            "code": self.status,
            "message": f"{reason}: {self.message}" if self.message else reason,
        }
        for index, detail in enumerate(self.details):
            error[str(index)] = detail
        body: dict[str, object] = {"error": error}
        if not production_mode:
            success, failure = _STAGES[self.stage]
            stages = {"success": success, "failure": failure}
            body["debug"] = {"source": f"{self.source} at {self.stage_name} stage", "stages": stages}
        return body

    @property
    def stage_name(self) -> str:
        """The stage Restler names in ``debug.source`` ("public" methods fail at "call")."""
        return "call" if self.stage == "public" else self.stage


def error_response(error: RestError, production_mode: bool) -> web.Response:
    """Render ``error`` as Restler does; 304 goes out with an empty body."""
    headers = dict(RESTLER_HEADERS)
    if error.status == 401:
        headers["WWW-Authenticate"] = ""
    if error.status == 304:
        return web.Response(status=304, headers=headers | {"Content-Type": JSON_TYPE})
    payload = json.dumps(error.body(production_mode), ensure_ascii=False).encode()
    return web.Response(status=error.status, body=payload, headers=headers | {"Content-Type": JSON_TYPE})


def json_response(payload: str | bytes, status: int = 200) -> web.Response:
    """A successful Restler answer from already-encoded JSON text."""
    body = payload.encode() if isinstance(payload, str) else payload
    return web.Response(status=status, body=body, headers=RESTLER_HEADERS | {"Content-Type": JSON_TYPE})


def json_value(value: object) -> web.Response:
    """A successful Restler answer encoding ``value``."""
    return json_response(json.dumps(value, ensure_ascii=False))


def plain_page(status: int, text: str) -> web.Response:
    """A page printed by ``index.php`` itself, outside Restler: text/html, no JSON."""
    return web.Response(
        status=status, body=text.encode(), headers=PHP_HEADERS | {"Content-Type": "text/html; charset=UTF-8"}
    )


API_NOT_FOUND = "API not found (failed to include API file)"
# $langs->trans("WarningModuleNotActive", 'Api').'.<br><br>'.$langs->trans("ToActivateModule")
MODULE_NOT_ACTIVE = (
    "Module <b>Api</b> must be enabled.<br><br>To activate modules, go on setup Area (Home->Setup->Modules)."
)

# What a GET outside /api/index.php gets: the web login form, status 200 (protocols.md §1.9). [guess on
# the exact markup; the form's names are Dolibarr's]
LOGIN_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Login @ 23.0.0-beta</title></head>
<body class="body bodylogin">
<form id="login" name="login" method="post" action="/index.php?mainmenu=home">
<input type="hidden" name="token" value="0123456789abcdef">
<input type="text" id="username" name="username" placeholder="Login">
<input type="password" id="password" name="password" placeholder="Password">
<input type="submit" class="button" value="Login">
</form>
</body>
</html>
"""
