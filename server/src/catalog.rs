//! The server's service catalog (issue 15, `docs/catalog.md`): the
//! services built into this build, plus the versions the agency published
//! (`POST /v1/agency/catalog`, `sambung admin catalog publish`) and their
//! retirements, kept in storage as published. The server judges every
//! catalog service's request by the exact version it was created on
//! (`crate::authority`), and hands devices what changed since the
//! position they name, inside the sync answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use sambung_core::CivilDate;
use sambung_core::catalog::codes::{self, CodeSets};
use sambung_core::catalog::{self, Catalog, CatalogError};
use sambung_core::protocol::CatalogEntry;

use crate::audit;
use crate::error::ServerError;
use crate::storage::{AuditRecord, CatalogRow, Storage, in_transaction};

/// Longest definition the server takes, in bytes of JSON (the largest
/// shipped one is about 12 KB).
pub const MAX_DEFINITION_BYTES: usize = 256 * 1024;

/// The catalog as of one position of the stored log of changes.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The position of the last change it holds.
    pub seq: u64,
    /// Built in and published, compiled.
    pub catalog: Arc<Catalog>,
    /// The stored versions, by position.
    rows: Vec<CatalogRow>,
    /// What each code list part weighs against a sync answer's budget:
    /// its compressed size, in the budget's units (see [`Loaded::delta`]).
    part_weights: HashMap<(String, u32), usize>,
    /// The code lists, as of `seq` (also in `catalog`): brought forward
    /// by the new parts only, not rebuilt.
    code_sets: Arc<CodeSets>,
}

/// Most bytes of definitions and parts one sync answer carries, whatever
/// their weight: text that compresses a hundredfold must not make an
/// answer a phone cannot decode (64 MB).
pub const MAX_CATALOG_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// A code list part's weight: its size compressed (names and codes repeat,
/// about 9 to 1), times the 4 by which the exchange's budget is counted in
/// uncompressed bytes; so a device's budget holds about as many parts as
/// its bytes allow, not a ninth of them.
fn part_weight(body: &str) -> usize {
    zstd::bulk::compress(body.as_bytes(), 3).map_or(body.len(), |c| c.len().saturating_mul(4))
}

impl Loaded {
    /// Only the built-in services.
    pub fn builtin() -> Result<Loaded, ServerError> {
        Ok(Loaded {
            seq: 0,
            catalog: Arc::new(catalog::builtin().map_err(built_in)?),
            rows: Vec::new(),
            part_weights: HashMap::new(),
            code_sets: Arc::new(CodeSets::default()),
        })
    }

    fn with(&self, new: Vec<CatalogRow>) -> Result<Loaded, ServerError> {
        let mut rows = self.rows.clone();
        for row in new {
            rows.retain(|r| (&r.service, r.version) != (&row.service, row.version));
            rows.push(row);
        }
        rows.sort_by_key(|r| r.seq);
        let mut built = catalog::builtin().map_err(built_in)?;
        // Publication order: each version was linted against those before
        // (a code list before the services naming it).
        let mut by_publication: Vec<&CatalogRow> = rows.iter().collect();
        by_publication.sort_by_key(|r| r.published_seq);
        // The code lists: what was held, and the parts stored since.
        let new_parts: Vec<&CatalogRow> = by_publication
            .iter()
            .copied()
            .filter(|r| codes::is_part_key(&r.service) && r.seq > self.seq)
            .collect();
        let code_sets = if new_parts.is_empty() {
            self.code_sets.clone()
        } else {
            let mut sets = (*self.code_sets).clone();
            for row in new_parts {
                match codes::parse_part(&row.body) {
                    Ok(part) => {
                        sets.take(part);
                    }
                    Err(e) => {
                        tracing::warn!(part = %row.service, error = %e, "a stored code list part cannot be used by this build");
                    }
                }
            }
            Arc::new(sets)
        };
        for (list, version) in code_sets.versions() {
            built.hold_code_list(list, version);
        }
        for row in by_publication {
            if codes::is_part_key(&row.service) {
                continue;
            }
            let until = row.accept_until.as_deref().and_then(CivilDate::parse);
            if built.published(&row.service, row.version).is_some() {
                if let Some(until) = until {
                    built.retire(&row.service, row.version, until);
                }
            } else if let Err(e) = built.add_published(&row.body, until) {
                // Linted when published; only a newer server's format can
                // fail here (a rollback): its requests wait for it.
                tracing::warn!(service = %row.service, version = row.version, error = %e, "a stored service definition cannot be used by this build");
            }
        }
        built.hold_codes(code_sets.clone());
        let mut part_weights = self.part_weights.clone();
        for r in rows.iter().filter(|r| codes::is_part_key(&r.service)) {
            part_weights
                .entry((r.service.clone(), r.version))
                .or_insert_with(|| part_weight(&r.body));
        }
        Ok(Loaded {
            seq: rows.last().map_or(self.seq, |r| r.seq.max(self.seq)),
            catalog: Arc::new(built),
            rows,
            part_weights,
            code_sets,
        })
    }

    /// What a device at position `since` lacks, oldest first, up to about
    /// `budget` bytes of definitions (code list parts by their weight,
    /// [`part_weight`]; at least one entry), and the
    /// position it reaches. A definition the device already holds (it was
    /// published before `since`) is not sent again.
    pub fn delta(&self, since: u64, budget: usize) -> (Vec<CatalogEntry>, u64) {
        let mut out = Vec::new();
        let mut used = 0usize;
        let mut reached = since;
        let mut raw = 0usize;
        for row in self.rows.iter().filter(|r| r.seq > since) {
            let definition =
                (row.published_seq > since && !row.body.is_empty()).then(|| row.body.clone());
            let bytes = definition.as_ref().map_or(0, String::len);
            let size = match &definition {
                None => 64,
                Some(d) => self
                    .part_weights
                    .get(&(row.service.clone(), row.version))
                    .copied()
                    .unwrap_or(d.len()),
            };
            if !out.is_empty() && (used + size > budget || raw + bytes > MAX_CATALOG_ANSWER_BYTES) {
                break;
            }
            used += size;
            raw += bytes;
            reached = row.seq;
            out.push(CatalogEntry {
                service: row.service.clone(),
                version: row.version,
                definition,
                accept_until: row.accept_until.clone(),
            });
        }
        (out, reached)
    }
}

fn built_in(e: CatalogError) -> ServerError {
    ServerError::Config(format!("the built-in catalog: {e}"))
}

/// The catalog of one server process, brought up to date from storage on
/// use (other servers on the same database publish too).
#[derive(Debug)]
pub struct Catalogs {
    loaded: RwLock<Arc<Loaded>>,
    /// One rebuild at a time: after a publication, the exchanges that
    /// notice it wait for one rebuild instead of each doing their own.
    rebuild: Mutex<()>,
}

impl Catalogs {
    /// The built-in catalog, to be brought up to date at first use.
    pub fn new() -> Result<Catalogs, ServerError> {
        Ok(Catalogs {
            loaded: RwLock::new(Arc::new(Loaded::builtin()?)),
            rebuild: Mutex::new(()),
        })
    }

    /// The catalog with every change stored so far.
    pub fn current(&self, storage: &dyn Storage) -> Result<Arc<Loaded>, ServerError> {
        let held = self
            .loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if storage.catalog_since(held.seq)?.is_empty() {
            return Ok(held);
        }
        let _one = self.rebuild.lock().unwrap_or_else(|e| e.into_inner());
        // Another exchange may have rebuilt it while this one waited.
        let held = self
            .loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let new = storage.catalog_since(held.seq)?;
        if new.is_empty() {
            return Ok(held);
        }
        let next = Arc::new(held.with(new)?);
        let mut slot = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if slot.seq < next.seq {
            *slot = next.clone();
        }
        Ok(next)
    }
}

/// Who publishes or retires, for the audit trail.
pub struct Publisher<'a> {
    /// The audit record's account, role and key; `action` and `endpoint`
    /// are filled in here.
    pub record: AuditRecord,
    /// What the trail names as the way it came (`POST /v1/agency/catalog`,
    /// `sambung admin catalog publish`).
    pub via: &'a str,
}

/// A version now published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedVersion {
    /// Service id.
    pub service: String,
    /// Version.
    pub version: u32,
    /// SHA-256 of the definition as published, hex.
    pub hash: String,
}

/// Publishes one definition (its JSON text, kept byte for byte): refused
/// with every problem named unless it reads, passes the lint, is newer
/// than every version of its service, and is compatible with the one
/// before it. Recorded in the audit trail in the same transaction.
pub fn publish(
    storage: &dyn Storage,
    catalogs: &Catalogs,
    who: Publisher<'_>,
    json: &str,
) -> Result<PublishedVersion, ServerError> {
    if codes::is_code_list(json) {
        return publish_code_list(storage, catalogs, who, json);
    }
    if json.len() > MAX_DEFINITION_BYTES {
        return Err(ServerError::TooLarge);
    }
    let loaded = catalogs.current(storage)?;
    let definition = catalog::parse(json).map_err(refused)?;
    let (service, version) = (definition.id.clone(), definition.version);
    // Against what this server holds: the lint, the versions before, the
    // compatibility with the newest.
    let mut trial = (*loaded.catalog).clone();
    if trial.get(&service, version).is_some() {
        return Err(ServerError::Conflict(format!(
            "{service}@{version} is published already; a published version never changes: publish version {}",
            version + 1
        )));
    }
    trial.add_published(json, None).map_err(refused)?;
    let hash = catalog::definition_hash(json);
    let mut record = who.record;
    record.action = "catalog".into();
    record.endpoint = format!("{}: publish {service}@{version} sha256:{hash}", who.via);
    in_transaction(storage, |tx| {
        // Under the catalog's lock, the service must be as linted against:
        // another server may have published a version meanwhile.
        tx.lock_catalog()?;
        let stored = tx.catalog_rows(&service)?;
        if stored
            .iter()
            .any(|r| !r.body.is_empty() && loaded.catalog.get(&service, r.version).is_none())
            || stored.iter().any(|r| r.version == version)
        {
            return Err(ServerError::Conflict(format!(
                "another version of {service} was published meanwhile; check against it and publish again"
            )));
        }
        tx.put_catalog(&service, version, json, None, record.at)?;
        audit::append_in_tx(tx, std::slice::from_ref(&record))
    })?;
    Ok(PublishedVersion {
        service,
        version,
        hash,
    })
}

/// Publishes one version of a code list (`catalog::codes`): refused with
/// every problem named unless it passes the check and is newer than the
/// version held. Stored as the parts devices receive: the changes from
/// the version before, so a device that holds it downloads only those.
fn publish_code_list(
    storage: &dyn Storage,
    catalogs: &Catalogs,
    who: Publisher<'_>,
    json: &str,
) -> Result<PublishedVersion, ServerError> {
    if json.len() > codes::MAX_CODE_LIST_BYTES {
        return Err(ServerError::TooLarge);
    }
    let list = codes::parse_code_list(json).map_err(refused)?;
    let problems = codes::check_code_list(&list);
    if !problems.is_empty() {
        return Err(refused(CatalogError::Invalid {
            key: format!("{}@{}", list.code_list, list.version),
            problems,
        }));
    }
    let loaded = catalogs.current(storage)?;
    let held = loaded.catalog.code_list_codes(&list.code_list);
    let base = held.map_or(0, |(v, _)| v);
    if list.version <= base {
        return Err(ServerError::Conflict(format!(
            "code list {} holds version {base}; publish version {}",
            list.code_list,
            base + 1
        )));
    }
    let empty = Default::default();
    let parts = codes::parts(held.map_or(&empty, |(_, c)| c), base, &list);
    let bodies = parts
        .iter()
        .map(|p| Ok((p.key(), serde_json::to_string(p)?)))
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(|e| ServerError::Config(format!("a code list part: {e}")))?;
    let hash = catalog::definition_hash(json);
    let (name, version) = (list.code_list.clone(), list.version);
    let mut record = who.record;
    record.action = "catalog".into();
    record.endpoint = format!(
        "{}: publish code list {name}@{version} sha256:{hash} ({} codes, {} part(s))",
        who.via,
        list.codes.len(),
        bodies.len()
    );
    in_transaction(storage, |tx| {
        tx.lock_catalog()?;
        // Under the lock: the version held must still be the one the
        // parts were made from (another server may have published).
        let stored = tx.catalog_rows(&codes::part_key(&name, 0))?;
        if stored.iter().any(|r| r.version >= version)
            || stored.iter().map(|r| r.version).max().unwrap_or(0) != base
        {
            return Err(ServerError::Conflict(format!(
                "code list {name}: the versions stored are not those this server holds (another version was published meanwhile — publish again —, or a stored version needs a newer server)"
            )));
        }
        for (key, body) in &bodies {
            tx.put_catalog(key, version, body, None, record.at)?;
        }
        audit::append_in_tx(tx, std::slice::from_ref(&record))
    })?;
    Ok(PublishedVersion {
        service: name,
        version,
        hash,
    })
}

/// Retires a published (or built-in) version: requests created after
/// `accept_until` on it are refused from then on; those created before
/// are still accepted. Devices learn it at their next sync.
pub fn retire(
    storage: &dyn Storage,
    catalogs: &Catalogs,
    who: Publisher<'_>,
    service: &str,
    version: u32,
    accept_until: CivilDate,
) -> Result<(), ServerError> {
    let loaded = catalogs.current(storage)?;
    if loaded.catalog.get(service, version).is_none() {
        return Err(ServerError::NotFound);
    }
    let mut record = who.record;
    record.action = "catalog".into();
    record.endpoint = format!(
        "{}: retire {service}@{version} accept-until {accept_until}",
        who.via
    );
    let until = accept_until.to_string();
    in_transaction(storage, |tx| {
        tx.lock_catalog()?;
        let body = tx
            .catalog_rows(service)?
            .into_iter()
            .find(|r| r.version == version)
            .map(|r| r.body)
            .unwrap_or_default();
        tx.put_catalog(service, version, &body, Some(&until), record.at)?;
        audit::append_in_tx(tx, std::slice::from_ref(&record))
    })
}

/// A definition refused, with every problem.
fn refused(e: CatalogError) -> ServerError {
    ServerError::BadRequest(e.to_string())
}

/// Parses `ID@VERSION`.
///
/// ```
/// assert_eq!(sambung_server::catalog::parse_key("sktm@2"), Some(("sktm".to_owned(), 2)));
/// assert_eq!(sambung_server::catalog::parse_key("sktm"), None);
/// assert_eq!(sambung_server::catalog::parse_key("9sktm@1"), None);
/// ```
pub fn parse_key(s: &str) -> Option<(String, u32)> {
    let (id, version) = s.trim().split_once('@')?;
    let version: u32 = version.parse().ok().filter(|v| *v > 0)?;
    // The catalog's own rule for ids (a leading letter), as the lint and
    // the API's document state it.
    sambung_core::catalog::lint::is_id(id).then(|| (id.to_owned(), version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sambung_core::catalog::Text;
    use sambung_core::catalog::codes::{Code, CodeList, CodeLookup};

    fn list(version: u32, n: usize, name: &str) -> CodeList {
        CodeList {
            format: 1,
            code_list: "regions".into(),
            version,
            names: Text {
                id: "Wilayah".into(),
                en: "Regions".into(),
            },
            source: String::new(),
            codes: (0..n)
                .map(|i| Code {
                    code: format!("{i:06}"),
                    name: format!("{name} {i}"),
                    en: None,
                    parent: None,
                })
                .collect(),
        }
    }

    /// The rows a publication stores, from position `seq` on.
    fn rows(parts: &[codes::CodePart], seq: u64) -> Vec<CatalogRow> {
        parts
            .iter()
            .zip(seq..)
            .map(|(p, seq)| CatalogRow {
                service: p.key(),
                version: p.version,
                body: serde_json::to_string(p).unwrap(),
                accept_until: None,
                seq,
                published_seq: seq,
            })
            .collect()
    }

    #[test]
    fn parts_weigh_their_compressed_size_but_an_answer_stays_decodable() {
        // Names that compress a hundredfold: 300 KB parts weighing a few KB.
        let long = "a".repeat(290);
        let v1 = list(1, 30_000, &long);
        let parts = codes::parts(&Default::default(), 0, &v1);
        assert_eq!(parts.len(), 30);
        let loaded = Loaded::builtin().unwrap().with(rows(&parts, 1)).unwrap();
        let (out, reached) = loaded.delta(0, usize::MAX / 2);
        let raw: usize = out
            .iter()
            .map(|e| e.definition.as_ref().map_or(0, String::len))
            .sum();
        assert!(raw <= MAX_CATALOG_ANSWER_BYTES, "{raw} B in one answer");
        assert!(out.len() > 1 && reached < 30, "{} parts", out.len());
        // A device budget holds many parts of real, repetitive text: more
        // than their raw size would allow.
        let (out, _) = loaded.delta(0, 256 * 1024);
        let raw: usize = out
            .iter()
            .map(|e| e.definition.as_ref().map_or(0, String::len))
            .sum();
        assert!(raw > 256 * 1024, "{raw}");
    }

    #[test]
    fn a_new_version_brings_the_lists_forward_without_a_rebuild() {
        let v1 = list(1, 2_500, "Desa");
        let p1 = codes::parts(&Default::default(), 0, &v1);
        let loaded = Loaded::builtin().unwrap().with(rows(&p1, 1)).unwrap();
        assert_eq!(loaded.catalog.code_lists().get("regions"), Some(&1));
        let held = loaded.catalog.code_list_codes("regions").unwrap().1.clone();
        let mut v2 = v1.clone();
        v2.version = 2;
        v2.codes.remove(0);
        let p2 = codes::parts(&held, 1, &v2);
        let next = loaded.with(rows(&p2, 4)).unwrap();
        assert_eq!(next.catalog.code_lists().get("regions"), Some(&2));
        assert_eq!(
            next.catalog.code_list_codes("regions").unwrap().1.len(),
            2_499
        );
        // Removed, still a code a phone on version 1 may have chosen.
        assert_eq!(next.catalog.holds("regions", "000000"), Some(true));
        // A retirement of a service (no new parts) keeps the same lists.
        let same = next.with(Vec::new()).unwrap();
        assert!(Arc::ptr_eq(&same.code_sets, &next.code_sets));
    }
}
