"""The daemon's HTTP side: the JSON API, the live dashboard and who may use them.

Read in this order; each module does one job and imports only those above it:

- `params`    request input checked (query numbers, JSON bodies, ids, times) -> 4xx naming the key
- `auth`      users, roles, sessions, CSRF tokens, the login limiter, the CLI's API token
- `plan`      the static site plan the page draws
- `security`  who is asking (`Gate`) and the middlewares: auth, CSRF/origin, headers
- `state`     snapshot, device states, seal panel, people inside, timeline
- `live`      the WebSocket feed: clients, broadcast, the tick
- `pages`     the page, login/logout/session, snapshot/timeline/camera/plan/users routes
- `api`       /healthz, /metrics and the /api/ routes (alerts, commands, seals, events …)
- `app`       `build_app` and `mount_dashboard`: the pieces wired onto one aiohttp app

Readers get a `daemon.view.ReadView` and `daemon.view.Actions`, never the runtime.
"""

from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "web"  # the page's static files
