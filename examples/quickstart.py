"""Quickstart: a small ETL flow with a flaky task that succeeds on retry.

    python examples/quickstart.py
    stead runs ls                 # the run you just made
    stead runs show <RUN_ID>      # its steps, timings, retries and result

Extracts orders (generated here so the example needs no network), converts their currency
through a "rate service" that fails on its first call, and loads the totals into a local
SQLite warehouse file next to this script.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import sqlite3
from decimal import Decimal
from pathlib import Path

from stead import flow, get_logger, task

WAREHOUSE = Path(__file__).with_name("warehouse.db")
_rate_service_calls = 0


@dataclasses.dataclass
class Order:
    id: int
    day: dt.date
    region: str
    amount: Decimal
    currency: str


@task
def extract(day: dt.date, count: int) -> list[Order]:
    rng = random.Random(day.toordinal())  # the same orders for the same day
    orders = [Order(i, day, rng.choice(["eu", "us", "apac"]),
                    Decimal(rng.randint(100, 99_999)) / 100, rng.choice(["EUR", "USD"]))
              for i in range(count)]
    get_logger().info("extracted %d orders for %s", len(orders), day)
    return orders


@task(retries=3, retry_delay=0.5)
def fetch_rates(day: dt.date) -> dict[str, Decimal]:
    """A rate service that is down on the first call: Stead retries it."""
    global _rate_service_calls
    _rate_service_calls += 1
    if _rate_service_calls == 1:
        raise ConnectionError("rate service unavailable (503)")
    return {"EUR": Decimal("1"), "USD": Decimal("0.92")}


@task
def transform(orders: list[Order], rates: dict[str, Decimal]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for order in orders:
        eur = (order.amount * rates[order.currency]).quantize(Decimal("0.01"))
        totals[order.region] = totals.get(order.region, Decimal(0)) + eur
    return totals


@task
def load(day: dt.date, totals: dict[str, Decimal]) -> int:
    with sqlite3.connect(WAREHOUSE) as db:
        db.execute("CREATE TABLE IF NOT EXISTS revenue (day TEXT, region TEXT, eur TEXT, "
                   "PRIMARY KEY (day, region))")
        db.executemany("INSERT OR REPLACE INTO revenue VALUES (?, ?, ?)",
                       [(day.isoformat(), r, str(v)) for r, v in sorted(totals.items())])
    get_logger().info("loaded %d regions into %s", len(totals), WAREHOUSE.name)
    return len(totals)


@flow
def daily_revenue(day: dt.date, count: int = 500) -> dict[str, Decimal]:
    orders = extract(day, count)
    rates = fetch_rates(day)
    totals = transform(orders, rates)
    load(day, totals)
    return totals


if __name__ == "__main__":
    totals = daily_revenue(dt.date(2026, 11, 21))
    for region, eur in sorted(totals.items()):
        print(f"{region:>5}: EUR {eur:>12,}")
    print("\nSee what was recorded:  stead runs ls   then   stead runs show <RUN_ID>")
