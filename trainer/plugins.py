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
core (outbound HTTP limited to its own hosts, shared rate-limit state, the clock, keys) comes
through the `PluginHost` handed to its constructor. The bundled plugins in plugins/ use exactly
this interface and register through the same entry point group.

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

from pydantic import BaseModel, ConfigDict, ValidationError

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


class PluginHost(ABC):
    """What the core offers a plugin. Implemented by the core; plugins only call it."""

    @abstractmethod
    def http(self, plugin: Plugin) -> Any:
        """An outbound HTTP client that reaches only `plugin.allowed_hosts()` (no SSRF, no token leaks)."""

    @property
    @abstractmethod
    def public_url(self) -> str:
        """The server's externally visible base URL (for OAuth redirect and webhook callback URLs)."""

    @abstractmethod
    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key derived from the server secret for `purpose` (e.g. webhook path tokens)."""


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
    payload: dict[str, Any] = field(default_factory=dict)  # small hints only (e.g. a callback URL)


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
    """Receives vendor pushes at /webhooks/<plugin>/<kind> (kind "" is /webhooks/<plugin>)."""

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
    """The vendor says the user revoked access: the core deletes the account link (and vendor data if required)."""

    reason: str
    delete_data: bool = False


@dataclass(frozen=True)
class TokensChanged:
    """The plugin refreshed the account's tokens; the core persists them before anything else."""

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


# -- connecting accounts ----------------------------------------------------------------------


class OAuthConnector(ABC):
    """Connects a user's vendor account through the OAuth 2 authorization code flow."""

    uses_pkce: ClassVar[bool] = False

    @abstractmethod
    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str: ...

    @abstractmethod
    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None) -> TokenSet: ...

    @abstractmethod
    async def refresh(self, tokens: TokenSet) -> TokenSet: ...

    @abstractmethod
    async def deauthorize(self, tokens: TokenSet) -> None:
        """Tell the vendor the user disconnected (Strava deauthorize, Garmin DELETE registration)."""


# -- history ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillPage:
    events: list[NewEvent]
    checkpoint: str  # opaque; handed back to resume after this page
    done: bool
    tokens: TokenSet | None = None  # set when the plugin refreshed the tokens while paging


class Backfiller(ABC):
    """Pages through a connected account's history; each page's events go through the normal pipeline."""

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
