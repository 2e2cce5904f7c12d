//! A service definition as data: what `catalog/services/*.json` holds and
//! what the server publishes. The format is documented in
//! `docs/catalog.md` and by `catalog/service.schema.json`; both describe
//! these types, and a test keeps them in step.
//!
//! Parsing is strict (`deny_unknown_fields`): a key this engine does not know
//! is refused rather than silently ignored, so a definition written for a
//! newer engine never half-works. Whether a parsed definition makes sense
//! (ids unique, rules that compile, messages in both languages …) is the
//! lint's business (`catalog::lint`), which names every problem at once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The definition format this engine reads. A definition that says it needs
/// a newer one is refused with "update the app", never half-evaluated.
pub const ENGINE_FORMAT: u32 = 1;

/// A text in Indonesian and English. Both are required: the lint refuses an
/// empty one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// Bahasa Indonesia.
    pub id: String,
    /// English.
    pub en: String,
}

impl Text {
    /// The text in `lang` (`"en"` or anything else for Indonesian, the
    /// default language of the apps).
    pub fn get(&self, lang: &str) -> &str {
        if lang == "en" { &self.en } else { &self.id }
    }
}

/// What kind of service it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Permit,
    Population,
    Tax,
    Complaint,
    Letter,
    Other,
}

impl Category {
    /// The name the definition format gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Permit => "permit",
            Category::Population => "population",
            Category::Tax => "tax",
            Category::Complaint => "complaint",
            Category::Letter => "letter",
            Category::Other => "other",
        }
    }
}

/// The level of government that decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Desa or kelurahan.
    Desa,
    Kecamatan,
    /// Kabupaten or kota.
    Kabupaten,
    Provinsi,
    /// A national service (OSS-RBA, Dukcapil's national rules).
    Nasional,
}

impl Level {
    /// The name the definition format gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Desa => "desa",
            Level::Kecamatan => "kecamatan",
            Level::Kabupaten => "kabupaten",
            Level::Provinsi => "provinsi",
            Level::Nasional => "nasional",
        }
    }
}

/// The service standard (UU 25/2009 standar pelayanan): what the office
/// promises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standard {
    /// Working days from submission to a decision.
    pub days: u32,
    /// The fee in rupiah (0: free of charge).
    pub fee_idr: u64,
    /// The regulations the service rests on.
    #[serde(default)]
    pub legal_basis: Vec<String>,
}

/// Which of the lifecycle's statuses the service uses, with a service level
/// (days) per status where the office promises one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Status names (`docs/lifecycle.md`); `draft` and `submitted` always.
    pub statuses: Vec<String>,
    /// Days a request may stay in a status before it is overdue.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sla_days: BTreeMap<String, u32>,
    /// The office verifies requests on site: officers add photos and
    /// documents while one is reviewed (the rules table's field check).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub field_check: bool,
}

/// The type of a field: what its value looks like and which built-in check
/// it gets (the Indonesian identifiers carry today's validators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A string of at most `max_length` characters (200 unless stated).
    Text,
    /// A number within `min`..`max`.
    Number,
    /// A whole amount of rupiah, ≥ `min` (0 unless stated).
    Money,
    /// A `YYYY-MM-DD` date; with `past`, not after today.
    Date,
    /// A `HH:MM` time of day (24-hour clock).
    Time,
    /// `true` or `false`.
    Boolean,
    /// One of `options` or of the code list `code_list`.
    Choice,
    /// Several of `options` or of `code_list` (`min`..`max` of them).
    MultiChoice,
    /// `{lat, lon, accuracy_m}`, WGS84.
    Location,
    /// An Indonesian phone number.
    Phone,
    /// An e-mail address.
    Email,
    /// `{nik, name, birth_date?, sex?}`; birth date and sex agree with the
    /// NIK.
    Person,
    /// Sub-`fields` kept together in one object.
    Group,
    /// A list of entries of sub-`fields`, `min`..`max` of them.
    Repeat,
    /// Nomor Induk Kependudukan.
    Nik,
    /// Family card number.
    Kk,
    /// Tax object number (PBB).
    Nop,
    /// Business identification number (OSS).
    Nib,
    /// Taxpayer number (15 or 16 digits).
    Npwp,
    /// KBLI 2020 business classification code.
    Kbli,
    /// Kemendagri region code (`level` sets how deep it must go).
    Region,
    /// Vehicle registration plate.
    Plate,
    /// Five-digit postal code.
    PostalCode,
    /// A tax year from 1990 to this year.
    TaxYear,
}

impl FieldType {
    /// The name the definition format gives it (`multi_choice`).
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Money => "money",
            FieldType::Date => "date",
            FieldType::Time => "time",
            FieldType::Boolean => "boolean",
            FieldType::Choice => "choice",
            FieldType::MultiChoice => "multi_choice",
            FieldType::Location => "location",
            FieldType::Phone => "phone",
            FieldType::Email => "email",
            FieldType::Person => "person",
            FieldType::Group => "group",
            FieldType::Repeat => "repeat",
            FieldType::Nik => "nik",
            FieldType::Kk => "kk",
            FieldType::Nop => "nop",
            FieldType::Nib => "nib",
            FieldType::Npwp => "npwp",
            FieldType::Kbli => "kbli",
            FieldType::Region => "region",
            FieldType::Plate => "plate",
            FieldType::PostalCode => "postal_code",
            FieldType::TaxYear => "tax_year",
        }
    }

    /// Types whose value is an object of sub-fields.
    pub fn has_fields(self) -> bool {
        matches!(self, FieldType::Group | FieldType::Repeat)
    }

    /// Types whose value is a single JSON string.
    pub fn is_string(self) -> bool {
        use FieldType::*;
        matches!(
            self,
            Text | Date
                | Time
                | Choice
                | Phone
                | Email
                | Nik
                | Kk
                | Nop
                | Nib
                | Npwp
                | Kbli
                | Region
                | Plate
                | PostalCode
        )
    }
}

/// How deep a `region` field must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionDepth {
    Province,
    Regency,
    District,
    Village,
}

/// One option of a choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// The stored value.
    pub value: String,
    /// What the form shows.
    pub label: Text,
    /// No longer offered on new requests, still accepted on old ones
    /// (options are deprecated, never removed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
}

/// A list of values of a scalar type (several KBLI codes, several plates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListOf {
    /// Fewest entries.
    #[serde(default)]
    pub min: u32,
    /// Most entries.
    pub max: u32,
    /// No value twice.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
}

/// Where a rule runs. A uniqueness check across requests can only run on the
/// server; a hint that helps the resident only on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    #[default]
    Both,
    Device,
    Server,
}

/// Whether a broken rule blocks the action or is only shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

/// A rule that must hold: `check` (JSONLogic) must be truthy. Field
/// constraints run only when their field has a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// The stable code apps switch on, e.g. `nik_mismatch`.
    pub code: String,
    /// The JSONLogic expression.
    pub check: Value,
    /// What to tell the person filling the form.
    pub message: Text,
    /// Error (blocks) or warning (shown only).
    #[serde(default)]
    pub severity: Severity,
    /// Device, server or both.
    #[serde(default)]
    pub on: Side,
}

/// A rule across fields; its problem is reported at each of `fields`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// The fields the problem is shown at (paths, `a.b` inside groups).
    pub fields: Vec<String>,
    /// Only evaluated when this JSONLogic expression is truthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Value>,
    /// The stable code apps switch on.
    pub code: String,
    /// The JSONLogic expression that must be truthy.
    pub check: Value,
    /// What to tell the person filling the form.
    pub message: Text,
    /// Error (blocks) or warning (shown only).
    #[serde(default)]
    pub severity: Severity,
    /// Device, server or both.
    #[serde(default)]
    pub on: Side,
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Stable id; the key of its value. Immutable across versions.
    pub id: String,
    /// The type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// The label.
    pub label: Text,
    /// A hint shown under the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<Text>,
    /// `true`, `false` (the default) or a JSONLogic expression: required
    /// when it is truthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Value>,
    /// Shown and asked only when this JSONLogic expression is truthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant: Option<Value>,
    /// The value is computed by this JSONLogic expression (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculate: Option<Value>,
    /// Rules on the value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// `text`: most characters (200 unless stated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// `number`, `money`: smallest value; `repeat`, `multi_choice`: fewest
    /// entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// `number`, `money`: largest value; `repeat`, `multi_choice`: most
    /// entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// `number`: whole numbers only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub integer: bool,
    /// `date`: not after today.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub past: bool,
    /// `choice`, `multi_choice`: the options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<ChoiceOption>>,
    /// `choice`, `multi_choice`: a named code list instead of options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_list: Option<String>,
    /// `group`, `repeat`: the sub-fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<Field>>,
    /// `repeat`: sub-field ids whose values must differ between entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<String>,
    /// `region`: how deep the code must go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<RegionDepth>,
    /// A scalar field holding a list of values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<ListOf>,
}

/// A document the applicant must attach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRequirement {
    /// The attachment role (`docs/requests.md`), e.g. `ktp_copy`.
    pub role: String,
    /// What the form shows.
    pub label: Text,
    /// `true` (the default), `false`, or a JSONLogic expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Value>,
}

/// A test vector: values and the verdict the definition must give.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestVector {
    /// What it shows.
    pub name: String,
    /// The date the rules take as today (`YYYY-MM-DD`).
    pub today: String,
    /// The form's values.
    pub values: Value,
    /// Every error expected, as `field: code`; empty for a valid form.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Fields expected hidden (not relevant).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<String>,
}

/// A service definition: one version of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Where the JSON Schema is, for editors; ignored.
    #[serde(rename = "$schema", default, skip_serializing)]
    pub schema: Option<String>,
    /// The definition format it needs ([`ENGINE_FORMAT`] or lower).
    pub format: u32,
    /// Stable id (`[a-z][a-z0-9_]*`).
    pub id: String,
    /// Version, from 1; a published version never changes.
    pub version: u32,
    /// The service's name.
    pub name: Text,
    /// What it is for.
    pub description: Text,
    /// Category.
    pub category: Category,
    /// Level of government.
    pub level: Level,
    /// Region code prefixes where it is offered; empty: everywhere.
    #[serde(default)]
    pub regions: Vec<String>,
    /// The service standard.
    pub standard: Standard,
    /// Statuses and SLAs.
    pub workflow: Workflow,
    /// The form.
    pub fields: Vec<Field>,
    /// Required documents.
    #[serde(default)]
    pub attachments: Vec<AttachmentRequirement>,
    /// Rules across fields.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Test vectors, run by `check` and `publish`, and in CI.
    #[serde(default)]
    pub tests: Vec<TestVector>,
}

impl Definition {
    /// `id@version`, how the CLI and the API name one version.
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    /// A filled-in example: the values of the first test vector expecting
    /// no errors (the lint has checked it is valid).
    pub fn example(&self) -> Option<&Value> {
        self.tests
            .iter()
            .find(|t| t.errors.is_empty())
            .map(|t| &t.values)
    }
}
