"""What the routes depend on: the app's store, as the request's principal may use it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from stead.server.access import Access, guard
from stead.store.base import Store


def get_store(request: Request) -> Store:
    state = request.app.state
    access = getattr(state, "access", None)
    if access is None:  # an app put together without create_app (tests of one router)
        access = state.access = Access(state.store)
    return guard(state.store, request.state.principal, access)


StoreDep = Annotated[Store, Depends(get_store)]
