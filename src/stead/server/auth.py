"""API keys on requests: `Authorization: Bearer stead_...`, and who the request is from.

When the app requires keys, every route except /health depends on `authenticate`: a missing,
unknown or revoked key is a 401 with the error body. When it does not (a server listening on
a loopback address only), a request without a key is the local user's (every permission), but
a key that is sent is still checked: a wrong or revoked key is refused, a valid one limits the
request to its role and namespaces. `request.state.principal` says who sent the request.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stead.server.apikeys import hash_key
from stead.server.errors import ApiError
from stead.server.policy import LOCAL, Principal
from stead.store.base import ApiKeyRecord, Store
from stead.store.keys import TOUCH_EVERY_S

bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                    description="An API key, made with `stead keys create NAME --role ROLE`: "
                                "`Authorization: Bearer stead_...`")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def principal_of(key: ApiKeyRecord) -> Principal:
    """The principal a stored key stands for."""
    queues = json.loads(key.queues) if key.queues else None
    return Principal(key.id, key.name, key.role, tuple(json.loads(key.namespaces)),
                     tuple(queues) if queues is not None else None)


def authenticate(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """Let the request through if keys are not required or it carries a valid key."""
    if credentials is None:
        if request.app.state.require_auth:
            raise ApiError(401, "this server needs an API key: send the header "
                                "'Authorization: Bearer stead_...' (make a key with "
                                "`stead keys create NAME --role ROLE`)", headers=CHALLENGE)
        request.state.principal = LOCAL
        return
    store: Store = request.app.state.store
    find = getattr(store, "find_api_key", None)  # None: the store is another Stead server's
    if find is None:
        raise ApiError(401, "this server cannot check API keys: its database is reached "
                            "through another Stead server; send the key to that one",
                       headers=CHALLENGE)
    key = find(hash_key(credentials.credentials))
    if key is None or key.revoked_at is not None:
        what = "was revoked" if key is not None else "is not a key of this server"
        raise ApiError(401, f"the API key {what}; `stead keys ls` lists the valid keys",
                       headers=CHALLENGE)
    request.state.principal = principal_of(key)
    now = time.time()
    if key.last_used_at is None or key.last_used_at < now - TOUCH_EVERY_S:
        store.touch_api_key(key.id, now)


Authenticated = Depends(authenticate)
