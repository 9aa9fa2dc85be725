"""What the routes depend on: the app's store, as the request's principal may use it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from stead.server.access import guard
from stead.store.base import Store


def get_store(request: Request) -> Store:
    state = request.app.state
    return guard(state.store, request.state.principal, state.access)


StoreDep = Annotated[Store, Depends(get_store)]
