"""The review API's wire contract: low-confidence cases, reviews, and what a reviewer submits."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Optional

from pydantic import BaseModel, Field

from rerankq.storable_text import StorableStr

GRADE_NAMES = {0: "Not relevant", 1: "Partly relevant", 2: "Relevant", 3: "Perfect"}
RELEVANT_GRADE = 2  # a grade at or above this counts as relevant (label 1) in binary exports


class CaseStatus(str, Enum):
    open = "open"
    reviewed = "reviewed"
    dismissed = "dismissed"


class Decision(str, Enum):
    reviewed = "reviewed"
    dismissed = "dismissed"


class ReviewCreate(BaseModel):
    """One reviewer's judgement; submitting again replaces that reviewer's previous one."""

    labels: dict[int, int] = Field(default_factory=dict,
                                   description="Grade per document index: 0 not relevant, 1 partly, 2 relevant, "
                                               "3 perfect. Documents left out are unlabelled.")
    best_index: Optional[int] = Field(None, description="The document that answers the query best (graded 3 "
                                                         "when unlabelled; must not be graded below 2).")
    note: Optional[StorableStr] = Field(None, max_length=5000, description="Free text for whoever reads the review.")
    decision: Decision = Field(..., description="reviewed: the labels are usable; dismissed: not worth labelling.")
    reviewer: Optional[StorableStr] = Field(None, max_length=100,
                                    description="A person's name when one tool submits for several people; "
                                                "stored under the calling key's id.")


class ReviewView(BaseModel):
    reviewer: str
    reviewer_name: str
    labels: dict[int, int]
    best_index: Optional[int] = None
    note: Optional[str] = None
    decision: Decision
    created_at: datetime
    updated_at: datetime


class CaseDocument(BaseModel):
    index: int = Field(..., description="Position in the submitted request.")
    rank: int = Field(..., description="1 = the model's best.")
    score: float
    text: str


class CaseSummary(BaseModel):
    id: int
    job_id: str
    request_idx: int
    status: CaseStatus
    reason: str
    reasons: list[str]
    query: str
    instruction: Optional[str] = None
    model: str
    model_revision: str
    score_type: str
    top_score: float
    n_documents: int
    n_reviews: int
    created_at: datetime


class CaseDetail(CaseSummary):
    documents: list[CaseDocument] = Field(..., description="In model order, best first.")
    reviews: list[ReviewView]


class CaseList(BaseModel):
    items: list[CaseSummary]
    total: int
    page: int
    page_size: int
