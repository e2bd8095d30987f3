"""Duban's settings: one class, read from DUBAN_* environment variables and an optional .env file."""

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob an operator may turn; the defaults are the embedded demo."""

    model_config = SettingsConfigDict(env_prefix="DUBAN_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{ROOT / 'var' / 'duban.db'}",
        description="SQLAlchemy URL of Duban's own database (sqlite:///... or postgresql+psycopg://...)",
    )
    db_pool_size: int = Field(default=5, ge=1, le=200, description="PostgreSQL connection pool size per process")
    db_max_overflow: int = Field(
        default=5, ge=0, le=200, description="PostgreSQL connections a process may open beyond the pool at a peak"
    )
    db_pool_timeout_s: float = Field(
        default=30, gt=0, le=600, description="how long a PostgreSQL checkout waits for a free connection (seconds)"
    )
    db_pool_recycle_s: int = Field(
        default=1800, ge=-1, le=86_400,
        description="PostgreSQL connections older than this are replaced (seconds; -1: never), "
                    "so a firewall or proxy that drops idle connections is never met",
    )
    migrate_on_start: bool = Field(
        default=False, description="`duban serve` brings the database to the newest Alembic revision before it starts"
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, ge=100, le=600_000, description="how long a SQLite writer waits for the lock"
    )
    policy_file: Path = Field(default=ROOT / "policy.yaml", description="policy.yaml used until one is applied")
    city_code: str = Field(default="ZZ", min_length=2, max_length=4, pattern=r"^[A-Z]+$",
                           description="prefix of work-order numbers, e.g. ZZ20210314-000123")
    city_name_zh: str = Field(default="株洲市", min_length=1, max_length=40,
                              description="the city's name as reports print it in Chinese")
    city_name_en: str = Field(default="Zhuzhou", min_length=1, max_length=80,
                              description="the city's name as reports print it in English")
    environment: str = Field(default="demo", pattern=r"^(demo|test|staging|production)$",
                             description="demo, test, staging or production")

    smtp_host: str = Field(default="127.0.0.1", description="SMTP server for notices")
    smtp_port: int = Field(default=8025, ge=1, le=65535, description="SMTP port")
    smtp_user: str = Field(default="duban@example.gov.cn", description="SMTP login and sender address")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP password (empty: no login)")
    smtp_starttls: bool = Field(default=False, description="upgrade the connection with STARTTLS")
    smtp_ssl: bool = Field(default=False, description="connect with implicit TLS (port 465)")
    mail_redirect_to: str | None = Field(
        default=None, description="outside production, send every notice to this one inbox instead"
    )
    mail_sink_dir: Path = Field(default=ROOT / "var" / "mail", description="where the demo SMTP sink stores mail")
    smtp_timeout_s: float = Field(default=30, gt=0, le=300, description="SMTP connect and reply timeout (seconds)")
    relay_batch_size: int = Field(default=200, ge=1, le=5000, description="notices the relay claims per pass")
    relay_interval_s: float = Field(default=5, gt=0, le=3600, description="pause between relay passes")
    relay_lease_s: int = Field(
        default=300, ge=10, le=86_400, description="a claimed notice nobody marked is due again after this"
    )
    relay_backoff_s: int = Field(default=60, ge=1, le=3600, description="first retry delay; doubles per attempt")
    relay_backoff_max_s: int = Field(default=3600, ge=1, le=86_400, description="longest delay between retries")
    relay_max_attempts: int = Field(
        default=8, ge=1, le=50, description="attempts before a notice becomes an incident for supervisors"
    )
    upload_dir: Path = Field(default=ROOT / "var" / "uploads", description="where units' evidence files are kept")
    upload_max_mb: int = Field(default=10, ge=1, le=100, description="largest evidence file a unit may upload")

    portal_base_url: str = Field(default="http://127.0.0.1:8000", description="public URL of the unit portal")
    portal_host: str = Field(default="127.0.0.1", description="portal bind address")
    portal_port: int = Field(default=8000, ge=1, le=65535, description="portal port")
    secret_key: SecretStr = Field(
        default=SecretStr("demo-secret-change-me"), description="key that signs unit action links"
    )
    link_ttl_hours: int = Field(default=72, ge=1, le=24 * 30, description="how long an action link stays valid")

    clock_safety_interval_s: int = Field(
        default=60, ge=1, le=3600, description="the supervision sweep runs at least this often"
    )
    clock_runs_flows: bool = Field(
        default=True, description="the clock runs a due sweep as a Prefect flow run (false: in its own process only)"
    )
    sweep_batch_size: int = Field(default=200, ge=1, le=10_000, description="due orders the sweep reads per query")
    repeat_complaint_window_days: int = Field(
        default=90, ge=1, le=730,
        description="a new complaint at the same address and category within this many days of a closing is a repeat",
    )
    clock_standby_poll_s: float = Field(
        default=5, ge=0.1, le=300,
        description="a stand-by clock checks this often whether the active one is gone, and the active one "
                    "that it still holds the clock lock (seconds)",
    )
    prefect_api_url: str = Field(default="http://127.0.0.1:4200/api", description="the Prefect server's API")
    worker_name: str = Field(
        default="", max_length=100, pattern=r"^[A-Za-z0-9._-]*$",
        description="this worker's name on the runs it executes (label duban.worker; empty: host name and pid)",
    )
    worker_limit: int = Field(
        default=16, ge=1, le=1000, description="flow runs one `duban serve --role worker` executes at a time"
    )
    lost_run_after_s: int = Field(
        default=600, ge=1, le=86_400,
        description="a lifecycle run still running this long after its last state change lost its process",
    )

    intake_max_body_bytes: int = Field(
        default=64 * 1024, ge=4096, le=10 * 1024 * 1024, description="largest intake API request body accepted"
    )
    open311_jurisdiction_id: str = Field(
        default="zz12345.example.gov.cn", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$",
        description="the jurisdiction_id Open311 clients send (GeoReport v2)",
    )
    duplicate_window_hours: int = Field(
        default=72, ge=1, le=24 * 30, description="how far back an earlier item may be the master of a duplicate"
    )
    duplicate_min_similarity: float = Field(
        default=0.35, gt=0, le=1, description="text similarity (0-1) above which same-place items are duplicates"
    )
    kb_answer_min_score: float = Field(
        default=0.6, gt=0, le=1, description="search score (0-1) an article needs to answer a consultation"
    )
    classify_min_confidence: float = Field(
        default=0.5, ge=0, le=1, description="confidence (0-1) a suggested category needs to be set before dispatch"
    )

    gateway_host: str = Field(default="127.0.0.1", description="bind address of the gateway in front of the Prefect UI")
    gateway_port: int = Field(default=4300, ge=1, le=65535, description="port of the gateway in front of the Prefect UI")
    gateway_session_minutes: int = Field(
        default=480, ge=5, le=7 * 24 * 60, description="a gateway login expires this many minutes after it was made"
    )
    gateway_max_failed_logins: int = Field(
        default=5, ge=1, le=100, description="wrong passwords in a row before an account is locked"
    )
    gateway_lockout_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="how long an account stays locked after too many wrong passwords"
    )
    gateway_session_recheck_s: float = Field(
        default=5, ge=0, le=60,
        description="the gateway re-reads a session from the database at most this often; a disabled account, "
                    "a password reset or a logout elsewhere takes effect within it (0: on every request)",
    )
    gateway_secure_cookies: bool = Field(
        default=False, description="mark the gateway's cookies Secure (set true when it is served over HTTPS)"
    )
    prefect_auth_string: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("DUBAN_PREFECT_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING"),
        description="the Prefect server's PREFECT_SERVER_API_AUTH_STRING, known only to the gateway (empty: none)",
    )


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
