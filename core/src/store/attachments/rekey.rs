//! Re-sealing every attachment record, download and chunk under a new key,
//! inside the store's rekey transaction.

use rusqlite::{Transaction, params};

use super::{AttachmentInfo, attachment_key, chunk_place};
use crate::crypto::{Keys, Purpose};
use crate::error::Error;
use crate::store::place;

/// A row's keyed hash before and after a rekey.
type KeyMove = (Vec<u8>, Vec<u8>);

/// Re-seals the `meta` records of `table` (`attachments` or `downloads`)
/// under `new`, moving each row to its new keyed hash; returns the (old,
/// new) keys.
fn rekey_records(
    tx: &Transaction<'_>,
    old: &Keys,
    new: &Keys,
    table: &'static str,
) -> Result<Vec<KeyMove>, Error> {
    let rows: Vec<(Vec<u8>, Vec<u8>)> = {
        let mut s = tx.prepare(&format!("SELECT key, meta FROM {table}"))?;
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut moved = Vec::with_capacity(rows.len());
    for (key, meta) in rows {
        let plain = old
            .open(Purpose::Attachments, &place(table, "meta", &key, 0), &meta)
            .map_err(|_| {
                Error::Corrupt("an attachment record failed authentication during rekey")
            })?;
        let info: AttachmentInfo = serde_json::from_slice(&plain)
            .map_err(|_| Error::Corrupt("an attachment record is damaged"))?;
        let new_key = attachment_key(new, &info.sha256);
        let sealed = new.seal(
            Purpose::Attachments,
            &place(table, "meta", &new_key, 0),
            &plain,
        )?;
        tx.execute(
            &format!("UPDATE {table} SET key = ?2, meta = ?3 WHERE key = ?1"),
            params![key, new_key, sealed],
        )?;
        moved.push((key, new_key));
    }
    Ok(moved)
}

/// Re-seals every attachment record and chunk under `new` (inside the
/// caller's rekey transaction); the row keys are keyed hashes and move too.
pub(in crate::store) fn rekey(tx: &Transaction<'_>, old: &Keys, new: &Keys) -> Result<(), Error> {
    for (key, new_key) in rekey_records(tx, old, new, "attachments")? {
        // Photos' originals are linked by these keys.
        tx.execute(
            "UPDATE originals SET prepared = ?2 WHERE prepared = ?1",
            params![key, new_key],
        )?;
        tx.execute(
            "UPDATE originals SET original = ?2 WHERE original = ?1",
            params![key, new_key],
        )?;
    }
    // Downloads in progress: their key and sealed record move too.
    rekey_records(tx, old, new, "downloads")?;
    let chunks: Vec<(Vec<u8>, i64)> = {
        let mut s = tx.prepare("SELECT attachment, idx FROM attachment_chunks")?;
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (id, idx) in chunks {
        let data: Vec<u8> = tx.query_row(
            "SELECT data FROM attachment_chunks WHERE attachment = ?1 AND idx = ?2",
            params![id, idx],
            |r| r.get(0),
        )?;
        let p = chunk_place(&id, idx as u64);
        let plain = old.open(Purpose::Attachments, &p, &data).map_err(|_| {
            Error::Corrupt("an attachment chunk failed authentication during rekey")
        })?;
        let sealed = new.seal(Purpose::Attachments, &p, &plain)?;
        tx.execute(
            "UPDATE attachment_chunks SET data = ?3 WHERE attachment = ?1 AND idx = ?2",
            params![id, idx, sealed],
        )?;
    }
    Ok(())
}
