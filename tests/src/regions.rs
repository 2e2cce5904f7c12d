//! Kemendagri's region codes as a code list (`tests/data/regions-2025.csv.zst`,
//! 91,599 codes, ODbL; `tests/data/README.md`), and a yearly update of it:
//! the real data code list tests and benchmarks measure on.

use std::io::Read;

use sambung_core::catalog::Text;
use sambung_core::catalog::codes::{Code, CodeList};

const DATA: &[u8] = include_bytes!("../data/regions-2025.csv.zst");

/// The list, version 1: every region whose code starts with `prefix`
/// (`""`: all).
pub fn regions(prefix: &str) -> CodeList {
    let mut csv = String::new();
    zstd::stream::read::Decoder::new(DATA)
        .expect("zstd data")
        .read_to_string(&mut csv)
        .expect("the region data is UTF-8 CSV");
    let codes = csv
        .lines()
        .skip(1)
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            // code,name,parent — names with a comma are quoted.
            let (code, rest) = l.split_once(',').expect("code");
            let (name, parent) = match rest.strip_prefix('"') {
                Some(q) => {
                    let (name, rest) = q.split_once("\",").expect("quoted name");
                    (name.replace("\"\"", "\""), rest)
                }
                None => {
                    let (name, parent) = rest.rsplit_once(',').expect("parent");
                    (name.to_owned(), parent)
                }
            };
            Code {
                code: code.into(),
                name,
                en: None,
                parent: (!parent.is_empty()).then(|| parent.to_owned()),
            }
        })
        .collect();
    CodeList {
        format: 1,
        code_list: "regions".into(),
        version: 1,
        names: Text {
            id: "Wilayah administrasi pemerintahan".into(),
            en: "Administrative regions".into(),
        },
        source: "Kemendagri region codes, via idn-area-data 4.0.1 (ODbL 1.0)".into(),
        codes,
    }
}

/// Version 2: what a yearly regulation changes — 60 villages renamed, 25
/// merged away, 40 new ones split off — chosen at random among the
/// villages of `v1`.
pub fn yearly_update(v1: &CodeList) -> CodeList {
    let mut seed = 2026u64;
    let villages: Vec<&Code> = v1.codes.iter().filter(|c| c.code.len() == 13).collect();
    let mut pick = || villages[(crate::splitmix(&mut seed) % villages.len() as u64) as usize];
    let mut renamed = std::collections::BTreeSet::new();
    while renamed.len() < 60 {
        renamed.insert(pick().code.clone());
    }
    let mut gone = std::collections::BTreeSet::new();
    while gone.len() < 25 {
        let c = pick();
        if !renamed.contains(&c.code) {
            gone.insert(c.code.clone());
        }
    }
    let mut new = Vec::new();
    let held: std::collections::BTreeSet<&str> = v1.codes.iter().map(|c| c.code.as_str()).collect();
    for k in 0..40 {
        let district = pick().parent.clone().unwrap_or_default();
        let code = (2900..)
            .map(|n| format!("{district}.{n}"))
            .find(|c| !held.contains(c.as_str()) && !new.iter().any(|n: &Code| &n.code == c))
            .unwrap_or_default();
        new.push(Code {
            code,
            name: format!("Desa Pemekaran {}", k + 1),
            en: None,
            parent: Some(district),
        });
    }
    let mut v2 = v1.clone();
    v2.version = 2;
    v2.codes.retain(|c| !gone.contains(&c.code));
    for c in v2.codes.iter_mut().filter(|c| renamed.contains(&c.code)) {
        c.name.push_str(" Baru");
    }
    v2.codes.extend(new);
    v2
}

/// A device store's files once its WAL is checkpointed into the database,
/// as SQLite does on its own after a while: what a list costs the phone.
pub fn store_bytes(dir: &std::path::Path) -> u64 {
    let db = rusqlite::Connection::open(dir.join(sambung_core::store::DB_FILE)).expect("db");
    let _: (i64, i64, i64) = db
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("checkpoint");
    drop(db);
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
