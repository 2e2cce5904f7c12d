//! Attachments: content-addressed by the SHA-256 of the plaintext, stored
//! encrypted in fixed-size chunks (so an upload can read any byte range and
//! resume), deduplicated across requests. The content hash itself is never
//! stored in plaintext: the row key is a keyed hash of it, so a copy of the
//! file cannot confirm that a known photo is on the phone.

use std::io::Read;

use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{Store, place};
use crate::crypto::{self, Keys, Place, Purpose};
use crate::error::Error;
use crate::model::{AttachmentRef, AttachmentRole, RequestId};
use crate::time::Timestamp;

/// Plaintext bytes per stored chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Default largest attachment accepted on the device.
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;

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
    /// Stores the bytes read from `content` and references them from the
    /// request with `role`, `name` and `mime`. The same bytes attached
    /// again, to this or another request, are stored once.
    pub fn attach(
        &self,
        id: &RequestId,
        role: AttachmentRole,
        name: &str,
        mime: &str,
        content: impl Read,
    ) -> Result<AttachmentRef, Error> {
        self.attach_limited(id, role, name, mime, content, MAX_ATTACHMENT_BYTES)
    }

    /// Like [`Store::attach`] with a size limit of `max` bytes.
    pub fn attach_limited(
        &self,
        id: &RequestId,
        role: AttachmentRole,
        name: &str,
        mime: &str,
        mut content: impl Read,
        max: u64,
    ) -> Result<AttachmentRef, Error> {
        let mut v = crate::validation::Validator::new(Timestamp::now().today_in_indonesia());
        v.text("name", name, 255);
        v.text("mime", mime, 100);
        let report = v.finish();
        if !report.is_ok() {
            return Err(Error::Validation(report));
        }
        // Fail fast before reading the content; checked again below, inside
        // the transaction, against the state the reference is written to.
        refuse_when_final(self.get(id)?.status())?;
        let idb = super::id_bytes(id)?;
        let chunk_id: [u8; 16] = crypto::random_bytes()?;
        // One transaction: the chunks, the record and the reference in the
        // document land together or not at all.
        let reference = self.write(|tx| {
            // Stream the content into sealed chunks while hashing it.
            let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
            let mut buf = vec![0u8; CHUNK_SIZE];
            let mut size: u64 = 0;
            let mut idx: u64 = 0;
            loop {
                let n = read_full(&mut content, &mut buf)?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                if size > max {
                    return Err(Error::AttachmentTooLarge { size, max });
                }
                hasher.update(&buf[..n]);
                let sealed = self.keys.seal(Purpose::Attachments, &chunk_place(&chunk_id, idx), &buf[..n])?;
                tx.execute(
                    "INSERT INTO attachment_chunks (attachment, idx, data) VALUES (?1, ?2, ?3)",
                    params![chunk_id.as_slice(), idx as i64, sealed],
                )?;
                idx += 1;
                if n < CHUNK_SIZE {
                    break;
                }
            }
            let sha = hex::encode(hasher.finish().as_ref());
            let key = self.keys.lookup_hash("attachment", sha.as_bytes());
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM attachments WHERE key = ?1", [&key], |r| r.get(0))
                .optional()?;
            if exists.is_some() {
                // Already stored: drop the copy just written.
                tx.execute("DELETE FROM attachment_chunks WHERE attachment = ?1", [chunk_id.as_slice()])?;
            } else {
                let info = AttachmentInfo { sha256: sha.clone(), size, mime: mime.to_owned() };
                let meta = serde_json::to_vec(&info).map_err(|_| Error::Crypto("attachment record"))?;
                let sealed = self.keys.seal(Purpose::Attachments, &place("attachments", "meta", &key, 0), &meta)?;
                tx.execute(
                    "INSERT INTO attachments (key, id, meta, chunk_count, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key, chunk_id.as_slice(), sealed, idx as i64, Timestamp::now().0],
                )?;
            }
            let reference = AttachmentRef {
                sha256: sha,
                role,
                name: name.to_owned(),
                mime: mime.to_owned(),
                size,
                added_at: Timestamp::now(),
            };
            let r = reference.clone();
            self.modify_in(tx, &idb, move |req| {
                refuse_when_final(req.status())?;
                if !req.attachments.iter().any(|a| a.sha256 == r.sha256 && a.role == r.role) {
                    req.attachments.push(r);
                }
                Ok(())
            })?;
            Ok(reference)
        })?;
        tracing::info!(size = reference.size, "attachment stored");
        Ok(reference)
    }

    /// The attachments the server is not known to hold, smallest first
    /// (small ones go before large).
    pub fn pending_uploads(&self) -> Result<Vec<AttachmentInfo>, Error> {
        self.read(|conn| {
            let mut st = conn.prepare("SELECT key, meta FROM attachments WHERE uploaded = 0")?;
            let rows: Vec<(Vec<u8>, Vec<u8>)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for (key, meta) in rows {
                let plain = self
                    .keys
                    .open(
                        Purpose::Attachments,
                        &place("attachments", "meta", &key, 0),
                        &meta,
                    )
                    .map_err(|_| Error::Corrupt("an attachment record failed authentication"))?;
                let info: AttachmentInfo = serde_json::from_slice(&plain)
                    .map_err(|_| Error::Corrupt("an attachment record is damaged"))?;
                out.push(info);
            }
            out.sort_by_key(|i| i.size);
            Ok(out)
        })
    }

    /// Records that the server holds this attachment whole.
    pub fn mark_uploaded(&self, sha256: &str) -> Result<(), Error> {
        let key = self
            .keys
            .lookup_hash("attachment", sha256.to_ascii_lowercase().as_bytes());
        self.write(|tx| {
            tx.execute("UPDATE attachments SET uploaded = 1 WHERE key = ?1", [&key])?;
            Ok(())
        })
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
            let key = self.keys.lookup_hash("attachment", sha.as_bytes());
            let id: Option<Vec<u8>> = tx
                .query_row("SELECT id FROM attachments WHERE key = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(id) = id {
                tx.execute("DELETE FROM attachment_chunks WHERE attachment = ?1", [&id])?;
                tx.execute("DELETE FROM attachments WHERE key = ?1", [&key])?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    fn attachment_row(
        &self,
        conn: &rusqlite::Connection,
        sha256: &str,
    ) -> Result<(Vec<u8>, Vec<u8>, AttachmentInfo, u64), Error> {
        let key = self
            .keys
            .lookup_hash("attachment", sha256.to_ascii_lowercase().as_bytes());
        let (id, meta, count): (Vec<u8>, Vec<u8>, i64) = conn
            .query_row(
                "SELECT id, meta, chunk_count FROM attachments WHERE key = ?1",
                [&key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or(Error::NotFound { what: "attachment" })?;
        let meta = self
            .keys
            .open(
                Purpose::Attachments,
                &place("attachments", "meta", &key, 0),
                &meta,
            )
            .map_err(|_| Error::Corrupt("an attachment record failed authentication"))?;
        let info: AttachmentInfo = serde_json::from_slice(&meta)
            .map_err(|_| Error::Corrupt("an attachment record is damaged"))?;
        Ok((key, id, info, count as u64))
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

fn refuse_when_final(status: crate::lifecycle::Status) -> Result<(), Error> {
    if status.is_final() {
        Err(Error::Forbidden(format!(
            "a request in status {status} takes no new attachments"
        )))
    } else {
        Ok(())
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, Error> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Re-seals every attachment record and chunk under `new` (inside the
/// caller's rekey transaction); the row keys are keyed hashes and move too.
pub(super) fn rekey(tx: &Transaction<'_>, old: &Keys, new: &Keys) -> Result<(), Error> {
    let rows: Vec<(Vec<u8>, Vec<u8>)> = {
        let mut s = tx.prepare("SELECT key, meta FROM attachments")?;
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (key, meta) in rows {
        let plain = old
            .open(
                Purpose::Attachments,
                &place("attachments", "meta", &key, 0),
                &meta,
            )
            .map_err(|_| {
                Error::Corrupt("an attachment record failed authentication during rekey")
            })?;
        let info: AttachmentInfo = serde_json::from_slice(&plain)
            .map_err(|_| Error::Corrupt("an attachment record is damaged"))?;
        let new_key = new.lookup_hash("attachment", info.sha256.as_bytes());
        let sealed = new.seal(
            Purpose::Attachments,
            &place("attachments", "meta", &new_key, 0),
            &plain,
        )?;
        tx.execute(
            "UPDATE attachments SET key = ?2, meta = ?3 WHERE key = ?1",
            params![key, new_key, sealed],
        )?;
    }
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
