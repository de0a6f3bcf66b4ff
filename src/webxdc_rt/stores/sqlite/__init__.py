"""Where chats, pages, status updates and chat messages live by default: SQLite.

A file under the data directory by default (`webxdc-rt.sqlite3`), or `:memory:` for a host
that keeps nothing. Writes are committed before they are acted on: an update is stored
before anyone is sent it, and by default durably (WAL with `synchronous=FULL`: the log is
fsynced at every commit), so what the host delivered survives a power loss, not only a crash.
Commits are made on the event loop without a thread hop, which keeps serial order and
delivery order the same; `bench/store_durability.py` measures what a durable commit costs.

`SqliteStore` (`store`) is made of parts that share one connection (`database`): the
registry of chats and pages (`chats`), app copies and their containers (`apps`), status
updates (`updates`) and chat messages (`messages`). What it reads back, it reads leniently
(`repair`): rows that older versions, other programs or a damaged disk wrote are repaired,
never refused.
"""

from .backup import backup_database, database_in_use, restore_database
from .database import DB_FILE_NAME, SCHEMA_VERSION, Synchronous
from .files import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, make_private_dir, shared_dir_warning
from .store import SqliteStore

__all__ = ["DB_FILE_NAME", "SCHEMA_VERSION", "backup_database", "database_in_use",
           "restore_database", "PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "SqliteStore",
           "Synchronous", "make_private_dir", "shared_dir_warning"]
