"""/api/v1/variables: named JSON values for configuration (store/variables.py).

Readers (and workers, for the flows they execute) read; operators and admins write; a key
reaches only the variables of its namespaces. Writes are in the audit log as every change is
(server/audit.py: `PUT /api/v1/variables/NAME`, target NAME).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from stead.errors import InvalidVariable, VariableExists
from stead.server.deps import StoreDep
from stead.server.errors import ApiError
from stead.server.schemas import ErrorBody
from stead.store.variables import (
    DEFAULT_NAMESPACE,
    NAME_MAX,
    NAME_RULE,
    VariableRecord,
    check_name,
    check_tags,
    value_to_json,
)

router = APIRouter(prefix="/variables", tags=["variables"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No variable of that name in the namespace"}}
NameParam = Annotated[str, Path(description=f"The name: {NAME_RULE}",
                                examples=["batch_size"])]
NamespaceParam = Annotated[str, Query(description="The variable's namespace")]


class Variable(BaseModel):
    namespace: str
    name: str
    value: JsonValue = Field(description="Any JSON value")
    tags: list[str]
    created_at: float = Field(description="Unix seconds")
    updated_at: float = Field(description="Unix seconds: when the value was last set")

    @classmethod
    def of(cls, r: VariableRecord) -> Variable:
        return cls(namespace=r.namespace, name=r.name, value=r.value, tags=r.tags,
                   created_at=r.created_at, updated_at=r.updated_at)


class VariableList(BaseModel):
    items: list[Variable]


class SetVariable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: JsonValue = Field(description="Any JSON value (a string, number, boolean, null, "
                                         "list or object), at most 64 KiB as JSON text")
    tags: list[str] | None = Field(None, description="Replace the tags; leave out (or null) "
                                                     "to keep the ones it has")
    overwrite: bool = Field(True, description="Replace an existing variable; with false, an "
                                              "existing one is a 409 and nothing changes")


def _valid_name(name: str) -> str:
    try:
        return check_name(name)
    except InvalidVariable as exc:
        raise ApiError(422, str(exc), type="InvalidVariable") from None


@router.get("", summary="List variables", response_model=VariableList, description=(
    "The variables the key may read, by namespace and name; `namespace` and `prefix` narrow "
    "the list."))
def list_variables(
    store: StoreDep,
    namespace: Annotated[str | None, Query(
        description="Only this namespace (default: every namespace the key may read)")] = None,
    prefix: Annotated[str | None, Query(max_length=NAME_MAX,
                                        description="Only names starting with this")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many")] = 1000,
) -> VariableList:
    records = store.list_variables(namespace, prefix, limit)  # type: ignore[attr-defined]
    return VariableList(items=[Variable.of(r) for r in records])


@router.get("/{name}", summary="Get a variable", response_model=Variable, responses=NOT_FOUND,
            description="The variable `name` of `namespace`, with its value.")
def get_variable(name: NameParam, store: StoreDep,
                 namespace: NamespaceParam = DEFAULT_NAMESPACE) -> Variable:
    record = store.get_variable(_valid_name(name), namespace)  # type: ignore[attr-defined]
    if record is None:
        raise ApiError(404, f"no variable {name!r} in namespace {namespace!r}; "
                            "GET /api/v1/variables lists them", type="VariableNotFound")
    return Variable.of(record)


@router.put("/{name}", summary="Set a variable", response_model=Variable, status_code=200,
            responses={201: {"model": Variable, "description": "The variable was created"},
                       409: {"model": ErrorBody, "description": "It exists and `overwrite` "
                                                                "was false"}},
            description=(
                "Create the variable `name` (201), or replace its value (200; `created_at` "
                "is kept). Needs an operator or admin key. A name that is not "
                f"{NAME_RULE}, or a value too large, is a 422 that says why."))
def set_variable(name: NameParam, body: SetVariable, response: Response, store: StoreDep,
                 namespace: NamespaceParam = DEFAULT_NAMESPACE) -> Variable:
    now = time.time()
    try:
        # Checked here too: a store behind a server (remote) refuses bad text as a transport
        # error, not as the 422 that says which field.
        record = store.set_variable(  # type: ignore[attr-defined]
            _valid_name(name), namespace, value_to_json(body.value), check_tags(body.tags),
            now, body.overwrite)
    except VariableExists as exc:
        raise ApiError(409, str(exc), type="VariableExists") from None
    except InvalidVariable as exc:
        raise ApiError(422, str(exc), type="InvalidVariable") from None
    if record.created_at == now:
        response.status_code = 201
    return Variable.of(record)


@router.delete("/{name}", summary="Delete a variable", status_code=204, responses=NOT_FOUND,
               response_class=Response,
               description="Delete the variable `name` of `namespace`. Needs an operator or "
                           "admin key, and (as every change) the header `Content-Type: "
                           "application/json`.")
def delete_variable(name: NameParam, store: StoreDep,
                    namespace: NamespaceParam = DEFAULT_NAMESPACE) -> Response:
    if not store.delete_variable(_valid_name(name), namespace):  # type: ignore[attr-defined]
        raise ApiError(404, f"no variable {name!r} in namespace {namespace!r}",
                       type="VariableNotFound")
    return Response(status_code=204)
