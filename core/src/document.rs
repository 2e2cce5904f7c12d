//! One request = one Automerge document (design-notes decision 2). The Rust
//! model is mapped onto it with autosurgeon; every edit is "hydrate, change
//! the struct, reconcile", so concurrent edits by different devices merge
//! field by field.

use automerge::ROOT;
use automerge::{ActorId, AutoCommit, ChangeHash};
use autosurgeon::{hydrate, reconcile, reconcile_prop};

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
    ///     assignee: None,
    ///     erased_at: None,
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

    /// The Automerge document itself, for the server's storage code
    /// (saving after given heads, reading heads) — not for edits, which go
    /// through [`RequestDoc::update`].
    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    /// The request as it stands in the document.
    pub fn hydrate(&self) -> Result<Request, Error> {
        hydrate(&self.doc)
            .map_err(|_| Error::Document("the document does not hold a valid request"))
    }

    /// Applies `edit` to the request and records the difference as one
    /// change; returns `edit`'s result and the request as it now stands.
    /// Nothing is recorded when `edit` fails or changes nothing.
    ///
    /// Only the top-level fields that changed are reconciled: reconciling
    /// an unchanged field writes nothing anyway, and skipping it makes the
    /// common edit (a transition, a note) several times cheaper.
    pub fn update<R>(
        &mut self,
        edit: impl FnOnce(&mut Request) -> Result<R, Error>,
    ) -> Result<(R, Request), Error> {
        let before = self.hydrate()?;
        if before.erased_at.is_some() {
            return Err(Error::Forbidden(
                "the personal data of this request was erased; it takes no more changes".into(),
            ));
        }
        let mut request = before.clone();
        let out = edit(&mut request)?;
        if request.id != before.id {
            return Err(Error::Document("a request's id cannot change"));
        }
        let written = |r: Result<(), autosurgeon::ReconcileError>| {
            r.map_err(|_| Error::Document("the request could not be written"))
        };
        macro_rules! reconcile_changed {
            ($($field:ident),*) => {$(
                if request.$field != before.$field {
                    written(reconcile_prop(&mut self.doc, ROOT, stringify!($field), &request.$field))?;
                }
            )*};
        }
        // Every field of `Request` but `id`, which cannot change.
        let Request {
            id: _,
            created_at: _,
            created_by: _,
            created_role: _,
            content: _,
            attachments: _,
            history: _,
            notes: _,
            assignee: _,
            erased_at: _,
        } = &request;
        reconcile_changed!(
            created_at,
            created_by,
            created_role,
            content,
            attachments,
            history,
            notes,
            assignee,
            erased_at
        );
        self.doc.commit();
        Ok((out, request))
    }

    /// An empty document, to be filled by a repair from the server.
    pub fn empty(actor: ActorId) -> Self {
        RequestDoc {
            doc: AutoCommit::new().with_actor(actor),
        }
    }

    /// The next message of Automerge's Bloom-filter sync protocol for this
    /// document (used only to repair; see `docs/protocol.md`), encoded;
    /// `None` when there is nothing to say.
    pub fn sync_message(&mut self, state: &mut automerge::sync::State) -> Option<Vec<u8>> {
        use automerge::sync::SyncDoc;
        self.doc
            .sync()
            .generate_sync_message(state)
            .map(|m| m.encode())
    }

    /// Receives a sync-protocol message: applies the changes it carries and
    /// records what the other side holds in `state`.
    pub fn receive_sync_message(
        &mut self,
        state: &mut automerge::sync::State,
        message: &[u8],
    ) -> Result<(), Error> {
        use automerge::sync::SyncDoc;
        let message = automerge::sync::Message::decode(message)
            .map_err(|_| Error::Document("a repair message is not valid"))?;
        self.doc
            .sync()
            .receive_sync_message(state, message)
            .map_err(|_| Error::Document("a repair message could not be applied"))
    }

    /// Applies Automerge changes from elsewhere (a pull from the server).
    pub fn apply(&mut self, changes: &[u8]) -> Result<(), Error> {
        self.doc
            .load_incremental(changes)
            .map(|_| ())
            .map_err(|_| Error::Document("received changes could not be applied"))
    }

    /// The heads of the history made of `hashes` and everything they depend
    /// on (drops the ones that are ancestors of others); `None` when a hash
    /// is not in this document.
    pub fn frontier(&mut self, hashes: &[ChangeHash]) -> Option<Vec<ChangeHash>> {
        let mut unique: Vec<ChangeHash> = hashes.to_vec();
        unique.sort();
        unique.dedup();
        self.doc.fork_at(&unique).ok().map(|mut f| f.get_heads())
    }

    /// Whether every change of `hashes` is in this document.
    pub fn has_all(&mut self, hashes: &[ChangeHash]) -> bool {
        hashes
            .iter()
            .all(|h| self.doc.get_change_by_hash(h).is_some())
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

    /// This document without its own actor's changes that are not
    /// ancestors of `kept` (what the server acknowledged): every other
    /// change stays.
    pub fn without_own_after(&mut self, kept: &[ChangeHash]) -> Result<RequestDoc, Error> {
        let me = self.doc.get_actor().clone();
        let dropped: std::collections::HashSet<ChangeHash> = self
            .doc
            .get_changes(kept)
            .iter()
            .filter(|c| c.actor_id() == &me)
            .map(|c| c.hash())
            .collect();
        let rest: Vec<automerge::Change> = self
            .doc
            .get_changes(&[])
            .into_iter()
            .filter(|c| !dropped.contains(&c.hash()))
            .collect();
        let mut doc = AutoCommit::new().with_actor(me);
        doc.apply_changes(rest)
            .map_err(|_| Error::Document("the kept changes could not be loaded"))?;
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(Error::Document(
                "changes from elsewhere build on the ones to discard",
            ));
        }
        Ok(RequestDoc { doc })
    }

    /// This document's present state as one change by its actor, when its
    /// history is that actor's alone and has more than one change (else
    /// `None`: nothing to gain, or changes from elsewhere to keep). The
    /// result hydrates to the same request; it is a new history, so only a
    /// document nobody else has seen may be replaced by it.
    pub fn squashed(&mut self) -> Result<Option<RequestDoc>, Error> {
        let me = self.doc.get_actor().clone();
        let changes = self.doc.get_changes(&[]);
        if changes.len() < 2 || changes.iter().any(|c| c.actor_id() != &me) {
            return Ok(None);
        }
        let request = self.hydrate()?;
        let one = RequestDoc::new(&request, me)?;
        if one.hydrate()? != request || !unknown_fields(&self.doc, &request).is_empty() {
            return Ok(None);
        }
        Ok(Some(one))
    }

    /// A copy that `actor` edits independently (another device).
    pub fn fork(&mut self, actor: ActorId) -> RequestDoc {
        RequestDoc {
            doc: self.doc.fork().with_actor(actor),
        }
    }
}

/// The places in `doc` that the request model does not have (say,
/// `details.complaint.hidden`), given `request` hydrated from it: hydration
/// ignores them, so only this finds what a tampered app wrote beside the
/// model. Paths name keys and list positions, never values.
pub fn unknown_fields(doc: &AutoCommit, request: &Request) -> Vec<String> {
    use automerge::hydrate::Value;
    // Both documents materialised in one pass each and compared in
    // memory: a lookup per key in Automerge's columnar op set costs far
    // more than the whole pass (this runs for every pushed document).
    fn walk(held: &Value, model: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
        match (held, model) {
            (Value::Map(h), Value::Map(m)) => {
                let mut keys: Vec<&String> = h.iter().map(|(k, _)| k).collect();
                keys.sort_unstable();
                for key in keys {
                    if let Some(value) = h.get(key) {
                        path.push(key.clone());
                        check(value, m.get(key), path, out);
                        path.pop();
                    }
                }
            }
            (Value::List(h), Value::List(m)) => {
                let model: Vec<&Value> = m.iter().map(|v| &v.value).collect();
                for (i, value) in h.iter().enumerate() {
                    path.push(i.to_string());
                    check(&value.value, model.get(i).copied(), path, out);
                    path.pop();
                }
            }
            // Text is a value of the model's.
            _ => {}
        }
    }
    fn check(held: &Value, model: Option<&Value>, path: &mut Vec<String>, out: &mut Vec<String>) {
        match (held, model) {
            (Value::Text(_) | Value::Scalar(_), Some(_)) => {}
            (Value::Map(_) | Value::List(_), Some(m @ (Value::Map(_) | Value::List(_)))) => {
                walk(held, m, path, out)
            }
            // Absent from the model, or a map or list where it has a value.
            _ => out.push(path.join(".")),
        }
    }
    let mut model = AutoCommit::new();
    if reconcile(&mut model, request).is_err() {
        return vec![String::new()];
    }
    model.commit();
    use automerge::ReadDoc;
    let (Ok(held), Ok(model)) = (doc.hydrate(ROOT, None), model.hydrate(ROOT, None)) else {
        return vec![String::new()];
    };
    let mut out = Vec::new();
    walk(&held, &model, &mut Vec::new(), &mut out);
    out
}

/// Encodes heads for storage: 32 bytes each, sorted.
pub fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted: Vec<&ChangeHash> = heads.iter().collect();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

/// Decodes stored heads.
pub fn decode_heads(bytes: &[u8]) -> Result<Vec<ChangeHash>, Error> {
    if !bytes.len().is_multiple_of(32) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifiers::Phone;
    use crate::lifecycle::{Role, Status, StatusEntry};
    use crate::model::{AttachmentRef, Kind, Note};
    use crate::templates;
    use crate::time::Timestamp;
    use proptest::prelude::*;

    fn base(kind: Kind) -> Request {
        Request::draft(
            templates::example(kind),
            "resident-1",
            Role::Resident,
            Timestamp(1_700_000_000_000),
        )
    }

    #[test]
    fn fields_beside_the_model_are_found_and_named_by_place() {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let request = base(Kind::Complaint);
        let mut doc = RequestDoc::new(&request, ActorId::random()).unwrap();
        assert!(unknown_fields(&doc.doc, &request).is_empty());
        let content = match doc.doc.get(ROOT, "content").unwrap() {
            Some((_, id)) => id,
            None => panic!("no content"),
        };
        doc.doc.put(ROOT, "hidden", "x").unwrap();
        doc.doc.put(&content, "extra", 1).unwrap();
        doc.doc.commit();
        let found = doc.hydrate().unwrap();
        assert_eq!(found, request, "hydration does not see them");
        let mut places = unknown_fields(&doc.doc, &found);
        places.sort();
        assert_eq!(places, ["content.extra", "hidden"]);
    }

    /// An edit one device makes while offline.
    #[derive(Debug, Clone, proptest_derive::Arbitrary)]
    enum Op {
        Content(Box<crate::model::RequestContent>),
        Note(String),
        Transition(Status, Role),
        Phone(Option<String>),
        ApplicantName(String),
        Attach(AttachmentRef),
    }

    fn apply(doc: &mut RequestDoc, op: &Op, author: &str, at: i64) {
        doc.update(|r| {
            match op.clone() {
                Op::Content(c) => r.content = *c,
                Op::Note(text) => r.notes.push(Note {
                    id: format!("{author}-{at}"),
                    at: Timestamp(at),
                    by: author.into(),
                    role: Role::Resident,
                    text,
                }),
                Op::Transition(to, role) => r.history.push(StatusEntry {
                    seq: r.history.len() as u64,
                    at: Timestamp(at),
                    id: format!("{author}-{at}"),
                    from: r.status(),
                    to,
                    by: author.into(),
                    role,
                    note: None,
                }),
                Op::Phone(p) => r.content.contact_phone = p.map(Phone),
                Op::ApplicantName(n) => {
                    if let Some(a) = &mut r.content.applicant {
                        a.name = n;
                    }
                }
                Op::Attach(a) => {
                    if !r.attachments.iter().any(|x| x.sha256 == a.sha256) {
                        r.attachments.push(a)
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    }

    fn actor(n: u8) -> ActorId {
        ActorId::from([n; 16].as_slice())
    }

    /// The walk as it was before the one-pass comparison, key by key
    /// through Automerge's own lookups: the oracle [`unknown_fields`] must
    /// agree with.
    fn unknown_fields_by_lookup(doc: &AutoCommit, request: &Request) -> Vec<String> {
        use automerge::{ObjId, ObjType, Prop, ReadDoc, Value};
        // Both documents walked side by side (no JSON in between: this runs
        // for every pushed document).
        fn walk(
            held: &AutoCommit,
            h: &ObjId,
            model: &AutoCommit,
            m: &ObjId,
            path: &mut Vec<String>,
            out: &mut Vec<String>,
        ) {
            let props: Vec<Prop> = match held.object_type(h) {
                Ok(ObjType::Map | ObjType::Table) => held.keys(h).map(Prop::Map).collect(),
                Ok(ObjType::List) => (0..held.length(h)).map(Prop::Seq).collect(),
                // Text is a value of the model's.
                _ => return,
            };
            for prop in props {
                let Ok(Some((value, hid))) = held.get(h, prop.clone()) else {
                    continue;
                };
                path.push(match &prop {
                    Prop::Map(k) => k.clone(),
                    Prop::Seq(i) => i.to_string(),
                });
                match (value, model.get(m, prop)) {
                    (Value::Object(ObjType::Text), Ok(Some(_))) => {}
                    (Value::Object(_), Ok(Some((Value::Object(_), mid)))) => {
                        walk(held, &hid, model, &mid, path, out)
                    }
                    (Value::Scalar(_), Ok(Some(_))) => {}
                    // Absent from the model, or a map or list where it has a value.
                    _ => out.push(path.join(".")),
                }
                path.pop();
            }
        }
        let mut model = AutoCommit::new();
        if reconcile(&mut model, request).is_err() {
            return vec![String::new()];
        }
        model.commit();
        let mut out = Vec::new();
        walk(doc, &ROOT, &model, &ROOT, &mut Vec::new(), &mut out);
        out
    }

    /// Every map object of `doc`, from the root down.
    fn maps(doc: &AutoCommit) -> Vec<automerge::ObjId> {
        use automerge::{ObjType, ReadDoc, Value};
        let mut out = Vec::new();
        let mut todo = vec![ROOT];
        while let Some(obj) = todo.pop() {
            let children: Vec<automerge::ObjId> = match doc.object_type(&obj) {
                Ok(ObjType::Map | ObjType::Table) => doc
                    .keys(&obj)
                    .filter_map(|k| match doc.get(&obj, k.as_str()) {
                        Ok(Some((Value::Object(_), id))) => Some(id),
                        _ => None,
                    })
                    .collect(),
                Ok(ObjType::List) => (0..doc.length(&obj))
                    .filter_map(|i| match doc.get(&obj, i) {
                        Ok(Some((Value::Object(_), id))) => Some(id),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if matches!(doc.object_type(&obj), Ok(ObjType::Map | ObjType::Table)) {
                out.push(obj.clone());
            }
            todo.extend(children);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        // Fields written beside the model, anywhere a map is (a scalar, or
        // a map holding one), are found, and found exactly where the
        // key-by-key walk finds them.
        #[test]
        fn the_one_pass_check_finds_what_the_walk_finds(
            request in any::<Request>(),
            injections in proptest::collection::vec((any::<usize>(), "[a-z]{1,8}", any::<bool>()), 0..4),
        ) {
            use automerge::transaction::Transactable;
            let mut doc = RequestDoc::new(&request, actor(1)).unwrap();
            for (at, key, nested) in &injections {
                let targets = maps(&doc.doc);
                let target = &targets[at % targets.len()];
                if *nested {
                    let inner = doc.doc.put_object(target, key.as_str(), automerge::ObjType::Map).unwrap();
                    doc.doc.put(&inner, "x", 1).unwrap();
                } else {
                    doc.doc.put(target, key.as_str(), "hidden").unwrap();
                }
            }
            doc.doc.commit();
            let Ok(found) = doc.hydrate() else {
                // An injection over a field of the model: not a request.
                return Ok(());
            };
            let mut one_pass = unknown_fields(&doc.doc, &found);
            let mut walk = unknown_fields_by_lookup(&doc.doc, &found);
            one_pass.sort();
            walk.sort();
            prop_assert_eq!(&one_pass, &walk);
            if injections.is_empty() {
                prop_assert!(one_pass.is_empty());
            }
        }

        // hydrate(reconcile(x)) == x for any field values, also through
        // save and load (see also `every_kind_round_trips`).
        #[test]
        fn hydrate_reconcile_round_trip(request in any::<Request>()) {
            let mut doc = RequestDoc::new(&request, actor(1)).unwrap();
            prop_assert_eq!(&doc.hydrate().unwrap(), &request);
            let loaded = RequestDoc::load(&doc.save(), [], actor(2)).unwrap();
            prop_assert_eq!(loaded.hydrate().unwrap(), request);
        }

        // Two forks edited concurrently merge to the same request, in either
        // direction and in any order; nothing either side wrote is lost, and
        // the derived status is the same on both sides.
        #[test]
        fn concurrent_edits_converge(
            kind_index in 0..Kind::ALL.len(),
            ops_a in proptest::collection::vec(any::<Op>(), 0..6),
            ops_b in proptest::collection::vec(any::<Op>(), 0..6),
        ) {
            let mut origin = RequestDoc::new(&base(Kind::ALL[kind_index]), actor(1)).unwrap();
            let mut a = origin.fork(actor(2));
            let mut b = origin.fork(actor(3));
            for (i, op) in ops_a.iter().enumerate() {
                apply(&mut a, op, "a", 1000 + i as i64);
            }
            for (i, op) in ops_b.iter().enumerate() {
                apply(&mut b, op, "b", 1000 + i as i64);
            }
            let (mut a2, mut b2) = (a.fork(actor(4)), b.fork(actor(5)));
            a.merge(&mut b2).unwrap();
            b.merge(&mut a2).unwrap();
            // A third party receiving B's changes before A's.
            let mut c = origin.fork(actor(6));
            c.merge(&mut b).unwrap();
            c.merge(&mut a).unwrap();
            let (ra, rb, rc) = (a.hydrate().unwrap(), b.hydrate().unwrap(), c.hydrate().unwrap());
            prop_assert_eq!(&ra, &rb);
            prop_assert_eq!(&ra, &rc);
            prop_assert_eq!(ra.status(), rb.status());
            let notes = |ops: &[Op]| ops.iter().filter(|o| matches!(o, Op::Note(_))).count();
            let moves = |ops: &[Op]| ops.iter().filter(|o| matches!(o, Op::Transition(..))).count();
            prop_assert_eq!(ra.notes.len(), notes(&ops_a) + notes(&ops_b));
            prop_assert_eq!(ra.history.len(), moves(&ops_a) + moves(&ops_b));
            prop_assert_eq!(a.heads().len(), b.heads().len());
        }

        // Storage as snapshot plus incremental chunks loads to the same state.
        #[test]
        fn snapshot_plus_chunks_load_the_same(ops in proptest::collection::vec(any::<Op>(), 1..8)) {
            let mut doc = RequestDoc::new(&base(Kind::Complaint), actor(1)).unwrap();
            let snapshot = doc.save();
            let mut chunks = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                let before = doc.heads();
                apply(&mut doc, op, "a", i as i64);
                chunks.push(doc.save_after(&before));
            }
            let loaded = RequestDoc::load(&snapshot, chunks.iter().map(|c| c.as_slice()), actor(2)).unwrap();
            prop_assert_eq!(loaded.hydrate().unwrap(), doc.hydrate().unwrap());
        }

        #[test]
        fn heads_encoding_round_trips(n in 0usize..5, seed: u8) {
            let heads: Vec<ChangeHash> = (0..n).map(|i| ChangeHash([seed.wrapping_add(i as u8); 32])).collect();
            let mut sorted = heads.clone();
            sorted.sort();
            prop_assert_eq!(decode_heads(&encode_heads(&heads)).unwrap(), sorted);
        }
    }

    // hydrate(reconcile(x)) == x for each kind in turn, with arbitrary
    // details of that kind (not left to the chance of a random draw).
    #[test]
    fn every_kind_round_trips() {
        use proptest::test_runner::{Config, TestRunner};
        for kind in Kind::ALL {
            let mut runner = TestRunner::new(Config {
                cases: 16,
                ..Config::default()
            });
            let strategy = (
                any::<Request>(),
                any::<crate::model::Details>().prop_filter("kind", |d| d.kind() == *kind),
            )
                .prop_map(|(mut r, d)| {
                    r.content.details = d;
                    r
                });
            runner
                .run(&strategy, |request| {
                    let mut doc = RequestDoc::new(&request, actor(1)).unwrap();
                    let loaded = RequestDoc::load(&doc.save(), [], actor(2)).unwrap();
                    prop_assert_eq!(loaded.hydrate().unwrap(), request);
                    Ok(())
                })
                .unwrap();
        }
    }

    #[test]
    fn garbage_never_loads_as_a_request() {
        assert!(RequestDoc::load(b"not automerge", [], actor(1)).is_err());
        assert!(decode_heads(&[0u8; 33]).is_err());
        // A valid Automerge document that is not a request.
        let mut other = automerge::AutoCommit::new();
        autosurgeon::reconcile(
            &mut other,
            std::collections::HashMap::from([("x".to_string(), 1u64)]),
        )
        .unwrap();
        let doc = RequestDoc::load(&other.save(), [], actor(1)).unwrap();
        assert!(matches!(doc.hydrate(), Err(Error::Document(_))));
    }
}
