"""Microbizz client: envelope identification, one POST per envelope, every answer classified.

Identification travels inside the envelope, never in the URL: ``contract`` plus either
``accesstoken`` (app-connect; used when configured) or ``apikey`` + ``username`` +
``password`` (protocols.md §3.1). ``remoteagent`` names this ETL to Ventu's support
(option ``remoteagent``, default ``billing-etl``). Envelopes are POSTed as the form field
``json``; GET would put the credentials in a query string and is size-limited.

Envelopes are sent with ``haltonerror`` 0 and every result is checked on its own, so one
failing command cannot silently hide behind a successful envelope. A retryable failure of
any command (a busy answer) retries the whole envelope: everything this client sends in
one envelope is a read, and reads are safe to repeat.

:meth:`MicrobizzClient.open` sends one envelope holding ``Echo`` and a probe of every
sync command the streams use (``…ByLastChange`` from a date far in the future, so the
answers are empty and cheap). One round trip checks the credentials, and that each
command exists under the name and output key this client expects (two of them are
inferred, protocols.md §6); a refused sync command is reported by its stream, with the
server's reason, instead of after the streams before it have run.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from etl.http.errors import FatalError, ProtocolError, SourceError
from etl.http.response import Request
from etl.settings import SourceSettings
from etl.sources.base import SourceClient
from etl.sources.microbizz.config import MicrobizzCredentials, MicrobizzOptions
from etl.sources.microbizz.envelope import FORM_CONTENT_TYPE, Answer, build_form, classify_envelope, command_error

if TYPE_CHECKING:
    from etl.http.transport import HttpTransport

log = structlog.get_logger(__name__)

# Sync command -> the collection its result carries (protocols.md §3.4).
SYNC_OUTPUTS: dict[str, str] = {
    "GetCustomersByLastChange": "customers",
    "GetUsersByLastChange": "users",  # command name [I]
    "GetProductsByLastChange": "products",
    "GetInvoiceLinesByLastChange": "invoicelines",
    "GetTodosByLastChange": "todos",  # output key [I]
}
# A change date no record can have: the probe's answer is an empty collection.
PROBE_SINCE = {"changedate": "2999-12-31", "changetime": "00:00:00"}


def identity_of(credentials: MicrobizzCredentials) -> dict[str, Any]:
    """The envelope's identifying fields; the contract is a number in the protocol."""
    contract = credentials.contract
    identity: dict[str, Any] = {"contract": int(contract) if contract.isdigit() else contract}
    if credentials.accesstoken and credentials.accesstoken.get_secret_value():
        identity["accesstoken"] = credentials.accesstoken.get_secret_value()
    else:
        assert credentials.apikey is not None and credentials.password is not None
        identity["apikey"] = credentials.apikey.get_secret_value()
        identity["username"] = credentials.username
        identity["password"] = credentials.password.get_secret_value()
    return identity


class MicrobizzClient(SourceClient):
    """Sends envelopes of commands to one Microbizz contract and hands back checked results."""

    def __init__(self, settings: SourceSettings, transport: HttpTransport) -> None:
        super().__init__(settings, transport)
        self.options: MicrobizzOptions = settings.options
        self.identity = identity_of(settings.credentials)
        self.secrets = settings.secret_values()
        # Sync command name -> the classified error its probe got at open(), if it was refused.
        self.refused: dict[str, FatalError] = {}

    def sync_command(self, command: str) -> tuple[str, str]:
        """``(name, output key)`` of a sync command, as configured for this tenant.

        The two inferred names can be overridden in the source's options:
        ``users_command`` and ``todos_key``.
        """
        if command == "GetUsersByLastChange":
            return self.options.users_command, SYNC_OUTPUTS[command]
        if command == "GetTodosByLastChange":
            return command, self.options.todos_key
        return command, SYNC_OUTPUTS[command]

    async def open(self) -> None:
        """One envelope: Echo (credentials) plus an empty probe of every sync command."""
        probes = [self.sync_command(command) for command in SYNC_OUTPUTS]
        commands = [{"command": "Echo", "text": "billing-etl connection check"}]
        commands += [{"command": name, **PROBE_SINCE} for name, _ in probes]
        answer = await self.execute(commands, what="Echo+probes")
        echo_error = command_error(answer.results[0], "Echo", self.secrets)
        if echo_error is not None:
            raise echo_error
        for (name, output), result in zip(probes, answer.results[1:], strict=True):
            error = command_error(result, name, self.secrets)
            if error is None and not isinstance(result.get(output), list):
                keys = ", ".join(sorted(k for k in result if k != "status")) or "none"
                hint = " (set the source option todos_key)" if name == "GetTodosByLastChange" else ""
                error = ProtocolError(f"{name}: answer has no {output!r} collection (keys: {keys}){hint}")
            if isinstance(error, FatalError):
                self.refused[name] = error
                log.warning("sync command refused at connection check", command=name, error=str(error))

    async def execute(self, commands: list[dict[str, Any]], *, what: str) -> Answer:
        """POST one envelope until it gets an answer; a busy answer to any command retries it all."""
        names = [str(command["command"]) for command in commands]
        request = Request(
            "POST",
            self.settings.base_url,
            data=build_form(self.identity, commands, self.options.remoteagent),
            headers={"Content-Type": FORM_CONTENT_TYPE, "Accept": "application/json"},
        )
        classify = functools.partial(
            classify_envelope,
            commands=names,
            secrets=self.secrets,
            credential_words=self.options.credential_words,
            envelope_attempts=self.options.envelope_attempts,
        )
        # Everything this client sends is a read: safe to repeat.
        return await self.transport.call(request, classify, what=what, safe=True)

    async def send(self, command: dict[str, Any]) -> tuple[Mapping[str, Any], Answer]:
        """Send one command in its own envelope; its result as answered, succeeded or not."""
        name = str(command["command"])
        if name in self.refused:
            raise self.refused[name]
        answer = await self.execute([command], what=name)
        return answer.results[0], answer

    def failure(self, result: Mapping[str, Any], command: dict[str, Any]) -> SourceError | None:
        """The classified error of a command's result, or ``None`` when it succeeded."""
        return command_error(result, str(command["command"]), self.secrets)

    async def run(self, command: dict[str, Any]) -> tuple[Mapping[str, Any], Answer]:
        """Send one command in its own envelope; its result when it succeeded, else its error."""
        result, answer = await self.send(command)
        error = self.failure(result, command)
        if error is not None:
            raise error
        return result, answer
