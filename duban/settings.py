"""Duban's settings: one class, read from DUBAN_* environment variables and an optional .env file."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
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
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, ge=100, le=600_000, description="how long a SQLite writer waits for the lock"
    )
    policy_file: Path = Field(default=ROOT / "policy.yaml", description="policy.yaml used until one is applied")
    city_code: str = Field(default="ZZ", min_length=2, max_length=4, pattern=r"^[A-Z]+$",
                           description="prefix of work-order numbers, e.g. ZZ20210314-000123")
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
    prefect_api_url: str = Field(default="http://127.0.0.1:4200/api", description="the Prefect server's API")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
