//! What an agency account does through the back office, without HTTP:
//! read, list and act on requests (status, note, assignment), download
//! their attachments, export or erase a person's data, read and verify the
//! audit trail, assess an exposure, subscribe webhooks. Each operation
//! writes its own record in the audit trail (UU PDP art. 31) — an edit in
//! the same transaction as the change it records — so that no handler can
//! forget one. The HTTP surface (`api/backoffice/`) parses calls and
//! renders answers; it writes no records of its own.

use automerge::ActorId;
use ring::hmac;
use sambung_core::document::RequestDoc;
use sambung_core::edits::Author;
use sambung_core::identifiers::RegionCode;
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::Request;
use sambung_core::protocol::DocId;

use crate::accounts::{Account, Scope};
use crate::audit::{AuditEntry, AuditFilter, AuditRecord, ChainCheck};
use crate::documents::{DocWrite, update_documents_in_tx};
use crate::erasure::{self, Erased};
use crate::error::ServerError;
use crate::exchange;
use crate::storage::{
    Delivered, DocFilter, DocRow, ListPosition, Receipt, Storage, StoredDoc, Subscription,
    in_transaction,
};

/// The authenticated agency account, the key that signed its call, and the
/// call's nonce.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The agency account.
    pub account: Account,
    /// The enrolled key that signed.
    pub device: [u8; 16],
    /// The nonce of the signed call.
    pub call: [u8; 16],
}

/// An edit of a request: the core's edit functions, as devices use them.
pub type Edit<'a> = &'a dyn Fn(&mut Request, Author<'_>) -> Result<(), sambung_core::Error>;

/// What an account or a key could read, and what the trail shows it did.
#[derive(Debug, Clone)]
pub struct ExposureFacts {
    /// The account assessed.
    pub subject: Account,
    /// Requests it may see now.
    pub could_read: Vec<DocId>,
    /// Requests the trail shows it read or wrote.
    pub did_read: Vec<DocId>,
}

/// Whose exposure to assess.
#[derive(Debug, Clone)]
pub enum Subject {
    /// An account (through any of its keys).
    Account(String),
    /// One enrolled key (a lost phone).
    Device([u8; 16]),
}

/// What the server holds about a person.
#[derive(Debug, Clone)]
pub struct PersonData {
    /// Accounts linked to their NIK.
    pub accounts: Vec<String>,
    /// The requests about them.
    pub requests: Vec<Request>,
    /// The audit trail of those requests.
    pub processing: Vec<AuditEntry>,
}

/// A request's entity tag: what an `If-Match` names (its heads).
pub fn etag_of(doc: &mut RequestDoc) -> String {
    let heads = sambung_core::document::encode_heads(&doc.heads());
    format!(
        "\"{}\"",
        hex::encode(&sambung_core::crypto::sha256(&heads)[..16])
    )
}

/// A stored request, loaded as the server's `actor`.
fn load(stored: &StoredDoc, actor: [u8; 16]) -> Result<RequestDoc, ServerError> {
    RequestDoc::load(&stored.data, [], ActorId::from(actor))
        .map_err(|_| ServerError::Storage("a stored document does not load".into()))
}

/// The request a document holds.
fn hydrate(doc: &RequestDoc) -> Result<Request, ServerError> {
    doc.hydrate()
        .map_err(|_| ServerError::Storage("a stored document does not hydrate".into()))
}

impl Staff {
    /// Whether the back office sees a request: in the account's regions,
    /// and submitted — a draft is the applicant's until they submit it. A
    /// request stored before the status was kept beside it (empty) counts
    /// as a draft until its next change.
    pub fn sees(&self, scope: &Scope, status: &str) -> bool {
        !status.is_empty() && status != Status::Draft.as_str() && self.account.may_see(scope)
    }

    /// Who delivers the changes this call writes: the account, with the
    /// key and the signed call.
    pub fn delivered(&self) -> Delivered {
        Delivered {
            account: self.account.id.clone(),
            device: Some(self.device),
            exchange: Some(self.call),
            at: sambung_core::Timestamp::now().as_millis(),
        }
    }

    /// Audit, verification, exposure and a person's data are for an agency
    /// account without a region restriction (the data protection officer);
    /// so is the service catalog, which every device of the deployment
    /// takes (an account of one regency must not change another's forms).
    pub fn require_whole_agency(&self) -> Result<(), ServerError> {
        if self.account.regions.is_empty() {
            Ok(())
        } else {
            Err(ServerError::Forbidden(
                "this is for an agency account without region limits (the audit trail, a person's data, the service catalog)".into(),
            ))
        }
    }

    /// The record of one access by this call.
    pub(crate) fn record(
        &self,
        action: &str,
        request: Option<DocId>,
        endpoint: &str,
    ) -> AuditRecord {
        AuditRecord {
            at: sambung_core::Timestamp::now().as_millis(),
            account: self.account.id.clone(),
            role: self.account.role.as_str().to_owned(),
            device: Some(self.device),
            action: action.to_owned(),
            request,
            endpoint: endpoint.to_owned(),
        }
    }

    /// Writes the record of one access.
    pub fn log(
        &self,
        storage: &dyn Storage,
        action: &str,
        request: Option<DocId>,
        endpoint: &str,
    ) -> Result<(), ServerError> {
        crate::audit::append(storage, &[self.record(action, request, endpoint)])
    }

    /// A stored request this account sees; outside its regions is "not
    /// found": existence is not revealed.
    fn stored(&self, storage: &dyn Storage, id: DocId) -> Result<StoredDoc, ServerError> {
        storage
            .document(id)?
            .filter(|d| self.sees(&d.scope, &d.meta.status))
            .ok_or(ServerError::NotFound)
    }

    /// Reads a request (recorded as `read`), loaded as the server's
    /// `actor`, with its entity tag.
    pub fn read(
        &self,
        storage: &dyn Storage,
        actor: [u8; 16],
        id: DocId,
        endpoint: &str,
    ) -> Result<(Request, String), ServerError> {
        let mut doc = load(&self.stored(storage, id)?, actor)?;
        let request = hydrate(&doc)?;
        let etag = etag_of(&mut doc);
        self.log(storage, "read", Some(id), endpoint)?;
        Ok((request, etag))
    }

    /// Who delivered each change of a request (recorded as `receipts`).
    pub fn receipts(
        &self,
        storage: &dyn Storage,
        id: DocId,
        endpoint: &str,
    ) -> Result<Vec<Receipt>, ServerError> {
        self.stored(storage, id)?;
        let receipts = storage.receipts(id)?;
        self.log(storage, "receipts", Some(id), endpoint)?;
        Ok(receipts)
    }

    /// Up to `limit` requests matching `filter` that this account sees,
    /// after `after` (recorded as `list`); whether more follow.
    pub fn list(
        &self,
        storage: &dyn Storage,
        filter: &DocFilter,
        after: Option<ListPosition>,
        limit: usize,
        endpoint: &str,
    ) -> Result<(Vec<DocRow>, bool), ServerError> {
        self.log(storage, "list", None, endpoint)?;
        self.visible(storage, filter, after, limit)
    }

    /// Every request matching `filter` that this account sees, at most
    /// `max` (recorded as `export`); `None` when more match (the caller
    /// asks for a narrower filter rather than sending a partial file).
    pub fn export(
        &self,
        storage: &dyn Storage,
        filter: &DocFilter,
        max: usize,
        endpoint: &str,
    ) -> Result<Option<Vec<DocRow>>, ServerError> {
        self.log(storage, "export", None, endpoint)?;
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            let (page, more) = self.visible(storage, filter, after, 1000)?;
            after = page.last().map(|r| (r.seq, r.id));
            rows.extend(page);
            if rows.len() > max {
                return Ok(None);
            }
            if !more {
                return Ok(Some(rows));
            }
        }
    }

    /// How many requests matching `filter` this account sees, by status
    /// (recorded as `count`). Counted by the database, region by region of
    /// the account's, so a queue of 100,000 is counted without reading it.
    pub fn counts(
        &self,
        storage: &dyn Storage,
        filter: &DocFilter,
        endpoint: &str,
    ) -> Result<std::collections::BTreeMap<String, u64>, ServerError> {
        self.log(storage, "count", None, endpoint)?;
        let mut total = std::collections::BTreeMap::new();
        for region in self.regions_within(filter.region.as_deref()) {
            let f = DocFilter {
                region,
                ..filter.clone()
            };
            for (status, n) in storage.count_documents(&f)? {
                *total.entry(status).or_insert(0) += n;
            }
        }
        Ok(total)
    }

    /// The region filters that together cover what this account sees of
    /// `wanted` (all regions when `None`), none inside another, so no
    /// request is counted twice.
    fn regions_within(&self, wanted: Option<&str>) -> Vec<Option<String>> {
        let mine = &self.account.regions;
        if mine.is_empty() {
            return vec![wanted.map(str::to_owned)];
        }
        let within = |a: &str, b: &str| RegionCode::from(a).is_within(&RegionCode::from(b));
        let mut outer: Vec<&String> = Vec::new();
        for r in mine {
            let inside_other = mine.iter().any(|o| o != r && within(r, o));
            if !inside_other && !outer.contains(&r) {
                outer.push(r);
            }
        }
        match wanted {
            None => outer.into_iter().map(|r| Some(r.clone())).collect(),
            Some(w) if outer.iter().any(|r| within(w, r)) => vec![Some(w.to_owned())],
            Some(w) => outer
                .into_iter()
                .filter(|r| within(r, w))
                .map(|r| Some(r.clone()))
                .collect(),
        }
    }

    /// One page of what [`Staff::list`] returns, unrecorded.
    fn visible(
        &self,
        storage: &dyn Storage,
        filter: &DocFilter,
        mut after: Option<ListPosition>,
        limit: usize,
    ) -> Result<(Vec<DocRow>, bool), ServerError> {
        let mut items = Vec::new();
        // What the account may see is checked row by row (its scope rules
        // live in one place, `Account::may_see`); pages are read until this
        // one is full.
        loop {
            let rows = storage.list_documents(filter, after, limit + 1)?;
            let exhausted = rows.len() <= limit;
            for row in rows {
                after = Some((row.seq, row.id));
                if !self.sees(&row.scope, &row.meta.status) {
                    continue;
                }
                if items.len() == limit {
                    return Ok((items, true));
                }
                items.push(row);
            }
            if exhausted {
                return Ok((items, false));
            }
        }
    }

    /// Applies one edit to a request under its lock, as the server's
    /// `actor`, checked by the rules table devices follow, and records it
    /// as `action` in the same transaction. `if_match`: the entity tag the
    /// edit is based on ([`ServerError::Stale`] when the request moved on).
    /// The request after the edit, with its entity tag.
    #[allow(clippy::too_many_arguments)]
    pub fn act(
        &self,
        storage: &dyn Storage,
        nik_key: &hmac::Key,
        actor: [u8; 16],
        id: DocId,
        if_match: Option<&str>,
        action: &str,
        endpoint: &str,
        edit: Edit<'_>,
    ) -> Result<(Request, String), ServerError> {
        let record = self.record(action, Some(id), endpoint);
        in_transaction(storage, |tx| {
            let mut view = None;
            let outcome = update_documents_in_tx(tx, &[id], &mut |_, current| {
                let (request, etag, write) = self.edit(nik_key, actor, current, if_match, edit)?;
                view = Some((request, etag));
                Ok(write)
            })?;
            if let Some(Err(e)) = outcome.into_iter().next() {
                return Err(e);
            }
            crate::audit::append_in_tx(tx, std::slice::from_ref(&record))?;
            view.ok_or_else(|| ServerError::Storage("the edit was not applied".into()))
        })
    }

    /// What [`Staff::act`] writes of one request.
    fn edit(
        &self,
        nik_key: &hmac::Key,
        actor: [u8; 16],
        current: Option<StoredDoc>,
        if_match: Option<&str>,
        edit: Edit<'_>,
    ) -> Result<(Request, String, DocWrite), ServerError> {
        let current = current.ok_or(ServerError::NotFound)?;
        if !self.sees(&current.scope, &current.meta.status) {
            return Err(ServerError::NotFound);
        }
        let mut doc = load(&current, actor)?;
        if let Some(expected) = if_match
            && expected != etag_of(&mut doc)
        {
            return Err(ServerError::Stale);
        }
        let before = doc.heads();
        let previous = hydrate(&doc)?;
        let author = Author {
            user: &self.account.id,
            role: Role::Agency,
        };
        let ((), request) = doc
            .update(|r| {
                edit(r, author)?;
                // The table the devices and the exchange follow. The
                // agency's rows hold for every kind: whether a service is
                // verified on site (its definition) decides officers'
                // rows only, so the kind alone is asked.
                sambung_core::rules::check(Some(&previous), r, author, previous.kind().into())
                    .map_err(sambung_core::Error::from)
            })
            .map_err(|e| match e {
                sambung_core::Error::Forbidden(m) => ServerError::ForbiddenTransition(m),
                sambung_core::Error::Validation(report) => {
                    ServerError::BadRequest(report.to_string())
                }
                _ => ServerError::Storage("the edit could not be written".into()),
            })?;
        let etag = etag_of(&mut doc);
        if doc.heads() == before {
            return Ok((request, etag, DocWrite::Unchanged));
        }
        let scope = exchange::scope_of(nik_key, &request);
        let write = exchange::write_of(
            doc.automerge(),
            &before,
            Some(&current),
            Some(&previous),
            scope,
            &request,
            actor,
            self.delivered(),
        );
        Ok((request, etag, write))
    }

    /// Serves an attachment of a request this account sees (`serve` reads
    /// the bytes), recorded as `download` once served.
    pub fn download<T>(
        &self,
        storage: &dyn Storage,
        id: DocId,
        endpoint: &str,
        serve: impl FnOnce(&StoredDoc) -> Result<T, ServerError>,
    ) -> Result<T, ServerError> {
        let stored = self.stored(storage, id)?;
        let served = serve(&stored)?;
        self.log(storage, "download", Some(id), endpoint)?;
        Ok(served)
    }

    /// What the server holds about the person whose keyed NIK hash is
    /// `person`, loaded as the server's `actor`; the export is itself
    /// processing, recorded as `export` per request (once without one when
    /// there is none).
    pub fn export_person(
        &self,
        storage: &dyn Storage,
        actor: [u8; 16],
        person: &[u8],
        endpoint: &str,
    ) -> Result<PersonData, ServerError> {
        self.require_whole_agency()?;
        let accounts = storage.accounts_of_person(person)?;
        let ids = storage.documents_of_person(person)?;
        let mut requests = Vec::new();
        let mut processing = Vec::new();
        for &id in &ids {
            let Some(stored) = storage.document(id)? else {
                continue;
            };
            requests.push(hydrate(&load(&stored, actor)?)?);
            let filter = AuditFilter {
                request: Some(id),
                ..AuditFilter::default()
            };
            let mut after = 0;
            loop {
                let page = storage.audit_entries(&filter, after, 1000)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                processing.extend(page);
            }
        }
        let records: Vec<AuditRecord> = if ids.is_empty() {
            vec![self.record("export", None, endpoint)]
        } else {
            ids.iter()
                .map(|id| self.record("export", Some(*id), endpoint))
                .collect()
        };
        crate::audit::append(storage, &records)?;
        Ok(PersonData {
            accounts,
            requests,
            processing,
        })
    }

    /// Erases the person's data from every request about them (see
    /// [`crate::erasure`]), each erasure recorded as `erase` in its own
    /// transaction; then the bytes of their attachments go.
    pub fn erase_person(
        &self,
        storage: &dyn Storage,
        nik_key: &hmac::Key,
        actor: [u8; 16],
        person: &[u8],
        endpoint: &str,
    ) -> Result<Vec<(DocId, Erased)>, ServerError> {
        self.require_whole_agency()?;
        let mut outcomes = Vec::new();
        let mut attachments = Vec::new();
        for id in storage.documents_of_person(person)? {
            let record = self.record("erase", Some(id), endpoint);
            let outcome = erasure::erase_request(
                storage,
                nik_key,
                actor,
                person,
                id,
                &self.delivered(),
                Some(&record),
            )?;
            if let Erased::Now(hashes) = &outcome {
                attachments.extend_from_slice(hashes);
            }
            outcomes.push((id, outcome));
        }
        erasure::finish(storage, &attachments)?;
        Ok(outcomes)
    }

    /// Audit entries matching `filter` after `after`, at most `limit`
    /// (recorded as `audit`).
    pub fn audit_trail(
        &self,
        storage: &dyn Storage,
        filter: &AuditFilter,
        after: u64,
        limit: usize,
        endpoint: &str,
    ) -> Result<Vec<AuditEntry>, ServerError> {
        self.require_whole_agency()?;
        self.log(storage, "audit", filter.request, endpoint)?;
        storage.audit_entries(filter, after, limit)
    }

    /// Checks the whole chain (recorded as `audit`).
    pub fn verify_audit(
        &self,
        storage: &dyn Storage,
        endpoint: &str,
    ) -> Result<ChainCheck, ServerError> {
        self.require_whole_agency()?;
        let check = crate::audit::verify(|after| {
            storage.audit_entries(&AuditFilter::default(), after, 1000)
        })?;
        self.log(storage, "audit", None, endpoint)?;
        Ok(check)
    }

    /// Breach support: which requests an account or a key could read, and
    /// which the trail shows it did (recorded as `exposure`).
    pub fn exposure(
        &self,
        storage: &dyn Storage,
        subject: &Subject,
        endpoint: &str,
    ) -> Result<ExposureFacts, ServerError> {
        self.require_whole_agency()?;
        let (device, filter) = match subject {
            Subject::Account(a) => {
                let devices = storage.devices(Some(a), None)?;
                let first = devices.first().ok_or(ServerError::NotFound)?;
                let id = hex::decode(&first.id)
                    .ok()
                    .and_then(|d| <[u8; 16]>::try_from(d).ok())
                    .ok_or_else(|| ServerError::Storage("a damaged device id".into()))?;
                (
                    id,
                    AuditFilter {
                        account: Some(a.clone()),
                        ..AuditFilter::default()
                    },
                )
            }
            Subject::Device(d) => (
                *d,
                AuditFilter {
                    device: Some(*d),
                    ..AuditFilter::default()
                },
            ),
        };
        let subject = storage
            .device(device)?
            .ok_or(ServerError::NotFound)?
            .account;
        let mut could_read = Vec::new();
        let mut after = None;
        loop {
            let rows = storage.list_documents(&DocFilter::default(), after, 1000)?;
            let done = rows.len() < 1000;
            for row in &rows {
                after = Some((row.seq, row.id));
                if subject.may_see(&row.scope) {
                    could_read.push(row.id);
                }
            }
            if done {
                break;
            }
        }
        let mut did_read = std::collections::BTreeSet::new();
        let mut from = 0;
        loop {
            let page = storage.audit_entries(&filter, from, 1000)?;
            let Some(last) = page.last() else { break };
            from = last.seq;
            for e in &page {
                if let (Some(r), "read" | "write") = (e.record.request, e.record.action.as_str()) {
                    did_read.insert(r);
                }
            }
        }
        self.log(storage, "exposure", None, endpoint)?;
        Ok(ExposureFacts {
            subject,
            could_read,
            did_read: did_read.into_iter().collect(),
        })
    }

    /// Adds a webhook subscription of this account with its sealed secret
    /// (recorded as `webhook`).
    pub fn subscribe(
        &self,
        storage: &dyn Storage,
        sub: &Subscription,
        sealed_secret: &[u8],
        now: i64,
        endpoint: &str,
    ) -> Result<(), ServerError> {
        storage.add_webhook(sub, sealed_secret, now)?;
        self.log(storage, "webhook", None, endpoint)
    }

    /// Removes a subscription of this account (recorded as `webhook`);
    /// [`ServerError::NotFound`] when it has none of that id.
    pub fn unsubscribe(
        &self,
        storage: &dyn Storage,
        id: &str,
        endpoint: &str,
    ) -> Result<(), ServerError> {
        if !storage.delete_webhook(id, &self.account.id)? {
            return Err(ServerError::NotFound);
        }
        self.log(storage, "webhook", None, endpoint)
    }
}
