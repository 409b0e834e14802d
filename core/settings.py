"""Every knob of the service, read from `RERANKQ_*` environment variables (or `.env`).

One class for API, workers and CLI so that the broker options (visibility timeout above all)
are the same in every process that talks to Redis.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "Qwen/Qwen3-Reranker-0.6B"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RERANKQ_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(Path("./data"), description="Local state for `rerankq up`: SQLite file, Redis AOF, logs.")
    database_url: str = Field("", description="SQLAlchemy URL. Empty: SQLite file under data_dir.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis used as Celery broker and for heartbeats.")
    host: str = Field("127.0.0.1", description="API bind address.")
    port: int = Field(8000, ge=1, le=65535, description="API port.")

    # --- model -------------------------------------------------------------------------
    model: str = Field(DEFAULT_MODEL, description="Hub id or local directory of the reranker the worker loads.")
    model_name: str = Field("", description="Name clients use in the `model` field. Empty: same as `model`.")
    model_revision: str = Field("", description="Hub revision to load (branch, tag or commit). Empty: default branch.")
    model_backend: Literal["auto", "qwen3", "seq-cls"] = Field(
        "auto", description="Scoring backend. auto: chosen from the model's config.json."
    )
    device: str = Field("auto", description="auto (cuda if present, else cpu), cpu, cuda, cuda:N.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 (or float16) on CUDA, float32 on CPU."
    )
    max_length: int = Field(8192, ge=16, description="Token budget per (query, document) pair, prompt included.")
    seq_cls_activation: Literal["sigmoid", "identity"] = Field(
        "sigmoid", description="seq-cls backend: sigmoid of the single logit, or the raw logit."
    )
    prefix_reuse: bool = Field(
        True, description="qwen3 backend: run the prompt head shared by one query's pairs (system prompt, "
        "instruction, query) once per batch and only the documents per pair; same scores, less compute.",
    )
    long_document_mode: Literal["truncate", "chunk"] = Field(
        "truncate", description="qwen3 backend: truncate a long document as the model card does, or score it as "
        "consecutive token windows (max_tokens_per_doc tokens, else what fits max_length) and keep the best.",
    )
    long_document_max_windows: int = Field(
        16, ge=1, description="chunk mode: windows scored per document; the text after them is ignored."
    )
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API: comma-separated model names accepted even while no worker serves them (the default "
        "model, RERANKQ_MODEL_NAME, always is); models of live workers are accepted too.",
    )

    # --- worker and batcher ------------------------------------------------------------
    worker_concurrency: int = Field(16, ge=1, description="Celery threads per worker: chunks that can share a batch.")
    max_batch_tokens: Optional[int] = Field(
        None, ge=16, description="Padded tokens per forward pass (pairs x longest; with prefix reuse, what the "
        "model runs). Empty: 16384 on CUDA, 2048 on CPU (where bigger batches only spill the caches).",
    )
    max_batch_pairs: int = Field(64, ge=1, description="Pairs per forward pass.")
    max_batch_wait_ms: float = Field(5.0, ge=0, description="Longest wait for more pairs when the batcher is idle.")
    torch_threads: int = Field(
        0, ge=0, description="CPU threads the model uses (0: one per core). Only the batcher thread runs it.",
    )
    batch_overhead_tokens: Optional[int] = Field(
        None, ge=0, description="What one more forward pass costs, in tokens: a batch is cut where growing it "
        "would add more padding than this. Empty: 64 on CPU, 1024 on CUDA (where small batches waste the GPU).",
    )
    chunk_pairs: int = Field(256, ge=1, description="Pairs per queue message (job chunk).")
    interactive_max_pairs: int = Field(
        1000, ge=1, description="Jobs with at most this many pairs go to the interactive queue."
    )
    chunk_deadline_s: float = Field(90.0, gt=0, description="Longest a chunk may take from claim to scores.")
    step_timeout_s: float = Field(120.0, gt=0, description="A forward pass longer than this kills the worker.")
    max_attempts: int = Field(3, ge=1, description="Deliveries of one chunk before its job is marked failed.")
    sync_direct: bool = Field(
        True, description="POST /v1/rerank's messages go on a plain Redis list that workers take from with their "
        "own consumer, not through Celery, whose cost per message was about half a worker's Python time under "
        "sync traffic (core/direct_queue.py; needs Redis 6.2+). Set it on the API; workers take from both.",
    )
    store_group_commit: bool = Field(
        True, description="Worker claims, and saves, the chunks that arrive together (one forward pass's) in one "
        "store transaction each, from one committer thread; false: one transaction per chunk per task thread.",
    )
    heartbeat_interval_s: float = Field(5.0, gt=0, description="Worker heartbeat period (readiness uses 3x).")
    visibility_timeout_s: int = Field(300, ge=1, description="Redis redelivery of unacked messages (>= 3x deadline).")
    unacked_restore_interval_s: float = Field(10.0, gt=0, description="How often workers look for expired messages.")
    sweep_interval_s: float = Field(15.0, gt=0, description="How often a worker re-publishes never-published jobs.")
    publish_grace_s: float = Field(30.0, ge=0, description="Age after which an unpublished job is re-published.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Worker /metrics port (0: none).")
    worker_send_events: bool = Field(
        False, description="Workers emit Celery task events (and the API task-sent events) for Flower."
    )
    gpu_claim: bool = Field(
        False, description="Worker takes the first GPU no other worker holds (a Redis lease), so replicas that "
        "all see every GPU (`docker compose --scale worker=N`) spread one per GPU.",
    )

    # --- fault injection (resilience tests and game days; all off by default) -----------
    fault_step_delay_s: float = Field(0.0, ge=0, description="Sleep this long in every forward pass.")
    fault_poison_marker: str = Field("", description="A forward pass holding a document with this text raises.")
    fault_hang_marker: str = Field("", description="A forward pass holding a document with this text hangs.")
    fault_oom_above_pairs: int = Field(0, ge=0, description="Batches above this many pairs raise out-of-memory.")
    fault_publish_fails: bool = Field(False, description="API: publishing a job to the broker raises (the job "
                                      "stays stored and unpublished, for the sweeper).")

    # --- API ---------------------------------------------------------------------------
    sync_timeout_s: float = Field(30.0, gt=0, description="POST /v1/rerank waits this long, then answers 202.")
    wait_recheck_s: float = Field(
        5.0, gt=0, description="API: how often one store query checks every job this process's waiting requests "
        "(POST /v1/rerank, ?wait=, playground) wait on, in case a done notice was lost. Notices wake them at once.",
    )
    max_documents: int = Field(1000, ge=1, description="Documents per request.")
    job_results_page: int = Field(
        10, ge=1, le=100, description="Requests whose results one GET /v1/jobs/{id} answer holds unless `limit` "
        "says otherwise (at most 100); `page.next` names the next page.",
    )
    max_requests_per_job: int = Field(100, ge=1, description="Requests (queries) per job.")
    max_document_chars: int = Field(100_000, ge=1, description="Characters per document.")
    max_query_chars: int = Field(20_000, ge=1, description="Characters per query or instruction.")
    max_body_bytes: int = Field(20_000_000, ge=1024, description="Request body size.")
    max_queue_depth: int = Field(10_000, ge=1, description="A model's queued and in-flight messages (with the "
                                 "submits being admitted) at which submits get 429. A message is one chunk, or "
                                 "small jobs accepted together: at most RERANKQ_MAX_BATCH_PAIRS pairs.")
    max_tenant_pairs: int = Field(
        250_000, ge=0, description="Pairs one tenant may have queued or being scored; a submit that would go "
        "above it gets 429 (0: no quota). Keeps one tenant from filling the queue for everyone.",
    )
    auth_enabled: bool = Field(True, description="Require `Authorization: Bearer <key>` (rerankq keys create).")
    metrics_require_key: bool = Field(
        False, description="GET /metrics on the API requires a key with the metrics (or admin) scope, sent as "
        "`Authorization: Bearer` (Prometheus: `authorization.credentials`). Off: open to any caller.",
    )
    secret_key: str = Field("", description="Signs dashboard sessions and CSRF tokens. Empty: random per start "
                            "(sessions then end on restart; set one shared value when running several API processes).")
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1", description="Comma-separated addresses (or `*`) of TLS-terminating proxies whose "
        "X-Forwarded-Proto/-For the API trusts, so the dashboard's session cookie gets the Secure flag behind "
        "them. Empty: forwarded headers are ignored.",
    )
    dashboard_session_hours: float = Field(12.0, gt=0, description="How long a dashboard login lasts.")

    # --- webhooks (off while no host is allowed) -----------------------------------------
    webhook_allowed_hosts: str = Field(
        "", description="Comma-separated hosts a job's callback_url may name: `host`, `host:port` or `*.domain`. "
        "Empty: webhooks are off and a job with callback_url is refused (422).",
    )
    webhook_secret: str = Field("", description="HMAC-SHA256 key signing deliveries (X-Rerankq-Signature) of jobs "
                                "without a tenant (access control off). With access control on, each tenant's own "
                                "secret signs its jobs (`rerankq keys webhook-secret --tenant T`).")
    webhook_allow_private: bool = Field(
        False, description="Let callbacks reach loopback/private addresses (for receivers inside your network); "
        "off: such callbacks are refused.",
    )
    webhook_max_attempts: int = Field(6, ge=1, description="Delivery attempts before callback status is failed.")
    webhook_backoff_s: float = Field(1.0, gt=0, description="Wait after the first failed delivery; doubles each time.")
    webhook_timeout_s: float = Field(10.0, gt=0, description="One delivery's HTTP timeout.")
    public_url: str = Field("", description="Base URL clients reach the API at, for the results_url in webhook "
                            "summaries (e.g. https://rerank.example.com). Empty: a path (/v1/jobs/<id>).")

    # --- score cache (worker; off by default) ------------------------------------------
    score_cache_enabled: bool = Field(False, description="Reuse scores of identical pairs from Redis (same model, "
                                      "revision, score type, instruction, query, document, truncation).")
    score_cache_ttl_s: int = Field(7 * 86400, ge=1, description="How long a cached score lives.")

    # --- retention (store/retention.py; the worker's sweeper and `rerankq purge`) -------------
    retention_days: float = Field(
        30.0, ge=0, description="Finished jobs older than this (by finish time) lose their requests, chunks and "
        "scores to the worker's sweeper; their ids then answer 404 job_expired. 0: keep forever.",
    )
    case_retention_days: float = Field(
        0.0, ge=0, description="Low-confidence cases (and their reviews) older than this are deleted; reviewed "
        "cases only once a label export included them. 0: keep forever.",
    )
    expired_marker_days: float = Field(
        365.0, ge=0, description="How long a deleted job keeps its small marker row, so its id answers "
        "job_expired rather than not_found (kept while the job still has cases). 0: no marker is kept.",
    )
    retention_batch: int = Field(
        100, ge=1, description="Jobs or cases deleted per transaction: small, so writers on the hot path "
        "never wait long.",
    )
    keep_document_text: bool = Field(
        True, description="Keep the query and document texts of finished requests that were not flagged. false: "
        "replace them by SHA-256 hashes when the job finishes (flagged requests and cases keep their text for "
        "reviewers; return_documents then only works on POST /v1/rerank).",
    )

    # --- Cohere compatibility ------------------------------------------------------------
    model_aliases: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="API: comma-separated `alias=served_name` pairs; a request naming an alias is scored by the "
        "served model, and its job and results carry that model's name (e.g. "
        "`rerank-v3.5=Qwen/Qwen3-Reranker-0.6B`, so Cohere clients' model names work unchanged).",
    )

    # --- degraded fallback (off by default; never silent) --------------------------------
    fallback_enabled: bool = Field(
        False, description="Let a `rerankq worker --fallback` answer with embedding cosine similarity, marked "
        "degraded, when no reranker worker is live for fallback_after_s or a chunk fails all its attempts.",
    )
    fallback_model: str = Field("", description="Embedding model (hub id or local directory; mean pooling) the "
                                "fallback worker loads.")
    fallback_after_s: float = Field(10.0, gt=0, description="How long jobs wait without a live reranker worker "
                                    "before the fallback worker takes them.")

    # --- score drift (API /metrics, dashboard overview, `rerankq drift`) ----------------
    drift_window_s: float = Field(3600.0, gt=0, description="Recent window whose score distribution is compared "
                                  "with the model's reference window (rerankq_score_drift_psi/ks).")
    drift_reference_s: float = Field(86400.0, gt=0, description="Length of a reference window: the first traffic "
                                     "of a newly served model revision, or the last traffic at `rerankq drift pin`.")
    drift_max_jobs: int = Field(100, ge=1, description="Most recent succeeded jobs sampled per window (bounds the "
                                "cost of a drift computation).")
    drift_min_scores: int = Field(100, ge=1, description="Scores each window needs before PSI and KS are reported.")
    drift_bins: int = Field(10, ge=2, le=100, description="PSI bins, at the reference window's quantiles.")
    drift_cache_s: float = Field(60.0, ge=0, description="API: how long one drift computation serves /metrics "
                                 "scrapes; an older one is still served while a background thread recomputes it.")

    # --- low-confidence rules ----------------------------------------------------------
    low_top_score: float = Field(0.5, description="Flag when the best score is below this.")
    low_margin: float = Field(0.05, ge=0, description="Flag when best minus second best is below this.")
    flat_spread: float = Field(0.05, ge=0, description="Flag when max-min is below this ...")
    flat_max: float = Field(0.7, description="... and max is below this.")
    sample_rate: float = Field(0.0, ge=0, le=1, description="Random share of confident results flagged for calibration.")

    # --- shadow models and the review queue's value order --------------------------------
    shadow_models: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=dict,
        description="API: comma-separated `name[:sample_rate]` (rate 0..1, default 1): that share of requests to "
        "the default model is also scored by each named model on its shadow lane (workers take it only when "
        "their real lanes are empty); stored for `GET /v1/models/compare`, never returned to clients.",
    )
    review_frequency_days: float = Field(
        7.0, gt=0, description="Review value order: how far back repeats of a normalized query are counted.")
    review_frequency_saturation: int = Field(
        100, ge=2, description="Review value order: a query seen this often (or more) in that window gets the "
        "full frequency weight (log scale).")

    @field_validator("models", mode="before")
    @classmethod
    def _split_models(cls, value):
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("shadow_models", mode="before")
    @classmethod
    def _split_shadow_models(cls, value):
        from core.shadow_settings import parse_shadow_models

        return parse_shadow_models(value) if isinstance(value, str) else value

    @field_validator("model_aliases", mode="before")
    @classmethod
    def _split_aliases(cls, value):
        if not isinstance(value, str):
            return value
        aliases = {}
        for pair in (p.strip() for p in value.split(",") if p.strip()):
            alias, sep, target = (part.strip() for part in pair.partition("="))
            if not (sep and alias and target):
                raise ValueError(f"RERANKQ_MODEL_ALIASES: {pair!r} is not `alias=served_name`")
            aliases[alias] = target
        return aliases

    @model_validator(mode="after")
    def _fill_derived(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'rerankq.db').resolve()}"
        if not self.model_name:
            self.model_name = self.model
        return self

    @model_validator(mode="after")
    def _redelivery_never_races_a_live_chunk(self) -> "Settings":
        """A message unacked past the visibility timeout is delivered again while the first delivery
        may still be working on it; the chunk deadline must end that first one well before."""
        if self.visibility_timeout_s < 3 * self.chunk_deadline_s:
            raise ValueError(
                f"RERANKQ_VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s}) must be at least 3 x "
                f"RERANKQ_CHUNK_DEADLINE_S ({self.chunk_deadline_s:g}): raise the first or lower the second"
            )
        return self

    @property
    def served_model(self) -> str:
        """The name this deployment's workers serve and clients may ask for."""
        return self.model_name

    @property
    def accepted_models(self) -> list[str]:
        """Models the API takes requests for without a live worker: the default one first."""
        return list(dict.fromkeys([self.served_model, *self.models]))


@lru_cache
def get_settings() -> Settings:
    return Settings()
