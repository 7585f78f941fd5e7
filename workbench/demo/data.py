"""The demo shop's production data: a seeded generator, so every demo holds the same rows.

Customers have realistic fake names (many not ASCII), addresses under reserved example
domains and made-up phone numbers; orders have items, sale markdowns, discount codes and
statuses. A few orders are planted to meet the demo's bug (see ``DEMO_BUG``): they carry
the staff code and only marked-down items, so that counting the code from the full price
(``pricing.discount_mode: stacked``) takes more off than the order is worth.
"""

from __future__ import annotations

import random
import sqlite3
import unicodedata
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 1042

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT,
    country TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    price_cents INTEGER NOT NULL
);
CREATE TABLE discount_codes (
    code TEXT PRIMARY KEY,
    percent INTEGER NOT NULL CHECK (percent BETWEEN 0 AND 100),
    description TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    discount_code TEXT REFERENCES discount_codes (code)
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    qty INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    markdown_pct INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE refunds (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    amount_cents INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX refunds_order ON refunds (order_id);
"""

FIRST_NAMES = [
    "Zoë", "Øyvind", "José", "Anaïs", "Björn", "Chloé", "Łukasz", "Siobhán", "Mehmet", "Aiko", "François",
    "Søren", "Małgorzata", "Jürgen", "Inés", "Ángel", "Renée", "Radka", "Håkon", "Ümit", "Nuño", "Ciarán",
    "Émilie", "Joël", "Maëlle", "Ørjan", "Ayşe", "Çağla", "Tomáš", "Mia", "Noah", "Emma", "Liam", "Olivia",
    "Lucas", "Sofia", "Elias", "Hannah", "Jonas", "Lea", "Felix", "Clara", "Oskar", "Ida", "Matteo", "Giulia",
    "Yuki", "Kenji", "Priya", "Arjun", "Fatima", "Omar", "Grace", "Daniel", "Sarah", "David", "Laura", "Marta",
    "Pieter", "Annelies", "Sean", "Aoife", "Katarzyna", "Piotr", "Eva", "Karin", "Nils", "Freja", "Magnus",
]
LAST_NAMES = [
    "Müller", "García", "Søndergaard", "O'Brien", "Kowalski", "Silva", "Andersen", "Fischer", "Rossi", "Nakamura",
    "Smith", "Dubois", "Novák", "Łęcki", "Nørgaard", "Jiménez", "Öztürk", "Weiß", "Brontë", "Håland", "Ní Bhriain",
    "Schröder", "Lefèvre", "Castaño", "Hoffmann", "Johansson", "Nielsen", "Bianchi", "Tanaka", "Patel", "Khan",
    "Murphy", "de Vries", "van den Berg", "Horváth", "Popescu", "Papadopoulos", "Yılmaz", "Costa", "Martin",
    "Bernard", "Wagner", "Becker", "Larsen", "Lindqvist", "Virtanen", "Kelly", "Walsh", "Moreau", "Ferrari",
]
COUNTRIES = [  # code, phone prefix, email domain
    ("DE", "+49 30", "example.de"), ("FR", "+33 1", "example.fr"), ("NO", "+47 22", "example.no"),
    ("ES", "+34 91", "example.es"), ("PL", "+48 22", "example.pl"), ("IE", "+353 1", "example.ie"),
    ("SE", "+46 8", "example.se"), ("DK", "+45 33", "example.dk"), ("IT", "+39 06", "example.it"),
    ("NL", "+31 20", "example.nl"), ("TR", "+90 212", "example.com"), ("JP", "+81 3", "example.jp"),
    ("GB", "+44 20", "example.co.uk"), ("CZ", "+420 2", "example.cz"), ("US", "+1 212", "example.com"),
]
PRODUCTS = [
    ("Merino Beanie", 2490), ("Trail Runner Socks (3 pairs)", 1890), ("Rain Shell Jacket", 18900),
    ("Down Vest", 12900), ("Fleece Pullover", 7990), ("Hiking Boots", 16900), ("Canvas Tote", 1490),
    ("Wool Scarf", 3990), ("Insulated Bottle 0.75 l", 2990), ("Headlamp 400 lm", 4490), ("Trekking Poles", 8990),
    ("Softshell Trousers", 9490), ("Base Layer Top", 5490), ("Base Layer Leggings", 4990), ("Daypack 22 l", 8490),
    ("Packable Duffel 40 l", 6990), ("Sun Hat", 2790), ("Fingerless Gloves", 1990), ("Thermal Mug", 1790),
    ("Camp Blanket", 5990), ("Compass", 2290), ("First Aid Kit", 3490), ("Gaiters", 3990), ("Dry Bag 10 l", 1990),
    ("Sleeping Bag -5 °C", 21900), ("Camp Stool", 2490), ("Trail Cap", 2190), ("Windbreaker", 8490),
    ("Quick-dry Towel", 2490), ("Merino T-Shirt", 5990), ("Puffer Jacket", 24900), ("Travel Pillow", 1690),
]
# Everyday codes stay well clear of trouble: with the deepest markdown (40 %), even counted
# from the full price they leave a positive total. STAFF70 is for employees only.
DISCOUNT_CODES = [
    ("WELCOME10", 10, "10 % off a first order"),
    ("SPRING15", 15, "spring sale"),
    ("FRIENDS20", 20, "refer-a-friend reward"),
    ("LOYAL25", 25, "loyalty programme, tier 2"),
    ("VIP30", 30, "loyalty programme, tier 3"),
    ("STAFF70", 70, "staff discount - employees only"),
]
EVERYDAY_CODES = ["WELCOME10", "SPRING15", "FRIENDS20", "LOYAL25", "VIP30"]
EVERYDAY_WEIGHTS = [30, 25, 20, 15, 10]
MARKDOWNS = [20, 30, 40]
STATUSES = ["delivered", "shipped", "paid", "cancelled", "refunded"]
STATUS_WEIGHTS = [70, 10, 12, 4, 4]
START = datetime(2023, 1, 2, 8, 0, 0)
SPAN_DAYS = 700

_ASCII = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "æ": "ae", "Æ": "AE", "ß": "ss", "đ": "d",
                        "ı": "i", "'": "", " ": ""})


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def _customers(rng: random.Random, count: int) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    emails: set[str] = set()
    for cid in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country, prefix, domain = rng.choice(COUNTRIES)
        local = f"{_ascii(first)}.{_ascii(last)}"
        email = f"{local}@{domain}"
        n = 2
        while email in emails:
            email = f"{local}{n}@{domain}"
            n += 1
        emails.add(email)
        phone = f"{prefix} {rng.randrange(1000000, 9999999)}" if rng.random() < 0.9 else None
        since = START - timedelta(days=rng.randrange(0, 900), minutes=rng.randrange(0, 1440))
        rows.append((cid, f"{first} {last}", email, phone, country, since.strftime("%Y-%m-%d %H:%M:%S")))
    return rows


def generate(db: Path, *, orders: int, customers: int, planted: list[int], paid: list[int],
             seed: int = SEED) -> dict[str, int]:
    """Write the shop's database at ``db`` (which must not exist); return the row counts.

    ``planted`` orders meet the bug; ``paid`` orders are left paid, so the story can refund them."""
    rng = random.Random(seed)
    customer_rows = _customers(rng, customers)
    product_rows = [(pid, f"NW-{pid:04d}", name, price) for pid, (name, price) in enumerate(PRODUCTS, 1)]
    expensive = [pid for pid, _, _, price in product_rows if price >= 5000]
    planted_set = set(planted)
    order_rows: list[tuple[Any, ...]] = []
    item_rows: list[tuple[Any, ...]] = []
    refund_rows: list[tuple[Any, ...]] = []
    seconds_per_order = SPAN_DAYS * 86400 / max(orders, 1)
    n_products = len(product_rows)
    for oid in range(1, orders + 1):
        created = START + timedelta(seconds=int(oid * seconds_per_order) + rng.randrange(0, 600))
        stamp = created.strftime("%Y-%m-%d %H:%M:%S")
        customer = rng.randrange(1, customers + 1)
        if oid in planted_set:
            # the bug's orders: staff code, every item on the deepest markdown, well over free shipping
            order_rows.append((oid, customer, stamp, "paid", "STAFF70"))
            for pid in rng.sample(expensive, 2):
                item_rows.append((len(item_rows) + 1, oid, pid, rng.randint(1, 2), product_rows[pid - 1][3], 40))
            continue
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        if oid in paid:
            status = "paid"
        roll = rng.random()
        if roll < 0.28:
            code: str | None = rng.choices(EVERYDAY_CODES, EVERYDAY_WEIGHTS)[0]
        elif roll < 0.2815:
            code = "STAFF70"  # real staff orders: never on sale items (see below)
        else:
            code = None
        order_rows.append((oid, customer, stamp, status, code))
        for _ in range(rng.choices((1, 2, 3, 4, 5), (35, 30, 20, 10, 5))[0]):
            pid = rng.randrange(1, n_products + 1)
            markdown = 0 if code == "STAFF70" or rng.random() >= 0.15 else rng.choice(MARKDOWNS)
            qty = rng.choices((1, 2, 3), (80, 15, 5))[0]
            item_rows.append((len(item_rows) + 1, oid, pid, qty, product_rows[pid - 1][3], markdown))
        if status == "refunded":
            later = (created + timedelta(days=rng.randint(3, 30))).strftime("%Y-%m-%d %H:%M:%S")
            refund_rows.append((len(refund_rows) + 1, oid, None, rng.choice(
                ["damaged in transit", "wrong size", "arrived late", "changed mind"]), later))
    conn = sqlite3.connect(db)
    try:
        conn.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + SCHEMA)
        with conn:
            conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", customer_rows)
            conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?)", product_rows)
            conn.executemany("INSERT INTO discount_codes VALUES (?, ?, ?, 1)", DISCOUNT_CODES)
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", order_rows)
            conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?, ?)", item_rows)
            conn.executemany("INSERT INTO refunds VALUES (?, ?, 0, ?, ?)",
                             [(r[0], r[1], r[3], r[4]) for r in refund_rows])
            # a refund returns what was paid: the items less markdowns and the code, counted in SQL
            # the way the shop counted before the spring sale (the code after the markdowns)
            conn.execute("""
                UPDATE refunds SET amount_cents = (
                    SELECT CAST(round(sum(i.qty * i.unit_price_cents * (100 - i.markdown_pct) / 100.0)
                                      * (100 - coalesce(d.percent, 0)) / 100.0) AS INTEGER)
                    FROM orders o JOIN order_items i ON i.order_id = o.id
                    LEFT JOIN discount_codes d ON d.code = o.discount_code
                    WHERE o.id = refunds.order_id)""")
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("VACUUM")
    finally:
        conn.close()
    return {"customers": len(customer_rows), "products": len(product_rows), "discount_codes": len(DISCOUNT_CODES),
            "orders": len(order_rows), "order_items": len(item_rows), "refunds": len(refund_rows)}


def write_invoices(conn_db: Path, folder: Path, order_ids: list[int]) -> list[Path]:
    """A few invoices as text, the way the shop files them. They name the customer by number only."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    conn = sqlite3.connect(conn_db)
    try:
        for oid in order_ids:
            order = conn.execute("SELECT customer_id, created_at, discount_code FROM orders WHERE id = ?",
                                 (oid,)).fetchone()
            if order is None:
                continue
            lines = conn.execute(
                "SELECT p.sku, p.name, i.qty, i.unit_price_cents, i.markdown_pct FROM order_items i "
                "JOIN products p ON p.id = i.product_id WHERE i.order_id = ? ORDER BY i.id", (oid,)).fetchall()
            text = [f"INVOICE INV-{oid:06d}", f"Order #{oid} of {order[1][:10]}", f"Customer #{order[0]}", ""]
            for sku, name, qty, unit, markdown in lines:
                note = f"  (-{markdown} %)" if markdown else ""
                text.append(f"{qty} x {sku} {name:<30} {unit / 100:>9.2f} EUR{note}")
            if order[2]:
                text.append(f"Discount code: {order[2]}")
            path = folder / f"INV-{oid:06d}.txt"
            path.write_text("\n".join(text) + "\n", encoding="utf-8")
            written.append(path)
    finally:
        conn.close()
    return written
