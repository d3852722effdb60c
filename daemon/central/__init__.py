"""`sealwatch central`: one view of many sites, from what their brokers bridge to the centre's
clustered MQTT engine (docs/central.md). Modules: `config` (CENTRAL.yaml), `state` (what the
centre knows of each site), `link` (the MQTT session with fail-over between cluster nodes),
`web` (the HTTP JSON API and the page), `notify` (daemon/notify's sink fed with every
site's transitions), `app` (wires them and runs)."""
