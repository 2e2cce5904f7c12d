//! One request = one Automerge document (design-notes decision 2). The Rust
//! model is mapped onto it with autosurgeon; every edit is "hydrate, change
//! the struct, reconcile", so concurrent edits by different devices merge
//! field by field.

use automerge::{ActorId, AutoCommit, ChangeHash};
use autosurgeon::{hydrate, reconcile};

use crate::error::Error;
use crate::model::Request;

/// A request's Automerge document.
pub struct RequestDoc {
    doc: AutoCommit,
}

impl RequestDoc {
    /// A new document holding `request`, written by `actor`.
    ///
    /// ```
    /// use sambung_core::{document::RequestDoc, templates, model::*, lifecycle::Role, Timestamp};
    /// let request = Request {
    ///     id: RequestId::random(),
    ///     created_at: Timestamp(0),
    ///     created_by: "u1".into(),
    ///     created_role: Role::Resident,
    ///     content: templates::example(Kind::KtpEl),
    ///     attachments: vec![],
    ///     history: vec![],
    ///     notes: vec![],
    /// };
    /// let mut doc = RequestDoc::new(&request, automerge::ActorId::random()).unwrap();
    /// assert_eq!(doc.hydrate().unwrap(), request);
    /// ```
    pub fn new(request: &Request, actor: ActorId) -> Result<Self, Error> {
        let mut doc = AutoCommit::new().with_actor(actor);
        reconcile(&mut doc, request)
            .map_err(|_| Error::Document("the request could not be written"))?;
        doc.commit();
        Ok(RequestDoc { doc })
    }

    /// Loads a document from a snapshot and the incremental chunks saved
    /// after it; further edits are written by `actor`.
    pub fn load<'a>(
        snapshot: &[u8],
        chunks: impl IntoIterator<Item = &'a [u8]>,
        actor: ActorId,
    ) -> Result<Self, Error> {
        let mut doc = AutoCommit::load(snapshot)
            .map_err(|_| Error::Document("a stored document could not be loaded"))?;
        for chunk in chunks {
            doc.load_incremental(chunk)
                .map_err(|_| Error::Document("a stored change could not be loaded"))?;
        }
        doc.set_actor(actor);
        Ok(RequestDoc { doc })
    }

    /// The request as it stands in the document.
    pub fn hydrate(&self) -> Result<Request, Error> {
        hydrate(&self.doc)
            .map_err(|_| Error::Document("the document does not hold a valid request"))
    }

    /// Applies `edit` to the request and records the difference as one
    /// change. Nothing is recorded when `edit` fails or changes nothing.
    pub fn update<R>(
        &mut self,
        edit: impl FnOnce(&mut Request) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut request = self.hydrate()?;
        let id = request.id.clone();
        let out = edit(&mut request)?;
        if request.id != id {
            return Err(Error::Document("a request's id cannot change"));
        }
        reconcile(&mut self.doc, &request)
            .map_err(|_| Error::Document("the request could not be written"))?;
        self.doc.commit();
        Ok(out)
    }

    /// Current heads.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes made after `heads`.
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// Merges every change of `other` into this document.
    pub fn merge(&mut self, other: &mut RequestDoc) -> Result<(), Error> {
        self.doc
            .merge(&mut other.doc)
            .map(|_| ())
            .map_err(|_| Error::Document("the documents could not be merged"))
    }

    /// A copy that `actor` edits independently (another device).
    pub fn fork(&mut self, actor: ActorId) -> RequestDoc {
        RequestDoc {
            doc: self.doc.fork().with_actor(actor),
        }
    }
}

/// Encodes heads for storage: 32 bytes each, sorted.
pub fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted: Vec<&ChangeHash> = heads.iter().collect();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

/// Decodes stored heads.
pub fn decode_heads(bytes: &[u8]) -> Result<Vec<ChangeHash>, Error> {
    if bytes.len() % 32 != 0 {
        return Err(Error::Corrupt("stored heads have a wrong length"));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            ChangeHash(h)
        })
        .collect())
}
