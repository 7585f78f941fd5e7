"""Northwind Outfitters' order service: a small shop API on the standard library alone.

    python app.py --port 18080 --db data/shop.db --config config/app.yaml [--uploads data/uploads]

Endpoints (JSON unless noted):
    GET  /health               "ok" (text) once the database answers
    GET  /orders?limit=N       the newest orders with their totals (also offset=, status=)
    GET  /orders/ID            one order: items, markdowns, discount, shipping, total
    POST /orders/ID/refund     refund a paid order: the row changes, a credit note is filed,
                               the customer is mailed with it (see SMTP_HOST below)
    GET  /customers/ID         one customer and their latest orders

Settings come from the config file, then from the environment (which wins):
    SMTP_HOST      where mail goes, HOST or HOST:PORT (SMTP_PORT, default 25, when no port is
                   given). Mail is sent over SMTP to a server on this machine only (localhost,
                   127.0.0.1, ::1): a clone's mail sink. Any other host is logged, not contacted:
                   this demo never opens a connection to another machine.
    DISCOUNT_MODE  overrides pricing.discount_mode.
A ``.env`` file in the working folder provides defaults for the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import smtplib
import sqlite3
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROUNDING = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "floor": ROUND_FLOOR}
DISCOUNT_MODES = ("sequential", "stacked")
LOCAL_SINKS = ("localhost", "127.0.0.1", "::1")


# --- configuration -------------------------------------------------------------------


class ConfigError(Exception):
    pass


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _scalar(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return json.loads(text) if text[0] == '"' else text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~"):
        return None
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(r"[-+]?\d+\.\d*", text):
        return float(text)
    if text[0] in "[{&*!|>":
        raise ValueError("this small reader takes nested mappings and plain values only")
    return text


def parse_config(text: str, file: str = "config") -> dict[str, Any]:
    """Read the YAML this app needs: nested mappings of plain values, with comments."""
    root: dict[str, Any] = {}
    # (indent of the key that opened the mapping, the mapping, indent of its children)
    stack: list[list[Any]] = [[-1, root, None]]
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if line[indent] == "\t":
            raise ConfigError(f"{file}:{number}: indent with spaces, not tabs")
        key, colon, value = line.strip().partition(":")
        if not colon or not key or (value and value[0] != " "):
            raise ConfigError(f"{file}:{number}: expected 'key: value' or 'key:'")
        while indent <= stack[-1][0]:
            stack.pop()
        level = stack[-1]
        if level[2] is None:
            level[2] = indent
        elif indent != level[2]:
            raise ConfigError(f"{file}:{number}: the indentation does not match the lines above")
        value = value.strip()
        if not value:
            child: dict[str, Any] = {}
            level[1][key] = child
            stack.append([indent, child, None])
            continue
        try:
            level[1][key] = _scalar(value)
        except ValueError as exc:
            raise ConfigError(f"{file}:{number}: {exc}") from None
    return root


def load_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; the environment the app was started with wins over them."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


class Settings:
    def __init__(self, config: dict[str, Any], env: dict[str, str]) -> None:
        self.config = config
        self.env = env

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def discount_mode(self) -> str:
        return self.env.get("DISCOUNT_MODE") or self.get("pricing.discount_mode", "sequential")

    @property
    def rounding(self) -> str:
        return str(self.get("pricing.rounding", "half_up"))

    def cents(self, dotted: str, default: str) -> int:
        return int(Decimal(str(self.get(dotted, default))) * 100)

    def check(self) -> None:
        if self.discount_mode not in DISCOUNT_MODES:
            raise ConfigError(f"pricing.discount_mode must be one of {', '.join(DISCOUNT_MODES)}, "
                              f"not {self.discount_mode!r}")
        if self.rounding not in ROUNDING:
            raise ConfigError(f"pricing.rounding must be one of {', '.join(ROUNDING)}, not {self.rounding!r}")


# --- pricing -------------------------------------------------------------------------


def money(cents: int) -> str:
    """An amount for invoices and the API. Money owed to us is never negative."""
    if cents < 0:
        raise ValueError(f"amount must not be negative: {cents} cents")
    return f"{cents // 100}.{cents % 100:02d}"


def percent_of(cents: int, percent: int, rounding: str) -> int:
    return int((Decimal(cents) * percent / 100).quantize(Decimal(1), rounding=ROUNDING[rounding]))


def price_order(items: list[sqlite3.Row], code_percent: int, settings: Settings) -> dict[str, int]:
    """Subtotal, markdowns, discount, shipping and total of one order, in cents."""
    rounding = settings.rounding
    subtotal = sum(it["qty"] * it["unit_price_cents"] for it in items)
    markdowns = sum(percent_of(it["qty"] * it["unit_price_cents"], it["markdown_pct"], rounding) for it in items)
    if settings.discount_mode == "stacked":
        # the code counts from the full price, beside the sale markdowns
        discount = percent_of(subtotal, code_percent, rounding)
    else:
        # the code counts from what is left once the markdowns are taken off
        discount = percent_of(subtotal - markdowns, code_percent, rounding)
    net = subtotal - markdowns - discount
    shipping = 0 if net >= settings.cents("pricing.free_shipping_over", "50") else settings.cents(
        "pricing.shipping_fee", "4.90")
    return {"subtotal": subtotal, "markdowns": markdowns, "discount": discount, "shipping": shipping,
            "total": net + shipping}


# --- the shop --------------------------------------------------------------------------


class NotFoundError(Exception):
    pass


class ConflictError(Exception):
    pass


class Shop:
    def __init__(self, db: Path, settings: Settings, uploads: Path | None) -> None:
        self.db = db
        self.settings = settings
        self.uploads = uploads

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """One connection per request: committed when the block ends, rolled back on an error."""
        conn = sqlite3.connect(self.db, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def _priced(self, conn: sqlite3.Connection, order: sqlite3.Row, with_items: bool) -> dict[str, Any]:
        items = conn.execute(
            "SELECT i.qty, i.unit_price_cents, i.markdown_pct, p.sku, p.name FROM order_items i "
            "JOIN products p ON p.id = i.product_id WHERE i.order_id = ? ORDER BY i.id", (order["id"],)).fetchall()
        percent = 0
        if order["discount_code"]:
            row = conn.execute("SELECT percent FROM discount_codes WHERE code = ?",
                               (order["discount_code"],)).fetchone()
            percent = row["percent"] if row else 0
        totals = price_order(items, percent, self.settings)
        out: dict[str, Any] = {"id": order["id"], "customer_id": order["customer_id"], "status": order["status"],
                               "created_at": order["created_at"], "discount_code": order["discount_code"]}
        if with_items:
            out["items"] = [{"sku": it["sku"], "name": it["name"], "qty": it["qty"],
                             "unit_price": money(it["unit_price_cents"]), "markdown_pct": it["markdown_pct"]}
                            for it in items]
            out["discount_percent"] = percent
            out["discount_mode"] = self.settings.discount_mode
        out.update({k: money(v) for k, v in totals.items()})
        out["currency"] = self.settings.get("shop.currency", "EUR")
        if self.settings.get("features.loyalty_points", False):
            out["loyalty_points"] = totals["total"] // 100
        return out

    def orders(self, limit: int, offset: int, status: str | None) -> list[dict[str, Any]]:
        with self.connect() as conn:
            sql, args = "SELECT * FROM orders", []
            if status:
                sql, args = sql + " WHERE status = ?", [status]
            rows = conn.execute(sql + " ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
            return [self._priced(conn, row, with_items=False) for row in rows]

    def order(self, order_id: int) -> dict[str, Any]:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no order {order_id}")
            return self._priced(conn, row, with_items=True)

    def customer(self, customer_id: int) -> dict[str, Any]:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM customers WHERE id = ?", (customer_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no customer {customer_id}")
            count = conn.execute("SELECT count(*) FROM orders WHERE customer_id = ?", (customer_id,)).fetchone()[0]
            latest = [r[0] for r in conn.execute(
                "SELECT id FROM orders WHERE customer_id = ? ORDER BY id DESC LIMIT 10", (customer_id,))]
            return {"id": row["id"], "name": row["name"], "email": row["email"], "phone": row["phone"],
                    "country": row["country"], "since": row["created_at"], "orders": count, "latest_orders": latest}

    def refund(self, order_id: int, reason: str) -> dict[str, Any]:
        with self.connect() as conn:
            order = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
            if order is None:
                raise NotFoundError(f"no order {order_id}")
            if order["status"] in ("refunded", "cancelled"):
                raise ConflictError(f"order {order_id} is {order['status']}: nothing to refund")
            priced = self._priced(conn, order, with_items=False)
            amount = int(Decimal(priced["total"]) * 100)
            now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            conn.execute("UPDATE orders SET status = 'refunded' WHERE id = ?", (order_id,))
            cur = conn.execute("INSERT INTO refunds (order_id, amount_cents, reason, created_at) VALUES (?, ?, ?, ?)",
                               (order_id, amount, reason, now))
            customer = conn.execute("SELECT name, email FROM customers WHERE id = ?",
                                    (order["customer_id"],)).fetchone()
        refund_id = cur.lastrowid
        note = self._file_credit_note(order_id, refund_id, priced["total"], priced["currency"], reason, now)
        send_mail(self.settings, customer["email"], f"Your refund for order #{order_id}",
                  f"Dear {customer['name']},\n\nwe refunded {priced['total']} {priced['currency']} "
                  f"for order #{order_id}. Your credit note is attached.\n", note)
        return {"order": order_id, "status": "refunded",
                "refund": {"id": refund_id, "amount": priced["total"], "reason": reason, "created_at": now}}

    def _file_credit_note(self, order_id: int, refund_id: int | None, amount: str, currency: str, reason: str,
                          when: str) -> Path | None:
        if self.uploads is None:
            return None
        folder = self.uploads / "credit-notes"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"CN-{order_id:06d}.txt"
        path.write_text(f"CREDIT NOTE CN-{order_id:06d}\nRefund #{refund_id} for order #{order_id}\n"
                        f"Amount: {amount} {currency}\nReason: {reason}\nDate: {when}\n", encoding="utf-8")
        return path


def mail_server(settings: Settings) -> tuple[str, int]:
    """SMTP_HOST as HOST or HOST:PORT; SMTP_PORT (default 25) when it names no port."""
    host = settings.env.get("SMTP_HOST", "").strip()
    port = settings.env.get("SMTP_PORT", "") or "25"
    m = re.fullmatch(r"\[?(.+?)\]?:(\d+)", host)
    if m:
        host, port = m.group(1), m.group(2)
    return host.strip("[]"), int(port) if port.isdigit() else 25


def send_mail(settings: Settings, to: str, subject: str, body: str, attachment: Path | None = None) -> None:
    """Mail goes over SMTP to a server on this machine (a clone's mail sink); any other host is
    logged and not contacted."""
    host, port = mail_server(settings)
    if host not in LOCAL_SINKS:
        log(f"mail: '{subject}' NOT sent: {host or 'no SMTP_HOST'} is not a server on this machine "
            "(this demo app never opens a connection to another machine)")
        return
    msg = EmailMessage()
    msg["From"] = settings.get("mail.from", "shop@localhost")
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment.read_bytes(), maintype="text", subtype="plain", filename=attachment.name)
    try:
        with smtplib.SMTP(host, port, timeout=5) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        log(f"mail: '{subject}' NOT sent: the mail server {host}:{port} did not take it ({exc})")
        return
    log(f"mail: '{subject}' sent to {host}:{port}")


# --- HTTP ------------------------------------------------------------------------------


def log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {message}\n")
    sys.stderr.flush()


class Handler(BaseHTTPRequestHandler):
    shop: Shop
    server_version = "northwind-orders/1.4"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the name BaseHTTPRequestHandler uses
        log(f'{self.address_string()} "{self.requestline}" {args[1] if len(args) > 1 else ""}')

    def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False,
                                                                           indent=2).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            self._route(method, url.path.rstrip("/") or "/", query)
        except NotFoundError as exc:
            self._send(404, {"error": str(exc)})
        except ConflictError as exc:
            self._send(409, {"error": str(exc)})
        except ValueError as exc:
            if getattr(exc, "client_error", False):
                self._send(400, {"error": str(exc)})
                return
            self._server_error()
        except Exception:
            self._server_error()

    def _server_error(self) -> None:
        log("ERROR " + self.requestline + "\n" + traceback.format_exc().rstrip())
        self._send(500, {"error": "internal server error"})

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _route(self, method: str, path: str, query: dict[str, str]) -> None:
        shop = self.shop
        if method == "GET" and path == "/health":
            with shop.connect() as conn:
                conn.execute("SELECT 1 FROM orders LIMIT 1").fetchall()
            self._send(200, "ok\n", "text/plain")
        elif method == "GET" and path == "/":
            self._send(200, {"shop": shop.settings.get("shop.name"), "endpoints": [
                "GET /health", "GET /orders?limit=N", "GET /orders/ID", "POST /orders/ID/refund", "GET /customers/ID"]})
        elif method == "GET" and path == "/orders":
            page = int(shop.settings.get("api.max_page_size", 200))
            limit = _int_arg(query, "limit", int(shop.settings.get("api.page_size", 20)), 1, page)
            offset = _int_arg(query, "offset", 0, 0, 10**9)
            self._send(200, shop.orders(limit, offset, query.get("status")))
        elif method == "GET" and (m := re.fullmatch(r"/orders/(\d+)", path)):
            self._send(200, shop.order(int(m[1])))
        elif method == "POST" and (m := re.fullmatch(r"/orders/(\d+)/refund", path)):
            if not shop.settings.get("features.refunds", True):
                self._send(403, {"error": "refunds are switched off (features.refunds)"})
                return
            self._send(200, shop.refund(int(m[1]), self._reason()))
        elif method == "GET" and (m := re.fullmatch(r"/customers/(\d+)", path)):
            self._send(200, shop.customer(int(m[1])))
        else:
            self._send(404, {"error": f"no route for {method} {path}"})

    def _reason(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return "requested by support"
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _client_error("the body must be JSON, e.g. {\"reason\": \"damaged\"}") from None
        return str(body.get("reason") or "requested by support") if isinstance(body, dict) else "requested by support"


def _client_error(message: str) -> ValueError:
    exc = ValueError(message)
    exc.client_error = True  # type: ignore[attr-defined]
    return exc


def _int_arg(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    if name not in query:
        return default
    try:
        value = int(query[name])
    except ValueError:
        raise _client_error(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise _client_error(f"{name} must be between {low} and {high}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Northwind Outfitters' order service")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", required=True, type=Path, help="the SQLite database")
    parser.add_argument("--config", default="config/app.yaml", type=Path)
    parser.add_argument("--uploads", type=Path, help="where credit notes are filed")
    args = parser.parse_args(argv)
    env = {**load_dotenv(Path(".env")), **os.environ}
    try:
        settings = Settings(parse_config(args.config.read_text(encoding="utf-8"), str(args.config)), env)
        settings.check()
    except (OSError, ConfigError) as exc:
        log(f"cannot start: {exc}")
        return 2
    if not args.db.is_file():
        log(f"cannot start: no database at {args.db}")
        return 2
    Handler.shop = Shop(args.db, settings, args.uploads)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    log(f"{settings.get('shop.name', 'shop')} listening on http://{args.host}:{args.port} "
        f"(db {args.db}, discount_mode {settings.discount_mode}, rounding {settings.rounding})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
