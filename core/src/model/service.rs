//! A request for a service defined as data in the catalog
//! (`crate::catalog`, `docs/catalog.md`): the service's id and the version
//! and hash of the definition it was created on, and the answers by field
//! id. What the answers must be is the definition's business, checked by
//! [`crate::catalog::Catalog::check_request`] on the device and the server;
//! here only the shape every such request has.

use std::collections::HashMap;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::{AttachmentRole, KindRules, MAX_SHORT_TEXT};
use crate::identifiers::Nik;
use crate::validation::{Code, Validator};

/// Most answers one request holds (a definition's top-level fields).
pub const MAX_ANSWERS: usize = 500;
/// Longest JSON text of one answer, in bytes (a 50-entry repeat of people
/// fits several times over).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Most JSON text of all answers together, in bytes.
pub const MAX_ANSWERS_BYTES: usize = 256 * 1024;

/// A request for a catalog service. In JSON:
/// `{"kind": "service", "service": "surat_keterangan_tidak_mampu",
/// "version": 1, "hash": "…", "answers": {"purpose": "health", …}}`.
///
/// Each answer is kept in the document as its JSON text under the field's
/// id: two people editing different fields merge, the same field keeps the
/// last writer's answer whole (a repeat group is one answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct ServiceRequest {
    /// The service's id in the catalog.
    pub service: String,
    /// The definition's version the request was created on; a draft stays
    /// on it.
    pub version: u32,
    /// SHA-256 (lowercase hex) of that definition as published: the server
    /// judges the request by exactly the definition the device showed.
    pub hash: String,
    /// The answers by field id, each the JSON text of the value.
    #[serde(with = "answers_as_json")]
    #[cfg_attr(test, proptest(strategy = "arbitrary_answers()"))]
    pub answers: HashMap<String, String>,
}

impl ServiceRequest {
    /// A request for `definition` with `answers` (a JSON object).
    pub fn new(
        definition: &crate::catalog::Definition,
        hash: &str,
        answers: &serde_json::Map<String, serde_json::Value>,
    ) -> ServiceRequest {
        ServiceRequest {
            service: definition.id.clone(),
            version: definition.version,
            hash: hash.to_owned(),
            answers: answers
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        }
    }

    /// The answers as one JSON object (what the definition's rules read);
    /// an answer that is not JSON (a damaged or tampered document) is kept
    /// as text, so the form names it as the wrong type.
    pub fn values(&self) -> serde_json::Value {
        serde_json::Value::Object(answers_as_json::to_map(&self.answers))
    }

    /// NIKs in the answers: the `nik` members of people and every field
    /// named `nik` or `…_nik` (the catalog's convention), for the store's
    /// lookup index and the data subject's rights.
    pub fn answer_niks(&self) -> Vec<Nik> {
        fn walk(key: Option<&str>, v: &serde_json::Value, out: &mut Vec<Nik>) {
            match v {
                serde_json::Value::String(s)
                    if key.is_some_and(|k| k == "nik" || k.ends_with("_nik")) =>
                {
                    out.push(Nik::from(s.trim()));
                }
                serde_json::Value::Array(items) => {
                    items.iter().for_each(|i| walk(key, i, out));
                }
                serde_json::Value::Object(m) => {
                    m.iter().for_each(|(k, v)| walk(Some(k), v, out));
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(None, &self.values(), &mut out);
        out
    }
}

#[cfg(test)]
fn arbitrary_answers() -> impl proptest::strategy::Strategy<Value = HashMap<String, String>> {
    use proptest::prelude::*;
    let value = prop_oneof![
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        ".{0,20}".prop_map(|s| serde_json::Value::String(s).to_string()),
        proptest::collection::vec("[a-z]{1,8}", 0..3)
            .prop_map(|v| serde_json::to_string(&v).unwrap_or_default()),
    ];
    proptest::collection::hash_map("[a-z][a-z0-9_]{0,10}", value, 0..6)
}

use super::is_purpose as is_id;

impl KindRules for ServiceRequest {
    fn validate(&self, v: &mut Validator) {
        if !is_id(&self.service) {
            v.error_at("service", Code::UnknownService);
        }
        if self.version == 0 {
            v.error_at("version", Code::UnknownService);
        }
        if !(self.hash.len() == 64
            && self
                .hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            v.error_at("hash", Code::DefinitionMismatch);
        }
        if self.answers.len() > MAX_ANSWERS {
            v.error_at("answers", Code::Count);
        }
        let total: usize = self.answers.iter().map(|(k, a)| k.len() + a.len()).sum();
        if total > MAX_ANSWERS_BYTES {
            v.error_at("answers", Code::TooLong);
        }
        v.at("answers", |v| {
            let mut keys: Vec<&String> = self.answers.keys().collect();
            keys.sort();
            for k in keys {
                if !is_id(k) {
                    // The key is not echoed: it may be anything.
                    v.error(Code::UnknownField);
                } else if self.answers[k].len() > MAX_ANSWER_BYTES {
                    v.error_at(k, Code::TooLong);
                } else if serde_json::from_str::<serde_json::Value>(&self.answers[k]).is_err() {
                    v.error_at(k, Code::WrongType);
                }
            }
        });
    }

    fn required_attachments(&self) -> Vec<AttachmentRole> {
        Vec::new()
    }

    fn niks(&self) -> Vec<&Nik> {
        Vec::new()
    }

    fn subject(&self) -> String {
        let s = format!("{} v{}", self.service, self.version);
        s.chars().take(MAX_SHORT_TEXT).collect()
    }
}

/// The answers in JSON: an object of values (not of JSON texts), by id.
mod answers_as_json {
    use std::collections::HashMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::{Map, Value};

    pub fn to_map(answers: &HashMap<String, String>) -> Map<String, Value> {
        let mut keys: Vec<&String> = answers.keys().collect();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let text = &answers[k];
                let v = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()));
                (k.clone(), v)
            })
            .collect()
    }

    pub fn serialize<S: Serializer>(
        answers: &HashMap<String, String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        to_map(answers).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<HashMap<String, String>, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        Ok(map.into_iter().map(|(k, v)| (k, v.to_string())).collect())
    }
}
