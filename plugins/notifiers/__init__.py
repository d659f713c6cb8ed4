"""Bundled notifiers: Expo push (the mobile app), ntfy topics and signed outbound webhooks.

Each module is one plugin registered under the `trainer.plugins` entry point group, written
against the public plugin interface exactly as a third-party notifier would be.
"""
