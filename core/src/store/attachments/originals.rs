//! Photos' originals: kept on the phone only (never uploaded), linked to
//! their prepared copy, and deleted once the request is decided and the
//! retention setting has passed.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{AttachmentInfo, DEFAULT_ORIGINAL_RETENTION_DAYS};
use crate::error::Error;
use crate::store::Store;
use crate::time::Timestamp;

impl Store {
    /// Days an original photo stays after its request is decided.
    pub fn original_retention_days(&self) -> Result<u32, Error> {
        self.read(|conn| {
            Ok(
                crate::store::sync_state::meta_get(conn, "original_retention_days")?
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
            crate::store::sync_state::meta_put(tx, "original_retention_days", &days.to_le_bytes())
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
    pub(super) fn delete_original(
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
}
