"""The plugin interface: how integrations (vendors, file formats, notifiers) plug into trainer.

A plugin is a class derived from `Plugin`, registered under the entry point group `trainer.plugins`
of its distribution:

    [project.entry-points."trainer.plugins"]
    polar = "trainer_polar:PolarPlugin"

It declares a `name`, a `settings_model` (its `[plugins.<name>]` config section) and the
capabilities it provides by also deriving from one or more capability classes below:

    WebhookReceiver   verify vendor pushes at /webhooks/<name>/<kind>; say which inbox events they mean
    ActivitySource    turn an inbox event into normalized results (fetching from the vendor API)
    OAuthConnector    connect a user's vendor account (authorization code flow)
    Backfiller        page through a connected account's history
    FileImporter      parse uploaded or imported files into normalized activities
    Notifier          deliver a notification to a device or endpoint

Plugins never touch the database: they receive and return the dataclasses and pydantic models
below (and trainer.normalized's), and the core stores them. Everything a plugin needs from the
core (outbound HTTP limited to its own hosts, token refresh coordinated across processes,
rate-limit windows shared by every process, its public URLs, keys) comes through the `PluginHost`
handed to its constructor. The bundled plugins in plugins/ use exactly this interface and register
through the same entry point group; docs/plugins.md is the author's guide.

API_VERSION changes when this interface changes incompatibly; a plugin built for another
version is reported and skipped, never loaded half-way.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, model_validator

from trainer.errors import ConfigError

if TYPE_CHECKING:
    from trainer.normalized import DailySummary, ImportedActivity

log = logging.getLogger("trainer.plugins")

API_VERSION = 1
ENTRY_POINT_GROUP = "trainer.plugins"


class PluginSettings(BaseModel):
    """Base of every plugin's settings model; unknown keys in its config section are an error."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


def http_url(value: str) -> str:
    """Validator for vendor base URLs in plugin settings: http(s) with a host; no trailing slash.

    URLs are settings so tests (and proxies) can point a plugin at a local stand-in of the vendor.
    """
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


class OAuthClientSettings(PluginSettings):
    """Settings of a plugin that is a vendor's OAuth client: enabled once credentials are given.

    `enabled` defaults to whether `client_id` is set, so a server without the vendor's credentials
    simply has no such integration; enabled without both credentials is a configuration error.
    """

    client_id: str = ""
    client_secret: SecretStr = SecretStr("")

    @model_validator(mode="before")
    @classmethod
    def _enabled_when_configured(cls, data: Any) -> Any:
        if isinstance(data, dict) and "enabled" not in data:
            data = {**data, "enabled": bool(data.get("client_id"))}
        return data

    @model_validator(mode="after")
    def _credentials(self) -> OAuthClientSettings:
        if self.enabled and not (self.client_id and self.client_secret.get_secret_value()):
            raise ValueError("client_id and client_secret are required when the plugin is enabled")
        return self


class RateLimits(ABC):
    """A vendor's request quota windows, shared by every server and worker process.

    Vendors limit requests per application, not per process, so the counts live in the database.
    A plugin reports what the vendor's headers say (`observe`) and asks before each request
    (`acquire`); the vendor's own numbers win whenever they arrive, so a small overshoot between
    processes corrects itself.
    """

    @abstractmethod
    async def observe(self, window: str, *, limit: int, usage: int, resets_at: float) -> None:
        """Record the vendor's statement: `usage` of `limit` requests used in `window` until `resets_at` (s)."""

    @abstractmethod
    async def acquire(self, windows: Mapping[str, float], *, reserve: float = 0.0) -> float:
        """Count one request in each of `windows` (name -> when its current period resets, seconds).

        Refused when a window would go above (1 - reserve) of its known limit: nothing is counted
        and the result is the seconds until the fullest such window resets. 0.0 means granted.
        `reserve` keeps a share of the quota free (backfills use a large one so webhooks still get
        through).
        """


class PluginHost(ABC):
    """What the core offers a plugin. Implemented by the core; plugins only call it."""

    @abstractmethod
    def http(self, plugin: Plugin) -> Any:
        """An outbound HTTP client that reaches only `plugin.allowed_hosts()` (no SSRF, no token leaks).

        It has aiohttp's `request(method, url, **kw)` (use as `async with`), never follows redirects,
        and refuses any URL whose host is not allowed before a byte leaves.
        """

    @property
    @abstractmethod
    def public_url(self) -> str:
        """The server's externally visible base URL (for OAuth redirect and webhook callback URLs)."""

    @abstractmethod
    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key derived from the server secret for `purpose`."""

    @abstractmethod
    def webhook_url(self, plugin: str, kind: str = "") -> str:
        """The URL vendors must push `kind` events to (see trainer/ingest/paths.py).

        It carries a secret path token derived from the server secret; a request without it is a
        404 before its body is read, which keeps anonymous junk away from the plugin's verification.
        """

    @abstractmethod
    async def fresh_tokens(self, plugin: Plugin, account: Account, *, force: bool = False) -> TokenSet:
        """The account's usable tokens, refreshed first when they expire within 5 minutes (or `force`:
        the vendor just refused them with a 401).

        Refreshing rotates the refresh token (the old one dies at once), so the core refreshes each
        account in one process at a time and stores the new tokens before returning them; a caller
        that loses the race gets the winner's tokens. `account.tokens` is updated in place. Raises
        TokenRevoked when the vendor refuses the refresh token, RetryLater when it cannot be reached.
        """

    @abstractmethod
    def rate_limits(self, plugin: Plugin) -> RateLimits:
        """This plugin's quota windows, shared with every other process."""


class Plugin:
    """Base class of all plugins. Subclasses set `name` and usually `settings_model`."""

    name: ClassVar[str]
    version: ClassVar[str] = "0"
    description: ClassVar[str] = ""
    api_version: ClassVar[int] = API_VERSION
    settings_model: ClassVar[type[PluginSettings]] = PluginSettings

    def __init__(self, settings: PluginSettings, host: PluginHost) -> None:
        self.settings = settings
        self.host = host

    def allowed_hosts(self) -> set[str]:
        """Hosts this plugin's outbound requests may reach (from its settings); none by default."""
        return set()

    async def start(self) -> None:
        """Called once when the server or worker starts (open clients, check settings)."""

    async def stop(self) -> None:
        """Called once on shutdown."""

    @classmethod
    def capabilities(cls) -> list[str]:
        return [name for name, base in CAPABILITIES.items() if issubclass(cls, base)]

    @classmethod
    def commands(cls) -> Any:
        """Extra admin commands as a `typer.Typer`, mounted as `trainer plugins <name> ...`; None: none.

        A command receives a `CommandEnv` as `ctx.obj` to run code with the configured plugin.
        """
        return None


class CommandEnv(ABC):
    """What a plugin's CLI command gets (as typer's `ctx.obj`): the configured plugin, the output."""

    @abstractmethod
    def run(self, action: Any) -> Any:
        """Run `await action(plugin)` with this deployment's plugin started (and its host), return the
        result; trainer errors become one line on stderr and exit code 1, like every other command."""

    @abstractmethod
    def echo(self, message: str) -> None:
        """Print one line for the administrator."""


# -- webhooks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRequest:
    """A vendor's HTTP request as received: raw bytes (for signatures), headers and query."""

    method: str
    kind: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class NewEvent:
    """One thing a webhook says happened; becomes one inbox row (deduplicated on `dedupe_key`)."""

    kind: str  # e.g. "activity", "activity_details", "daily", "sleep", "hrv", "deregistration"
    external_user_id: str  # the vendor's id of the account (Strava owner_id, Garmin userId)
    object_id: str  # the vendor's id of the object, or "" when the event is about the account
    event_time: int  # seconds since the epoch, as the vendor states it
    dedupe_key: str  # unique per real-world event: a replay maps to the same key
    # What `process` needs later: small hints (a callback URL, Strava's aspect_type), or the data
    # itself when the vendor pushes it inline (Garmin push mode) and will not send it again.
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookOutcome:
    """What to record and what to answer. `response` (JSON) replaces the default {"ok": true}."""

    events: list[NewEvent] = field(default_factory=list)
    response: dict[str, Any] | None = None
    status: int = 200


@dataclass(frozen=True)
class WebhookKind:
    methods: tuple[str, ...] = ("POST",)
    max_body_bytes: int = 1 << 20


class WebhookReceiver(ABC):
    """Receives vendor pushes at `host.webhook_url(name, kind)` (kind "" is the plugin's bare URL).

    `webhook_kinds` lists the kinds, their HTTP methods and body limits (raise `max_body_bytes` for
    vendors that push big documents). The core records the returned events in the inbox and drops
    those whose `external_user_id` is not a connected account (acknowledged, never retried).
    """

    webhook_kinds: ClassVar[dict[str, WebhookKind]]

    @abstractmethod
    async def verify_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """Authenticate and validate a push; raise trainer.errors.Unauthenticated / InvalidInput to refuse.

        Must be fast and must not call the vendor: the core answers the vendor right after recording.
        """


# -- fetching and normalizing -----------------------------------------------------------------


@dataclass(frozen=True)
class InboxEvent:
    """A recorded webhook event as handed to `ActivitySource.process` by the pipeline."""

    id: str
    plugin: str
    kind: str
    user_id: str
    external_user_id: str
    object_id: str
    event_time: int
    payload: dict[str, Any]
    attempts: int


@dataclass
class TokenSet:
    """OAuth tokens of one connected account. The core stores them encrypted at rest."""

    access_token: str
    refresh_token: str | None = None
    expires_at: int | None = None  # seconds since the epoch
    scope: str = ""
    external_user_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Account:
    """A user's connection to one vendor, as the core hands it to a plugin."""

    user_id: str
    plugin: str
    external_user_id: str
    tokens: TokenSet


@dataclass(frozen=True)
class UpsertActivity:
    imported: ImportedActivity


@dataclass(frozen=True)
class DeleteActivity:
    source: str
    external_id: str


@dataclass(frozen=True)
class UpsertDaily:
    summary: DailySummary


@dataclass(frozen=True)
class Disconnect:
    """The vendor confirmed the user revoked access: the core deletes the account link, and the
    activities only this source delivered when `delete_data` (Strava's terms require it)."""

    reason: str
    delete_data: bool = False


@dataclass(frozen=True)
class TokensChanged:
    """New tokens the plugin obtained on its own (not through `host.fresh_tokens`, which already
    stores them); the core persists them before anything else."""

    tokens: TokenSet


SourceResult = UpsertActivity | DeleteActivity | UpsertDaily | Disconnect | TokensChanged


class ActivitySource(ABC):
    """Turns an inbox event into normalized results, re-fetching from the vendor with the user's own token."""

    @abstractmethod
    async def process(self, event: InboxEvent, account: Account) -> list[SourceResult]:
        """Raise trainer.plugins.RetryLater for transient vendor failures, PermanentFailure otherwise."""


class RetryLater(Exception):
    """A transient failure (vendor 5xx, 429, timeout); the pipeline retries with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """Retrying cannot help (vendor 404 on an object that must exist, malformed data); dead-letter it."""


class TokenRevoked(Exception):
    """The vendor refused the refresh token: the user revoked access (or it expired for good).

    Raised by `OAuthConnector.refresh`; an `ActivitySource` that meets it answers with Disconnect.
    """


# -- connecting accounts ----------------------------------------------------------------------


class OAuthConnector(ABC):
    """Connects a user's vendor account through the OAuth 2 authorization code flow.

    The core runs the browser flow (/connect/<plugin> and /connect/<plugin>/callback): it creates
    and checks `state`, the PKCE verifier when `uses_pkce`, and stores the tokens encrypted.
    """

    uses_pkce: ClassVar[bool] = False
    delete_data_on_disconnect: ClassVar[bool] = False  # the vendor's terms: its data goes with the link

    @abstractmethod
    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str: ...

    @abstractmethod
    async def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str | None, callback: Mapping[str, str]
    ) -> TokenSet:
        """Trade the code for tokens. `callback` is the redirect's whole query (Strava reports the
        granted scope there). The result must carry `external_user_id`; raise InvalidInput with a
        sentence for the user when the grant is not usable (e.g. a required scope was unticked)."""

    @abstractmethod
    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """New tokens from `tokens.refresh_token`; TokenRevoked when the vendor refuses it.

        Called only by the core (`host.fresh_tokens`), which serializes refreshes per account."""

    @abstractmethod
    async def deauthorize(self, tokens: TokenSet) -> None:
        """Tell the vendor the user disconnected (Strava deauthorize, Garmin DELETE registration)."""


# -- history ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillPage:
    events: list[NewEvent]
    checkpoint: str  # opaque; handed back to resume after this page
    done: bool
    tokens: TokenSet | None = None  # new tokens obtained outside `host.fresh_tokens` (rare)
    note: str = ""  # one line for the progress display (e.g. "requested 2024-01-01..2024-01-31")
    progress: float | None = None  # share of the whole backfill done after this page (0..1), if known


class Backfiller(ABC):
    """Pages through a connected account's history; each page's events go through the normal pipeline.

    The core records each page's events in the inbox (the same dedupe keys make a re-run free) and
    then its checkpoint, so an interrupted backfill resumes after the last recorded page. Raise
    RetryLater when the vendor's quota is near: the core waits and resumes from the checkpoint.
    """

    @abstractmethod
    def backfill(self, account: Account, *, since: datetime, checkpoint: str | None) -> AsyncIterator[BackfillPage]:
        """Yield pages from `checkpoint` (None: from the newest activity back to `since`)."""


# -- files ------------------------------------------------------------------------------------


class FileImporter(ABC):
    """Parses activity files (FIT, GPX, TCX, ...) into normalized activities."""

    file_types: ClassVar[tuple[str, ...]]

    @abstractmethod
    def sniff(self, head: bytes, filename: str) -> bool:
        """True if this importer recognizes the file from its first bytes (and, failing that, its name)."""

    @abstractmethod
    def parse(self, path: Path) -> list[ImportedActivity]:
        """Blocking parse (the core runs it in a thread); raise ImportFileError with a one-line reason."""


class ImportFileError(Exception):
    """A file that is corrupt, not an activity, or too large; the message is one line for the user."""


# -- notifications ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    title: str
    body: str
    category: str  # e.g. "activity_analyzed", "plan_adapted", "low_readiness"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """Where to deliver: a device push token (Expo), a topic (ntfy) or a URL (outbound webhook)."""

    provider: str
    address: str
    secret: str | None = None


@dataclass(frozen=True)
class Delivery:
    status: Literal["sent", "retry", "invalid_target", "failed"]
    detail: str = ""
    retry_after: float | None = None


class Notifier(ABC):
    """Delivers notifications for one provider (`Target.provider == provider`)."""

    provider: ClassVar[str]

    @abstractmethod
    async def deliver(self, target: Target, notification: Notification) -> Delivery: ...


CAPABILITIES: dict[str, type] = {
    "webhooks": WebhookReceiver,
    "source": ActivitySource,
    "oauth": OAuthConnector,
    "backfill": Backfiller,
    "import": FileImporter,
    "notify": Notifier,
}


# -- discovery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginInfo:
    """One discovered plugin for `trainer plugins list`: loaded or the reason it was skipped."""

    name: str
    version: str
    distribution: str
    enabled: bool
    capabilities: list[str]
    error: str | None = None


@dataclass
class Registry:
    """The plugins of this process, by name, plus what discovery found wrong."""

    plugins: dict[str, Plugin] = field(default_factory=dict)
    report: list[PluginInfo] = field(default_factory=list)

    def with_capability(self, capability: type) -> list[Any]:
        return [p for p in self.plugins.values() if isinstance(p, capability)]

    def get(self, name: str, capability: type | None = None) -> Any:
        plugin = self.plugins.get(name)
        if plugin is None or (capability is not None and not isinstance(plugin, capability)):
            return None
        return plugin


def discover(
    config: Mapping[str, Mapping[str, Any]],
    host: PluginHost,
    *,
    entries: list[EntryPoint] | None = None,
) -> Registry:
    """Load every plugin of the entry point group. A broken plugin is reported and skipped.

    A plugin whose settings are invalid is a configuration error of this deployment, not a broken
    plugin: it raises ConfigError naming the setting, like any other bad setting.
    """
    registry = Registry()
    for entry in entries if entries is not None else list(entry_points(group=ENTRY_POINT_GROUP)):
        dist = entry.dist.name if entry.dist else "?"
        try:
            cls = entry.load()
            _check_class(entry.name, cls)
        except Exception as exc:  # a third party's bug must not take the server down
            log.error("plugin %s (%s) skipped: %s", entry.name, dist, _one_line(exc))
            registry.report.append(PluginInfo(entry.name, "?", dist, False, [], _one_line(exc)))
            continue
        section = dict(config.get(cls.name, {}))
        try:
            settings = cls.settings_model.model_validate(section)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise ConfigError(f"invalid setting 'plugins.{cls.name}.{where}': {error['msg']}") from None
        info = PluginInfo(cls.name, cls.version, dist, settings.enabled, cls.capabilities())
        if cls.name in registry.plugins:
            registry.report.append(PluginInfo(**{**info.__dict__, "error": "duplicate plugin name; skipped"}))
            continue
        if settings.enabled:
            try:
                registry.plugins[cls.name] = cls(settings, host)
            except Exception as exc:
                log.error("plugin %s failed to initialize: %s", cls.name, _one_line(exc))
                info = PluginInfo(**{**info.__dict__, "enabled": False, "error": _one_line(exc)})
        registry.report.append(info)
    unknown = set(config) - {i.name for i in registry.report}
    if unknown:
        raise ConfigError(f"settings for unknown plugin(s): {', '.join(sorted('plugins.' + u for u in unknown))}")
    return registry


def _check_class(entry_name: str, cls: object) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise TypeError(f"entry point {entry_name} is not a trainer.plugins.Plugin subclass")
    if not getattr(cls, "name", ""):
        raise TypeError(f"plugin class {cls.__name__} has no name")
    if cls.api_version != API_VERSION:
        raise TypeError(f"built for plugin API {cls.api_version}, this trainer speaks {API_VERSION}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
