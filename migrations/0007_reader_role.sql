-- The read-only role the query API and archive relay (`bigbrotr api`) connect as, so a bug or a
-- hostile request there can never change the archive: the role may read every table and write
-- none. It can log in without a password only where pg_hba trusts it (the local dev stack); give it
-- one elsewhere (ALTER ROLE bigbrotr_reader PASSWORD '...') and set api.database_password.
--
-- Roles belong to the whole server, not to one database: the role is created once, and every
-- database migrated afterwards only grants it SELECT. Two databases migrated at the same moment may
-- both try to create it; the loser finds it made.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bigbrotr_reader') THEN
        CREATE ROLE bigbrotr_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'this role may not create roles: ask an administrator to run '
            '"CREATE ROLE bigbrotr_reader LOGIN", then run bigbrotr migrate again';
END
$$;

GRANT USAGE ON SCHEMA public TO bigbrotr_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO bigbrotr_reader;
-- Tables later migrations create (the aggregates) are readable too, without a grant each.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO bigbrotr_reader;
