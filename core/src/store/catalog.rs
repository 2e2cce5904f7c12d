//! The service catalog a device holds: the services built into the app,
//! plus what the server delivered in its sync answers (published versions
//! and retirements, `protocol::CatalogEntry`), kept as published so that
//! their hashes stay those the server judges by. Not personal data, so
//! kept in plain columns.

use std::sync::Arc;

use rusqlite::params;

use super::Store;
use super::sync_state::{meta_get, meta_put};
use crate::catalog::{self, Catalog, CatalogError};
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
        let rows: Vec<(String, i64, String, Option<String>)> = self.read(|tx| {
            let mut st = tx.prepare(
                "SELECT service, version, body, accept_until FROM catalog ORDER BY service, version",
            )?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })?;
        let mut built = catalog::builtin().map_err(|e| Error::Catalog(e.to_string()))?;
        let mut unusable = Vec::new();
        for (service, version, body, accept_until) in rows {
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
    /// it whole to a device that lacks it.
    pub(crate) fn apply_catalog(&self, entries: &[CatalogEntry], seq: u64) -> Result<(), Error> {
        if entries.is_empty() && seq == self.catalog_seq()? {
            return Ok(());
        }
        let builtin = catalog::shared_builtin().map_err(|e| Error::Catalog(e.to_string()))?;
        self.write(|tx| {
            for e in entries {
                let until = e.accept_until.as_deref();
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
        *self.catalog.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }
}
