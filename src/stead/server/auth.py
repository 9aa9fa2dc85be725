"""API keys on requests: `Authorization: Bearer stead_...`.

When the app requires keys, every route except /health depends on `authenticate`: a missing,
unknown or revoked key is a 401 with the error body. When it does not (a server listening on
a loopback address only), every request is let through.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stead.server.apikeys import hash_key
from stead.server.errors import ApiError
from stead.server.policy import LOCAL, Principal
from stead.store.base import Store
from stead.store.keys import TOUCH_EVERY_S

bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                    description="An API key, made with `stead keys create NAME`: "
                                "`Authorization: Bearer stead_...`")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def authenticate(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """Let the request through if keys are not required or it carries a valid key; the
    request's `state.principal` says who sent it (server/policy.py)."""
    if not request.app.state.require_auth:
        request.state.principal = LOCAL
        return
    if credentials is None:
        raise ApiError(401, "this server needs an API key: send the header "
                            "'Authorization: Bearer stead_...' (make a key with "
                            "`stead keys create NAME`)", headers=CHALLENGE)
    store: Store = request.app.state.store
    key = store.find_api_key(hash_key(credentials.credentials))
    if key is None or key.revoked_at is not None:
        what = "was revoked" if key is not None else "is not a key of this server"
        raise ApiError(401, f"the API key {what}; `stead keys ls` lists the valid keys",
                       headers=CHALLENGE)
    request.state.principal = Principal(key.id, key.name, getattr(key, "role", "admin"))
    now = time.time()
    if key.last_used_at is None or key.last_used_at < now - TOUCH_EVERY_S:
        store.touch_api_key(key.id, now)


Authenticated = Depends(authenticate)
