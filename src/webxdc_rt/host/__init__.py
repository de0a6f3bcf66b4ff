"""The aiohttp application that serves member pages: origin routing, app files with their
Content-Security-Policy, the `webxdc.js` bridge, the WebSocket shell that runs one
`core.session.Session` per socket, outbound frames, the status-update feed, HTTP and HTML
guards, settings and metrics. Static files (`webxdc.js`, `guard.js`) live in `static/`.

May import: `core`, `model`, `stores`, `brokers`.
"""
