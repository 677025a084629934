"""Admin-only routes to issue, list and revoke API keys (the CLI's ``keys`` commands)."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from domain.text import KeyId as KeyIdText
from starter.api.auth import ManageKeys
from starter.api.body import StrictJsonRoute
from starter.api.deps import KeysDep
from starter.api.schemas import ApiKeyOut, CreateKeyBody, IssuedKey

router = APIRouter(prefix="/keys", tags=["keys"], route_class=StrictJsonRoute)
KeyId = Annotated[KeyIdText, Path(description="The key's public id.")]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(body: CreateKeyBody, keys: KeysDep, _: ManageKeys) -> IssuedKey:
    """Issue a key; the response is the only time its secret is shown."""
    return await keys.create(body.role, body.account_id, body.description)


@router.get("")
async def list_keys(keys: KeysDep, _: ManageKeys) -> list[ApiKeyOut]:
    """Every key, revoked ones included; never a secret or a hash."""
    return await keys.list_keys()


@router.post("/{key_id}/revoke")
async def revoke_key(key_id: KeyId, keys: KeysDep, _: ManageKeys) -> ApiKeyOut:
    """Revoke at once: the next call with the key to this process is a 401 (to other API
    processes within ``TRADING_API_KEY_CACHE_SECONDS``)."""
    return await keys.revoke(key_id)
