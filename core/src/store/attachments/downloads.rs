//! Downloads of attachments this phone does not hold (an officer opening a
//! resident's photo): stored range by range as they arrive, so a cut
//! resumes where it stopped, and checked against the content hash at the end.

use rusqlite::{OptionalExtension, params};

use super::{AttachmentInfo, CHUNK_SIZE, MAX_ATTACHMENT_BYTES, chunk_place};
use crate::crypto::{self, Purpose};
use crate::error::Error;
use crate::store::{Store, place};
use crate::time::Timestamp;

impl Store {
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
            let sealed = self.seal_attachment_meta(&key, info)?;
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
}
