"""MikroBILL simulator: the ``Process(path, args)`` contract of MikroBILL_API, served as HTTP JSON.

Why HTTP JSON: the real client libraries (``apicore.php``, ``mikrobill-api.py``)
speak an undocumented, encrypted protocol to the core; only the semantics of
``Process`` and ``Close`` are documented (protocols.md §2). This simulator serves
those semantics, so the ETL's MikroBILL adapter exposes the same two methods and
can later wrap the real library instead of this transport:

- ``POST /connect`` ``{"login","password","crypto_key_1","crypto_key_2"}`` ->
  ``{"return": "<session token>", "code": 0}`` or ``{"return": "<reason>", "code": n}``
  with a distinct ``n`` for a CRYPTO key mismatch (reinstalled installation), a
  wrong cashier password, a cashier without the API right, an untrusted IP, and a
  day or hour outside the cashier's schedule (codes in :class:`Code`, all [guess]);
- ``POST /process`` ``{"path": "...", "args": null|string|number|list|object}`` with
  header ``X-MikroBILL-Session: <token>`` -> exactly what ``Process`` returns: one
  ``{"return","code"}`` envelope, or for a batch (2.0.9+) a list of
  ``{"return","code","path"}`` in argument order (the path tree is in
  :mod:`etl.simulators.mikrobill.tree`);
- ``POST /close`` -> ``{"return": "OK", "code": 0}``.

"Core not running" is this server not listening (connection refused); a slow core
is ``MikrobillOptions.core_latency_seconds``. Fault kinds rolled here: ``busy``
(a whole call refused with :attr:`Code.CORE_BUSY`, [guess]) and ``partial_batch``
(one random item of a batch answered with :attr:`Code.CORE_BUSY`, [guess]).

Source ids are derived from world ids (see :mod:`etl.simulators.mikrobill.store`).
MikroBILL exposes no change timestamps, so an incremental reader must full-scan;
``STATE``'s ``mutate`` only changes values.
"""

from __future__ import annotations

from etl.simulators.mikrobill.app import SESSION_HEADER, STATE, MikrobillState, create_app
from etl.simulators.mikrobill.options import DEMO_CREDENTIALS, Code, MikrobillOptions
from etl.simulators.mikrobill.store import SYSTEM
from etl.simulators.registry import SimulatedSystem, Spelling

SIMULATOR = SimulatedSystem(
    name=SYSTEM,
    # /connect, /process and /close sit at the server root.
    base_path="",
    create_app=create_app,
    state_key=STATE,
    demo_credentials=DEMO_CREDENTIALS,
    port_offset=1,
    presence=0.55,
    spelling=Spelling(transliterate=0.1),
)

__all__ = [
    "DEMO_CREDENTIALS",
    "SESSION_HEADER",
    "SIMULATOR",
    "STATE",
    "Code",
    "MikrobillOptions",
    "MikrobillState",
    "create_app",
]
