"""Settings in one place, read from the environment and an optional `.env` file.

Every knob the app, the CLI and the tests use lives here; nothing else reads `os.environ`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Provider = Literal["auto", "ollama", "openai", "local"]


class Settings(BaseSettings):
    """Runtime settings. Environment variable names are given by each field's aliases."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    llm_provider: Provider = Field(
        "auto",
        validation_alias=AliasChoices("LLM_PROVIDER", "llm_provider"),
        description="auto: Ollama when it answers with the model, else the built-in model.",
    )
    ollama_base_url: str = Field(
        "http://localhost:11434",
        validation_alias=AliasChoices("OLLAMA_BASE_URL", "OLLAMA_HOST", "ollama_base_url"),
    )
    ollama_model: str = Field(
        "llama3.1", validation_alias=AliasChoices("OLLAMA_MODEL", "ollama_model")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_model: str = Field(
        "llama3.1", validation_alias=AliasChoices("OPENAI_MODEL", "openai_model")
    )
    openai_structured_method: Literal["auto", "json_schema", "function_calling"] = Field(
        "auto",
        validation_alias=AliasChoices("OPENAI_STRUCTURED_METHOD", "openai_structured_method"),
        description="llama.cpp's server rejects json_schema response formats; function_calling works there.",
    )
    steer_model: str | None = Field(
        None,
        validation_alias=AliasChoices("STEER_MODEL", "steer_model"),
        description="Model that steers the conversation; empty means the provider's model.",
    )
    generate_model: str | None = Field(
        None,
        validation_alias=AliasChoices("GENERATE_MODEL", "generate_model"),
        description="Model that writes the data; empty means the provider's model.",
    )
    judge_model: str | None = Field(
        None,
        validation_alias=AliasChoices("JUDGE_MODEL", "judge_model"),
        description="Model that relabels and rates; empty means the provider's model.",
    )
    local_model: Literal["smollm2", "gemma3"] = Field(
        "smollm2", validation_alias=AliasChoices("LOCAL_MODEL", "local_model")
    )
    request_timeout: float = Field(
        600.0,
        validation_alias=AliasChoices("LLM_TIMEOUT", "request_timeout"),
        description="Seconds to wait for one model reply; generous because slow laptops are slow.",
    )
    llm_retries: int = Field(3, validation_alias=AliasChoices("LLM_RETRIES", "llm_retries"))
    temperature: float = Field(0.8, validation_alias=AliasChoices("TEMPERATURE", "temperature"))
    data_dir: Path = Field(Path("data"), validation_alias=AliasChoices("DATA_DIR", "data_dir"))
    sample_size: int = Field(10, validation_alias=AliasChoices("SAMPLE_SIZE", "sample_size"))
    max_rows: int = Field(100_000, validation_alias=AliasChoices("MAX_ROWS", "max_rows"))
    concurrency: int = Field(
        4,
        validation_alias=AliasChoices("OLLAMA_NUM_PARALLEL", "CONCURRENCY", "concurrency"),
        description="Requests in flight during generation.",
    )
    max_concurrency: int = Field(
        16,
        validation_alias=AliasChoices("MAX_CONCURRENCY", "max_concurrency"),
        description="The most requests in flight; the adaptive level starts at `concurrency` and stays at or below this.",
    )
    endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("LLM_ENDPOINTS", "endpoints"),
        description="Several base URLs of the chosen provider (comma-separated), shared by load.",
    )
    dedup_threshold: float = Field(
        0.9,
        validation_alias=AliasChoices("DEDUP_THRESHOLD", "dedup_threshold"),
        description="Estimated Jaccard similarity (word 3-shingles) at which a text is a near duplicate.",
    )
    failure_budget: float = Field(
        1.0,
        validation_alias=AliasChoices("FAILURE_BUDGET", "failure_budget"),
        description="Discarded attempts (unusable replies, duplicates) allowed per run session, as a "
        "share of the rows asked for (at least 20); then the run stops short and says so.",
    )
    server_wait_s: float = Field(
        600.0,
        validation_alias=AliasChoices("SERVER_WAIT_S", "server_wait_s"),
        description="Seconds a run waits for a model server that stopped answering (refused "
        "connections) before it stops; the rows made are kept and the run can be resumed.",
    )
    engine: Literal["local", "ray"] = Field(
        "local",
        validation_alias=AliasChoices("ENGINE", "engine"),
        description="Where full runs are made: local (this process) or ray (shards on a Ray "
        "cluster, one worker per endpoint; needs the `ray` extra; docs/cluster.md).",
    )
    ray_address: str | None = Field(
        None,
        validation_alias=AliasChoices("RAY_ADDRESS", "ray_address"),
        description="The Ray cluster to join (e.g. auto, or ray://head:10001); empty starts a "
        "local Ray in this process.",
    )
    judge_full_run: bool = Field(
        True,
        validation_alias=AliasChoices("JUDGE_FULL_RUN", "judge_full_run"),
        description="Blind-relabel every row of a full run, not only the sample.",
    )
    max_message_chars: int = Field(
        8_000, validation_alias=AliasChoices("MAX_MESSAGE_CHARS", "max_message_chars")
    )
    argilla_api_url: str | None = Field(
        None, validation_alias=AliasChoices("ARGILLA_API_URL", "argilla_api_url")
    )
    argilla_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("ARGILLA_API_KEY", "argilla_api_key")
    )
    argilla_workspace: str | None = Field(
        None,
        validation_alias=AliasChoices("ARGILLA_WORKSPACE", "argilla_workspace"),
        description="Workspace for Argilla pushes; empty means the user's first workspace.",
    )
    hf_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("HF_TOKEN", "hf_token"),
        description="Last resort for Hub pushes, after the signed-in user's and a pasted token.",
    )
    # --- sign-in and history (agent/auth.py, agent/history.py) ---
    users_file: Path = Field(
        Path("users.json"),
        validation_alias=AliasChoices("USERS_FILE", "users_file"),
        description="Password users {name: argon2 hash}; `python -m agent user add NAME` writes it.",
    )
    app_users: str | None = Field(
        None,
        validation_alias=AliasChoices("APP_USERS", "app_users"),
        description="More password users as 'name:argon2hash name:argon2hash' (space or ';').",
    )
    allow_unauthenticated: bool = Field(
        False,
        validation_alias=AliasChoices("ALLOW_UNAUTHENTICATED", "allow_unauthenticated"),
        description="Allow listening on a non-loopback address with sign-in off.",
    )
    # A Hugging Face Space with `hf_oauth: true` sets OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET and
    # OPENID_PROVIDER_URL itself; elsewhere, register an OAuth app on huggingface.co.
    hf_oauth_client_id: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "HF_OAUTH_CLIENT_ID", "OAUTH_CLIENT_ID", "hf_oauth_client_id"
        ),
    )
    hf_oauth_client_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "HF_OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_SECRET", "hf_oauth_client_secret"
        ),
    )
    hf_oauth_url: str = Field(
        "https://huggingface.co",
        validation_alias=AliasChoices("HF_OAUTH_URL", "OPENID_PROVIDER_URL", "hf_oauth_url"),
        description="The OpenID provider: Hugging Face's /oauth/authorize, /oauth/token, /oauth/userinfo.",
    )
    hf_oauth_publish: bool = Field(
        True,
        validation_alias=AliasChoices("HF_OAUTH_PUBLISH", "hf_oauth_publish"),
        description="Ask Hugging Face for the write-repos scope so pushes use the user's own rights.",
    )
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="Chat history database (SQLAlchemy URL); empty means SQLite in DATA_DIR.",
    )

    @field_validator("ollama_base_url")
    @classmethod
    def _with_scheme(cls, v: str) -> str:
        # OLLAMA_HOST is often written as "127.0.0.1:11434" or "0.0.0.0".
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            v = "http://" + v
        host = v.split("://", 1)[1]
        if ":" not in host:
            v += ":11434"
        return v.replace("://0.0.0.0", "://127.0.0.1")

    @field_validator("endpoints", mode="before")
    @classmethod
    def _split_endpoints(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.split(",")
        if isinstance(v, list | tuple):
            urls = [str(x).strip().rstrip("/") for x in v if str(x).strip()]
            return [u if u.startswith(("http://", "https://")) else f"http://{u}" for u in urls]
        return v

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / "checkpoints.sqlite"

    @property
    def history_path(self) -> Path:
        return self.data_dir / "history.sqlite"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"


@lru_cache
def get_settings() -> Settings:
    return Settings()
