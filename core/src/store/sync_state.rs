//! What the sync client keeps in the store: the device's signing key, its
//! enrollment, the pull cursor, refusals, and applying what the server sends.

use automerge::ChangeHash;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{DeviceRecord, Store, place};
use crate::crypto::Purpose;
use crate::document::{RequestDoc, encode_heads};
use crate::error::Error;
use crate::lifecycle::Role;
use crate::model::RequestId;
use crate::protocol::{DeviceKey, DocPull};

/// This device's enrollment with a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// Base URL of the server, e.g. `https://sambung.example.go.id`.
    pub server: String,
    /// The account the device belongs to.
    pub account: String,
    /// Its role.
    pub role: Role,
    /// Its region codes (officers, agencies).
    pub regions: Vec<String>,
    /// The server's audience (its deployment id, 32 hex digits), given in
    /// the enrollment answer and signed into every call, so that a call
    /// for this server is refused by any other. Empty in a record from
    /// before audiences: such a device must enroll again.
    #[serde(default)]
    pub audience: String,
    /// The root certificates (DER) the device was told to trust for this
    /// server at enrollment; empty: the platform's.
    #[serde(default)]
    pub ca_roots: Vec<Vec<u8>>,
    /// The server key pins (SHA-256 of SubjectPublicKeyInfo) given at
    /// enrollment.
    #[serde(default)]
    pub pins: Vec<[u8; 32]>,
}

pub(super) fn meta_get(tx: &rusqlite::Connection, key: &str) -> Result<Option<Vec<u8>>, Error> {
    Ok(tx
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(super) fn meta_put(tx: &Transaction<'_>, key: &str, value: &[u8]) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![key, value],
    )?;
    Ok(())
}

impl Store {
    /// This device's id: its Automerge actor id, bound to its key at
    /// enrollment.
    pub fn device_id(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        let bytes = self.actor.to_bytes();
        let n = bytes.len().min(16);
        id[..n].copy_from_slice(&bytes[..n]);
        id
    }

    /// The device's Ed25519 signing key, made at `init` and sealed in the
    /// store; its public key determines [`Store::device_id`].
    pub fn device_key(&self) -> Result<DeviceKey, Error> {
        let p = place("meta", "device_key", b"", 0);
        self.read(|tx| {
            let sealed =
                meta_get(tx, "device_key")?.ok_or(Error::Corrupt("the device key is missing"))?;
            let pkcs8 = self
                .keys
                .open(Purpose::Records, &p, &sealed)
                .map_err(|_| Error::Corrupt("the device key failed authentication"))?;
            DeviceKey::from_pkcs8(&pkcs8).map_err(|_| Error::Corrupt("the device key is damaged"))
        })
    }

    /// The enrollment, once the device has enrolled.
    pub fn enrollment(&self) -> Result<Option<Enrollment>, Error> {
        self.read(|tx| {
            let Some(sealed) = meta_get(tx, "enrollment")? else {
                return Ok(None);
            };
            let plain = self
                .keys
                .open(
                    Purpose::Records,
                    &place("meta", "enrollment", b"", 0),
                    &sealed,
                )
                .map_err(|_| Error::Corrupt("the enrollment record failed authentication"))?;
            serde_json::from_slice(&plain)
                .map(Some)
                .map_err(|_| Error::Corrupt("the enrollment record is damaged"))
        })
    }

    /// Records the enrollment: the device now acts as `enrollment.account`.
    /// Requests written before enrollment — drafts, submissions, notes — are
    /// handed to the account in the same transaction, so the server accepts
    /// them as the account's own.
    pub fn set_enrollment(&mut self, enrollment: &Enrollment) -> Result<(), Error> {
        let identity = super::Identity {
            user: enrollment.account.clone(),
            role: enrollment.role,
        };
        let record = DeviceRecord {
            identity: identity.clone(),
            actor: self.actor.to_hex_string(),
        };
        let old_user = self.identity.user.clone();
        self.write(|tx| {
            let json =
                serde_json::to_vec(enrollment).map_err(|_| Error::Crypto("enrollment record"))?;
            meta_put(
                tx,
                "enrollment",
                &self.keys.seal(
                    Purpose::Records,
                    &place("meta", "enrollment", b"", 0),
                    &json,
                )?,
            )?;
            let device = serde_json::to_vec(&record).map_err(|_| Error::Crypto("device record"))?;
            meta_put(
                tx,
                "device",
                &self
                    .keys
                    .seal(Purpose::Records, &place("meta", "device", b"", 0), &device)?,
            )?;
            let ids: Vec<Vec<u8>> = {
                let mut st = tx.prepare("SELECT id FROM requests")?;
                st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            for idb in ids {
                let idb = super::stored_id(&idb)?;
                let account = enrollment.account.clone();
                let old = old_user.clone();
                // Nothing written before enrollment has left the device:
                // everything the local user wrote becomes the account's.
                self.modify_in(tx, &idb, move |r| {
                    if r.created_by == old {
                        r.created_by = account.clone();
                    }
                    for e in r.history.iter_mut().filter(|e| e.by == old) {
                        e.by = account.clone();
                    }
                    for n in r.notes.iter_mut().filter(|n| n.by == old) {
                        n.by = account.clone();
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        self.identity = identity;
        Ok(())
    }

    /// The pull cursor: the server's log position this device has pulled
    /// to, and the tag the server gave with it.
    pub fn cursor(&self) -> Result<(u64, u32), Error> {
        self.read(|tx| {
            let Some(b) = meta_get(tx, "cursor")? else {
                return Ok((0, 0));
            };
            let seq = b.get(..8).and_then(|s| <[u8; 8]>::try_from(s).ok());
            let tag = b.get(8..12).and_then(|s| <[u8; 4]>::try_from(s).ok());
            match (seq, tag) {
                (Some(seq), Some(tag)) => Ok((u64::from_be_bytes(seq), u32::from_be_bytes(tag))),
                _ => Err(Error::Corrupt("the pull cursor is damaged")),
            }
        })
    }

    /// Moves the pull cursor.
    pub fn set_cursor(&self, cursor: u64, tag: u32) -> Result<(), Error> {
        let mut value = cursor.to_be_bytes().to_vec();
        value.extend_from_slice(&tag.to_be_bytes());
        self.write(|tx| meta_put(tx, "cursor", &value))
    }

    /// Records (or clears, with `None`) why the server refused a request's
    /// changes. The changes stay, and stay pending.
    pub fn set_refusal(&self, id: &RequestId, refusal: Option<&str>) -> Result<(), Error> {
        self.set_note(id, refusal, refusal.is_some())
    }

    /// Records why a request's changes wait (some build on another
    /// device's changes): shown like a refusal, but not one — nothing of
    /// it may be discarded.
    pub fn set_waiting(&self, id: &RequestId, why: &str) -> Result<(), Error> {
        self.set_note(id, Some(why), false)
    }

    fn set_note(&self, id: &RequestId, note: Option<&str>, refused: bool) -> Result<(), Error> {
        let idb = super::id_bytes(id)?;
        self.write(|tx| {
            tx.execute(
                "UPDATE requests SET refusal = ?2, refused = ?3 WHERE id = ?1",
                params![idb.as_slice(), note, refused],
            )?;
            Ok(())
        })
    }

    /// The way out for a request the server refused: discards this
    /// device's changes to it that the server has not acknowledged and
    /// keeps everything the server holds (and all pulled from it); a
    /// request the server never took is removed. Returns the request as it
    /// stood with those changes, for the app to show or copy from. Only a
    /// refused request: other unsynced changes are never discarded.
    pub fn discard_refused(&self, id: &RequestId) -> Result<crate::model::Request, Error> {
        let idb = super::id_bytes(id)?;
        let discarded = self.write(|tx| {
            let refused: bool = tx
                .query_row(
                    "SELECT refused AND NOT EXISTS (SELECT 1 FROM repairs WHERE repairs.id = requests.id)
                     FROM requests WHERE id = ?1",
                    [idb.as_slice()],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or(Error::NotFound { what: "request" })?;
            if !refused {
                return Err(Error::Forbidden(
                    "only the local changes of a request the server refused can be discarded"
                        .into(),
                ));
            }
            let (mut doc, _) = self.load_doc(tx, &idb)?;
            let discarded = doc.hydrate()?;
            let acked = super::acked_heads(tx, &idb)?;
            let kept = if acked.is_empty() {
                None
            } else {
                let kept = doc.without_own_after(&acked)?;
                let request = kept.hydrate()?;
                Some((kept, request))
            };
            // Freed pages are zeroed, not left with the discarded rows.
            tx.pragma_update(None, "secure_delete", true)?;
            tx.execute("DELETE FROM requests WHERE id = ?1", [idb.as_slice()])?;
            tx.execute("DELETE FROM repairs WHERE id = ?1", [idb.as_slice()])?;
            if let Some((mut doc, request)) = kept {
                self.insert_doc(tx, &request, &mut doc)?;
                tx.execute(
                    "UPDATE requests SET acked_heads = ?2 WHERE id = ?1",
                    params![idb.as_slice(), encode_heads(&acked)],
                )?;
            }
            let shas: Vec<String> = discarded
                .attachments
                .iter()
                .map(|a| a.sha256.clone())
                .collect();
            self.delete_unreferenced(tx, &shas)?;
            Ok(discarded)
        })?;
        self.truncate_wal()?;
        tracing::info!("the refused local changes of a request were discarded");
        Ok(discarded)
    }

    /// The server says this device's account may no longer see a request
    /// (reassigned, moved out of its regions): its copy is deleted — unless
    /// it holds something the server lacks (changes not acknowledged, a
    /// repair under way, attachment bytes not uploaded, a photo's original
    /// kept on this phone), which is never deleted; the request then stays,
    /// and its next push is refused with a reason the app shows. Whether it
    /// was deleted.
    pub fn forget_unseen(&self, id: &[u8; 16]) -> Result<bool, Error> {
        let dropped = self.write(|tx| {
            let held: Option<bool> = tx
                .query_row(
                    "SELECT acked_heads IS NOT NULL AND acked_heads = heads
                            AND NOT EXISTS (SELECT 1 FROM repairs WHERE repairs.id = requests.id)
                     FROM requests WHERE id = ?1",
                    [id.as_slice()],
                    |r| r.get(0),
                )
                .optional()?;
            if held != Some(true) {
                return Ok(false);
            }
            let (doc, _) = self.load_doc(tx, id)?;
            let shas: Vec<String> = doc
                .hydrate()?
                .attachments
                .into_iter()
                .map(|a| a.sha256)
                .collect();
            for sha in &shas {
                // Not uploaded, or the prepared copy of a photo whose
                // original (never uploaded) is still kept here.
                let unsent: bool = tx
                    .query_row(
                        "SELECT uploaded = 0
                                OR EXISTS (SELECT 1 FROM originals WHERE prepared = attachments.key)
                         FROM attachments WHERE key = ?1",
                        [self.attachment_key(sha)],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(false);
                if unsent {
                    return Ok(false);
                }
            }
            // Freed pages are zeroed, not left with the deleted rows.
            tx.pragma_update(None, "secure_delete", true)?;
            tx.execute("DELETE FROM requests WHERE id = ?1", [id.as_slice()])?;
            self.delete_unreferenced(tx, &shas)?;
            Ok(true)
        })?;
        if dropped {
            self.truncate_wal()?;
        }
        Ok(dropped)
    }

    /// Applies changes pulled from the server: merges them into the local
    /// document (creating it when new here) and records the server's heads as
    /// acknowledged. Local changes not yet pushed stay pending.
    pub fn apply_pull(&self, pull: &DocPull) -> Result<RequestId, Error> {
        // Bounded before Automerge inflates or expands anything, as the
        // server bounds what devices push (`protocol::limits`).
        crate::protocol::limits::check_chunks(
            &pull.changes,
            crate::protocol::limits::Sender::Server,
        )
        .map_err(|_| {
            Error::Document("received changes are over the limits or in an encoding not taken")
        })?;
        let id = RequestId::from_bytes(pull.id);
        let server_heads: Vec<ChangeHash> =
            pull.heads.iter().map(|h| ChangeHash::from(*h)).collect();
        self.write(|tx| {
            let mut replaced_attachments: Vec<String> = Vec::new();
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT rid FROM requests WHERE id = ?1",
                    [pull.id.as_slice()],
                    |r| r.get(0),
                )
                .optional()?;
            // An erasure replaces the document and its whole history: the
            // old one holds the erased values. Local changes not yet pushed
            // go with it — the law's erasure is the one exception to
            // keeping them, and the server refuses them anyway.
            let exists = match exists {
                Some(rid) if pull.replace => {
                    let pending: bool = tx.query_row(
                        "SELECT acked_heads IS NULL OR acked_heads != heads FROM requests WHERE rid = ?1",
                        [rid],
                        |r| r.get(0),
                    )?;
                    if pending {
                        tracing::warn!("unsynced changes to an erased request were dropped");
                    }
                    // The attachments the old copy referred to go too, unless
                    // another request still refers to them.
                    let old_attachments: Vec<String> = self
                        .load_doc(tx, &pull.id)?
                        .0
                        .hydrate()?
                        .attachments
                        .into_iter()
                        .map(|a| a.sha256)
                        .collect();
                    // Freed pages are zeroed, not left with the old rows.
                    tx.pragma_update(None, "secure_delete", true)?;
                    tx.execute("DELETE FROM requests WHERE rid = ?1", [rid])?;
                    tx.execute("DELETE FROM repairs WHERE id = ?1", [pull.id.as_slice()])?;
                    replaced_attachments = old_attachments;
                    None
                }
                other => other,
            };
            let mut doc = if exists.is_none() {
                let mut doc = RequestDoc::load(&pull.changes, [], self.actor.clone())?;
                if server_heads.is_empty() || !doc.has_all(&server_heads) {
                    return Err(Error::Document(
                        "received changes are damaged or incomplete",
                    ));
                }
                let request = doc.hydrate()?;
                if request.id != id {
                    return Err(Error::Document("the pulled document's id does not match"));
                }
                self.insert_doc(tx, &request, &mut doc)?;
                doc
            } else {
                self.merge_in(tx, &pull.id, &pull.changes, &server_heads)?
            };
            // The server holds what it acknowledged before and what it just
            // sent: the acknowledged frontier is the heads of both together.
            let mut union = if pull.replace {
                Vec::new()
            } else {
                super::acked_heads(tx, &pull.id)?
            };
            union.extend(server_heads.iter().copied());
            let acked = doc.frontier(&union).unwrap_or(server_heads.clone());
            tx.execute(
                "UPDATE requests SET acked_heads = ?2, refusal = NULL, refused = 0 WHERE id = ?1",
                params![pull.id.as_slice(), encode_heads(&acked)],
            )?;
            self.delete_unreferenced(tx, &replaced_attachments)?;
            Ok(())
        })?;
        if pull.replace {
            // The old rows' pages are zeroed in the file; the WAL still
            // holds copies of them until it is checkpointed and truncated.
            self.truncate_wal()?;
        }
        Ok(id)
    }
}
