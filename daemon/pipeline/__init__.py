"""The daemon's pipeline, one direction, read in this order:

1. ingest — `mqtt.py` (the broker session: gateway events, statuses, third-party topics) and
   the device adapters (`daemon/devices.py`: Modbus jammers, cameras, recording folders, the
   duty phone) put `items.Incoming` into one queue; `decode.py` turns bytes into objects
   (with the third-party MQTT mapping).
2. engine — `evaluate.py`: admission (parse, time range, lateness, duplicates), the policies,
   the alert lifecycle; produces rows with their ids, writes nothing.
3. persist — `persist.py`: a writer thread applies the rows to SQLite in order; a failing store
   degrades loudly, holds what was accepted (bounded) and never stops the stages before it.
4. fan-out — `sinks.py`: committed transitions to every sink: `mqtt_alerts.py` (the alert
   topics) and the dashboard's live feed; notification and telemetry sinks plug in here.

`flow.py` wires them and runs them as tasks. Readers (HTTP API, dashboard, archive, CLI) never
see these objects: they get `daemon.view.ReadView` and `daemon.view.Actions`.
"""
