"""Webhook ingestion: vendor pushes recorded in a durable inbox, then processed by queue workers.

    routes.py     /webhooks/<token>/<plugin>[/<kind>]: verify (through the plugin), record, answer
    paths.py      the path token and the URLs to register with vendors
    receive.py    route events to users; committer.py: group commit of concurrent requests
    inbox.py      the inbox rows and their states; `record_events` for other code (backfill)
    queue.py      Huey as the doorbell; consumer.py: the asyncio consumer (serve's and `trainer worker`)
    pipeline.py   one event from claim to stored, analysed data; hooks.py: the extension point after it
    sweeper.py    recovery of lost doorbells and dead workers
    signatures.py HMAC signature checks for vendors that sign (Standard Webhooks, GitHub style)

docs/ingest.md is the operator's and plugin author's guide.
"""
