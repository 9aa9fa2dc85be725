"""What the routes depend on: the app's store."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from stead.store.base import Store


def get_store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


StoreDep = Annotated[Store, Depends(get_store)]
