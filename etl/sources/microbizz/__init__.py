"""Microbizz: Ventu's field-service SaaS, reached through JSON command envelopes (``/api/endpoint.php``)."""

from __future__ import annotations

from etl.sources.base import SourceDefinition
from etl.sources.microbizz.client import MicrobizzClient
from etl.sources.microbizz.config import MicrobizzCredentials, MicrobizzOptions
from etl.sources.microbizz.streams import (
    CustomersStream,
    InvoiceLinesStream,
    ProductsStream,
    TodosStream,
    UsersStream,
)

SOURCE = SourceDefinition(
    kind="microbizz",
    client_class=MicrobizzClient,
    streams=(CustomersStream, UsersStream, ProductsStream, InvoiceLinesStream, TodosStream),
    credentials=MicrobizzCredentials,
    options=MicrobizzOptions,
    notes={
        "incremental": "…ByLastChange from the first call's envelope date/time minus an hour's overlap",
        "deletions": "deleted flags are tombstones; a weekly full scan finds records removed entirely",
        "resume": "resumekey chunks; the cursor (date, time, resumekey) is committed with each chunk",
    },
)
