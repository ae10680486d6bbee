"""miclinik: a Dolibarr-compatible ERP reached over its REST API (``/api/index.php/``)."""

from __future__ import annotations

from etl.sources.base import SourceDefinition
from etl.sources.miclinik.client import MiclinikClient
from etl.sources.miclinik.config import MiclinikCredentials, MiclinikOptions
from etl.sources.miclinik.streams import OrdersStream, ProductsStream, ThirdpartiesStream, UsersStream

SOURCE = SourceDefinition(
    kind="miclinik",
    client_class=MiclinikClient,
    streams=(ThirdpartiesStream, ProductsStream, OrdersStream, UsersStream),
    credentials=MiclinikCredentials,
    options=MiclinikOptions,
    wire_secrets=("DOLAPIKEY",),
)
