"""Reviews as another tenant may see them: never with a key id from outside that tenant.

A review is stored under the reviewing key's id (`<key id>` or `<key id>/<name>`). An admin key
reviews every tenant's cases, so showing `reviewer` as stored would hand its key id (and name) to
each tenant; key ids are half of a forged session. Outside the key's own tenant the reviewer is
shown as a stable pseudonym instead, which still tells reviewers apart.
"""

from __future__ import annotations

import hashlib
from typing import Optional, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.review_schemas import CaseDetail
from store.tables import ApiKey

FOREIGN_NAME = "reviewer from another tenant"


def key_id_of(reviewer: str) -> str:
    return reviewer.split("/", 1)[0]


def pseudonym(reviewer: str) -> str:
    return "external-" + hashlib.sha256(f"rerankq-reviewer.{key_id_of(reviewer)}".encode()).hexdigest()[:10]


def foreign_reviewers(session: Session, reviewers: Sequence[str], tenant: Optional[str]) -> set[str]:
    """The stored reviewers whose key belongs to a tenant other than `tenant` (None: the caller sees
    every tenant, so nothing is foreign). Reviews made with access control off name no key."""
    if tenant is None or not reviewers:
        return set()
    key_ids = {key_id_of(r) for r in reviewers}
    tenants = dict(session.execute(select(ApiKey.id, ApiKey.tenant).where(ApiKey.id.in_(key_ids))).all())
    return {r for r in reviewers if key_id_of(r) in tenants and tenants[key_id_of(r)] != tenant}


def hide_foreign_reviewers(session: Session, detail: CaseDetail, tenant: Optional[str]) -> CaseDetail:
    foreign = foreign_reviewers(session, [r.reviewer for r in detail.reviews], tenant)
    if not foreign:
        return detail
    reviews = [r.model_copy(update=dict(reviewer=pseudonym(r.reviewer), reviewer_name=FOREIGN_NAME))
               if r.reviewer in foreign else r for r in detail.reviews]
    return detail.model_copy(update=dict(reviews=reviews))
