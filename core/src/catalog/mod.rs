//! The service catalog: services defined as data by the agency, not
//! compiled in (issue 15). A [`Definition`] names a service's fields, rules
//! (JSONLogic, [`rules`]), attachments, standard and workflow; a [`Form`]
//! is one compiled for use; a [`Catalog`] holds every version a device or
//! the server knows. The one engine runs on the phone and on the server.
//!
//! The format is documented in `docs/catalog.md`; the shipped definitions
//! live in `catalog/services/` at the root of the repository and are
//! embedded here as the built-in catalog ([`builtin`]).
//!
//! ```
//! use sambung_core::catalog::{builtin, Side};
//! use sambung_core::CivilDate;
//! let catalog = builtin().unwrap();
//! let form = catalog.latest("surat_keterangan_domisili").unwrap();
//! assert_eq!(form.definition().name.en, "Certificate of residence");
//! ```

mod check;
pub mod codes;
mod definition;
mod form;
pub mod lint;
pub mod rules;
mod values;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::identifiers::RegionCode;
use crate::time::CivilDate;

pub use definition::*;
pub use form::{FieldState, Form, FormState, Issue, MAX_ENTRIES, MAX_ISSUES};
pub use values::{check_email, check_npwp};
pub use view::{DocumentView, FieldView, FormView, Need, OptionView, ServiceView};

/// Why a definition cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The text is not a definition this engine can read; every problem
    /// found is named.
    #[error("the service definition is malformed: {}", .problems.join("; "))]
    Malformed {
        /// What is wrong, each with where.
        problems: Vec<String>,
    },
    /// The definition needs a newer engine than this app has.
    #[error(
        "service {service} needs a newer version of the app (definition format {format}, this app reads up to {ENGINE_FORMAT}): update the app"
    )]
    NeedsNewerEngine {
        /// The service id, when it could be read.
        service: String,
        /// The format it needs.
        format: u64,
    },
    /// The definition reads, but the lint refuses it.
    #[error("service {key} does not pass the lint: {}", .problems.join("; "))]
    Invalid {
        /// `id@version`.
        key: String,
        /// Every problem, each with where.
        problems: Vec<String>,
    },
}

/// Reads one definition from JSON. A definition needing a newer engine is
/// told apart from a malformed one, so the app can say "update the app".
pub fn parse(json: &str) -> Result<Definition, CatalogError> {
    /// What is read before the definition itself: whether this engine can.
    #[derive(serde::Deserialize)]
    struct Head {
        format: Option<serde_json::Value>,
        id: Option<serde_json::Value>,
    }
    let head = match serde_json::from_str::<Head>(json) {
        Ok(head) => Some(head),
        // JSON, but not an object: the full parse below says what it is.
        Err(e) if e.is_data() => None,
        Err(e) => {
            return Err(CatalogError::Malformed {
                problems: vec![format!("not JSON: {e}")],
            });
        }
    };
    if let Some(head) = head
        && let Some(format) = head.format.as_ref().and_then(|f| f.as_u64())
        && format > u64::from(ENGINE_FORMAT)
    {
        let service = head.id.as_ref().and_then(|i| i.as_str()).unwrap_or("?");
        return Err(CatalogError::NeedsNewerEngine {
            service: service.chars().take(64).collect(),
            format,
        });
    }
    // Straight from the text, not through a `Value`: one deserializer of
    // definitions in the phone library, not two.
    serde_json::from_str(json).map_err(|e| CatalogError::Malformed {
        problems: vec![e.to_string()],
    })
}

/// Every version of every service one party knows, compiled.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    forms: BTreeMap<String, BTreeMap<u32, Arc<Form>>>,
    published: BTreeMap<(String, u32), Published>,
    /// The code lists held (list → version): what choices may name.
    code_lists: BTreeMap<String, u32>,
    /// Their codes, where this holder keeps them in memory (the server;
    /// a device keeps them in its store).
    codes: Arc<codes::CodeSets>,
}

/// What publishing adds to a definition: its hash and its retirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// SHA-256 of the definition's JSON as published, lowercase hex.
    pub hash: String,
    /// Retired: requests created after this day are refused.
    pub accept_until: Option<CivilDate>,
}

/// The hash a definition's JSON text is known by: SHA-256 of its bytes as
/// published (the server stores and delivers those bytes unchanged), hex.
///
/// ```
/// let h = sambung_core::catalog::definition_hash("{}");
/// assert_eq!(h.len(), 64);
/// ```
pub fn definition_hash(json: &str) -> String {
    hex::encode(crate::crypto::sha256(json.as_bytes()))
}

impl Catalog {
    /// A catalog of `definitions`, each linted (naming no code list: it
    /// holds none); the error names every problem of the first definition
    /// refused.
    pub fn new(definitions: Vec<Definition>) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        for d in definitions {
            catalog.add(d)?;
        }
        Ok(catalog)
    }

    /// Adds a definition as published (its JSON text), after linting it;
    /// its hash is that of the text. Returns its `id@version`.
    pub fn add_published(
        &mut self,
        json: &str,
        accept_until: Option<CivilDate>,
    ) -> Result<String, CatalogError> {
        let definition = parse(json)?;
        let key = (definition.id.clone(), definition.version);
        let name = definition.key();
        self.add(definition)?;
        self.published.insert(
            key,
            Published {
                hash: definition_hash(json),
                accept_until,
            },
        );
        Ok(name)
    }

    /// Marks a version retired: requests created after `accept_until`
    /// are refused. False when the catalog has no such version.
    pub fn retire(&mut self, id: &str, version: u32, accept_until: CivilDate) -> bool {
        match self.published.get_mut(&(id.to_owned(), version)) {
            Some(p) => {
                p.accept_until = Some(accept_until);
                true
            }
            None => false,
        }
    }

    /// The hash and retirement of a published version.
    pub fn published(&self, id: &str, version: u32) -> Option<&Published> {
        self.published.get(&(id.to_owned(), version))
    }

    /// Adds one definition after linting it, against the versions already
    /// held (a version that exists or goes backwards is refused).
    pub fn add(&mut self, definition: Definition) -> Result<(), CatalogError> {
        let key = definition.key();
        let mut problems = lint::check(&definition, &self.code_lists);
        if let Some(prev) = self.latest(&definition.id) {
            problems.extend(lint::check_publish(prev.definition(), &definition));
        }
        if !problems.is_empty() {
            return Err(CatalogError::Invalid { key, problems });
        }
        let form = Form::compile(definition).map_err(|problems| CatalogError::Invalid {
            key: key.clone(),
            problems,
        })?;
        let d = form.definition();
        self.forms
            .entry(d.id.clone())
            .or_default()
            .insert(d.version, Arc::new(form));
        Ok(())
    }

    /// Notes that version `version` of code list `list` is held (its
    /// codes are with the holder: [`codes::CodeLookup`]): definitions
    /// published after may name it.
    pub fn hold_code_list(&mut self, list: &str, version: u32) {
        self.code_lists.insert(list.to_owned(), version);
    }

    /// Keeps the codes of every list in memory (the server): requests are
    /// then judged by this catalog alone ([`codes::CodeLookup`]).
    pub fn hold_codes(&mut self, sets: Arc<codes::CodeSets>) {
        self.codes = sets;
    }

    /// The newest version of a code list kept in memory, and its codes.
    pub fn code_list_codes(&self, list: &str) -> Option<(u32, &BTreeMap<String, codes::Code>)> {
        self.codes.current(list)
    }

    /// The code lists held, with their versions.
    pub fn code_lists(&self) -> &BTreeMap<String, u32> {
        &self.code_lists
    }

    /// One version of a service.
    pub fn get(&self, id: &str, version: u32) -> Option<&Form> {
        self.forms.get(id)?.get(&version).map(|f| &**f)
    }

    /// The newest version of a service.
    pub fn latest(&self, id: &str) -> Option<&Form> {
        self.forms.get(id)?.values().next_back().map(|f| &**f)
    }

    /// The newest version of each service offered in `region` (a region
    /// code; `None`: every service), by id.
    pub fn services(&self, region: Option<&str>) -> Vec<&Definition> {
        self.forms
            .values()
            .filter_map(|versions| versions.values().next_back())
            .map(|f| f.definition())
            .filter(|d| {
                region.is_none_or(|r| {
                    let r = RegionCode::from(r);
                    d.regions.is_empty()
                        || d.regions
                            .iter()
                            .any(|p| r.is_within(&RegionCode::from(p.as_str())))
                })
            })
            .collect()
    }

    /// How many definitions (all versions) it holds.
    pub fn len(&self) -> usize {
        self.forms.values().map(BTreeMap::len).sum()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }
}

impl codes::CodeLookup for Catalog {
    fn holds(&self, list: &str, code: &str) -> Option<bool> {
        self.codes.holds(list, code)
    }
}

macro_rules! builtin_file {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../catalog/services/", $name)),
        )
    };
}
/// The definitions shipped with this build, as (file name, JSON).
pub const BUILTIN: &[(&str, &str)] = &[
    builtin_file!("complaint.v1.json"),
    builtin_file!("ktp_el.v1.json"),
    builtin_file!("birth.v1.json"),
    builtin_file!("death.v1.json"),
    builtin_file!("business_licence.v1.json"),
    builtin_file!("move_address.v1.json"),
    builtin_file!("family_card_update.v1.json"),
    builtin_file!("building_approval.v1.json"),
    builtin_file!("pbb_objection.v1.json"),
    builtin_file!("pbb_reduction.v1.json"),
    builtin_file!("payment_verification.v1.json"),
    builtin_file!("vehicle_tax.v1.json"),
    builtin_file!("bphtb.v1.json"),
    builtin_file!("surat_keterangan_domisili.v1.json"),
    builtin_file!("surat_keterangan_usaha.v1.json"),
    builtin_file!("surat_pengantar_skck.v1.json"),
    builtin_file!("izin_reklame.v1.json"),
];

/// Definitions that are not built in: an agency publishes them and devices
/// receive them by sync, as any new service (`catalog/examples/`; the
/// demo publishes the SKTM letter), as (file name, JSON).
pub const EXAMPLES: &[(&str, &str)] = &[(
    "surat_keterangan_tidak_mampu.v1.json",
    include_str!("../../../catalog/examples/surat_keterangan_tidak_mampu.v1.json"),
)];

/// Code lists an agency publishes (`catalog/code-lists/`; the bindings'
/// flows publish the occupations of the population registry), as (file
/// name, JSON).
pub const CODE_LIST_EXAMPLES: &[(&str, &str)] = &[(
    "pekerjaan.v1.json",
    include_str!("../../../catalog/code-lists/pekerjaan.v1.json"),
)];

/// The built-in catalog: the definitions of `catalog/services/` shipped in
/// this build ([`BUILTIN`]).
pub fn builtin() -> Result<Catalog, CatalogError> {
    let mut catalog = Catalog::default();
    for (_, json) in BUILTIN {
        catalog.add_published(json, None)?;
    }
    Ok(catalog)
}

/// The built-in catalog, compiled once per process.
pub fn shared_builtin() -> Result<&'static Catalog, CatalogError> {
    static BUILT: std::sync::OnceLock<Result<Catalog, CatalogError>> = std::sync::OnceLock::new();
    BUILT.get_or_init(builtin).as_ref().map_err(Clone::clone)
}

#[cfg(test)]
mod tests;
