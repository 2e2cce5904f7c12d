//! Storing an attachment's bytes (sealed chunks, deduplicated by content)
//! and referencing them from a request, within the per-request limits;
//! photos prepared for the link, their originals kept beside them.

use std::io::Read;

use rusqlite::{OptionalExtension, Transaction, params};

use super::{AttachmentInfo, CHUNK_SIZE, MAX_ATTACHMENT_BYTES, chunk_place};
use crate::crypto::{self, Purpose};
use crate::error::Error;
use crate::model::{AttachmentRef, AttachmentRole, RequestId};
use crate::store::Store;
use crate::time::Timestamp;

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

    /// Attaches a document a catalog service asks for by its own name
    /// (the definition's `attachments[].role`, e.g. `rt_letter`): one of
    /// the engine's roles when the name is one, otherwise a supporting
    /// document (a photo for an image) carrying that name as its purpose.
    pub fn attach_for_service(
        &self,
        id: &RequestId,
        purpose: &str,
        name: &str,
        mime: &str,
        content: impl Read,
    ) -> Result<AttachmentRef, Error> {
        let (role, purpose) = match AttachmentRole::parse(purpose) {
            Some(role) => (role, None),
            None => {
                if !crate::model::is_purpose(purpose) {
                    return Err(Error::Forbidden(
                        "a document's purpose is the name a service gives it: lowercase letters, digits and _".into(),
                    ));
                }
                let role = if mime.starts_with("image/") {
                    AttachmentRole::Photo
                } else {
                    AttachmentRole::SupportingDocument
                };
                (role, Some(purpose.to_owned()))
            }
        };
        self.attach_inner(
            id,
            (role, purpose),
            name,
            mime,
            content,
            MAX_ATTACHMENT_BYTES,
        )
    }

    /// Like [`Store::attach`] with a size limit of `max` bytes.
    pub fn attach_limited(
        &self,
        id: &RequestId,
        role: AttachmentRole,
        name: &str,
        mime: &str,
        content: impl Read,
        max: u64,
    ) -> Result<AttachmentRef, Error> {
        self.attach_inner(id, (role, None), name, mime, content, max)
    }

    fn attach_inner(
        &self,
        id: &RequestId,
        role: (AttachmentRole, Option<String>),
        name: &str,
        mime: &str,
        mut content: impl Read,
        max: u64,
    ) -> Result<AttachmentRef, Error> {
        check_names(name, mime)?;
        // Fail fast before reading the content; checked again below, inside
        // the transaction, against the state the reference is written to.
        self.may_attach(&self.get(id)?)?;
        let idb = crate::store::id_bytes(id)?;
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
        let idb = crate::store::id_bytes(id)?;
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
            self.reference_in(tx, &idb, blob, (role, None), &name, prepared.mime)
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
            let sealed = self.seal_attachment_meta(&key, &info)?;
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
        (role, purpose): (AttachmentRole, Option<String>),
        name: &str,
        mime: &str,
    ) -> Result<AttachmentRef, Error> {
        let reference = AttachmentRef {
            sha256: blob.sha256,
            role,
            purpose,
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
                .any(|a| a.sha256 == r.sha256 && a.purpose_name() == r.purpose_name())
            {
                req.attachments.push(r);
                crate::attachment_limits::check_request_attachments(&req.attachments)
                    .map_err(|r| Error::Forbidden(r.to_owned()))?;
            }
            Ok(())
        })?;
        Ok(reference)
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
        let subject = self.catalog()?.subject(r);
        crate::rules::may_change(
            self.identity.role,
            crate::rules::Part::Attachments,
            r,
            subject,
        )
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
