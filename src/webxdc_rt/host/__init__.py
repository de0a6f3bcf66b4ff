"""The aiohttp application that serves member pages, split by job: `app` (the `Host` that
composes the rest and owns the application), `routing` (origins, invites), `pages` (app
files with their Content-Security-Policy, the `webxdc.js` bridge), `sockets` (the WebSocket
shell that runs one `core.session.Session` per socket), `outbound` (frames to one socket),
`feed` (status updates and chat messages), `http_guard` and `html_guard`, `settings`,
`hooks` (what an embedding program plugs in) and `metrics`. Static files (`webxdc.js`,
`guard.js`) live in `static/`.

May import: `core`, `model`, `stores`, `brokers`.
"""
