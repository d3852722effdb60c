"""Telemetry to InfluxDB (docs/telemetry.md), optional: `daemon.influxdb` turns it on.

    accepted events + transitions (flow.py's tap, after the commit) ─┐
    the daemon's own gauges (every stats_interval_s) ────────────────┴▶ sink.py: points.py
    turns them into line protocol on its own thread ─▶ spool.py (SQLite in the data dir,
    bounded in bytes, in order) ─▶ writer.py (influxdb-client, synchronous writes of up to
    batch_size points; on failure the batch stays on disk and is retried with backoff)

options.py is the `daemon.influxdb` section; it is imported by daemon/config.py, so this
package's import stays light (influxdb-client is imported only when telemetry runs).
"""
