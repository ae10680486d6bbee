"""MikroBILL extractor: ``Process`` calls through a transport seam, batched, full scan + hash diff.

Which ``Process`` calls feed which stream (``<C>`` client id, ``<A>`` account GUID;
every per-client read is a 2.0.9+ batch over ``page_size`` clients, split into
``options["batch_items"]`` paths per call):

==========  ========  ====================================================================  ==========
stream      entity    calls                                                                 source id
==========  ========  ====================================================================  ==========
customers   customer  ``API.GetClients`` (once per run, shared by all client streams);      client id
                      ``API.Client`` batch ``<C>.AutorizeInfo.{Name,Accounts}``,
                      ``<C>.BillingInfo.{Money,DefaultInterface}``,
                      ``<C>.StatusInfo.{BlockReason,CurrentSpeedLimitIn}``  [C]
accounts    account   ``API.Client`` batch ``<C>.AutorizeInfo.Accounts``, then one batch    account
                      ``<C>.AutorizeInfo.Accounts.<A>.{IP,MAC,Login,Tariff}`` per page      GUID
                      (IP/MAC [C], Login [C-code3p], Tariff [guess]; Password never read)
products    product   ``API.GetTariffs`` / ``API.GetServices``, then batches                 tariff /
                      ``API.Tariff``/``API.Service`` ``<id>.{Name,Price,Type}``  [guess]     service id
payments    payment   ``API.Client`` batch ``<C>.Payments`` -> ``moneys`` rows  [guess]      ``uid``
==========  ========  ====================================================================  ==========

Record shapes: a customer mirrors the API tree (``{"id", "AutorizeInfo": {"Name",
"Accounts"}, "BillingInfo": {...}, "StatusInfo": {...}}``); an account is
``{"guid", "client_id", "IP", "MAC", "Login", "Tariff"}``; a product ``{"id", "kind",
"Name", "Price", "Type"}``; a payment is the ``moneys`` row as returned. Property values
are kept exactly as ``Process`` returned them; ids we add are decimal strings.

Options: :class:`~etl.sources.mikrobill.config.MikrobillOptions` (``transport``, the seam
for the vendor's own class; ``version``; ``batch_items``; ``codes``, the result-code table
that must be configured because the real numbers are unknown; the property paths;
``client_root``, ``API.Client`` or ``API.Clients`` as vendor pages disagree; ``apicore``,
``remote`` (both CRYPTO keys required) or ``cash-desk`` (none needed)). Documented
properties are required; a guessed one the core does not know is staged as null.
"""

from __future__ import annotations

from etl.sources.base import SourceDefinition
from etl.sources.mikrobill.client import MikrobillClient
from etl.sources.mikrobill.config import MikrobillCredentials, MikrobillOptions, settings_problems
from etl.sources.mikrobill.streams import AccountsStream, CustomersStream, PaymentsStream, ProductsStream

# The [guess] paths come last: if an installation lacks them, the [C] streams are already staged.
SOURCE = SourceDefinition(
    kind="mikrobill",
    client_class=MikrobillClient,
    streams=(CustomersStream, AccountsStream, ProductsStream, PaymentsStream),
    credentials=MikrobillCredentials,
    options=MikrobillOptions,
    check=settings_problems,
    notes={"incremental": "none: full scan and content-hash diff (MikroBILL exposes no change times)"},
)

__all__ = ["SOURCE", "AccountsStream", "CustomersStream", "MikrobillClient", "PaymentsStream", "ProductsStream"]
