"""Where chats, pages, status updates and chat messages are kept: the store interface with
its records and errors (`api`), SQLite (`sqlite`, the embedded default), PostgreSQL
(`postgres`, shared by several processes) and its versioned `migrations`.

May import: `core`, `model`.
"""
