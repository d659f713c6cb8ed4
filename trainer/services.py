"""The long-lived objects of one running trainer process, built once and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from trainer.auth.service import AuthService
from trainer.config import Settings
from trainer.db import Database
from trainer.plugins import Registry


@dataclass
class Services:
    settings: Settings
    db: Database
    auth: AuthService
    plugins: Registry = field(default_factory=Registry)
    extras: dict[str, Any] = field(default_factory=dict)


SERVICES = web.AppKey("services", Services)
