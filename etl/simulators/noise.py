"""How each system misspells the truth: case, transliteration, formats, gaps.

``spell(seed, customer, system)`` returns the customer as that system stores
it. The draws are deterministic per (seed, system, customer), so a record
reads back the same on every request and in every run. What differs between
systems is their :class:`~etl.simulators.registry.Spelling`.
"""

from __future__ import annotations

import html
from dataclasses import replace

from etl.simulators import registry
from etl.simulators.names import transliterate
from etl.simulators.world import Customer, rng_for


def spell(seed: int, customer: Customer, system: str) -> Customer:
    """The customer as ``system`` spells it."""
    quirks = registry.get(system).spelling
    r = rng_for(seed, "noise", system, customer.id)
    first, last, company = customer.first_name, customer.last_name, customer.company
    if customer.locale == "ru" and r.random() < quirks.transliterate:
        first, last = transliterate(first), transliterate(last)
        company = transliterate(company) if company else None
    roll = r.random()
    if roll < 0.08:
        first, last = first.upper(), last.upper()
    elif roll < 0.14:
        first, last = first.lower(), last.lower()
    if company and r.random() < 0.1:
        company = company.replace(" ", "  ", 1)
    email = customer.email
    roll = r.random()
    if roll < 0.15:
        email = email.upper() if r.random() < 0.3 else email.capitalize()
    elif roll < 0.2:
        email = f" {email} "
    phone = _phone_format(r.randrange(4), customer.phone)
    if r.random() < 0.05:
        phone = ""
    if r.random() < 0.03:
        email = ""
    # The quirk checks come last and draw only when they apply, so a system without them
    # consumes exactly the draws above.
    if quirks.escaped_ampersand and company and "&" in company and r.random() < quirks.escaped_ampersand:
        company = html.escape(company, quote=False)
    if quirks.escaped_apostrophe and "'" in last and r.random() < quirks.escaped_apostrophe:
        last = last.replace("'", "&#39;")
    return replace(customer, first_name=first, last_name=last, company=company, email=email, phone=phone)


def _phone_format(style: int, e164: str) -> str:
    """E.164 written the four ways people type it."""
    digits = e164[1:]
    if style == 0:
        return e164
    if style == 1:
        return "00" + digits
    if style == 2:
        groups = [digits[i : i + 2] for i in range(0, len(digits), 2)]
        return "+" + " ".join(groups)
    if e164.startswith("+7"):
        rest = e164[2:]
        return f"8 ({rest[:3]}) {rest[3:6]}-{rest[6:8]}-{rest[8:]}"
    return e164.replace("+", "(+", 1).replace(e164[1:4], e164[1:4] + ") ", 1)
