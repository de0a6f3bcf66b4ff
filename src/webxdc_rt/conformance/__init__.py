"""The realtime conformance suite: a webxdc app (`app/`, packed by `pack`) whose copies test
the realtime channel between them and report one row per clause of the spec, and the runner
that serves it on several hosts (`hosts`: this project's and webxdc-dev), drives the pages in
headless Chromium (`runner`) and prints the hosts side by side (`table`); `command` is the
`webxdc-rt conformance` command.

May import: `host`, `stores`, `model` and `core` (it sits at the rank of `dev`).
"""
