//! The decisions of attachment transfers, without HTTP (`protocol::blobs`):
//! which uploads wait for an unmetered link, what to ask the server, what
//! its answer means for each attachment, how large the next chunk is and
//! where it goes on from, which range to download and whether an answer is
//! the range asked for. `client.rs` carries the bytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

use super::SyncSummary;
use crate::attachment_limits::{
    DOWNLOAD_RANGE_BYTES, MAX_MISSING_ASKED, MAX_UPLOAD_CHUNK, MIN_UPLOAD_CHUNK,
};
use crate::error::Error;
use crate::protocol::blobs::{BlobClaim, MissingRequest, MissingResponse};
use crate::store::Store;

/// What the link allows for large attachments now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkPolicy {
    /// Whether the link is metered (the platform says so).
    pub metered: bool,
    /// The largest attachment sent over a metered link without leave.
    pub metered_max_bytes: u64,
    /// The user's leave to send large attachments over a metered link.
    pub large_on_metered: bool,
}

impl LinkPolicy {
    /// Whether an attachment of `size` bytes waits for an unmetered link.
    pub fn holds(&self, size: u64) -> bool {
        self.metered && !self.large_on_metered && size > self.metered_max_bytes
    }
}

/// What the server's answer means for one attachment asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStep {
    /// The server will not take it, for this reason (its words).
    Refused(String),
    /// Send it, from this offset (what the server holds of it).
    Send {
        /// Bytes the server holds already.
        offset: u64,
    },
    /// The server holds it whole already.
    Held,
}

/// One round of uploads: the attachments asked about, smallest first.
#[derive(Debug, Clone)]
pub struct UploadRound {
    ask: MissingRequest,
}

impl UploadRound {
    /// Begins a round: every attachment the server is not known to hold
    /// counts as waiting in `summary`; those `link` holds back are marked
    /// so (the app shows it) and left out. `None`: nothing may go now.
    pub fn begin(
        store: &Store,
        link: &LinkPolicy,
        summary: &mut SyncSummary,
    ) -> Result<Option<UploadRound>, Error> {
        let pending = store.pending_uploads()?;
        summary.attachments_waiting = pending.len() as u32;
        let mut sendable = Vec::new();
        for a in pending {
            let held = link.holds(a.size);
            store.mark_held(&a.sha256, held)?;
            if !held {
                sendable.push(a);
            }
        }
        if sendable.is_empty() {
            return Ok(None);
        }
        let ask = MissingRequest {
            blobs: sendable
                .iter()
                .take(MAX_MISSING_ASKED)
                .map(|a| BlobClaim {
                    sha256: a.sha256.clone(),
                    size: a.size,
                })
                .collect(),
        };
        Ok(Some(UploadRound { ask }))
    }

    /// The question's body (`POST /v1/blobs/missing`, JSON).
    pub fn question(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(&self.ask).map_err(|_| Error::Crypto("encoding failed"))
    }

    /// Each attachment asked about, in the order asked, with what the
    /// server's answer means for it.
    pub fn steps(&self, answer: &MissingResponse) -> Vec<(BlobClaim, BlobStep)> {
        let missing: HashMap<&str, u64> = answer
            .missing
            .iter()
            .map(|m| (m.sha256.as_str(), m.offset))
            .collect();
        let refused: HashMap<&str, &str> = answer
            .refused
            .iter()
            .map(|r| (r.sha256.as_str(), r.reason.as_str()))
            .collect();
        self.ask
            .blobs
            .iter()
            .map(|a| {
                let step = if let Some(reason) = refused.get(a.sha256.as_str()) {
                    BlobStep::Refused((*reason).to_owned())
                } else if let Some(&offset) = missing.get(a.sha256.as_str()) {
                    BlobStep::Send { offset }
                } else {
                    BlobStep::Held
                };
                (a.clone(), step)
            })
            .collect()
    }
}

/// Records that an attachment will not go (the server refuses it, or it
/// cannot be read here): shown to the user, asked about again at the next
/// sync in case the server's limits changed.
pub fn upload_refused(
    store: &Store,
    summary: &mut SyncSummary,
    sha256: &str,
    reason: String,
) -> Result<(), Error> {
    store.mark_refused(sha256, &reason)?;
    summary
        .attachments_refused
        .push((sha256.to_owned(), reason));
    Ok(())
}

/// Records that the server holds an attachment whole (sent, or there
/// already).
pub fn upload_done(store: &Store, summary: &mut SyncSummary, sha256: &str) -> Result<(), Error> {
    store.mark_uploaded(sha256)?;
    summary.attachments_uploaded += 1;
    summary.attachments_waiting = summary.attachments_waiting.saturating_sub(1);
    Ok(())
}

/// Where an upload goes on after a chunk's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkAnswer {
    /// Taken: go on from `offset`.
    Taken {
        /// What the server holds now.
        offset: u64,
    },
    /// The server holds another length (a chunk of ours arrived though its
    /// answer did not): go on from there.
    Elsewhere {
        /// What the server holds.
        offset: u64,
    },
    /// Refused: the answer says why.
    Refused,
}

/// Offset mismatches one upload follows before it gives up.
const MAX_MISMATCHES: u32 = 3;

/// What the answer to a chunk of `len` bytes sent at `offset` means:
/// `status` and the server's `Upload-Offset`, after `mismatches` earlier
/// mismatches in this upload.
pub fn chunk_answer(
    status: u16,
    server_offset: Option<u64>,
    offset: u64,
    len: u64,
    mismatches: u32,
) -> ChunkAnswer {
    match status {
        200..=299 => ChunkAnswer::Taken {
            offset: server_offset.unwrap_or(offset + len),
        },
        409 if mismatches < MAX_MISMATCHES => ChunkAnswer::Elsewhere {
            offset: server_offset.unwrap_or(0),
        },
        _ => ChunkAnswer::Refused,
    }
}

/// The upload chunk size, learnt from the link: halved after a chunk is
/// cut, doubled after three in a row go through, between
/// [`MIN_UPLOAD_CHUNK`] and [`MAX_UPLOAD_CHUNK`]. Shared by the uploads of
/// one client (atomics: the client is used from several tasks).
#[derive(Debug)]
pub struct ChunkSize {
    size: AtomicUsize,
    streak: AtomicU32,
}

impl Default for ChunkSize {
    fn default() -> Self {
        ChunkSize {
            size: AtomicUsize::new(MAX_UPLOAD_CHUNK),
            streak: AtomicU32::new(0),
        }
    }
}

impl ChunkSize {
    /// The size of the next chunk.
    pub fn get(&self) -> usize {
        self.size
            .load(Relaxed)
            .clamp(MIN_UPLOAD_CHUNK, MAX_UPLOAD_CHUNK)
    }

    /// A chunk of `size` was cut (or the server failed): a smaller one
    /// fits between this link's outages more often.
    pub fn cut(&self, size: usize) {
        self.size.store((size / 2).max(MIN_UPLOAD_CHUNK), Relaxed);
        self.streak.store(0, Relaxed);
    }

    /// A chunk of `size` went through: after three in a row, try a larger
    /// one.
    pub fn went_through(&self, size: usize) {
        if self.streak.fetch_add(1, Relaxed) + 1 >= 3 {
            self.size.store((size * 2).min(MAX_UPLOAD_CHUNK), Relaxed);
            self.streak.store(0, Relaxed);
        }
    }
}

/// The `Range` to ask next of an attachment of `size` bytes when `held`
/// are here: a few seconds on EDGE, in whole stored chunks. `None` for an
/// empty attachment (asked whole).
pub fn next_range(held: u64, size: u64) -> Option<String> {
    if size == 0 {
        return None;
    }
    let last = (held + DOWNLOAD_RANGE_BYTES).min(size).saturating_sub(1);
    Some(format!("bytes={held}-{last}"))
}

/// Whether a download's answer is the range asked for: `206` starting at
/// `held` (its `Content-Range`), or a whole `200` when nothing is held yet.
pub fn is_range_asked(status: u16, content_range: Option<&str>, held: u64) -> bool {
    let starts_at = content_range
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.parse::<u64>().ok());
    match status {
        206 => starts_at == Some(held),
        200 => held == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;
    use crate::lifecycle::Role;
    use crate::model::{AttachmentRole, Kind};
    use crate::protocol::blobs::{BlobOffset, BlobRefusal};
    use crate::store::{Identity, Secret, UploadState};

    #[test]
    fn a_metered_link_holds_large_attachments_unless_allowed() {
        let metered = LinkPolicy {
            metered: true,
            metered_max_bytes: 1000,
            large_on_metered: false,
        };
        assert!(!metered.holds(1000) && metered.holds(1001));
        let allowed = LinkPolicy {
            large_on_metered: true,
            ..metered
        };
        let unmetered = LinkPolicy {
            metered: false,
            ..metered
        };
        assert!(!allowed.holds(u64::MAX) && !unmetered.holds(u64::MAX));
    }

    #[test]
    fn a_round_asks_about_what_may_go_and_records_each_answer() {
        let dir = tempfile::tempdir().unwrap();
        let who = Identity {
            user: "resident-1".into(),
            role: Role::Resident,
        };
        let store =
            Store::init(dir.path(), &Secret::Key(DataKey::from_bytes([4; 32])), who).unwrap();
        let id = store
            .create(crate::templates::example(Kind::Complaint))
            .unwrap();
        let attach = |fill: u8, len: usize| {
            store
                .attach(
                    &id,
                    AttachmentRole::Photo,
                    "p.bin",
                    "application/octet-stream",
                    &vec![fill; len][..],
                )
                .unwrap()
                .sha256
        };
        let (large, a, b, c) = (attach(1, 5000), attach(2, 10), attach(3, 20), attach(4, 30));
        let link = LinkPolicy {
            metered: true,
            metered_max_bytes: 1000,
            large_on_metered: false,
        };
        let mut summary = SyncSummary::default();
        let round = UploadRound::begin(&store, &link, &mut summary)
            .unwrap()
            .unwrap();
        assert_eq!(summary.attachments_waiting, 4);
        let state = |sha: &str| {
            store
                .uploads(&id)
                .unwrap()
                .into_iter()
                .find(|u| u.sha256 == sha)
                .unwrap()
                .state
        };
        assert_eq!(state(&large), UploadState::WaitingForUnmetered);
        // Smallest first; the held one is not asked about.
        let asked: MissingRequest = serde_json::from_slice(&round.question().unwrap()).unwrap();
        let order: Vec<&str> = asked.blobs.iter().map(|b| b.sha256.as_str()).collect();
        assert_eq!(order, [a.as_str(), b.as_str(), c.as_str()]);

        let answer = MissingResponse {
            missing: vec![BlobOffset {
                sha256: b.clone(),
                offset: 7,
            }],
            refused: vec![BlobRefusal {
                sha256: a.clone(),
                reason: "larger than the server accepts".into(),
            }],
        };
        let steps: Vec<BlobStep> = round.steps(&answer).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            steps,
            [
                BlobStep::Refused("larger than the server accepts".into()),
                BlobStep::Send { offset: 7 },
                BlobStep::Held,
            ]
        );
        upload_refused(
            &store,
            &mut summary,
            &a,
            "larger than the server accepts".into(),
        )
        .unwrap();
        upload_done(&store, &mut summary, &c).unwrap();
        assert_eq!(
            state(&a),
            UploadState::Refused {
                reason: "larger than the server accepts".into()
            }
        );
        assert_eq!(state(&c), UploadState::Done);
        assert_eq!(state(&b), UploadState::Queued);
        assert_eq!(
            (summary.attachments_uploaded, summary.attachments_waiting),
            (1, 3)
        );
        assert_eq!(summary.attachments_refused.len(), 1);

        // Only the held one is left, and the link still holds it.
        upload_done(&store, &mut summary, &a).unwrap();
        upload_done(&store, &mut summary, &b).unwrap();
        let mut next = SyncSummary::default();
        assert!(
            UploadRound::begin(&store, &link, &mut next)
                .unwrap()
                .is_none()
        );
        assert_eq!(next.attachments_waiting, 1);
        let unmetered = LinkPolicy {
            metered: false,
            ..link
        };
        assert!(
            UploadRound::begin(&store, &unmetered, &mut next)
                .unwrap()
                .is_some()
        );
        assert_eq!(state(&large), UploadState::Queued);
    }

    #[test]
    fn a_chunks_answer_says_where_the_upload_goes_on() {
        assert_eq!(
            chunk_answer(204, Some(300), 100, 200, 0),
            ChunkAnswer::Taken { offset: 300 }
        );
        assert_eq!(
            chunk_answer(204, None, 100, 200, 0),
            ChunkAnswer::Taken { offset: 300 }
        );
        assert_eq!(
            chunk_answer(409, Some(50), 100, 200, 2),
            ChunkAnswer::Elsewhere { offset: 50 }
        );
        // A server that keeps disagreeing is not followed for ever.
        assert_eq!(
            chunk_answer(409, Some(50), 100, 200, 3),
            ChunkAnswer::Refused
        );
        assert_eq!(chunk_answer(413, None, 0, 10, 0), ChunkAnswer::Refused);
    }

    #[test]
    fn the_chunk_halves_when_cut_and_doubles_after_three() {
        let chunk = ChunkSize::default();
        assert_eq!(chunk.get(), MAX_UPLOAD_CHUNK);
        chunk.cut(chunk.get());
        assert_eq!(chunk.get(), MAX_UPLOAD_CHUNK / 2);
        for _ in 0..10 {
            chunk.cut(chunk.get());
        }
        assert_eq!(chunk.get(), MIN_UPLOAD_CHUNK);
        chunk.went_through(chunk.get());
        chunk.went_through(chunk.get());
        assert_eq!(chunk.get(), MIN_UPLOAD_CHUNK);
        chunk.went_through(chunk.get());
        assert_eq!(chunk.get(), MIN_UPLOAD_CHUNK * 2);
        // A cut breaks the streak.
        chunk.went_through(chunk.get());
        chunk.went_through(chunk.get());
        chunk.cut(chunk.get());
        chunk.went_through(chunk.get());
        assert_eq!(chunk.get(), MIN_UPLOAD_CHUNK);
        for _ in 0..30 {
            chunk.went_through(chunk.get());
        }
        assert_eq!(chunk.get(), MAX_UPLOAD_CHUNK);
    }

    #[test]
    fn downloads_ask_whole_ranges_and_take_only_the_range_asked() {
        let r = DOWNLOAD_RANGE_BYTES;
        assert_eq!(next_range(0, 0), None);
        assert_eq!(next_range(0, 10).as_deref(), Some("bytes=0-9"));
        assert_eq!(
            next_range(r, 3 * r),
            Some(format!("bytes={r}-{}", 2 * r - 1))
        );
        assert_eq!(next_range(r, r + 5), Some(format!("bytes={r}-{}", r + 4)));
        assert!(is_range_asked(
            206,
            Some(&format!("bytes {r}-{}/9999999", 2 * r - 1)),
            r
        ));
        assert!(!is_range_asked(206, Some("bytes 0-9/10"), r));
        assert!(!is_range_asked(206, None, 0));
        assert!(is_range_asked(200, None, 0));
        // A whole answer after part was received would duplicate it.
        assert!(!is_range_asked(200, None, r));
        assert!(!is_range_asked(416, Some("bytes */10"), 0));
    }
}
