"""The `stead` command line (Typer + Rich). Only this package imports them."""
