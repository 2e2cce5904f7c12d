//! Code lists (issue 15, `docs/catalog.md`, "Code lists"): lists too large
//! to inline in a definition — Kemendagri's region codes down to the
//! ~83,000 villages, KBLI 2020 — published by the agency as versioned data
//! and chosen from by `choice` fields (`"code_list": "regions"`).
//!
//! A published version travels to devices as [`CodePart`]s: the changes
//! from the version before (all codes for the first), at most
//! [`PART_CODES`] codes each, stored in the server's catalog log as
//! entries of their own. A device therefore receives each list once and
//! every later version as a delta, in pieces that fit a 2G exchange and
//! resume where a cut stopped.
//!
//! ```
//! use sambung_core::catalog::codes::{check_code_list, parse_code_list};
//! let list = parse_code_list(r#"{"format": 1, "code_list": "rivers", "version": 1,
//!   "names": {"id": "Sungai", "en": "Rivers"},
//!   "codes": [{"code": "01", "name": "Kapuas"}, {"code": "01", "name": "Mahakam"}]}"#).unwrap();
//! assert_eq!(check_code_list(&list), vec!["codes[1]: 01 is listed twice (first at codes[0])"]);
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::CatalogError;
use super::definition::Text;

/// The code list format this engine reads.
pub const CODE_LIST_FORMAT: u32 = 1;
/// Most codes one list may hold (Kemendagri's regions, all four levels,
/// are about 91,600).
pub const MAX_CODES: usize = 200_000;
/// Longest code list the server takes, in bytes of JSON (the region list
/// is about 6 MB).
pub const MAX_CODE_LIST_BYTES: usize = 16 * 1024 * 1024;
/// Codes per delivered part: about 60 KB of JSON, 15 KB compressed.
pub const PART_CODES: usize = 1_000;
/// Longest code, in bytes.
pub const MAX_CODE_BYTES: usize = 40;
/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 300;
/// Longest list name (each language) and source, in characters: they
/// travel in every part.
pub const MAX_LIST_NAME_CHARS: usize = 200;
/// Longest `source`, in characters.
pub const MAX_SOURCE_CHARS: usize = 1_000;
/// Most parts one version may have (a delta may set and remove up to
/// twice the most codes a list holds).
pub const MAX_PARTS: u32 = (2 * MAX_CODES / PART_CODES) as u32;
/// The part format this engine reads; a part of a newer one waits for an
/// app update.
pub const PART_FORMAT: u32 = 1;
/// Most problems one check names (then a count of the rest).
const MAX_PROBLEMS: usize = 100;
/// The catalog log's key prefix of a code list's parts
/// (`codes/<list>/<part>`); a service id never holds `/`.
pub const KEY_PREFIX: &str = "codes/";

/// One published version of a code list, as the agency writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeList {
    /// The format (1).
    pub format: u32,
    /// The list's id, as definitions name it (`regions`, `kbli2020`).
    pub code_list: String,
    /// Its version: 1, then forward.
    pub version: u32,
    /// Its name in Indonesian and English.
    pub names: Text,
    /// Where the codes come from (a regulation, a dataset and its licence).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The codes.
    pub codes: Vec<Code>,
}

/// One code of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// The code (`11.01.01.2001`, `47111`): letters, digits, `.`, `-`, `_`.
    pub code: String,
    /// Its name (Indonesian, or the only name it has).
    pub name: String,
    /// Its English name, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
    /// The code it belongs under, a code of the same list (a village's
    /// district).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// One delivered piece of a published version: codes set (new or
/// changed) and codes removed since the version before (`base`; 0 for the
/// first), part `part` of `parts`. A device applies a version once it
/// holds all its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodePart {
    /// The part format ([`PART_FORMAT`]); a server that changes what a
    /// part holds raises it, so an older app waits for its update instead
    /// of misreading it.
    #[serde(default = "first_format")]
    pub format: u32,
    /// The list's id.
    pub code_list: String,
    /// The version this part builds.
    pub version: u32,
    /// The version it changes (0: none, every code is in `set`).
    pub base: u32,
    /// This part's number, from 0.
    pub part: u32,
    /// How many parts the version has.
    pub parts: u32,
    /// The list's names as of this version.
    pub names: Text,
    /// Codes new or changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<Code>,
    /// Codes removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

fn first_format() -> u32 {
    1
}

impl CodePart {
    /// Its key in the catalog log.
    pub fn key(&self) -> String {
        part_key(&self.code_list, self.part)
    }

    /// Whether it is the last part of its version.
    pub fn is_last(&self) -> bool {
        self.part + 1 >= self.parts
    }
}

/// The catalog log's key of a list's part.
pub fn part_key(list: &str, part: u32) -> String {
    format!("{KEY_PREFIX}{list}/{part}")
}

/// Whether a catalog log key names a code list part (else a service).
pub fn is_part_key(key: &str) -> bool {
    key.starts_with(KEY_PREFIX)
}

/// Whether `json` is a code list (it has a top-level `code_list`) rather
/// than a service definition: what `publish` is handed decides which.
pub fn is_code_list(json: &str) -> bool {
    #[derive(Deserialize)]
    struct Head {
        code_list: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Head>(json).is_ok_and(|h| h.code_list.is_some())
}

/// Reads a code list; one needing a newer engine is told apart.
pub fn parse_code_list(json: &str) -> Result<CodeList, CatalogError> {
    #[derive(Deserialize)]
    struct Head {
        format: Option<serde_json::Value>,
        code_list: Option<serde_json::Value>,
    }
    if let Ok(head) = serde_json::from_str::<Head>(json)
        && let Some(format) = head.format.as_ref().and_then(|f| f.as_u64())
        && format > u64::from(CODE_LIST_FORMAT)
    {
        let name = head.code_list.as_ref().and_then(|i| i.as_str());
        return Err(CatalogError::NeedsNewerEngine {
            service: name.unwrap_or("?").chars().take(64).collect(),
            format,
        });
    }
    serde_json::from_str(json).map_err(|e| CatalogError::Malformed {
        problems: vec![e.to_string()],
    })
}

/// Reads a delivered part. One of a newer part format is
/// [`CatalogError::NeedsNewerEngine`] ("update the app").
pub fn parse_part(json: &str) -> Result<CodePart, CatalogError> {
    #[derive(Deserialize)]
    struct Head {
        format: Option<u64>,
        code_list: Option<String>,
    }
    if let Ok(Head {
        format: Some(format),
        code_list,
    }) = serde_json::from_str::<Head>(json)
        && format > u64::from(PART_FORMAT)
    {
        return Err(CatalogError::NeedsNewerEngine {
            service: code_list.unwrap_or_default().chars().take(64).collect(),
            format,
        });
    }
    let part: CodePart = serde_json::from_str(json).map_err(|e| CatalogError::Malformed {
        problems: vec![e.to_string()],
    })?;
    let refused = |problems: Vec<String>| CatalogError::Invalid {
        key: part_key(&part.code_list, part.part),
        problems,
    };
    // A part over the limit is not walked further.
    if part.set.len() + part.remove.len() > PART_CODES {
        return Err(refused(vec![format!("more than {PART_CODES} codes")]));
    }
    let mut p = Problems::default();
    if !super::lint::is_id(&part.code_list) {
        p.push(|| "code_list: not an id".to_owned());
    }
    if part.version == 0
        || part.base >= part.version
        || part.part >= part.parts
        || part.parts > MAX_PARTS
    {
        p.push(|| "version, base, part, parts: out of order".to_owned());
    }
    names_problems(&mut p, &part.names);
    for c in &part.set {
        code_problems(&mut p, "set", c);
    }
    if part.remove.iter().any(|c| !is_code(c)) {
        p.push(|| "remove: not a code".to_owned());
    }
    let problems = p.into_vec();
    if problems.is_empty() {
        Ok(part)
    } else {
        Err(refused(problems))
    }
}

/// Problems named up to [`MAX_PROBLEMS`], the rest only counted (a flood
/// of them costs no more than a hundred).
#[derive(Default)]
struct Problems {
    named: Vec<String>,
    more: usize,
}

impl Problems {
    fn push(&mut self, problem: impl FnOnce() -> String) {
        if self.named.len() < MAX_PROBLEMS {
            self.named.push(problem());
        } else {
            self.more += 1;
        }
    }

    fn into_vec(mut self) -> Vec<String> {
        if self.more > 0 {
            self.named.push(format!("and {} more problems", self.more));
        }
        self.named
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn names_problems(p: &mut Problems, names: &Text) {
    for (lang, n) in [("id", &names.id), ("en", &names.en)] {
        if n.trim().is_empty() || n.chars().count() > MAX_LIST_NAME_CHARS || has_control(n) {
            p.push(|| {
                format!(
                    "names.{lang}: give the name in Indonesian (id) and English (en), 1 to {MAX_LIST_NAME_CHARS} characters, no control characters"
                )
            });
        }
    }
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CODE_BYTES
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn code_problems(p: &mut Problems, at: &str, c: &Code) {
    if !is_code(&c.code) {
        p.push(|| {
            format!("{at}: a code is 1 to {MAX_CODE_BYTES} letters, digits, '.', '-' or '_'")
        });
        return;
    }
    let code = &c.code;
    let name_ok =
        |n: &str| !n.trim().is_empty() && n.chars().count() <= MAX_NAME_CHARS && !has_control(n);
    if !name_ok(&c.name) {
        p.push(|| {
            format!("{at} ({code}).name: 1 to {MAX_NAME_CHARS} characters, no control characters")
        });
    }
    if c.en.as_deref().is_some_and(|n| !name_ok(n)) {
        p.push(|| {
            format!("{at} ({code}).en: 1 to {MAX_NAME_CHARS} characters, no control characters")
        });
    }
    if c.parent.as_deref().is_some_and(|p| !is_code(p)) {
        p.push(|| format!("{at} ({code}).parent: not a code"));
    }
}

/// Every problem of a code list on its own (at most 100 named, then how
/// many more); empty when it is fit to publish.
pub fn check_code_list(list: &CodeList) -> Vec<String> {
    let mut p = Problems::default();
    if list.format != CODE_LIST_FORMAT {
        p.push(|| {
            format!(
                "format: {} is not a format this engine reads ({CODE_LIST_FORMAT})",
                list.format
            )
        });
    }
    if !super::lint::is_id(&list.code_list) {
        p.push(|| {
            "code_list: use lowercase letters, digits and _ (a letter first, at most 64)".into()
        });
    }
    if list.version == 0 {
        p.push(|| "version: versions start at 1".into());
    }
    names_problems(&mut p, &list.names);
    if list.source.chars().count() > MAX_SOURCE_CHARS || has_control(&list.source) {
        p.push(|| format!("source: at most {MAX_SOURCE_CHARS} characters, no control characters"));
    }
    if list.codes.is_empty() {
        p.push(|| "codes: empty".into());
    }
    if list.codes.len() > MAX_CODES {
        // Not walked further.
        p.push(|| format!("codes: {} codes, at most {MAX_CODES}", list.codes.len()));
        return p.into_vec();
    }
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(list.codes.len());
    for (i, c) in list.codes.iter().enumerate() {
        code_problems(&mut p, &format!("codes[{i}]"), c);
        if let Some(j) = first.insert(&c.code, i) {
            first.insert(&c.code, j);
            p.push(|| {
                format!(
                    "codes[{i}]: {} is listed twice (first at codes[{j}])",
                    c.code
                )
            });
        }
    }
    for (i, c) in list.codes.iter().enumerate() {
        if let Some(parent) = &c.parent
            && (!first.contains_key(parent.as_str()) || parent == &c.code)
        {
            p.push(|| format!("codes[{i}].parent: {parent} is not another code of the list"));
        }
    }
    p.into_vec()
}

/// The parts that take a holder of `previous` (the codes of the version
/// before, by code; empty for a first version) to `next`: codes set and
/// removed, in code order, [`PART_CODES`] to a part; at least one part.
pub fn parts(previous: &BTreeMap<String, Code>, base: u32, next: &CodeList) -> Vec<CodePart> {
    enum Change<'a> {
        Set(&'a Code),
        Remove(&'a String),
    }
    let next_codes: BTreeMap<&str, &Code> =
        next.codes.iter().map(|c| (c.code.as_str(), c)).collect();
    let set = next_codes
        .values()
        .filter(|c| previous.get(&c.code) != Some(**c))
        .map(|c| Change::Set(c));
    let remove = previous
        .keys()
        .filter(|k| !next_codes.contains_key(k.as_str()))
        .map(Change::Remove);
    let changes: Vec<Change<'_>> = set.chain(remove).collect();
    let chunks: Vec<&[Change<'_>]> = if changes.is_empty() {
        vec![&[]]
    } else {
        changes.chunks(PART_CODES).collect()
    };
    let count = chunks.len() as u32;
    chunks
        .into_iter()
        .zip(0..)
        .map(|(chunk, part)| {
            let mut p = CodePart {
                format: PART_FORMAT,
                code_list: next.code_list.clone(),
                version: next.version,
                base,
                part,
                parts: count,
                names: next.names.clone(),
                set: Vec::new(),
                remove: Vec::new(),
            };
            for c in chunk {
                match c {
                    Change::Set(c) => p.set.push((*c).clone()),
                    Change::Remove(r) => p.remove.push((*r).clone()),
                }
            }
            p
        })
        .collect()
}

/// Applies a version's parts, in order, to the codes of its base.
pub fn apply(codes: &mut BTreeMap<String, Code>, part: &CodePart) {
    for r in &part.remove {
        codes.remove(r);
    }
    for c in &part.set {
        codes.insert(c.code.clone(), c.clone());
    }
}

/// Who can say whether a code is in a list: the server (every list, in
/// memory) and the device (the lists it holds, in its store).
pub trait CodeLookup {
    /// `Some(true)` when `code` is in `list`, `Some(false)` when not,
    /// `None` when this holder does not have the list (the device before
    /// its delivery finished; the server then judges).
    fn holds(&self, list: &str, code: &str) -> Option<bool>;
}

/// No lists at all: every code is left to whoever has them.
pub struct NoCodes;

impl CodeLookup for NoCodes {
    fn holds(&self, _list: &str, _code: &str) -> Option<bool> {
        None
    }
}

/// Every code list in memory, as the server holds them: each list's
/// newest version, and every code any version had (a device offline for
/// months chooses from the version it holds; a code since removed is
/// still a code the office can read).
#[derive(Debug, Clone, Default)]
pub struct CodeSets {
    lists: BTreeMap<String, Held>,
}

#[derive(Debug, Clone, Default)]
struct Held {
    version: u32,
    codes: BTreeMap<String, Code>,
    ever: HashSet<String>,
    /// Parts of a version not yet complete.
    pending: Vec<CodePart>,
}

impl CodeSets {
    /// Takes one part in log order; when it completes its version, the
    /// version is applied and its id returned.
    pub fn take(&mut self, part: CodePart) -> Option<(String, u32)> {
        let held = self.lists.entry(part.code_list.clone()).or_default();
        if part.version <= held.version || part.base != held.version {
            return None;
        }
        held.pending.retain(|p| p.version == part.version);
        let done = part.is_last();
        held.pending.push(part);
        if !done {
            return None;
        }
        // Every part of the version, or nothing (a stored part this build
        // cannot read leaves its version unapplied, not half applied).
        let mut numbers: Vec<u32> = held.pending.iter().map(|p| p.part).collect();
        numbers.sort_unstable();
        numbers.dedup();
        if numbers.len() != held.pending[0].parts as usize {
            held.pending.clear();
            return None;
        }
        let pending = std::mem::take(&mut held.pending);
        for p in &pending {
            apply(&mut held.codes, p);
            held.ever.extend(p.set.iter().map(|c| c.code.clone()));
        }
        held.version = pending[0].version;
        Some((pending[0].code_list.clone(), held.version))
    }

    /// Every list held, with its newest version.
    pub fn versions(&self) -> impl Iterator<Item = (&str, u32)> {
        self.lists
            .iter()
            .filter(|(_, h)| h.version > 0)
            .map(|(l, h)| (l.as_str(), h.version))
    }

    /// The newest version of `list` held, and its codes.
    pub fn current(&self, list: &str) -> Option<(u32, &BTreeMap<String, Code>)> {
        self.lists
            .get(list)
            .filter(|h| h.version > 0)
            .map(|h| (h.version, &h.codes))
    }
}

impl CodeLookup for CodeSets {
    fn holds(&self, list: &str, code: &str) -> Option<bool> {
        let held = self.lists.get(list).filter(|h| h.version > 0)?;
        Some(held.ever.contains(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(c: &str, name: &str) -> Code {
        Code {
            code: c.into(),
            name: name.into(),
            en: None,
            parent: None,
        }
    }

    fn list(version: u32, codes: Vec<Code>) -> CodeList {
        CodeList {
            format: 1,
            code_list: "regions".into(),
            version,
            names: Text {
                id: "Wilayah".into(),
                en: "Regions".into(),
            },
            source: String::new(),
            codes,
        }
    }

    #[test]
    fn every_problem_of_a_list_is_named() {
        let mut bad = list(0, vec![code("11", "Aceh"), code("11", "Aceh lagi")]);
        bad.format = 2;
        bad.code_list = "Regions".into();
        bad.names.en = " ".into();
        bad.source = "x".repeat(MAX_SOURCE_CHARS + 1);
        bad.codes.push(Code {
            parent: Some("99".into()),
            ..code("12", "")
        });
        bad.codes.push(code("a b", "Spasi"));
        bad.codes.push(code("13", "Tab\there"));
        let problems = check_code_list(&bad);
        for want in [
            "format: 2",
            "code_list: use lowercase",
            "version: versions start at 1",
            "names.en: give the name",
            "source: at most",
            "codes[1]: 11 is listed twice (first at codes[0])",
            "codes[2] (12).name",
            "codes[2].parent: 99 is not another code",
            "codes[3]: a code is",
            "codes[4] (13).name",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{want} missing from {problems:?}"
            );
        }
        assert!(check_code_list(&list(1, vec![])).contains(&"codes: empty".to_owned()));
    }

    #[test]
    fn a_flood_of_problems_is_counted_not_listed() {
        let codes = (0..500).map(|_| code("11", "Aceh")).collect();
        let problems = check_code_list(&list(1, codes));
        assert_eq!(problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(problems.last().unwrap(), "and 399 more problems");
    }

    #[test]
    fn a_newer_format_asks_for_an_update_and_a_service_is_told_apart() {
        let newer = r#"{"format": 9, "code_list": "kbli2020", "version": 1}"#;
        assert!(matches!(
            parse_code_list(newer),
            Err(CatalogError::NeedsNewerEngine { format: 9, .. })
        ));
        assert!(is_code_list(newer));
        assert!(!is_code_list(r#"{"format": 1, "id": "sktm"}"#));
        assert!(!is_code_list("[1, 2]"));
        assert!(matches!(
            parse_code_list(
                r#"{"format": 1, "code_list": "x", "version": 1, "names": {"id": "a", "en": "b"}, "codes": [], "extra": 1}"#
            ),
            Err(CatalogError::Malformed { .. })
        ));
    }

    #[test]
    fn a_broken_part_is_refused() {
        let good = parts(&BTreeMap::new(), 0, &list(1, vec![code("11", "Aceh")]));
        let json = serde_json::to_string(&good[0]).unwrap();
        assert_eq!(parse_part(&json).unwrap(), good[0]);
        let mut bad = good[0].clone();
        bad.base = 1;
        bad.set.push(code("../x", "Nama"));
        let e = parse_part(&serde_json::to_string(&bad).unwrap()).unwrap_err();
        assert!(e.to_string().contains("out of order"), "{e}");
        assert!(e.to_string().contains("a code is"), "{e}");
        assert!(parse_part("{}").is_err());
        // A newer part format asks for an update; a flood is not walked.
        let mut newer = serde_json::to_value(&good[0]).unwrap();
        newer["format"] = 2.into();
        newer["colour"] = "red".into();
        assert!(matches!(
            parse_part(&newer.to_string()),
            Err(CatalogError::NeedsNewerEngine { format: 2, .. })
        ));
        let mut flood = good[0].clone();
        flood.set = vec![code("", ""); PART_CODES + 1];
        let e = parse_part(&serde_json::to_string(&flood).unwrap()).unwrap_err();
        assert!(e.to_string().contains("more than 1000 codes"), "{e}");
        let mut endless = good[0].clone();
        endless.parts = u32::MAX;
        assert!(parse_part(&serde_json::to_string(&endless).unwrap()).is_err());
    }

    #[test]
    fn a_new_version_travels_as_its_changes() {
        let v1 = list(
            1,
            (0..2500)
                .map(|i| code(&format!("{i:05}"), &format!("Desa {i}")))
                .collect(),
        );
        let first = parts(&BTreeMap::new(), 0, &v1);
        assert_eq!(first.len(), 3);
        assert_eq!(first.iter().map(|p| p.set.len()).sum::<usize>(), 2500);
        let mut sets = CodeSets::default();
        for p in first {
            sets.take(p);
        }
        let mut v2 = v1.clone();
        v2.version = 2;
        v2.codes.remove(7);
        v2.codes[0].name = "Desa Baru".into();
        v2.codes.push(code("99999", "Desa Pemekaran"));
        let (_, held) = sets.current("regions").unwrap();
        let delta = parts(held, 1, &v2);
        assert_eq!(delta.len(), 1);
        assert_eq!(delta[0].set.len(), 2);
        assert_eq!(delta[0].remove, vec!["00007".to_owned()]);
        assert_eq!(sets.take(delta[0].clone()), Some(("regions".into(), 2)));
        assert_eq!(sets.holds("regions", "99999"), Some(true));
        // Removed, but a device on version 1 may still choose it.
        assert_eq!(sets.holds("regions", "00007"), Some(true));
        assert_eq!(sets.holds("regions", "x"), Some(false));
        assert_eq!(sets.holds("kbli2020", "47111"), None);
        // A part out of order (its base is not what is held) is not taken.
        assert_eq!(sets.take(delta[0].clone()), None);
    }

    fn arb_codes() -> impl Strategy<Value = BTreeMap<String, Code>> {
        prop::collection::btree_map("[0-9]{1,4}", "[A-Z][a-z]{1,6}", 0..2500).prop_map(|m| {
            m.into_iter()
                .map(|(k, v)| (k.clone(), code(&k, &v)))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any version reached through the parts from any other is exactly
        /// the version published; no part holds more than PART_CODES codes.
        #[test]
        fn parts_take_any_version_to_any_other(a in arb_codes(), b in arb_codes()) {
            let mut held = a.clone();
            let next = list(2, b.values().cloned().collect());
            let ps = parts(&a, 1, &next);
            for p in &ps {
                prop_assert!(p.set.len() + p.remove.len() <= PART_CODES);
                prop_assert_eq!(p.parts as usize, ps.len());
                apply(&mut held, p);
            }
            prop_assert_eq!(held, b);
        }
    }
}
