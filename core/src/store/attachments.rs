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

/// Where an attachment's upload stands, for the app to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
pub enum UploadState {
    /// Waiting for the next sync.
    Queued,
    /// Large, and the link was metered without the user's leave to spend
    /// it on large attachments: waits for an unmetered one.
    WaitingForUnmetered,
    /// Partly on the server: `sent` of `size` bytes.
    Uploading {
        /// Bytes the server holds.
        sent: u64,
        /// The attachment's size.
        size: u64,
    },
    /// The server holds it whole.
    Done,
    /// The server will not take it; the reason is for the user.
    Refused {
        /// Why, in words.
        reason: String,
    },
}

/// One attachment of a request and its upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct AttachmentUpload {
    /// SHA-256 of the content.
    pub sha256: String,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Where its upload stands.
    pub state: UploadState,
}

fn chunk_place(id: &[u8], idx: u64) -> Place<'_> {
    place("attachment_chunks", "data", id, idx)
}

impl Store {
    /// Stores the bytes read from `content` and references them from the
    /// request with `role`, `name` and `mime`. The same bytes attached
    /// again, to this or another request, are stored once. A JPEG or PNG
    /// is stored without its metadata, losslessly (`crate::metadata`);
    /// HEIC, TIFF and WebP are refused (their metadata cannot be removed
    /// here). [`Store::attach_photo`] also downscales.
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
        check_names(name, mime)?;
        // Fail fast before reading the content; checked again below, inside
        // the transaction, against the state the reference is written to.
        self.may_attach(&self.get(id)?)?;
        let idb = super::id_bytes(id)?;
        // An image goes in without its metadata (EXIF, GPS, comments):
        // read whole (bounded) to take it out; anything else streams.
        let mut head = [0u8; 12];
        let n = read_full(&mut content, &mut head)?;
        let head = &head[..n];
        let image = match crate::metadata::sniff(head) {
            None => None,
            Some(_) => {
                let mut all = head.to_vec();
                (&mut content)
                    .take(max.saturating_sub(all.len() as u64).saturating_add(1))
                    .read_to_end(&mut all)?;
                if all.len() as u64 > max {
                    return Err(Error::AttachmentTooLarge {
                        size: all.len() as u64,
                        max,
                    });
                }
                Some(crate::metadata::strip(&all)?)
            }
        };
        // One transaction: the chunks, the record and the reference in the
        // document land together or not at all.
        let reference = self.write(|tx| {
            let blob = match &image {
                Some(bytes) => self.put_blob(tx, &mut &bytes[..], max, mime, false)?,
                None => {
                    let mut rest = std::io::Cursor::new(head).chain(&mut content);
                    self.put_blob(tx, &mut rest, max, mime, false)?
                }
            };
            self.reference_in(tx, &idb, blob, role, name, mime)
        })?;
        tracing::info!(size = reference.size, "attachment stored");
        Ok(reference)
    }

    /// Attaches a photo prepared for the link (`crate::photo::prepare`:
    /// upright, downscaled, re-encoded as JPEG without EXIF or any other
    /// metadata). The prepared copy is what the request refers to and what
    /// is uploaded; the original stays on this phone only, until the
    /// request is decided and [`Store::original_retention_days`] have
    /// passed ([`Store::purge_originals`]).
    #[cfg(feature = "photos")]
    pub fn attach_photo(
        &self,
        id: &RequestId,
        role: AttachmentRole,
        name: &str,
        content: &[u8],
        settings: &crate::photo::PhotoSettings,
    ) -> Result<AttachmentRef, Error> {
        if content.len() as u64 > MAX_ATTACHMENT_BYTES {
            return Err(Error::AttachmentTooLarge {
                size: content.len() as u64,
                max: MAX_ATTACHMENT_BYTES,
            });
        }
        let name = jpeg_name(name);
        check_names(&name, "image/jpeg")?;
        self.may_attach(&self.get(id)?)?;
        let prepared = crate::photo::prepare(content, settings)?;
        let idb = super::id_bytes(id)?;
        let reference = self.write(|tx| {
            let original = self.put_blob(
                tx,
                &mut &content[..],
                MAX_ATTACHMENT_BYTES,
                "application/octet-stream",
                true,
            )?;
            let blob = self.put_blob(
                tx,
                &mut &prepared.bytes[..],
                MAX_ATTACHMENT_BYTES,
                prepared.mime,
                false,
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO originals (prepared, original) VALUES (?1, ?2)",
                params![blob.key, original.key],
            )?;
            self.reference_in(tx, &idb, blob, role, &name, prepared.mime)
        })?;
        tracing::info!(size = reference.size, "photo prepared and stored");
        Ok(reference)
    }

    /// Streams `content` into sealed chunks while hashing it, and records
    /// it — or, if these bytes are stored already, drops the copy just
    /// written. `local_only` marks bytes never to upload (a photo's
    /// original); the same bytes attached for upload clear the mark.
    fn put_blob(
        &self,
        tx: &Transaction<'_>,
        content: &mut impl Read,
        max: u64,
        mime: &str,
        local_only: bool,
    ) -> Result<StoredBlob, Error> {
        let chunk_id: [u8; 16] = crypto::random_bytes()?;
        let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; CHUNK_SIZE];
        let mut size: u64 = 0;
        let mut idx: u64 = 0;
        loop {
            let n = read_full(content, &mut buf)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > max {
                return Err(Error::AttachmentTooLarge { size, max });
            }
            hasher.update(&buf[..n]);
            let sealed = self.keys.seal(
                Purpose::Attachments,
                &chunk_place(&chunk_id, idx),
                &buf[..n],
            )?;
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
        let key = self.attachment_key(&sha);
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM attachments WHERE key = ?1", [&key], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            // Already stored: drop the copy just written.
            tx.execute(
                "DELETE FROM attachment_chunks WHERE attachment = ?1",
                [chunk_id.as_slice()],
            )?;
            if !local_only {
                tx.execute(
                    "UPDATE attachments SET local_only = 0 WHERE key = ?1",
                    [&key],
                )?;
            }
        } else {
            let info = AttachmentInfo {
                sha256: sha.clone(),
                size,
                mime: mime.to_owned(),
            };
            let meta = serde_json::to_vec(&info).map_err(|_| Error::Crypto("attachment record"))?;
            let sealed = self.keys.seal(
                Purpose::Attachments,
                &place("attachments", "meta", &key, 0),
                &meta,
            )?;
            tx.execute(
                "INSERT INTO attachments (key, id, meta, chunk_count, created_at, local_only) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![key, chunk_id.as_slice(), sealed, idx as i64, Timestamp::now().0, local_only],
            )?;
        }
        Ok(StoredBlob {
            key,
            sha256: sha,
            size,
        })
    }

    /// Adds the reference to the request, within the per-request limits.
    fn reference_in(
        &self,
        tx: &Transaction<'_>,
        idb: &[u8; 16],
        blob: StoredBlob,
        role: AttachmentRole,
        name: &str,
        mime: &str,
    ) -> Result<AttachmentRef, Error> {
        let reference = AttachmentRef {
            sha256: blob.sha256,
            role,
            name: name.to_owned(),
            mime: mime.to_owned(),
            size: blob.size,
            added_at: Timestamp::now(),
        };
        let r = reference.clone();
        self.edit_in(tx, idb, move |req| {
            if !req
                .attachments
                .iter()
                .any(|a| a.sha256 == r.sha256 && a.role == r.role)
            {
                req.attachments.push(r);
                crate::attachment_limits::check_request_attachments(&req.attachments)
                    .map_err(|r| Error::Forbidden(r.to_owned()))?;
            }
            Ok(())
        })?;
        Ok(reference)
    }

    /// The attachments the server is not known to hold, smallest first
    /// (small ones go before large).
    pub fn pending_uploads(&self) -> Result<Vec<AttachmentInfo>, Error> {
        self.read(|conn| {
            let mut st = conn.prepare(
                "SELECT key, meta FROM attachments WHERE uploaded = 0 AND local_only = 0",
            )?;
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
        self.set_upload(
            sha256,
            "UPDATE attachments SET uploaded = 1, sent = ?2, held = 0, refused = NULL WHERE key = ?1",
            0,
        )
    }

    /// Records how many bytes of this attachment the server holds.
    pub fn mark_sent(&self, sha256: &str, sent: u64) -> Result<(), Error> {
        self.set_upload(
            sha256,
            "UPDATE attachments SET sent = ?2, held = 0 WHERE key = ?1",
            sent as i64,
        )
    }

    /// Records that the server refuses this attachment, and why (no
    /// personal data: the server's words). Asked again at the next sync,
    /// in case the server's limits changed.
    pub fn mark_refused(&self, sha256: &str, reason: &str) -> Result<(), Error> {
        self.set_upload(
            sha256,
            "UPDATE attachments SET refused = ?2, held = 0 WHERE key = ?1",
            reason,
        )
    }

    /// Records whether this (large) attachment waits for an unmetered link.
    pub fn mark_held(&self, sha256: &str, held: bool) -> Result<(), Error> {
        self.set_upload(
            sha256,
            "UPDATE attachments SET held = ?2 WHERE key = ?1",
            held,
        )
    }

    /// Runs `sql` on the attachment's row: `?1` its key, `?2` `value`.
    fn set_upload(
        &self,
        sha256: &str,
        sql: &str,
        value: impl rusqlite::ToSql,
    ) -> Result<(), Error> {
        let key = self.attachment_key(sha256);
        self.write(|tx| {
            tx.execute(sql, params![key, value])?;
            Ok(())
        })
    }

    /// The attachments of a request and where each one's upload stands.
    pub fn uploads(&self, id: &RequestId) -> Result<Vec<AttachmentUpload>, Error> {
        let request = self.get(id)?;
        self.read(|conn| {
            let mut out = Vec::new();
            for a in &request.attachments {
                let key = self.attachment_key(&a.sha256);
                let row: Option<(bool, i64, Option<String>, bool)> = conn
                    .query_row(
                        "SELECT uploaded, sent, refused, held FROM attachments WHERE key = ?1",
                        [&key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let state = match row {
                    // Not on this phone (another device attached it): the
                    // server has it, or that device will send it.
                    None => UploadState::Done,
                    Some((true, ..)) => UploadState::Done,
                    Some((_, _, Some(reason), _)) => UploadState::Refused { reason },
                    Some((_, _, None, true)) => UploadState::WaitingForUnmetered,
                    Some((_, sent, None, false)) if sent > 0 => UploadState::Uploading {
                        sent: sent as u64,
                        size: a.size,
                    },
                    Some(_) => UploadState::Queued,
                };
                out.push(AttachmentUpload {
                    sha256: a.sha256.clone(),
                    name: a.name.clone(),
                    size: a.size,
                    state,
                });
            }
            Ok(out)
        })
    }

    /// Days an original photo stays after its request is decided.
    pub fn original_retention_days(&self) -> Result<u32, Error> {
        self.read(|conn| {
            Ok(
                super::sync_state::meta_get(conn, "original_retention_days")?
                    .and_then(|v| <[u8; 4]>::try_from(v).ok())
                    .map(u32::from_le_bytes)
                    .unwrap_or(DEFAULT_ORIGINAL_RETENTION_DAYS),
            )
        })
    }

    /// Sets how many days original photos stay after their request is
    /// decided (0: deleted at the next purge after the decision).
    pub fn set_original_retention_days(&self, days: u32) -> Result<(), Error> {
        self.write(|tx| {
            super::sync_state::meta_put(tx, "original_retention_days", &days.to_le_bytes())
        })
    }

    /// The original of a prepared photo, if this phone still keeps it.
    pub fn original_of(&self, sha256: &str) -> Result<Option<AttachmentInfo>, Error> {
        let key = self.attachment_key(sha256);
        let original: Option<Vec<u8>> = self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT original FROM originals WHERE prepared = ?1 LIMIT 1",
                    [&key],
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        match original {
            None => Ok(None),
            Some(k) => self.read(|conn| Ok(Some(self.row_by_key(conn, &k)?.2))),
        }
    }

    /// Deletes the originals of photos whose requests are all decided for
    /// longer than the retention setting, once their prepared copy is on
    /// the server; an original whose request is gone (erased) goes too.
    /// Returns how many were deleted. Called after every sync.
    pub fn purge_originals(&self, now: Timestamp) -> Result<usize, Error> {
        let days = self.original_retention_days()?;
        let keep_ms = i64::from(days) * 86_400_000;
        self.write(|tx| {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = {
                let mut st = tx.prepare("SELECT prepared, original FROM originals")?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?
            };
            if pairs.is_empty() {
                return Ok(0);
            }
            // For each content hash: whether some request referring to it
            // is undecided or decided too recently.
            let mut referenced = std::collections::HashMap::<String, bool>::new();
            let ids: Vec<Vec<u8>> = {
                let mut st = tx.prepare("SELECT id FROM requests")?;
                st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            for id in ids {
                let Ok(idb) = <[u8; 16]>::try_from(id) else {
                    continue;
                };
                let request = self.load_doc(tx, &idb)?.0.hydrate()?;
                let decided_at = request
                    .status()
                    .is_final()
                    .then(|| request.history.last().map(|e| e.at))
                    .flatten();
                let keep = decided_at.is_none_or(|at| now.0 - at.0 < keep_ms);
                for a in &request.attachments {
                    *referenced.entry(a.sha256.to_ascii_lowercase()).or_default() |= keep;
                }
            }
            let mut deleted = 0;
            for (prepared, original) in pairs {
                let row = self.row_by_key(tx, &prepared).ok();
                let (uploaded, sha) = match &row {
                    Some((_, _, info, _)) => {
                        let uploaded: bool = tx.query_row(
                            "SELECT uploaded FROM attachments WHERE key = ?1",
                            [&prepared],
                            |r| r.get(0),
                        )?;
                        (uploaded, Some(info.sha256.clone()))
                    }
                    None => (true, None),
                };
                let keep = sha.and_then(|s| referenced.get(&s).copied());
                // Never before the prepared copy reached the server.
                if keep == Some(true) || (keep.is_some() && !uploaded) {
                    continue;
                }
                self.delete_original(tx, &original, &referenced)?;
                tx.execute(
                    "DELETE FROM originals WHERE prepared = ?1 AND original = ?2",
                    params![prepared, original],
                )?;
                deleted += 1;
            }
            Ok(deleted)
        })
    }

    /// Deletes a photo's original — unless the same bytes are an
    /// attachment in their own right now (attached as they are, to this
    /// or another request): then only the link to them goes.
    fn delete_original(
        &self,
        tx: &Transaction<'_>,
        key: &[u8],
        referenced: &std::collections::HashMap<String, bool>,
    ) -> Result<(), Error> {
        let local_only: Option<bool> = tx
            .query_row(
                "SELECT local_only FROM attachments WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        if local_only != Some(true) {
            return Ok(());
        }
        if let Ok((_, _, info, _)) = self.row_by_key(tx, key)
            && referenced.contains_key(&info.sha256)
        {
            return Ok(());
        }
        self.delete_row(tx, key)
    }

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

    /// Bytes received so far of an attachment being downloaded (0: none).
    pub fn download_received(&self, sha256: &str) -> Result<u64, Error> {
        let key = self.attachment_key(sha256);
        self.read(|conn| {
            let n: Option<i64> = conn
                .query_row(
                    "SELECT received FROM downloads WHERE key = ?1",
                    [&key],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(n.unwrap_or(0) as u64)
        })
    }

    /// Stores `bytes` of a downloaded attachment at `offset`, which must be
    /// where the download stands (a multiple of [`CHUNK_SIZE`] until the
    /// end). When the last byte is in, the whole is checked against its
    /// content hash and becomes an attachment like any other (known to be
    /// on the server); a mismatch discards the download. Returns the bytes
    /// held.
    pub fn receive_download(
        &self,
        info: &AttachmentInfo,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64, Error> {
        let sha = info.sha256.to_ascii_lowercase();
        if !crate::protocol::blobs::is_sha256_hex(&sha) || info.size > MAX_ATTACHMENT_BYTES {
            return Err(Error::Forbidden(
                "not an attachment this phone takes".into(),
            ));
        }
        let key = self.attachment_key(&sha);
        let end = offset.saturating_add(bytes.len() as u64);
        if end < info.size && !bytes.len().is_multiple_of(CHUNK_SIZE) {
            return Err(Error::Forbidden(
                "a download arrives in whole chunks".into(),
            ));
        }
        enum Outcome {
            Partial,
            Done,
            Mismatch,
        }
        // One transaction: where the download stands is read under the same
        // lock that writes the next part.
        let outcome = self.write(|tx| {
            let row: Option<(Vec<u8>, i64)> = tx
                .query_row("SELECT id, received FROM downloads WHERE key = ?1", [&key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let held = row.as_ref().map_or(0, |r| r.1 as u64);
            if offset != held || !offset.is_multiple_of(CHUNK_SIZE as u64) || end > info.size {
                return Err(Error::Forbidden(format!(
                    "a download goes on from byte {held}, in whole chunks"
                )));
            }
            let id = match row {
                Some((id, _)) => id,
                None => {
                    let id: [u8; 16] = crypto::random_bytes()?;
                    let meta = serde_json::to_vec(info).map_err(|_| Error::Crypto("attachment record"))?;
                    let sealed = self.keys.seal(Purpose::Attachments, &place("downloads", "meta", &key, 0), &meta)?;
                    tx.execute(
                        "INSERT INTO downloads (key, id, meta, received) VALUES (?1, ?2, ?3, 0)",
                        params![key, id.as_slice(), sealed],
                    )?;
                    id.to_vec()
                }
            };
            for (i, part) in bytes.chunks(CHUNK_SIZE).enumerate() {
                let idx = offset / CHUNK_SIZE as u64 + i as u64;
                let sealed = self.keys.seal(Purpose::Attachments, &chunk_place(&id, idx), part)?;
                tx.execute(
                    "INSERT OR REPLACE INTO attachment_chunks (attachment, idx, data) VALUES (?1, ?2, ?3)",
                    params![id, idx as i64, sealed],
                )?;
            }
            tx.execute("UPDATE downloads SET received = ?2 WHERE key = ?1", params![key, end as i64])?;
            if end < info.size {
                return Ok(Outcome::Partial);
            }
            // Whole: checked against its content hash before it counts.
            let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
            {
                let mut st = tx.prepare(
                    "SELECT idx, data FROM attachment_chunks WHERE attachment = ?1 ORDER BY idx",
                )?;
                let mut rows = st.query([&id])?;
                while let Some(r) = rows.next()? {
                    let idx: i64 = r.get(0)?;
                    let data: Vec<u8> = r.get(1)?;
                    let plain = self
                        .keys
                        .open(Purpose::Attachments, &chunk_place(&id, idx as u64), &data)
                        .map_err(|_| Error::Corrupt("a downloaded chunk failed authentication"))?;
                    hasher.update(&plain);
                }
            }
            tx.execute("DELETE FROM downloads WHERE key = ?1", [&key])?;
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM attachments WHERE key = ?1", [&key], |r| r.get(0))
                .optional()?;
            if hex::encode(hasher.finish().as_ref()) != sha || exists.is_some() {
                // Wrong bytes are discarded whole; right ones already held
                // (attached meanwhile) are not kept twice.
                tx.execute("DELETE FROM attachment_chunks WHERE attachment = ?1", [&id])?;
                return Ok(if exists.is_some() { Outcome::Done } else { Outcome::Mismatch });
            }
            let chunks = info.size.div_ceil(CHUNK_SIZE as u64).max(1);
            let meta = serde_json::to_vec(info).map_err(|_| Error::Crypto("attachment record"))?;
            let sealed = self.keys.seal(Purpose::Attachments, &place("attachments", "meta", &key, 0), &meta)?;
            tx.execute(
                "INSERT INTO attachments (key, id, meta, chunk_count, created_at, uploaded) VALUES (?1, ?2, ?3, ?4, ?5, 1)",
                params![key, id, sealed, chunks as i64, Timestamp::now().0],
            )?;
            Ok(Outcome::Done)
        })?;
        match outcome {
            Outcome::Partial | Outcome::Done => {}
            Outcome::Mismatch => {
                return Err(Error::Network {
                    retryable: true,
                    message:
                        "a downloaded attachment did not match its content hash; it was discarded"
                            .into(),
                });
            }
        }
        Ok(end)
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
    fn attachment_key(&self, sha256: &str) -> Vec<u8> {
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

/// A blob just stored: its row key, content hash and size.
struct StoredBlob {
    #[cfg_attr(not(feature = "photos"), allow(dead_code))]
    key: Vec<u8>,
    sha256: String,
    size: u64,
}

fn check_names(name: &str, mime: &str) -> Result<(), Error> {
    let mut v = crate::validation::Validator::new(Timestamp::now().today_in_indonesia());
    v.text("name", name, crate::attachment_limits::MAX_NAME_CHARS);
    v.text("mime", mime, crate::attachment_limits::MAX_MIME_CHARS);
    let report = v.finish();
    if report.is_ok() {
        Ok(())
    } else {
        Err(Error::Validation(report))
    }
}

impl Store {
    /// Whether this device's role may add attachments to `r` now (checked
    /// before any bytes are stored; the rules table decides).
    fn may_attach(&self, r: &crate::model::Request) -> Result<(), Error> {
        crate::rules::may_change(self.identity.role, crate::rules::Part::Attachments, r)
            .map_err(Error::from)
    }
}

/// `name` with a `.jpg` extension in place of its own (the photo is
/// re-encoded as JPEG).
#[cfg(feature = "photos")]
fn jpeg_name(name: &str) -> String {
    let stem = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 5 => stem,
        _ => name,
    };
    format!("{stem}.jpg")
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

fn attachment_key(keys: &Keys, sha256: &str) -> Vec<u8> {
    keys.lookup_hash("attachment", sha256.to_ascii_lowercase().as_bytes())
}

/// Re-seals every attachment record and chunk under `new` (inside the
/// caller's rekey transaction); the row keys are keyed hashes and move too.
pub(super) fn rekey(tx: &Transaction<'_>, old: &Keys, new: &Keys) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;
    use crate::lifecycle::Role;
    use crate::model::Kind;
    use crate::store::{Identity, Secret};

    fn store(dir: &std::path::Path) -> Store {
        let who = Identity {
            user: "resident-1".into(),
            role: Role::Resident,
        };
        Store::init(dir, &Secret::Key(DataKey::from_bytes([1; 32])), who).unwrap()
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[cfg(feature = "photos")]
    #[test]
    fn photos_are_prepared_and_their_originals_follow_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let id = s
            .create(crate::templates::example(Kind::Complaint))
            .unwrap();
        let input = crate::photo::fixtures::jpeg_with_gps(2400, 1200, 1, "MARK-GPS-4410");
        let settings = crate::photo::PhotoSettings::default();
        let r = s
            .attach_photo(
                &id,
                AttachmentRole::Photo,
                "IMG_0001.png",
                &input,
                &settings,
            )
            .unwrap();
        assert_eq!(
            (r.name.as_str(), r.mime.as_str()),
            ("IMG_0001.jpg", "image/jpeg")
        );
        let sent = s.attachment_bytes(&r.sha256).unwrap();
        assert!(!contains(&sent, b"MARK-GPS-4410") && !contains(&sent, b"Exif"));
        let img = image::load_from_memory(&sent).unwrap();
        assert_eq!((img.width(), img.height()), (1600, 800));
        // Only the prepared copy is for the server; the original stays.
        let pending = s.pending_uploads().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].sha256, r.sha256);
        let original = s.original_of(&r.sha256).unwrap().expect("original kept");
        assert_eq!(original.size, input.len() as u64);
        assert_eq!(s.attachment_bytes(&original.sha256).unwrap(), input);

        let day = 86_400_000;
        let now = Timestamp::now();
        // Undecided: kept, whatever the time.
        assert_eq!(s.purge_originals(Timestamp(now.0 + 400 * day)).unwrap(), 0);
        s.withdraw(&id, None).unwrap();
        assert_eq!(
            s.original_retention_days().unwrap(),
            DEFAULT_ORIGINAL_RETENTION_DAYS
        );
        assert_eq!(s.purge_originals(Timestamp(now.0 + day)).unwrap(), 0);
        // Decided long ago, but the prepared copy never reached the server.
        assert_eq!(s.purge_originals(Timestamp(now.0 + 31 * day)).unwrap(), 0);
        s.mark_uploaded(&r.sha256).unwrap();
        assert_eq!(s.purge_originals(Timestamp(now.0 + 29 * day)).unwrap(), 0);
        assert_eq!(s.purge_originals(Timestamp(now.0 + 31 * day)).unwrap(), 1);
        assert_eq!(s.original_of(&r.sha256).unwrap(), None);
        assert!(matches!(
            s.attachment_info(&original.sha256),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(s.attachment_bytes(&r.sha256).unwrap(), sent);
    }

    #[cfg(feature = "photos")]
    #[test]
    fn retention_zero_purges_at_the_decision_and_bad_photos_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let id = s
            .create(crate::templates::example(Kind::Complaint))
            .unwrap();
        let settings = crate::photo::PhotoSettings::default();
        assert!(matches!(
            s.attach_photo(&id, AttachmentRole::Photo, "x.gif", b"GIF89a", &settings),
            Err(Error::Photo(_))
        ));
        assert!(s.get(&id).unwrap().attachments.is_empty());
        let photo = crate::photo::fixtures::jpeg_with_gps(50, 40, 1, "m");
        let r = s
            .attach_photo(&id, AttachmentRole::Photo, "p", &photo, &settings)
            .unwrap();
        assert_eq!(r.name, "p.jpg");
        s.set_original_retention_days(0).unwrap();
        s.mark_uploaded(&r.sha256).unwrap();
        s.withdraw(&id, None).unwrap();
        assert_eq!(s.purge_originals(Timestamp::now()).unwrap(), 1);
    }

    #[cfg(feature = "photos")]
    #[test]
    fn a_rekey_keeps_originals_and_downloads_linked() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let id = s
            .create(crate::templates::example(Kind::Complaint))
            .unwrap();
        let photo = crate::photo::fixtures::jpeg_with_gps(40, 30, 1, "m");
        let r = s
            .attach_photo(
                &id,
                AttachmentRole::Photo,
                "p.jpg",
                &photo,
                &Default::default(),
            )
            .unwrap();
        let data = vec![5u8; CHUNK_SIZE + 10];
        let info = AttachmentInfo {
            sha256: hex::encode(crypto::sha256(&data)),
            size: data.len() as u64,
            mime: "image/jpeg".into(),
        };
        s.receive_download(&info, 0, &data[..CHUNK_SIZE]).unwrap();
        s.rekey(&Secret::Key(DataKey::from_bytes([2; 32]))).unwrap();
        let original = s.original_of(&r.sha256).unwrap().expect("still linked");
        assert_eq!(s.attachment_bytes(&original.sha256).unwrap(), photo);
        assert_eq!(
            s.download_received(&info.sha256).unwrap(),
            CHUNK_SIZE as u64
        );
        s.receive_download(&info, CHUNK_SIZE as u64, &data[CHUNK_SIZE..])
            .unwrap();
        assert_eq!(s.attachment_bytes(&info.sha256).unwrap(), data);
        // Purging after the decision still finds and deletes the original.
        s.set_original_retention_days(0).unwrap();
        s.mark_uploaded(&r.sha256).unwrap();
        s.withdraw(&id, None).unwrap();
        assert_eq!(s.purge_originals(Timestamp::now()).unwrap(), 1);
        assert!(s.attachment_info(&original.sha256).is_err());
    }

    #[cfg(feature = "photos")]
    #[test]
    fn an_original_that_is_also_an_attachment_is_never_purged() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let [a, b, c] = [(); 3].map(|_| {
            s.create(crate::templates::example(Kind::Complaint))
                .unwrap()
        });
        let photo = crate::photo::fixtures::jpeg_with_gps(40, 30, 1, "m");
        // The same pixels without metadata: both prepare to the same bytes.
        let plain = crate::metadata::strip(&photo).unwrap();
        let settings = Default::default();
        let pa = s
            .attach_photo(&a, AttachmentRole::Photo, "a.jpg", &plain, &settings)
            .unwrap();
        let pb = s
            .attach_photo(&b, AttachmentRole::Photo, "b.jpg", &photo, &settings)
            .unwrap();
        assert_eq!(pa.sha256, pb.sha256);
        // The plain file is also attached as it is to a third request.
        let as_is = s
            .attach(
                &c,
                AttachmentRole::SupportingDocument,
                "c.jpg",
                "image/jpeg",
                &plain[..],
            )
            .unwrap();
        let exif_original = hex::encode(crypto::sha256(&photo));
        assert!(s.attachment_info(&exif_original).is_ok());
        s.set_original_retention_days(0).unwrap();
        s.mark_uploaded(&pa.sha256).unwrap();
        s.withdraw(&a, None).unwrap();
        s.withdraw(&b, None).unwrap();
        assert_eq!(s.purge_originals(Timestamp::now()).unwrap(), 2);
        // Both originals' links went; the one with EXIF is deleted, the one
        // that is request c's attachment stays.
        assert!(s.attachment_info(&exif_original).is_err());
        assert_eq!(s.attachment_bytes(&as_is.sha256).unwrap(), plain);
        assert_eq!(s.original_of(&pa.sha256).unwrap(), None);
    }

    #[test]
    fn each_attachment_shows_where_its_upload_stands() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let id = s
            .create(crate::templates::example(Kind::Complaint))
            .unwrap();
        let r = s
            .attach(
                &id,
                AttachmentRole::Photo,
                "a.jpg",
                "image/jpeg",
                &[7u8; 5000][..],
            )
            .unwrap();
        let state = |s: &Store| s.uploads(&id).unwrap()[0].state.clone();
        assert_eq!(state(&s), UploadState::Queued);
        s.mark_held(&r.sha256, true).unwrap();
        assert_eq!(state(&s), UploadState::WaitingForUnmetered);
        s.mark_sent(&r.sha256, 1000).unwrap();
        assert_eq!(
            state(&s),
            UploadState::Uploading {
                sent: 1000,
                size: 5000
            }
        );
        s.mark_refused(&r.sha256, "larger than the server accepts")
            .unwrap();
        assert_eq!(
            state(&s),
            UploadState::Refused {
                reason: "larger than the server accepts".into()
            }
        );
        // Still asked about at the next sync (the server's limits may change).
        assert_eq!(s.pending_uploads().unwrap().len(), 1);
        s.mark_uploaded(&r.sha256).unwrap();
        assert_eq!(state(&s), UploadState::Done);
        assert!(s.pending_uploads().unwrap().is_empty());
        let u = &s.uploads(&id).unwrap()[0];
        assert_eq!((u.name.as_str(), u.size), ("a.jpg", 5000));
    }

    #[test]
    fn a_request_over_its_attachment_limits_is_refused_before_storing() {
        use crate::attachment_limits::{MAX_REQUEST_ATTACHMENTS, REQUEST_LIMITS};
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let id = s
            .create(crate::templates::example(Kind::Complaint))
            .unwrap();
        for i in 0..MAX_REQUEST_ATTACHMENTS {
            s.attach(
                &id,
                AttachmentRole::Photo,
                "p.jpg",
                "image/jpeg",
                &[i as u8; 10][..],
            )
            .unwrap();
        }
        match s.attach(
            &id,
            AttachmentRole::Photo,
            "p.jpg",
            "image/jpeg",
            &[255u8; 10][..],
        ) {
            Err(Error::Forbidden(reason)) => assert_eq!(reason, REQUEST_LIMITS),
            other => panic!("expected the limit, got {other:?}"),
        }
        assert_eq!(
            s.get(&id).unwrap().attachments.len(),
            MAX_REQUEST_ATTACHMENTS
        );
        assert_eq!(s.pending_uploads().unwrap().len(), MAX_REQUEST_ATTACHMENTS);
    }
}
