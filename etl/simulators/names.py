"""Locale word lists and the spelling of people, companies and products.

Danish, Russian, Spanish and English names, written the way each locale
writes them (Russian in Cyrillic), plus a Latin transliteration that the
noise step uses when a system stores Russian names in Latin letters.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import timedelta

FIRST = {
    "da": ("Søren", "Mette", "Jens", "Anne", "Lars", "Kirsten", "Bjørn", "Ida", "Mads", "Freja", "Åse", "Niels"),
    "ru": ("Иван", "Мария", "Алексей", "Ольга", "Дмитрий", "Наталья", "Сергей", "Елена", "Юрий", "Татьяна"),
    "es": ("José", "María", "Jesús", "Lucía", "Álvaro", "Inés", "Raúl", "Begoña", "Íñigo", "Nuria", "Óscar"),
    "en": ("John", "Mary", "Peter", "Susan", "David", "Emma", "James", "Olivia", "Liam", "Grace"),
}
LAST = {
    "da": ("Jørgensen", "Nielsen", "Hansen", "Sørensen", "Kjær", "Mølgaard", "Østergaard", "Pedersen", "Bæk"),
    "ru": ("Петров", "Иванова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Жуков", "Щукина"),
    "es": ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Muñoz", "Jiménez", "Peña", "Núñez"),
    "en": ("Smith", "O'Brien", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas"),
}
COMPANY_WORDS = {
    "da": ("Nordlys", "Havbryn", "Skovbo", "Fjordnet", "Søndergård", "Lyngby Data", "Ærø Fiber"),
    "ru": ("Ромашка", "Вектор", "Связьинвест", "Горизонт", "Север-Телеком", "Альфа Сети"),
    "es": ("Telecomunicaciones Ibéricas", "Redes del Sur", "Hostal Peña", "Fibra Castaño", "Nubes Añil"),
    "en": ("Acme", "Blue Harbour", "Smith & Sons", "Northwind", "Brightline", "Oak & Ash"),
}
COMPANY_SUFFIX = {
    "da": ("ApS", "A/S", "I/S"),
    "ru": ("ООО", "АО", "ИП"),
    "es": ("S.L.", "S.A."),
    "en": ("Ltd", "LLC", "PLC"),
}
CITY = {
    "da": (("København", "1050"), ("Århus", "8000"), ("Odense", "5000"), ("Ålborg", "9000")),
    "ru": (("Москва", "101000"), ("Санкт-Петербург", "190000"), ("Казань", "420000"), ("Тверь", "170000")),
    "es": (("Madrid", "28001"), ("Málaga", "29001"), ("A Coruña", "15001"), ("León", "24001")),
    "en": (("London", "EC1A 1BB"), ("Leeds", "LS1 1UR"), ("Bristol", "BS1 4DJ"), ("York", "YO1 7HH")),
}
STREET = {"da": "Vestergade", "ru": "ул. Ленина", "es": "Calle Mayor", "en": "High Street"}
COUNTRY = {"da": "DK", "ru": "RU", "es": "ES", "en": "GB"}
PHONE_PREFIX = {"da": ("+45", 8), "ru": ("+7", 10), "es": ("+34", 9), "en": ("+44", 10)}
MAIL_DOMAIN = ("example.com", "mail.example", "post.example", "inbox.example")

# GOST 7.79 system B, the one Russian ISPs print on contracts.
_CYR = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "zh", "з": "z", "и": "i",
    "й": "j", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "x", "ц": "cz", "ч": "ch", "ш": "sh", "щ": "shh", "ъ": "", "ы": "y", "ь": "",
    "э": "e", "ю": "yu", "я": "ya",
}  # fmt: skip
_NORDIC = {"ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "å": "aa", "Å": "Aa"}

PRODUCT_WORDS = {
    "tariff": ("Fiber {n} Mbit", "Home {n}", "Business Fiber {n}", "Wireless {n} Mbit"),
    "service": ("Static IP", "VDS {n} GB", "Backup {n} GB", "Mail hosting {n}", "DNS hosting"),
    "product": ("Router AX{n}", "ONT {n}", "Patch cable {n} m", "Wi-Fi extender {n}"),
}


def transliterate(text: str) -> str:
    """Cyrillic to Latin (GOST 7.79 B); other letters pass through."""
    out = []
    for ch in text:
        low = ch.lower()
        if low in _CYR:
            latin = _CYR[low]
            out.append(latin.capitalize() if ch != low else latin)
        else:
            out.append(ch)
    return "".join(out)


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits only, for logins and e-mail local parts."""
    text = transliterate("".join(_NORDIC.get(ch, ch) for ch in text))
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed.lower() if ch.isascii() and ch.isalnum())


def customer(r: random.Random, customer_id: int, locale: str):
    """Draw one customer of ``locale`` from ``r``."""
    from etl.simulators.world import EPOCH, Customer

    first, last = r.choice(FIRST[locale]), r.choice(LAST[locale])
    is_company = r.random() < 0.3
    company = None
    if is_company:
        word, suffix = r.choice(COMPANY_WORDS[locale]), r.choice(COMPANY_SUFFIX[locale])
        company = f"{suffix} «{word}»" if locale == "ru" else f"{word} {suffix}"
    city, zip_code = r.choice(CITY[locale])
    prefix, digits = PHONE_PREFIX[locale]
    local_part = f"{ascii_slug(first)}.{ascii_slug(last)}{customer_id}"
    if company:
        local_part = f"billing{customer_id}.{ascii_slug(company)[:16]}"
    tax_id = f"{COUNTRY[locale]}{r.randrange(10**8, 10**9)}" if is_company or r.random() < 0.2 else None
    return Customer(
        id=customer_id,
        locale=locale,
        is_company=is_company,
        first_name=first,
        last_name=last,
        company=company,
        email=f"{local_part}@{r.choice(MAIL_DOMAIN)}",
        phone=prefix + str(r.randrange(2 * 10 ** (digits - 1), 10**digits)),
        street=f"{STREET[locale]} {r.randint(1, 180)}",
        zip=zip_code,
        city=city,
        country_code=COUNTRY[locale],
        tax_id=tax_id,
        customer_number=f"C{customer_id:07d}",
        created_at=EPOCH + timedelta(seconds=r.randrange(0, 4 * 365 * 86400)),
    )


def product_label(r: random.Random, kind: str) -> str:
    return r.choice(PRODUCT_WORDS[kind]).format(n=r.choice((10, 50, 100, 250, 500, 1000)))
