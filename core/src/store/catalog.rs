//! The service catalog a device holds: the services built into the app,
//! plus what the server delivered in its sync answers (published versions
//! and retirements, `protocol::CatalogEntry`), kept as published so that
//! their hashes stay those the server judges by. Not personal data, so
//! kept in plain columns.

use std::sync::Arc;

use rusqlite::params;

use super::Store;
use super::codes::Taken;
use super::sync_state::{meta_get, meta_put};
use crate::catalog::{self, Catalog, CatalogError, codes};
use crate::error::Error;
use crate::protocol::CatalogEntry;
use crate::time::CivilDate;

/// The compiled catalog and the delivered versions this app cannot use.
#[derive(Debug, Default)]
pub(super) struct Held {
    catalog: Arc<Catalog>,
    unusable: Vec<String>,
}

impl Store {
    /// The services this device knows: built in, and delivered by the
    /// server. A delivered definition this app cannot read (it needs a
    /// newer app, or it does not pass the lint) is left out and named by
    /// [`Store::catalog_unusable`]; the requests created on it are kept.
    pub fn catalog(&self) -> Result<Arc<Catalog>, Error> {
        Ok(self.held_catalog()?.0)
    }

    /// The delivered versions this app cannot use, each `id@version:
    /// reason` (e.g. "update the app").
    pub fn catalog_unusable(&self) -> Result<Vec<String>, Error> {
        Ok(self.held_catalog()?.1)
    }

    fn held_catalog(&self) -> Result<(Arc<Catalog>, Vec<String>), Error> {
        let mut cache = self.catalog.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = cache.as_ref() {
            return Ok((held.catalog.clone(), held.unusable.clone()));
        }
        type Row = (String, i64, String, Option<String>);
        let (rows, lists): (Vec<Row>, _) = self.read(|tx| {
            let mut st = tx.prepare(
                "SELECT service, version, body, accept_until FROM catalog ORDER BY service, version",
            )?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            Ok((rows, super::codes::held_versions(tx)?))
        })?;
        let mut built = catalog::builtin().map_err(|e| Error::Catalog(e.to_string()))?;
        for (list, version) in lists {
            built.hold_code_list(&list, version);
        }
        let mut unusable = Vec::new();
        for (service, version, body, accept_until) in rows {
            // A code list's part kept only because this app cannot read it.
            if codes::is_part_key(&service) {
                let reason = match codes::parse_part(&body) {
                    Err(_) => "update the app",
                    // Asked for again at the next sync (`retry_code_parts`).
                    Ok(_) => {
                        "received before this app could read it; it arrives again at the next sync"
                    }
                };
                unusable.push(format!("code list part {service}@{version}: {reason}"));
                continue;
            }
            let until = accept_until.as_deref().and_then(CivilDate::parse);
            let key = format!("{service}@{version}");
            match built.published(&service, version as u32) {
                // Built in: only its retirement comes from the server.
                Some(_) => {
                    if let Some(until) = until {
                        built.retire(&service, version as u32, until);
                    }
                }
                None => match built.add_published(&body, until) {
                    Ok(_) => {}
                    Err(e @ CatalogError::NeedsNewerEngine { .. }) => {
                        unusable.push(format!("{key}: {e}"));
                    }
                    Err(e) => {
                        tracing::warn!(service = %key, "a delivered service definition is refused");
                        unusable.push(format!("{key}: {e}"));
                    }
                },
            }
        }
        let held = Held {
            catalog: Arc::new(built),
            unusable,
        };
        let out = (held.catalog.clone(), held.unusable.clone());
        *cache = Some(held);
        Ok(out)
    }

    /// The server's catalog position this device holds (0: none).
    pub(crate) fn catalog_seq(&self) -> Result<u64, Error> {
        self.read(|tx| {
            Ok(match meta_get(tx, "catalog_seq")? {
                None => 0,
                Some(b) => u64::from_be_bytes(
                    b.try_into()
                        .map_err(|_| Error::Corrupt("the catalog position is damaged"))?,
                ),
            })
        })
    }

    /// Keeps what the server delivered, and its new position. An entry
    /// without its definition (a retirement) for a version this device
    /// does not hold and that is not built in is ignored: the server sends
    /// it whole to a device that lacks it. A code list's parts go to
    /// `store::codes`.
    pub(crate) fn apply_catalog(&self, entries: &[CatalogEntry], seq: u64) -> Result<(), Error> {
        if entries.is_empty() && seq == self.catalog_seq()? {
            return Ok(());
        }
        let builtin = catalog::shared_builtin().map_err(|e| Error::Catalog(e.to_string()))?;
        self.write(|tx| {
            let mut seq = seq;
            for e in entries {
                let until = e.accept_until.as_deref();
                if codes::is_part_key(&e.service) {
                    let body = e.definition.as_deref().unwrap_or_default();
                    match super::codes::take_part(tx, &e.service, body)? {
                        Taken::Kept => {}
                        Taken::Unusable => {
                            tx.execute(
                                "INSERT OR REPLACE INTO catalog (service, version, body, accept_until)
                                 VALUES (?1, ?2, ?3, NULL)",
                                params![e.service, e.version, body],
                            )?;
                        }
                        Taken::Skipped => {}
                        // Built on a version not held: the whole catalog
                        // again, from the start, at the next exchange.
                        Taken::Restart => {
                            tracing::warn!("a code list delta on a version not held: the catalog is asked for again");
                            seq = 0;
                            break;
                        }
                    }
                    continue;
                }
                match &e.definition {
                    Some(body) => {
                        tx.execute(
                            "INSERT INTO catalog (service, version, body, accept_until)
                             VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (service, version)
                             DO UPDATE SET body = ?3, accept_until = ?4",
                            params![e.service, e.version, body, until],
                        )?;
                    }
                    None => {
                        let n = tx.execute(
                            "UPDATE catalog SET accept_until = ?3 WHERE service = ?1 AND version = ?2",
                            params![e.service, e.version, until],
                        )?;
                        if n == 0 && builtin.published(&e.service, e.version).is_some() {
                            tx.execute(
                                "INSERT INTO catalog (service, version, body, accept_until)
                                 VALUES (?1, ?2, '', ?3)",
                                params![e.service, e.version, until],
                            )?;
                        }
                    }
                }
            }
            meta_put(tx, "catalog_seq", &seq.to_be_bytes())
        })?;
        self.forget_catalog();
        Ok(())
    }

    /// Drops the compiled catalog: the next use reads it again.
    pub(super) fn forget_catalog(&self) {
        *self.catalog.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::catalog::{EXAMPLES, definition_hash};
    use crate::crypto::DataKey;
    use crate::lifecycle::Role;
    use crate::model::{Details, Kind, RequestContent, ServiceRequest};
    use crate::store::{Identity, Secret};

    const SKTM: &str = "surat_keterangan_tidak_mampu";

    fn store(dir: &std::path::Path) -> Store {
        let who = Identity {
            user: "warga-1".into(),
            role: Role::Resident,
        };
        Store::init(dir, &Secret::Key(DataKey::from_bytes([5; 32])), who).unwrap()
    }

    fn published(json: &str) -> CatalogEntry {
        CatalogEntry::published(json).unwrap()
    }

    /// The SKTM, and a version of it changed by `edit`.
    fn sktm_and(version: u32, edit: impl FnOnce(&mut Value)) -> (String, String) {
        let v1 = EXAMPLES[0].1.to_owned();
        let mut next: Value = serde_json::from_str(&v1).unwrap();
        next["version"] = json!(version);
        edit(&mut next);
        (v1, serde_json::to_string_pretty(&next).unwrap())
    }

    fn content(catalog: &Catalog, version: u32) -> RequestContent {
        let form = catalog.get(SKTM, version).unwrap();
        let d = form.definition();
        let hash = catalog.published(SKTM, version).unwrap().hash.clone();
        let answers = catalog
            .get(SKTM, 1)
            .unwrap()
            .definition()
            .example()
            .unwrap()
            .as_object()
            .unwrap()
            .clone();
        let mut c = crate::templates::example(Kind::Service);
        c.details = Details::Service(ServiceRequest::new(d, &hash, &answers));
        c
    }

    #[test]
    fn a_definition_for_a_newer_app_is_kept_named_and_harms_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let id = s
            .create(crate::templates::example(Kind::Complaint))
            .unwrap();
        let (_, newer) = sktm_and(2, |v| v["format"] = json!(99));
        s.apply_catalog(
            &[
                published(EXAMPLES[0].1),
                CatalogEntry {
                    version: 2,
                    definition: Some(newer),
                    ..published(EXAMPLES[0].1)
                },
            ],
            7,
        )
        .unwrap();
        assert_eq!(s.catalog_seq().unwrap(), 7);
        let catalog = s.catalog().unwrap();
        assert!(catalog.get(SKTM, 1).is_some());
        assert!(catalog.get(SKTM, 2).is_none());
        let unusable = s.catalog_unusable().unwrap();
        assert_eq!(unusable.len(), 1, "{unusable:?}");
        assert!(unusable[0].starts_with("surat_keterangan_tidak_mampu@2"));
        assert!(unusable[0].contains("update the app"), "{unusable:?}");
        // What the phone holds is untouched, and it files on version 1.
        assert_eq!(s.get(&id).unwrap().id, id);
        s.create(content(&catalog, 1)).unwrap();
        // A retirement without the definition, for a built-in version.
        s.apply_catalog(
            &[CatalogEntry {
                service: "complaint".into(),
                version: 1,
                definition: None,
                accept_until: Some("2027-01-31".into()),
            }],
            8,
        )
        .unwrap();
        let p = s
            .catalog()
            .unwrap()
            .published("complaint", 1)
            .cloned()
            .unwrap();
        assert_eq!(p.accept_until, CivilDate::parse("2027-01-31"));
        assert_eq!(p.hash, definition_hash(catalog::BUILTIN[0].1));
    }

    #[test]
    fn a_draft_stays_on_its_version_unless_the_upgrade_is_compatible() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        // Version 2 adds an optional field (compatible); version 3 a
        // required one (a draft of 2 would now be missing it).
        let (v1, v2) = sktm_and(2, |v| {
            v["fields"].as_array_mut().unwrap().push(json!({
                "id": "dtks_number", "type": "text", "max_length": 40,
                "label": {"id": "Nomor DTKS", "en": "DTKS number"}
            }));
        });
        let (_, v3) = sktm_and(3, |v| {
            v["fields"].as_array_mut().unwrap().push(json!({
                "id": "dtks_number", "type": "text", "max_length": 40,
                "label": {"id": "Nomor DTKS", "en": "DTKS number"}
            }));
            v["fields"].as_array_mut().unwrap().push(json!({
                "id": "school", "type": "text", "required": true,
                "label": {"id": "Sekolah", "en": "School"}
            }));
            v["tests"] = json!([]);
        });
        s.apply_catalog(&[published(&v1)], 1).unwrap();
        let id = s.create(content(&s.catalog().unwrap(), 1)).unwrap();
        s.apply_catalog(&[published(&v2), published(&v3)], 3)
            .unwrap();
        let catalog = s.catalog().unwrap();
        assert!(catalog.get(SKTM, 3).is_some(), "{:?}", s.catalog_unusable());
        // To 3: refused (its new required field); to 2: taken.
        let err = s.update_content(&id, content(&catalog, 3)).unwrap_err();
        assert!(
            matches!(&err, Error::Forbidden(m) if m.contains("school")),
            "{err:?}"
        );
        s.update_content(&id, content(&catalog, 2)).unwrap();
        // Back down, or to another service: refused.
        assert!(matches!(
            s.update_content(&id, content(&catalog, 1)),
            Err(Error::Forbidden(_))
        ));
        let mut other = content(&catalog, 2);
        if let Details::Service(r) = &mut other.details {
            r.service = "surat_keterangan_usaha".into();
        }
        assert!(matches!(
            s.update_content(&id, other),
            Err(Error::Forbidden(_))
        ));
        let Details::Service(held) = s.get(&id).unwrap().content.details else {
            panic!("not a service request")
        };
        assert_eq!(held.version, 2);
    }
}
