"""Every setting the gateway reads, from GATEWAY_* environment variables and an optional .env file."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    production = "production"


DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./gateway.db"
DEFAULT_WEBHOOK_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    env: Environment = Environment.development
    database_url: str = DEFAULT_DATABASE_URL
    admin_token: SecretStr | None = None
    secret_key: SecretStr | None = Field(
        default=None,
        description="High-entropy string (>= 32 chars) from which the keys that encrypt stored secrets derive.",
    )
    public_url: str = "http://127.0.0.1:8000"
    sandbox: bool = True
    # When set, the gateway talks to a sandbox running on its own (`gateway sandbox`) over real HTTP
    # instead of mounting the simulators in-process.
    sandbox_url: str | None = None
    webhook_allow_private: bool | None = None
    webhook_retry_schedule: str = ",".join(str(s) for s in DEFAULT_WEBHOOK_RETRY_SCHEDULE)
    log_level: str = "INFO"
    access_log: bool = True
    # At least the concurrency one process serves: a smaller pool opens and closes connections under load.
    db_pool_size: int = 32
    # MoMo asks for at least 30 s on create, query and refund.
    provider_timeout_seconds: float = 30.0
    idempotency_lock_seconds: int = 60
    # How long a process trusts a looked-up API key; a revocation clears the revoking process's cache at once
    # and reaches other processes within this time. 0 looks every key up every time.
    api_key_cache_seconds: float = 5.0
    # Completed idempotent responses each process keeps in memory to answer replays (0: always read the row).
    idempotency_replay_cache_seconds: float = 300.0
    idempotency_retention_hours: int = 24
    sweep_interval_seconds: float = 5.0
    notification_tolerance_seconds: int = 300

    @field_validator("secret_key")
    @classmethod
    def _secret_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("GATEWAY_SECRET_KEY must be at least 32 characters")
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_is_seconds(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            raise ValueError("GATEWAY_WEBHOOK_RETRY_SCHEDULE is a comma-separated list of seconds")
        return value

    @property
    def is_development(self) -> bool:
        return self.env is Environment.development

    @property
    def allow_private_webhooks(self) -> bool:
        if self.webhook_allow_private is None:
            return self.is_development
        return self.webhook_allow_private

    @property
    def retry_schedule(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.webhook_retry_schedule.split(",") if p.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def master_secret(self) -> str:
        """The secret every stored-secret key derives from.

        In development, when unset, one is generated once and kept beside the database so that restarts
        can still read what earlier runs encrypted. Production refuses to start without one.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if not self.is_development:
            raise RuntimeError("GATEWAY_SECRET_KEY is required in production")
        path = self.secret_key_path
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value + "\n")
        path.chmod(0o600)
        return value

    @property
    def secret_key_path(self) -> Path:
        if self.is_sqlite and ":memory:" not in self.database_url:
            db_path = Path(self.database_url.split("///", 1)[1])
            return db_path.with_name(db_path.name + ".secret")
        return Path(".gateway-secret")
