"""Chats, pages, status updates and chat messages in PostgreSQL, shared by host processes.

`--store postgresql://USER[:PASSWORD]@HOST[:PORT]/DB` puts the host's state in one
PostgreSQL database that several `webxdc-rt` processes use at once (with `--broker`, they
serve the same chats). A fresh database is set up by the first host that connects
(`migrations`).

Serials are given by the database (one sequence), and the updates of one app copy are
committed in serial order: each insert holds a transaction-scoped advisory lock on its app
copy from before it draws its serial until it commits. Every transaction announces
`<app copy> <serial>` (its highest serial of that copy) on the NOTIFY channel of each copy it
wrote to once committed; a process listens to the channels of the copies it has listeners
of (`PostgresStore.watch`), and `PostgresStore.follow` hands those announcements to the
host, which reads the new rows in serial order and sends them to its pages, so a page on
any process receives every update exactly once, in serial order. Likewise every change to a
chat is announced with the chat's id by the transaction that makes it;
`PostgresStore.follow_chats` hands those on, and the host reads the chat back
(`load_chat`), so that host processes on one database serve the same chats.

`PostgresStore` (`store`) is made of parts on one connection (`connection`): the registry of
chats and pages (`chats`), app copies and their containers (`apps`), status updates
(`updates`) and chat messages (`messages`); the announcements arrive apart (`announcements`).

What pages send (updates, chat messages) is committed in groups on an asynchronous
connection (`writes`, through `commits.GroupCommit`): the writes that arrive during a commit
share the next one and its fsync, and the event loop never waits for the server. Reads and
management's writes are synchronous on the event loop (psycopg 3, one connection per
process): they are bounded, and a round trip on loopback costs 0.1-0.3 ms. When the
server cannot be reached a call fails at once with `StoreError` (the page is told
`storage-failed`; nothing was acknowledged), and a background thread reconnects with
backoff, saying so in the log once per outage. The announcements have their own connection
in an asyncio task, which also reconnects; after it does, the host reads back whatever it
missed.
"""

from .store import PostgresStore

__all__ = ["PostgresStore"]
