//! A service's form as an app renders it, in one language: labels, hints,
//! field order, choices (deprecated ones left out of new answers), limits,
//! and the documents asked for. What `sambung device form` prints and the
//! bindings hand to the UI; rules stay in the [`Form`](super::Form), which
//! says what is shown and required for given values.

use serde::Serialize;
use serde_json::Value;

use super::definition::{Category, Definition, Field, FieldType, Level};

/// Whether a field or document must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// Always.
    Always,
    /// Never.
    Optional,
    /// When a rule holds: ask [`Form::evaluate`](super::Form::evaluate).
    Sometimes,
}

/// One choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct OptionView {
    /// The value stored.
    pub value: String,
    /// What is shown.
    pub label: String,
}

/// One field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct FieldView {
    /// Path (`address.street`; a repeat's sub-fields as `members[].nik`).
    pub path: String,
    /// The field type, as the definition names it.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Label.
    pub label: String,
    /// Hint, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Whether it must be answered.
    pub required: Need,
    /// Shown only when a rule holds.
    pub conditional: bool,
    /// Computed, not typed in.
    pub calculated: bool,
    /// Choices still offered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionView>,
    /// Limits (`min`, `max`, `max_length`, a list's size), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// See `min`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// See `min`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Whether the answer is a list.
    pub list: bool,
}

/// One document asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct DocumentView {
    /// Attachment role.
    pub role: String,
    /// What is shown.
    pub label: String,
    /// Whether it must be attached before submitting.
    pub required: Need,
}

/// A service's form in one language.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct FormView {
    /// Service id.
    pub service: String,
    /// Version.
    pub version: u32,
    /// The language of the texts (`id` or `en`).
    pub lang: String,
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Working days to a decision.
    pub days: u32,
    /// Fee in rupiah.
    pub fee_idr: u64,
    /// Every field, in order, sub-fields after their group or repeat.
    pub fields: Vec<FieldView>,
    /// The documents asked for.
    pub documents: Vec<DocumentView>,
}

/// A service as a list of services shows it, in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct ServiceView {
    /// Service id.
    pub service: String,
    /// Version.
    pub version: u32,
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Category.
    pub category: Category,
    /// The level of government that decides it.
    pub level: Level,
    /// Working days to a decision.
    pub days: u32,
    /// Fee in rupiah.
    pub fee_idr: u64,
}

impl ServiceView {
    /// `definition` in `lang` (`en`, or Indonesian otherwise).
    pub fn of(definition: &Definition, lang: &str) -> ServiceView {
        let lang = if lang == "en" { "en" } else { "id" };
        ServiceView {
            service: definition.id.clone(),
            version: definition.version,
            name: definition.name.get(lang).to_owned(),
            description: definition.description.get(lang).to_owned(),
            category: definition.category,
            level: definition.level,
            days: definition.standard.days,
            fee_idr: definition.standard.fee_idr,
        }
    }
}

fn need(rule: Option<&Value>, default: bool) -> Need {
    match rule {
        None if default => Need::Always,
        None | Some(Value::Bool(false)) => Need::Optional,
        Some(Value::Bool(true)) => Need::Always,
        Some(_) => Need::Sometimes,
    }
}

impl FormView {
    /// The form of `definition` in `lang` (`en`, or Indonesian otherwise).
    ///
    /// ```
    /// use sambung_core::catalog::{builtin, FormView, Need};
    /// let catalog = builtin().unwrap();
    /// let d = catalog.latest("izin_reklame").unwrap().definition();
    /// let view = FormView::of(d, "en");
    /// assert_eq!(view.name, "Billboard permit");
    /// let nib = view.fields.iter().find(|f| f.path == "nib").unwrap();
    /// assert!(nib.conditional);
    /// ```
    pub fn of(definition: &Definition, lang: &str) -> FormView {
        let lang = if lang == "en" { "en" } else { "id" };
        let mut fields = Vec::new();
        walk(&definition.fields, "", lang, &mut fields);
        FormView {
            service: definition.id.clone(),
            version: definition.version,
            lang: lang.to_owned(),
            name: definition.name.get(lang).to_owned(),
            description: definition.description.get(lang).to_owned(),
            days: definition.standard.days,
            fee_idr: definition.standard.fee_idr,
            fields,
            documents: definition
                .attachments
                .iter()
                .map(|a| DocumentView {
                    role: a.role.clone(),
                    label: a.label.get(lang).to_owned(),
                    required: need(a.required.as_ref(), true),
                })
                .collect(),
        }
    }
}

fn walk(fields: &[Field], prefix: &str, lang: &str, out: &mut Vec<FieldView>) {
    for f in fields {
        let path = format!("{prefix}{}", f.id);
        out.push(FieldView {
            path: path.clone(),
            kind: f.kind,
            label: f.label.get(lang).to_owned(),
            hint: f.hint.as_ref().map(|h| h.get(lang).to_owned()),
            required: need(f.required.as_ref(), false),
            conditional: f.relevant.is_some(),
            calculated: f.calculate.is_some(),
            options: f
                .options
                .iter()
                .flatten()
                .filter(|o| !o.deprecated)
                .map(|o| OptionView {
                    value: o.value.clone(),
                    label: o.label.get(lang).to_owned(),
                })
                .collect(),
            min: f.min.or(f.list.as_ref().map(|l| f64::from(l.min))),
            max: f.max.or(f.list.as_ref().map(|l| f64::from(l.max))),
            max_length: f.max_length,
            list: f.list.is_some() || f.kind == FieldType::Repeat,
        });
        if let Some(subs) = &f.fields {
            let sub_prefix = if f.kind == FieldType::Repeat {
                format!("{path}[].")
            } else {
                format!("{path}.")
            };
            walk(subs, &sub_prefix, lang, out);
        }
    }
}
