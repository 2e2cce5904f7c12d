//! Attachments: content-addressed by the SHA-256 of the plaintext, stored
//! encrypted in fixed-size chunks (so an upload can read any byte range and
//! resume), deduplicated across requests. The content hash itself is never
//! stored in plaintext: the row key is a keyed hash of it, so a copy of the
//! file cannot confirm that a known photo is on the phone.
//!
//! One file per subject: `attach` (storing bytes and referencing them from
//! a request), `uploads` (each attachment's upload state), `originals`
//! (photos' originals kept on the phone under a retention setting),
//! `downloads` (resumable downloads of others' attachments), `rekey`
//! (re-sealing all of it under a new key). Here: the record, the row keys,
//! reading bytes back, and deleting what no request refers to.

mod attach;
mod downloads;
mod originals;
mod rekey;
mod uploads;

pub(super) use rekey::rekey;
pub use uploads::{AttachmentUpload, UploadState};

use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{Store, place};
use crate::crypto::{self, Keys, Place, Purpose};
use crate::error::Error;

pub use crate::attachment_limits::{
    DEFAULT_ORIGINAL_RETENTION_DAYS, MAX_ATTACHMENT_BYTES, STORED_CHUNK_BYTES as CHUNK_SIZE,
};

/// What the store knows of an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub mime: String,
}

fn chunk_place(id: &[u8], idx: u64) -> Place<'_> {
    place("attachment_chunks", "data", id, idx)
}

impl Store {
    fn delete_row(&self, tx: &Transaction<'_>, key: &[u8]) -> Result<(), Error> {
        let id: Option<Vec<u8>> = tx
            .query_row("SELECT id FROM attachments WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(id) = id {
            tx.execute("DELETE FROM attachment_chunks WHERE attachment = ?1", [&id])?;
            tx.execute("DELETE FROM attachments WHERE key = ?1", [key])?;
        }
        Ok(())
    }

    /// Deletes the attachments with these content hashes that no request
    /// in the store refers to any more (after an erasure replaced the one
    /// that did), inside the caller's write transaction.
    pub(super) fn delete_unreferenced(
        &self,
        tx: &Transaction<'_>,
        sha256s: &[String],
    ) -> Result<usize, Error> {
        if sha256s.is_empty() {
            return Ok(0);
        }
        let mut referenced = std::collections::HashSet::new();
        let ids: Vec<Vec<u8>> = {
            let mut st = tx.prepare("SELECT id FROM requests")?;
            st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        for id in ids {
            let Ok(idb) = <[u8; 16]>::try_from(id) else {
                continue;
            };
            let (doc, _) = self.load_doc(tx, &idb)?;
            for a in doc.hydrate()?.attachments {
                referenced.insert(a.sha256.to_ascii_lowercase());
            }
        }
        let mut deleted = 0;
        for sha in sha256s {
            let sha = sha.to_ascii_lowercase();
            if sha.is_empty() || referenced.contains(&sha) {
                continue;
            }
            let key = self.attachment_key(&sha);
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM attachments WHERE key = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_some() {
                // A photo's original goes with it.
                let originals: Vec<Vec<u8>> = {
                    let mut st =
                        tx.prepare("SELECT original FROM originals WHERE prepared = ?1")?;
                    st.query_map([&key], |r| r.get(0))?
                        .collect::<Result<_, _>>()?
                };
                let refs: std::collections::HashMap<String, bool> =
                    referenced.iter().map(|r| (r.clone(), true)).collect();
                for original in originals {
                    self.delete_original(tx, &original, &refs)?;
                }
                tx.execute("DELETE FROM originals WHERE prepared = ?1", [&key])?;
                self.delete_row(tx, &key)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// The row key of an attachment: a keyed hash of its content hash (in
    /// lowercase), so the file cannot confirm a known photo.
    pub(super) fn attachment_key(&self, sha256: &str) -> Vec<u8> {
        attachment_key(&self.keys, sha256)
    }

    fn attachment_row(
        &self,
        conn: &rusqlite::Connection,
        sha256: &str,
    ) -> Result<(Vec<u8>, Vec<u8>, AttachmentInfo, u64), Error> {
        let key = self.attachment_key(sha256);
        self.row_by_key(conn, &key)
    }

    fn row_by_key(
        &self,
        conn: &rusqlite::Connection,
        key: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>, AttachmentInfo, u64), Error> {
        let key = key.to_vec();
        let (id, meta, count): (Vec<u8>, Vec<u8>, i64) = conn
            .query_row(
                "SELECT id, meta, chunk_count FROM attachments WHERE key = ?1",
                [&key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or(Error::NotFound { what: "attachment" })?;
        let info = self.open_attachment_meta(&key, &meta)?;
        Ok((key, id, info, count as u64))
    }

    /// An attachment's record (`attachments.meta`), sealed to its row.
    pub(super) fn seal_attachment_meta(
        &self,
        key: &[u8],
        info: &AttachmentInfo,
    ) -> Result<Vec<u8>, Error> {
        let meta = serde_json::to_vec(info).map_err(|_| Error::Crypto("attachment record"))?;
        self.keys.seal(
            Purpose::Attachments,
            &place("attachments", "meta", key, 0),
            &meta,
        )
    }

    /// An attachment's record read back from `attachments.meta`.
    pub(super) fn open_attachment_meta(
        &self,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<AttachmentInfo, Error> {
        let meta = self
            .keys
            .open(
                Purpose::Attachments,
                &place("attachments", "meta", key, 0),
                sealed,
            )
            .map_err(|_| Error::Corrupt("an attachment record failed authentication"))?;
        serde_json::from_slice(&meta).map_err(|_| Error::Corrupt("an attachment record is damaged"))
    }

    /// What the store knows of the attachment with this content hash.
    pub fn attachment_info(&self, sha256: &str) -> Result<AttachmentInfo, Error> {
        self.read(|conn| Ok(self.attachment_row(conn, sha256)?.2))
    }

    /// Reads `len` bytes from `offset` of an attachment (fewer at its end),
    /// decrypting only the chunks that hold them.
    pub fn read_attachment(&self, sha256: &str, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
        self.read(|conn| {
            let (_, id, info, _) = self.attachment_row(conn, sha256)?;
            let end = offset.saturating_add(len as u64).min(info.size);
            let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
            if offset >= end {
                return Ok(out);
            }
            let first = offset / CHUNK_SIZE as u64;
            let last = (end - 1) / CHUNK_SIZE as u64;
            let mut stmt = conn.prepare_cached(
                "SELECT idx, data FROM attachment_chunks WHERE attachment = ?1 AND idx BETWEEN ?2 AND ?3 ORDER BY idx",
            )?;
            let mut rows = stmt.query(params![id, first as i64, last as i64])?;
            while let Some(r) = rows.next()? {
                let idx: i64 = r.get(0)?;
                let data: Vec<u8> = r.get(1)?;
                let plain = self
                    .keys
                    .open(Purpose::Attachments, &chunk_place(&id, idx as u64), &data)
                    .map_err(|_| Error::Corrupt("an attachment chunk failed authentication"))?;
                let chunk_start = idx as u64 * CHUNK_SIZE as u64;
                let from = offset.saturating_sub(chunk_start) as usize;
                let to = ((end - chunk_start) as usize).min(plain.len());
                if from < to {
                    out.extend_from_slice(&plain[from..to]);
                }
            }
            if out.len() as u64 != end - offset {
                return Err(Error::Corrupt("an attachment is missing chunks"));
            }
            Ok(out)
        })
    }

    /// The whole attachment, checked against its content hash.
    pub fn attachment_bytes(&self, sha256: &str) -> Result<Vec<u8>, Error> {
        let info = self.attachment_info(sha256)?;
        let bytes = self.read_attachment(sha256, 0, info.size as usize)?;
        if hex::encode(crypto::sha256(&bytes)) != info.sha256 {
            return Err(Error::Corrupt(
                "an attachment does not match its content hash",
            ));
        }
        Ok(bytes)
    }
}

fn attachment_key(keys: &Keys, sha256: &str) -> Vec<u8> {
    keys.lookup_hash("attachment", sha256.to_ascii_lowercase().as_bytes())
}

#[cfg(test)]
mod tests;
