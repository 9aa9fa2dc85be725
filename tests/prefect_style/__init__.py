"""Flows written the way Prefect 3's documentation writes them, with `from prefect import ...`
changed to `from stead import ...`: each runs for real and asserts what Prefect documents."""
