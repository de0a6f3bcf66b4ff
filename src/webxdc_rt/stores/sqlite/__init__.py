"""Where chats, pages, status updates and chat messages live by default: SQLite.

A file under the data directory by default (`webxdc-rt.sqlite3`), or `:memory:` for a host
that keeps nothing. Writes are committed before they are acted on: an update is stored
before anyone is sent it, and by default durably (WAL with `synchronous=FULL`: the log is
fsynced at every commit), so what the host delivered survives a power loss, not only a crash.
What pages send is committed by one writer thread in groups (`commits.GroupCommit`): the
updates and chat messages that arrive during a commit share the next one, and its fsync. An
update becomes readable (a backlog, `max_serial`) when its commit is reported on the event
loop, in serial order, so what pages are told and what they read agree. Reads and
management's writes stay on the loop: they share the one connection under a lock and wait at
most for the commit in flight. `bench/store_durability.py` and `bench/store_backends.py`
measure what a durable commit costs.

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
