"""Notifications that find people: webhook, e-mail and SMS sinks of the pipeline's fan-out.

Read in this order:

- `config.py` — the schema of `daemon.notifications` (channels, recipients, routes, escalation).
- `chain.py` — the ISA-18.2 escalation chain as a pure function of an alert's transitions.
- `routing.py` — which recipients a transition goes to (routes + chain), and the message model.
- `render.py` — the texts (Chinese or English) of a mail and an SMS.
- `outbox.py` — the durable outbox (a SQLite file in the data dir), idempotent by delivery id.
- `channels.py` — sending one delivery by webhook (HMAC-signed), SMTP or an SMS gateway.
- `sink.py` — the sink: routes committed transitions into the outbox, runs the chain's timers
  and one delivery lane per receiver with exponential backoff; failures show as metrics, a
  `/healthz` problem and one log line on change; every step is an audit-ledger record.

docs/notifications.md describes it for operators. Nothing here is imported by the engine.
"""
