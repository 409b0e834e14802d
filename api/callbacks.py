"""Submit-time check of a job's callback_url: only allow-listed http(s) hosts that resolve to public
addresses (or any address, with RERANKQ_WEBHOOK_ALLOW_PRIVATE) may receive webhooks.

The worker checks both again before each delivery (the allow-list or DNS may have changed since)."""

from __future__ import annotations

from typing import Optional

from api.errors import ApiError
from core.callback_addresses import ALLOW_PRIVATE_SETTING, resolve_host
from core.settings import Settings
from core.webhooks import callback_url_problem, host_and_port, parse_allowed_hosts
from store.db import session_scope
from store.webhook_secrets import missing_secret_problem, signing_secret


def check_callback_url(url: Optional[str], settings: Settings, owner: Optional[str] = None) -> None:
    """422 unless `url` may receive this tenant's (`owner`'s) webhooks, signed with its own secret."""
    if url is None:
        return
    problem = callback_url_problem(url, settings.webhook_allowed_hosts)
    if problem is None and not _has_signing_secret(settings, owner):
        problem = missing_secret_problem(owner)
    if problem:
        raise ApiError(422, "invalid_callback_url", f"callback_url: {problem}", field="callback_url",
                       limit=parse_allowed_hosts(settings.webhook_allowed_hosts))
    problem = resolve_host(*host_and_port(url), allow_private=settings.webhook_allow_private).problem
    if problem:
        raise ApiError(422, "invalid_callback_url", f"callback_url: {problem}", field="callback_url",
                       limit={ALLOW_PRIVATE_SETTING: settings.webhook_allow_private})


def _has_signing_secret(settings: Settings, owner: Optional[str]) -> bool:
    with session_scope(settings.database_url) as session:
        return signing_secret(session, owner, settings.webhook_secret) is not None
