"""What a host serves: chats, members, app copies, invite tokens and `selfAddr`s
(`chats`), the `.xdc` container (`xdc`) and the rules of sharing an app (`sharing`).

No I/O beyond reading an app's own files. May import: `core`.
"""
