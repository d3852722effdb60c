"""Integrations with what sites already run: Home Assistant (MQTT discovery and states).

Frigate and third-party devices come in through the MQTT mapping (adapters/mqtt_mapping.py,
`daemon.mqtt_mappings`); Prometheus scrapes `/metrics` (rules in deploy/prometheus/).
docs/integrations.md has a copy-paste configuration for each.
"""
