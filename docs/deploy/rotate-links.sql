-- After restoring a pg_dump of a webxdc-rt database, before any host starts on it: give
-- every page and home page a new invite token. Labels, selfAddrs, updates and messages are
-- kept; every link in the dump (those revoked, and those of members removed, after it was
-- taken included) is refused from now on. Members get their new links from
-- `webxdc-rt link show CHAT MEMBER`. gen_random_uuid() is built into PostgreSQL 13 and
-- later (on 12: CREATE EXTENSION pgcrypto); two of them give 244 random bits.
BEGIN;
UPDATE pages SET token = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
UPDATE homes SET token = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
COMMIT;
