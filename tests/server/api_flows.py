"""A flow the server tests deploy, with a text parameter (imported as tests.server.api_flows)."""

from stead import flow


@flow
def greet(name: str, times: int = 1) -> str:
    return " ".join([f"hello {name}"] * times)
