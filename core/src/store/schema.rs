//! The store's schema: numbered migrations, applied in one IMMEDIATE
//! transaction and recorded in `PRAGMA user_version` (the pattern of
//! mozilla/application-services). A file newer than this code is refused,
//! never "repaired"; nothing here ever deletes user data.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::Error;

/// Migration `i` moves the schema from version `i` to `i + 1`.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema. Plaintext columns are the non-personal metadata
    // listed in docs/architecture.md ("Threat model"); every BLOB named
    // *enc* or `data`/`snapshot`/`title`/`meta` is an AEAD envelope.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) STRICT;

    -- The projection: small rows, scanned to list and sort without
    -- touching documents. A rowid table, so rows pack densely in insertion
    -- order; the random id has its own index.
    CREATE TABLE requests (
        rid          INTEGER PRIMARY KEY,
        id           BLOB NOT NULL UNIQUE,  -- random UUID (16 bytes)
        kind         TEXT NOT NULL,
        status       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        title        BLOB NOT NULL,         -- envelope
        heads        BLOB NOT NULL,         -- change hashes, 32 bytes each
        acked_heads  BLOB,                  -- heads the server acknowledged
        refusal      TEXT,                  -- why the server refused it (no personal data)
        snapshot_len INTEGER NOT NULL,
        chunks_len   INTEGER NOT NULL,
        next_chunk   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX requests_by_update ON requests (updated_at DESC);

    CREATE TABLE snapshots (
        request INTEGER PRIMARY KEY REFERENCES requests (rid) ON DELETE CASCADE,
        data    BLOB NOT NULL               -- envelope of Automerge save()
    ) STRICT;

    CREATE TABLE request_chunks (
        request INTEGER NOT NULL REFERENCES requests (rid) ON DELETE CASCADE,
        seq     INTEGER NOT NULL,
        data    BLOB NOT NULL,              -- envelope of incremental changes
        PRIMARY KEY (request, seq)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE lookups (
        hash    BLOB NOT NULL,              -- HMAC-SHA256 of a NIK, 16 bytes
        request INTEGER NOT NULL REFERENCES requests (rid) ON DELETE CASCADE,
        PRIMARY KEY (hash, request)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX lookups_by_request ON lookups (request);

    CREATE TABLE attachments (
        key         BLOB PRIMARY KEY,       -- HMAC-SHA256 of the content hash
        id          BLOB NOT NULL UNIQUE,   -- random, binds the chunks
        meta        BLOB NOT NULL,          -- envelope: sha256, size, mime
        chunk_count INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE attachment_chunks (
        attachment BLOB NOT NULL,
        idx        INTEGER NOT NULL,
        data       BLOB NOT NULL,           -- envelope of up to CHUNK bytes
        PRIMARY KEY (attachment, idx)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 2: documents waiting for a repair (docs/protocol.md, "Repair"); a
    // table of its own, since a document may be missing here altogether.
    r#"
    CREATE TABLE repairs (
        id     BLOB PRIMARY KEY,            -- request id (16 bytes)
        reason TEXT NOT NULL                -- why (no personal data)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 3: which attachments the server holds (protocol::blobs).
    r#"
    ALTER TABLE attachments ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0;
    "#,
    // 4: per-attachment upload state, and photos' originals (kept on the
    // phone, never uploaded) beside the prepared copy that is.
    r#"
    ALTER TABLE attachments ADD COLUMN local_only INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE attachments ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;  -- bytes the server holds
    ALTER TABLE attachments ADD COLUMN refused TEXT;                     -- the server's reason
    ALTER TABLE attachments ADD COLUMN held INTEGER NOT NULL DEFAULT 0;  -- large, waiting for an unmetered link
    CREATE TABLE originals (
        prepared BLOB NOT NULL,             -- attachments.key of the uploaded copy
        original BLOB NOT NULL,             -- attachments.key of the original
        PRIMARY KEY (prepared, original)    -- two originals can prepare alike
    ) STRICT, WITHOUT ROWID;
    "#,
    // 5: attachments being downloaded (an officer opening a photo another
    // device attached), resumable: chunks land as they arrive.
    r#"
    CREATE TABLE downloads (
        key      BLOB PRIMARY KEY,          -- HMAC-SHA256 of the content hash
        id       BLOB NOT NULL UNIQUE,      -- binds the chunks
        meta     BLOB NOT NULL,             -- envelope: sha256, size, mime
        received INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // 6: whether `refusal` is the server's refusal (1) or a note of the
    // device's own (a repair, changes waiting for another device): only
    // refused changes may be discarded.
    r#"
    ALTER TABLE requests ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
    "#,
    // Whether a request's changes were ever put in a push: until then its
    // history is the phone's alone and is pushed as one change. Requests
    // stored before this column are taken as offered (an answer may have
    // been lost).
    r#"
    ALTER TABLE requests ADD COLUMN offered INTEGER NOT NULL DEFAULT 0;
    UPDATE requests SET offered = 1;
    "#,
    // The list's order (newest first, ties by id) read straight from one
    // index: with `updated_at` alone SQLite sorted every run of equal times.
    r#"
    CREATE INDEX requests_by_update_id ON requests (updated_at DESC, id);
    DROP INDEX requests_by_update;
    "#,
    // The service catalog the server delivered (`store::catalog`): each
    // version as published; `accept_until` once retired. An empty body: a
    // built-in version's retirement.
    r#"
    CREATE TABLE catalog (
        service      TEXT NOT NULL,
        version      INTEGER NOT NULL,
        body         TEXT NOT NULL,
        accept_until TEXT,
        PRIMARY KEY (service, version)
    ) STRICT;
    "#,
    // Code lists (`store::codes`): the version held of each, its codes
    // (searched by code prefix through the unique key and by words
    // through FTS5, kept in step by triggers; no prefix indexes: ranking
    // dominates a search, and they would add 10 % to the file; a code a
    // later version removed stays, `removed`, unseen by searches but still
    // a code to judge by, as on the server), and the parts of a version
    // still arriving. Public data, plain columns.
    r#"
    CREATE TABLE code_lists (
        list    TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        names   TEXT NOT NULL
    ) STRICT;
    CREATE TABLE codes (
        id     INTEGER PRIMARY KEY,
        list   TEXT NOT NULL,
        code   TEXT NOT NULL,
        name   TEXT NOT NULL,
        en     TEXT,
        parent TEXT,
        removed INTEGER NOT NULL DEFAULT 0,
        UNIQUE (list, code)
    ) STRICT;
    CREATE VIRTUAL TABLE codes_words USING fts5 (
        name, en, content = 'codes', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER codes_added AFTER INSERT ON codes BEGIN
        INSERT INTO codes_words (rowid, name, en) VALUES (new.id, new.name, new.en);
    END;
    CREATE TRIGGER codes_removed AFTER DELETE ON codes BEGIN
        INSERT INTO codes_words (codes_words, rowid, name, en)
        VALUES ('delete', old.id, old.name, old.en);
    END;
    CREATE TRIGGER codes_changed AFTER UPDATE OF name, en ON codes BEGIN
        INSERT INTO codes_words (codes_words, rowid, name, en)
        VALUES ('delete', old.id, old.name, old.en);
        INSERT INTO codes_words (rowid, name, en) VALUES (new.id, new.name, new.en);
    END;
    CREATE TABLE code_parts (
        list    TEXT NOT NULL,
        version INTEGER NOT NULL,
        part    INTEGER NOT NULL,
        body    TEXT NOT NULL,
        PRIMARY KEY (list, version, part)
    ) STRICT;
    "#,
];

/// The schema version this code writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// The schema version of an open file (0: empty).
pub fn version(conn: &Connection) -> Result<u32, Error> {
    user_version(conn)
}

fn user_version(conn: &Connection) -> Result<u32, Error> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Brings the schema to [`VERSION`], or refuses a newer file.
pub fn migrate(conn: &mut Connection) -> Result<(), Error> {
    apply_migrations(conn, MIGRATIONS)
}

/// Applies numbered migrations — `migrations[i]` moves a database from
/// version `i` to `i + 1`, recorded in `PRAGMA user_version` — in one
/// IMMEDIATE transaction, or refuses a database newer than the list
/// (`IncompatibleVersion`) without touching it. Shared by the device store
/// and the server, so both version their schema the same way.
pub fn apply_migrations(conn: &mut Connection, migrations: &[&str]) -> Result<(), Error> {
    let latest = migrations.len() as u32;
    let check = |found: u32| {
        if found > latest {
            Err(Error::IncompatibleVersion {
                found,
                supported: latest,
            })
        } else {
            Ok(found)
        }
    };
    if check(user_version(conn)?)? == latest {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated.
    let found = check(user_version(&tx)?)?;
    for m in &migrations[found as usize..] {
        tx.execute_batch(m)?;
    }
    tx.pragma_update(None, "user_version", latest)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_files() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(user_version(&c).unwrap(), VERSION);
        migrate(&mut c).unwrap();
        c.pragma_update(None, "user_version", VERSION + 1).unwrap();
        match migrate(&mut c) {
            Err(Error::IncompatibleVersion { found, supported }) => {
                assert_eq!((found, supported), (VERSION + 1, VERSION));
            }
            other => panic!("expected IncompatibleVersion, got {other:?}"),
        }
    }
}
