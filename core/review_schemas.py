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


class CaseValueView(BaseModel):
    """Why a case sits where it does in the "most useful first" order (sum of three parts, each 0..1)."""

    total: float
    uncertainty: float = Field(description="Top-1/top-2 margin near zero, or top score near the threshold.")
    margin: Optional[float] = Field(None, description="Top-1 minus top-2 score.")
    top_score: float
    frequency: float = Field(description="How often this normalized query was seen recently (log scale).")
    seen: int = Field(description="Requests with this normalized query in the window (RERANKQ_REVIEW_FREQUENCY_DAYS).")
    disagreement: float = Field(description="(1 - Kendall tau) / 2 against a shadow model; 0 without one.")
    shadow_model: Optional[str] = None


class RepeatView(BaseModel):
    job_id: str
    request_idx: int
    created_at: datetime


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
    repeats: int = Field(1, description="Identical requests (same normalized query, instruction and document "
                         "set) this case stands for, itself included.")
    value: Optional[CaseValueView] = None


class CaseDetail(CaseSummary):
    documents: list[CaseDocument] = Field(..., description="In model order, best first.")
    reviews: list[ReviewView]
    repeat_jobs: list[RepeatView] = Field(default_factory=list, description="The case's own request, then its "
                                          "repeats, oldest first.")


class CaseList(BaseModel):
    items: list[CaseSummary]
    total: int
    page: int
    page_size: int
