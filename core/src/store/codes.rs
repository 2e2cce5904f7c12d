//! The code lists a device holds (`catalog::codes`): delivered by the
//! server as parts of its catalog log, kept version by version, searched
//! offline by code prefix and by words. A later version's parts wait in
//! `code_parts` until the last arrives; then the version replaces the one
//! before in one transaction, so a search never sees half of one. A first
//! version's codes go straight into `codes` and stay unseen until its last
//! part names the list held.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::Store;
use super::sync_state::{meta_get, meta_put};
use crate::catalog::Text;
use crate::catalog::codes::{self, CodeLookup, CodePart};
use crate::error::Error;

/// Most codes one search answers.
pub const MAX_SEARCH_RESULTS: u32 = 200;

/// One code found by [`Store::search_codes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct CodeMatch {
    /// The code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its English name, where it has one.
    pub en: Option<String>,
    /// The code it belongs under.
    pub parent: Option<String>,
}

/// A code list this device holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct HeldCodeList {
    /// The list's id.
    pub list: String,
    /// The version held.
    pub version: u32,
    /// Its names.
    pub names: Text,
    /// How many codes it has.
    pub codes: u64,
}

/// What taking one delivered part did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Taken {
    /// Kept (and its version applied, when it was the last part).
    Kept,
    /// Readable by a newer app only: kept aside and named by
    /// `catalog_unusable` ("update the app").
    Unusable,
    /// Built on a version this device does not hold, for the first time:
    /// the catalog is to be delivered again from the start.
    Restart,
    /// Built on a version this device does not hold, again, or on one it
    /// could not read: skipped (the list stays on the version held).
    Skipped,
}

/// The meta key noting that a delta on a missing base already asked for
/// the catalog again: once per version, never a loop.
fn restart_marker(part: &CodePart) -> String {
    format!("codes_restart/{}@{}", part.code_list, part.version)
}

/// Takes one part inside the caller's transaction.
pub(super) fn take_part(tx: &Transaction<'_>, key: &str, body: &str) -> Result<Taken, Error> {
    // A part this app cannot read (a newer format, or refused) is kept
    // aside and named by `catalog_unusable`, which says why.
    let part = match codes::parse_part(body) {
        Ok(p) if p.key() == key => p,
        _ => {
            tracing::warn!(part = %key, "a delivered code list part is kept unread");
            return Ok(Taken::Unusable);
        }
    };
    let held: u32 = tx
        .query_row(
            "SELECT version FROM code_lists WHERE list = ?1",
            [&part.code_list],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    if part.version <= held {
        return Ok(Taken::Kept);
    }
    if part.base != held {
        // Its base did not arrive whole: a part of it this app could not
        // read (an update brings it), or a log that lost it (asked for
        // again, once).
        let unreadable: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM catalog WHERE instr(service, ?1) = 1)")?
            .query_row([format!("{}{}/", codes::KEY_PREFIX, part.code_list)], |r| {
                r.get(0)
            })?;
        let marker = restart_marker(&part);
        if unreadable || meta_get(tx, &marker)?.is_some() {
            tracing::warn!(list = %part.code_list, version = part.version, "a code list delta on a version not held is skipped");
            return Ok(Taken::Skipped);
        }
        meta_put(tx, &marker, &[1])?;
        return Ok(Taken::Restart);
    }
    if part.base == 0 {
        // A first version: its codes go straight into `codes`, where they
        // stay invisible (no `code_lists` row) until the last part; only
        // that a part arrived is noted. Staging 6 MB of a region list as
        // text first would leave as much free space in the file.
        if part.part == 0 {
            tx.execute("DELETE FROM codes WHERE list = ?1", [&part.code_list])?;
            tx.execute("DELETE FROM code_parts WHERE list = ?1", [&part.code_list])?;
        }
        set_codes(tx, &part)?;
        tx.execute(
            "INSERT OR REPLACE INTO code_parts (list, version, part, body) VALUES (?1, ?2, ?3, '')",
            params![part.code_list, part.version, part.part],
        )?;
    } else {
        tx.execute(
            "DELETE FROM code_parts WHERE list = ?1 AND version != ?2",
            params![part.code_list, part.version],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO code_parts (list, version, part, body) VALUES (?1, ?2, ?3, ?4)",
            params![part.code_list, part.version, part.part, body],
        )?;
    }
    if part.is_last() {
        apply_version(tx, &part)?;
    }
    Ok(Taken::Kept)
}

/// Writes a part's codes set (new or changed).
fn set_codes(tx: &Transaction<'_>, part: &CodePart) -> Result<(), Error> {
    let mut set = tx.prepare_cached(
        "INSERT INTO codes (list, code, name, en, parent) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (list, code) DO UPDATE SET name = ?3, en = ?4, parent = ?5, removed = 0",
    )?;
    for c in &part.set {
        set.execute(params![part.code_list, c.code, c.name, c.en, c.parent])?;
    }
    Ok(())
}

/// Applies every part of `last`'s version, when all are held.
fn apply_version(tx: &Transaction<'_>, last: &CodePart) -> Result<(), Error> {
    let bodies: Vec<String> = tx
        .prepare("SELECT body FROM code_parts WHERE list = ?1 AND version = ?2 ORDER BY part")?
        .query_map(params![last.code_list, last.version], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if bodies.len() != last.parts as usize {
        // A part is missing (it cannot be, in log order): the version
        // waits, the one before stays.
        return Ok(());
    }
    // A first version's codes are in place already (empty bodies). A code
    // removed stays, unseen by searches, as a code to judge by.
    let mut remove =
        tx.prepare_cached("UPDATE codes SET removed = 1 WHERE list = ?1 AND code = ?2")?;
    for body in bodies.iter().filter(|b| !b.is_empty()) {
        let part = codes::parse_part(body).map_err(|e| Error::Catalog(e.to_string()))?;
        for r in &part.remove {
            remove.execute(params![part.code_list, r])?;
        }
        set_codes(tx, &part)?;
    }
    let names = serde_json::to_string(&last.names).map_err(|e| Error::Catalog(e.to_string()))?;
    tx.execute(
        "INSERT INTO code_lists (list, version, names) VALUES (?1, ?2, ?3)
         ON CONFLICT (list) DO UPDATE SET version = ?2, names = ?3",
        params![last.code_list, last.version, names],
    )?;
    tx.execute("DELETE FROM code_parts WHERE list = ?1", [&last.code_list])?;
    Ok(())
}

/// The code lists held (list → version), inside a transaction.
pub(super) fn held_versions(
    tx: &Transaction<'_>,
) -> Result<std::collections::BTreeMap<String, u32>, Error> {
    let mut st = tx.prepare("SELECT list, version FROM code_lists")?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The FTS5 query of the words of `query`: each word a prefix, all
/// required; `None` when it has no word. Words are letters and digits
/// only, so nothing of the query reaches FTS5's syntax.
fn words_query(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Whether `query` reads as the start of a code (`32.01`, `4711`).
fn is_code_prefix(query: &str) -> bool {
    query.bytes().any(|b| b.is_ascii_digit())
        && query
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl Store {
    /// Codes of `list` matching `query`, at most `limit` (1 to 200): a
    /// query that reads as a code (digits, with `.` or `-`) finds the codes
    /// starting with it, in code order; words find the codes whose names
    /// hold words starting with each of them (`"keude bak"`, diacritics
    /// and case ignored), best matches first (in list order while every
    /// word is under three letters). Offline; a list not held answers
    /// [`Error::NotFound`].
    ///
    /// ```no_run
    /// # fn f(store: &sambung_core::store::Store) -> Result<(), sambung_core::Error> {
    /// let found = store.search_codes("regions", "bakongan", 20)?;
    /// let under = store.search_codes("regions", "11.01.01", 20)?;
    /// # Ok(()) }
    /// ```
    pub fn search_codes(
        &self,
        list: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<CodeMatch>, Error> {
        let limit = limit.clamp(1, MAX_SEARCH_RESULTS);
        let query = query.trim();
        if query.chars().count() > 100 {
            return Err(Error::BadQuery("a code search is at most 100 characters"));
        }
        self.read(|tx| {
            let held: Option<u32> = tx
                .query_row(
                    "SELECT version FROM code_lists WHERE list = ?1",
                    [list],
                    |r| r.get(0),
                )
                .optional()?;
            if held.is_none() {
                return Err(Error::NotFound { what: "code list" });
            }
            let row = |r: &rusqlite::Row<'_>| {
                Ok(CodeMatch {
                    code: r.get(0)?,
                    name: r.get(1)?,
                    en: r.get(2)?,
                    parent: r.get(3)?,
                })
            };
            let found = if is_code_prefix(query) {
                // Codes are ASCII: every code starting with the query sorts
                // before the query followed by the highest byte.
                let end = format!("{query}\u{7f}");
                tx.prepare_cached(
                    "SELECT code, name, en, parent FROM codes
                     WHERE list = ?1 AND code >= ?2 AND code < ?3 AND removed = 0
                     ORDER BY code LIMIT ?4",
                )?
                .query_map(params![list, query, end, limit], row)?
                .collect::<Result<Vec<_>, _>>()?
            } else if let Some(words) = words_query(query) {
                // Ranking scores every match: for a word of one or two
                // letters that is tens of thousands of villages, with no
                // better order among them than the list's own; those are
                // answered in list order, stopping at `limit`.
                let short = query
                    .split(|c: char| !c.is_alphanumeric())
                    .all(|w| w.chars().count() < 3);
                let sql = if short {
                    "SELECT c.code, c.name, c.en, c.parent
                     FROM codes_words JOIN codes c ON c.id = codes_words.rowid
                     WHERE codes_words MATCH ?2 AND c.list = ?1 AND c.removed = 0 LIMIT ?3"
                } else {
                    "SELECT c.code, c.name, c.en, c.parent
                     FROM codes_words JOIN codes c ON c.id = codes_words.rowid
                     WHERE codes_words MATCH ?2 AND c.list = ?1 AND c.removed = 0
                     ORDER BY rank, c.code LIMIT ?3"
                };
                tx.prepare_cached(sql)?
                    .query_map(params![list, words, limit], row)?
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                tx.prepare_cached(
                    "SELECT code, name, en, parent FROM codes WHERE list = ?1 AND removed = 0
                     ORDER BY code LIMIT ?2",
                )?
                .query_map(params![list, limit], row)?
                .collect::<Result<Vec<_>, _>>()?
            };
            Ok(found)
        })
    }

    /// The code lists this device holds.
    pub fn code_lists(&self) -> Result<Vec<HeldCodeList>, Error> {
        self.read(|tx| {
            let mut st = tx.prepare(
                "SELECT l.list, l.version, l.names,
                        (SELECT count(*) FROM codes c WHERE c.list = l.list AND c.removed = 0)
                 FROM code_lists l ORDER BY l.list",
            )?;
            let rows: Vec<(String, u32, String, i64)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(list, version, names, count)| {
                    Ok(HeldCodeList {
                        list,
                        version,
                        names: serde_json::from_str(&names)
                            .map_err(|_| Error::Corrupt("a code list's names are damaged"))?,
                        codes: count.max(0) as u64,
                    })
                })
                .collect()
        })
    }
}

impl Store {
    /// Parts kept because this app could not read them: once it can (it
    /// was updated), the catalog is delivered again from the start, so
    /// their lists arrive whole. Called as a sync begins.
    pub(crate) fn retry_code_parts(&self) -> Result<(), Error> {
        let bodies: Vec<String> = self.read(|tx| {
            let mut st = tx.prepare("SELECT body FROM catalog WHERE instr(service, ?1) = 1")?;
            let rows = st
                .query_map([codes::KEY_PREFIX], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })?;
        if !bodies.iter().any(|b| codes::parse_part(b).is_ok()) {
            return Ok(());
        }
        self.write(|tx| {
            tx.execute(
                "DELETE FROM catalog WHERE instr(service, ?1) = 1",
                [codes::KEY_PREFIX],
            )?;
            tx.execute(
                "DELETE FROM meta WHERE instr(key, 'codes_restart/') = 1",
                [],
            )?;
            meta_put(tx, "catalog_seq", &0u64.to_be_bytes())
        })?;
        self.forget_catalog();
        Ok(())
    }
}

impl CodeLookup for Store {
    fn holds(&self, list: &str, code: &str) -> Option<bool> {
        self.read(|tx| {
            let held: Option<u32> = tx
                .prepare_cached("SELECT version FROM code_lists WHERE list = ?1")?
                .query_row([list], |r| r.get(0))
                .optional()?;
            if held.is_none() {
                return Ok(None);
            }
            let found = tx
                .prepare_cached("SELECT 1 FROM codes WHERE list = ?1 AND code = ?2")?
                .exists(params![list, code])?;
            Ok(Some(found))
        })
        .ok()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::codes::{Code, CodeList, parts};
    use crate::protocol::CatalogEntry;
    use std::collections::BTreeMap;

    fn open_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let who = crate::store::Identity {
            user: "warga-1".into(),
            role: crate::lifecycle::Role::Resident,
        };
        let key = crate::store::Secret::Key(crate::crypto::DataKey::from_bytes([5; 32]));
        let store = Store::init(dir.path(), &key, who).unwrap();
        (dir, store)
    }

    fn list(version: u32, codes: &[(&str, &str, Option<&str>)]) -> CodeList {
        CodeList {
            format: 1,
            code_list: "regions".into(),
            version,
            names: Text {
                id: "Wilayah".into(),
                en: "Regions".into(),
            },
            source: String::new(),
            codes: codes
                .iter()
                .map(|(c, n, p)| Code {
                    code: (*c).into(),
                    name: (*n).into(),
                    en: None,
                    parent: p.map(Into::into),
                })
                .collect(),
        }
    }

    fn entries(parts: &[CodePart]) -> Vec<CatalogEntry> {
        parts
            .iter()
            .map(|p| CatalogEntry {
                service: p.key(),
                version: p.version,
                definition: Some(serde_json::to_string(p).unwrap()),
                accept_until: None,
            })
            .collect()
    }

    fn regions_v1() -> CodeList {
        list(
            1,
            &[
                ("11", "Aceh", None),
                ("11.01", "Kabupaten Aceh Selatan", Some("11")),
                ("11.01.01", "Bakongan", Some("11.01")),
                ("11.01.01.2001", "Keude Bakongan", Some("11.01.01")),
                ("11.01.01.2002", "Ujong Mangki", Some("11.01.01")),
                ("32", "Jawa Barat", None),
                ("32.01.01.2001", "Cibinong Tengah", None),
            ],
        )
    }

    #[test]
    fn a_list_arrives_in_parts_is_searched_and_moves_by_deltas() {
        let (_dir, store) = open_store();
        assert!(matches!(
            store.search_codes("regions", "aceh", 10),
            Err(Error::NotFound { .. })
        ));
        let v1 = regions_v1();
        let first = parts(&BTreeMap::new(), 0, &v1);
        store.apply_catalog(&entries(&first), 3).unwrap();
        let names =
            |found: Vec<CodeMatch>| -> Vec<String> { found.into_iter().map(|c| c.name).collect() };
        assert_eq!(
            names(store.search_codes("regions", "kEUDe bak", 10).unwrap()),
            ["Keude Bakongan"]
        );
        assert_eq!(
            names(store.search_codes("regions", "11.01.01", 10).unwrap()),
            ["Bakongan", "Keude Bakongan", "Ujong Mangki"]
        );
        assert_eq!(store.search_codes("regions", "", 2).unwrap().len(), 2);
        assert!(
            store
                .search_codes("regions", "nowhere", 10)
                .unwrap()
                .is_empty()
        );
        // FTS5's syntax in a query is only words.
        assert!(
            store
                .search_codes("regions", "\"aceh* OR NEAR(", 10)
                .is_ok()
        );
        assert!(matches!(
            store.search_codes("regions", &"x".repeat(101), 10),
            Err(Error::BadQuery(_))
        ));
        assert_eq!(store.holds("regions", "11.01.01.2002"), Some(true));
        assert_eq!(store.holds("regions", "99"), Some(false));
        assert_eq!(store.holds("kbli2020", "47111"), None);
        assert_eq!(
            store.catalog().unwrap().code_lists().get("regions"),
            Some(&1)
        );

        // Version 2: a village renamed, one removed, one new; two parts of
        // a delta.
        let mut v2 = list(2, &[]);
        v2.codes = v1.codes.clone();
        v2.codes[3].name = "Keude Bakongan Baru".into();
        v2.codes.remove(4);
        v2.codes.push(Code {
            code: "11.01.01.2003".into(),
            name: "Gampong Pemekaran".into(),
            en: None,
            parent: Some("11.01.01".into()),
        });
        let held: BTreeMap<String, Code> = v1
            .codes
            .iter()
            .map(|c| (c.code.clone(), c.clone()))
            .collect();
        let delta = parts(&held, 1, &v2);
        assert_eq!(delta[0].set.len() + delta[0].remove.len(), 3);
        store.apply_catalog(&entries(&delta), 4).unwrap();
        assert_eq!(
            names(store.search_codes("regions", "bakongan", 10).unwrap()),
            ["Bakongan", "Keude Bakongan Baru"]
        );
        // Removed: no longer found, but still a code to judge by, as the
        // server judges (a draft of version 1 keeps its village).
        assert!(
            store
                .search_codes("regions", "ujong", 10)
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .search_codes("regions", "11.01.01.2002", 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.holds("regions", "11.01.01.2002"), Some(true));
        assert_eq!(store.holds("regions", "11.01.01.2003"), Some(true));
        let held = store.code_lists().unwrap();
        assert_eq!((held[0].version, held[0].codes), (2, 7));
        assert_eq!(store.catalog_seq().unwrap(), 4);
    }

    #[test]
    fn a_version_waits_for_its_last_part_and_a_broken_part_is_named() {
        let (dir, store) = open_store();
        let mut big = list(1, &[]);
        big.codes = (0..2500)
            .map(|i| Code {
                code: format!("{i:05}"),
                name: format!("Desa {i}"),
                en: None,
                parent: None,
            })
            .collect();
        let ps = parts(&BTreeMap::new(), 0, &big);
        assert_eq!(ps.len(), 3);
        store.apply_catalog(&entries(&ps[..2]), 1).unwrap();
        assert!(matches!(
            store.search_codes("regions", "desa", 10),
            Err(Error::NotFound { .. })
        ));
        // Delivered again from the start (the catalog asked for anew):
        // what the first attempt wrote is replaced, not doubled.
        store.apply_catalog(&entries(&ps[..1]), 1).unwrap();
        store.apply_catalog(&entries(&ps[1..]), 2).unwrap();
        assert_eq!(store.code_lists().unwrap()[0].codes, 2500);
        assert_eq!(
            store.search_codes("regions", "desa 1234", 5).unwrap().len(),
            1
        );

        let broken = CatalogEntry {
            service: "codes/kbli2020/0".into(),
            version: 1,
            definition: Some(r#"{"code_list": "kbli2020", "format": 2}"#.into()),
            accept_until: None,
        };
        store.apply_catalog(&[broken], 3).unwrap();
        let unusable = store.catalog_unusable().unwrap();
        assert!(
            unusable
                .iter()
                .any(|u| u.contains("kbli2020") && u.contains("update the app")),
            "{unusable:?}"
        );
        assert_eq!(store.catalog_seq().unwrap(), 3);
        // Its next version builds on it: skipped, not a restart (which
        // would meet the same part again, every sync).
        let mut kbli = list(2, &[("47111", "Perdagangan eceran", None)]);
        kbli.code_list = "kbli2020".into();
        let mut delta = parts(&BTreeMap::new(), 1, &kbli);
        delta[0].base = 1;
        store.apply_catalog(&entries(&delta), 4).unwrap();
        assert_eq!(store.catalog_seq().unwrap(), 4);
        assert!(matches!(
            store.search_codes("kbli2020", "47", 5),
            Err(Error::NotFound { .. })
        ));
        // Nothing to retry while the kept part is still unreadable.
        store.retry_code_parts().unwrap();
        assert_eq!(store.catalog_seq().unwrap(), 4);

        // After an update the app reads what it kept (here: a part kept
        // as an older app would have): the catalog is asked for again.
        let mut first = kbli.clone();
        first.version = 1;
        let readable = serde_json::to_string(&parts(&BTreeMap::new(), 0, &first)[0]).unwrap();
        let db = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        db.execute(
            "UPDATE catalog SET body = ?1 WHERE service = 'codes/kbli2020/0'",
            [readable],
        )
        .unwrap();
        drop(db);
        store.retry_code_parts().unwrap();
        assert_eq!(store.catalog_seq().unwrap(), 0);
        assert!(store.catalog_unusable().unwrap().is_empty());
    }

    #[test]
    fn a_delta_on_a_version_not_held_asks_for_the_catalog_again() {
        let (_dir, store) = open_store();
        let v1 = regions_v1();
        let held: BTreeMap<String, Code> = v1
            .codes
            .iter()
            .map(|c| (c.code.clone(), c.clone()))
            .collect();
        let mut v2 = v1.clone();
        v2.version = 2;
        v2.codes.pop();
        store
            .apply_catalog(&entries(&parts(&held, 1, &v2)), 9)
            .unwrap();
        assert_eq!(store.catalog_seq().unwrap(), 0);
        // Once per version: met again, it is skipped, never a loop.
        store
            .apply_catalog(&entries(&parts(&held, 1, &v2)), 9)
            .unwrap();
        assert_eq!(store.catalog_seq().unwrap(), 9);
        store
            .apply_catalog(&entries(&parts(&BTreeMap::new(), 0, &v1)), 1)
            .unwrap();
        store
            .apply_catalog(&entries(&parts(&held, 1, &v2)), 2)
            .unwrap();
        assert_eq!(store.code_lists().unwrap()[0].codes, 6);
    }
}
