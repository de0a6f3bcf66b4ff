"""The long-running service: management of chats, members and apps (`manage`), the admin
socket and its client (`admin`, `admin_client`), members' home pages (`home`, with its
static files) and log set-up (`logs`).

May import: `host` and everything below it.
"""
