//! Each attachment's upload: what the server is not known to hold, and
//! where each one stands (queued, held for an unmetered link, partly sent,
//! done, refused) for the app to show.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::AttachmentInfo;
use crate::error::Error;
use crate::model::RequestId;
use crate::store::Store;

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

impl Store {
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
                out.push(self.open_attachment_meta(&key, &meta)?);
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
}
