"""Notifications: an outbox written with each cause, delivered through notifier plugins.

    outbox.enqueue(tx, user_id, category, template_key, params, dedupe_key)   write a message
    runner.deliver_due(db, registry, *, now=None)                              send what is due
    tasks.DeliveryLoop / tasks.NotifyTasks                                     run it from the queue
    events.notify_processed(tx, event)                                         the pipeline's messages

templates.py holds every wording, prefs.py the user's say (quiet hours, muting), deliveries.py the
exactly-once bookkeeping per device. Nothing here knows a provider: Expo, ntfy and webhooks are
plugins (plugins/notifiers/). docs/notifications.md is the guide.
"""
