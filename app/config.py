"""Runtime configuration, read from the environment (prefix ``VIGIL_``)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

# prometheus-client's own variable: the directory where several worker processes keep their
# metrics, for /metrics to add up. `vigil serve --workers N` sets it when N > 1.
MULTIPROCESS_METRICS = "PROMETHEUS_MULTIPROC_DIR"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    database_url: str = "sqlite:///./vigil.db"
    # Requests whose body is larger than this are answered 413.
    max_body_bytes: int = 1024 * 1024
    # Idempotency keys are remembered at least this long.
    idempotency_ttl_hours: int = 24
    # Seconds a SQLite writer waits for the lock held by another process.
    sqlite_busy_timeout_s: float = 10.0
    # PostgreSQL connection pool size per server process.
    pool_size: int = 10
    log_level: str = "info"
    # Requests a minute per API key and server process (bursts as large); 0 turns it off.
    rate_limit_per_minute: int = 30000


@lru_cache
def get_settings() -> Settings:
    return Settings()
