//! A definition compiled for use: every rule parsed once, then
//! [`Form::evaluate`] on every edit (the live form state a UI draws) and on
//! submit, on the phone and on the server alike.
//!
//! Order of evaluation, as ODK's and DHIS2's users expect it: calculations
//! first (so later rules see them), then for each field in form order its
//! relevance (a hidden field is neither required nor checked, and its value
//! is ignored), whether it is required, its type's built-in check, and its
//! constraints (only on a value that passed the type check); then the checks
//! across fields; on submit, the required attachments.

use std::collections::BTreeMap;

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::{ArenaExt, DataValue, Logic};
use serde::Serialize;
use serde_json::{Map, Value};

use super::definition::{Definition, Field, FieldType, RegionDepth, Severity, Side, Text};
use super::rules;
use super::values::{self, is_empty};
use crate::time::CivilDate;
use crate::validation::Code;

/// The most entries of a repeat or a list the engine walks: more are
/// refused as a count, whatever the definition allows (a 4 MB push could
/// otherwise hold a million).
pub const MAX_ENTRIES: usize = 1_000;
/// The most issues one evaluation collects (errors and warnings): enough
/// for any form a person fills; a hostile one gets no more.
pub const MAX_ISSUES: usize = 200;

/// One problem at one field of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct Issue {
    /// Path of the field, e.g. `household[2].nik`.
    pub field: String,
    /// The stable code: a [`Code`] name for built-in checks, the rule's own
    /// code for a definition's rules.
    pub code: String,
    /// What to tell the person, in both languages. Never repeats the value.
    pub message: Text,
}

impl Issue {
    fn of_code(field: String, code: Code) -> Issue {
        let (en, id) = code.messages();
        Issue {
            field,
            code: code.as_str().to_owned(),
            message: Text {
                id: id.to_owned(),
                en: en.to_owned(),
            },
        }
    }
}

/// What a UI needs to draw one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ffi", derive(uniffi::Record))]
pub struct FieldState {
    /// Path of the field.
    pub field: String,
    /// Whether it is shown (relevant).
    pub visible: bool,
    /// Whether it must be answered.
    pub required: bool,
}

/// The live state of a form for some values.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FormState {
    /// Every field, in form order (repeat entries expanded).
    pub fields: Vec<FieldState>,
    /// Problems that block submission.
    pub errors: Vec<Issue>,
    /// Problems shown but not blocking.
    pub warnings: Vec<Issue>,
    /// The calculated values, by path.
    pub calculated: BTreeMap<String, Value>,
    /// Answers chosen from code lists, as (path, list, code): judged by
    /// whoever holds the lists ([`FormState::judge_codes`]).
    #[serde(skip)]
    code_uses: Vec<(String, String, String)>,
}

impl FormState {
    /// Judges the answers chosen from code lists against `lists`: a code
    /// not in its list is an error (`not_a_code`); a list `lists` does not
    /// hold is left to whoever does (the server holds every list).
    pub fn judge_codes(&mut self, lists: &dyn super::codes::CodeLookup) {
        for (path, list, code) in std::mem::take(&mut self.code_uses) {
            if lists.holds(&list, &code) == Some(false)
                && self.errors.len() + self.warnings.len() < MAX_ISSUES
            {
                self.errors.push(Issue::of_code(path, Code::NotACode));
            }
        }
    }

    /// True when nothing blocks.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// `field: code` of every error, sorted: how test vectors state them.
    pub fn error_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .errors
            .iter()
            .map(|i| format!("{}: {}", i.field, i.code))
            .collect();
        keys.sort();
        keys
    }

    /// Whether the field at `path` is shown.
    pub fn visible(&self, path: &str) -> Option<bool> {
        self.fields
            .iter()
            .find(|f| f.field == path)
            .map(|f| f.visible)
    }
}

/// Whether something is required: never, always, or when a rule holds.
enum Requirement {
    No,
    Yes,
    When(Logic),
}

impl Requirement {
    fn compile(rule: Option<&Value>, default: bool, problems: &mut Vec<String>, at: &str) -> Self {
        match rule {
            None => {
                if default {
                    Requirement::Yes
                } else {
                    Requirement::No
                }
            }
            Some(Value::Bool(true)) => Requirement::Yes,
            Some(Value::Bool(false)) => Requirement::No,
            Some(r) => match rules::compile(r) {
                Ok(l) => Requirement::When(l),
                Err(e) => {
                    problems.push(format!("{at}: `required` does not compile: {e}"));
                    Requirement::No
                }
            },
        }
    }
}

struct CompiledRule {
    logic: Logic,
    index: usize,
}

struct CompiledField {
    field: Field,
    required: Requirement,
    relevant: Option<Logic>,
    calculate: Option<Logic>,
    constraints: Vec<CompiledRule>,
    children: Vec<CompiledField>,
}

fn compile_opt(
    rule: Option<&Value>,
    what: &str,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<Logic> {
    let rule = rule?;
    match rules::compile(rule) {
        Ok(l) => Some(l),
        Err(e) => {
            problems.push(format!("{at}: `{what}` does not compile: {e}"));
            None
        }
    }
}

fn compile_fields(
    fields: &[Field],
    prefix: &str,
    problems: &mut Vec<String>,
) -> Vec<CompiledField> {
    fields
        .iter()
        .map(|f| {
            let at = format!("{prefix}{}", f.id);
            let constraints = f
                .constraints
                .iter()
                .enumerate()
                .filter_map(|(index, c)| {
                    compile_opt(Some(&c.check), "check", &at, problems)
                        .map(|logic| CompiledRule { logic, index })
                })
                .collect();
            CompiledField {
                required: Requirement::compile(f.required.as_ref(), false, problems, &at),
                relevant: compile_opt(f.relevant.as_ref(), "relevant", &at, problems),
                calculate: compile_opt(f.calculate.as_ref(), "calculate", &at, problems),
                constraints,
                children: compile_fields(
                    f.fields.as_deref().unwrap_or(&[]),
                    &format!("{at}."),
                    problems,
                ),
                field: f.clone(),
            }
        })
        .collect()
}

struct CompiledCheck {
    when: Option<Logic>,
    check: Logic,
    index: usize,
}

/// A definition with its rules compiled.
pub struct Form {
    definition: Definition,
    fields: Vec<CompiledField>,
    checks: Vec<CompiledCheck>,
    attachments: Vec<Requirement>,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Form({})", self.definition.key())
    }
}

impl Form {
    /// Compiles every rule of `definition`; the error lists each rule the
    /// engine refused, by field.
    pub fn compile(definition: Definition) -> Result<Form, Vec<String>> {
        let mut problems = Vec::new();
        let fields = compile_fields(&definition.fields, "", &mut problems);
        let checks = definition
            .checks
            .iter()
            .enumerate()
            .filter_map(|(index, c)| {
                let at = format!("checks[{index}]");
                let when = compile_opt(c.when.as_ref(), "when", &at, &mut problems);
                compile_opt(Some(&c.check), "check", &at, &mut problems)
                    .map(|check| CompiledCheck { when, check, index })
            })
            .collect();
        let attachments = definition
            .attachments
            .iter()
            .map(|a| {
                let at = format!("attachments.{}", a.role);
                Requirement::compile(a.required.as_ref(), true, &mut problems, &at)
            })
            .collect();
        if problems.is_empty() {
            Ok(Form {
                definition,
                fields,
                checks,
                attachments,
            })
        } else {
            Err(problems)
        }
    }

    /// The definition.
    pub fn definition(&self) -> &Definition {
        &self.definition
    }

    /// The state of the form for `values` (an object keyed by field id):
    /// what is shown, required, in error and calculated. `side` says which
    /// rules run (the device's or the server's).
    ///
    /// ```
    /// use sambung_core::catalog::{builtin, Side};
    /// use sambung_core::CivilDate;
    /// let catalog = builtin().unwrap();
    /// let form = catalog.latest("surat_keterangan_domisili").unwrap();
    /// let state = form.evaluate(&serde_json::json!({}), CivilDate::new(2026, 12, 3).unwrap(), Side::Device);
    /// assert!(!state.is_ok());
    /// ```
    pub fn evaluate(&self, values: &Value, today: CivilDate, side: Side) -> FormState {
        self.run(values, today, side, None)
    }

    /// [`Self::evaluate`], plus the attachments a submission needs:
    /// `attached` holds the roles of what is attached.
    pub fn evaluate_for_submit(
        &self,
        values: &Value,
        attached: &[&str],
        today: CivilDate,
        side: Side,
    ) -> FormState {
        self.run(values, today, side, Some(attached))
    }

    fn run(
        &self,
        values: &Value,
        today: CivilDate,
        side: Side,
        attached: Option<&[&str]>,
    ) -> FormState {
        let mut state = FormState::default();
        let Some(object) = values.as_object() else {
            state
                .errors
                .push(Issue::of_code(String::new(), Code::WrongType));
            return state;
        };
        let arena = Bump::new();
        let today_text = today.to_string();
        let mut walk = Walk {
            today,
            side,
            arena: &arena,
            state: &mut state,
        };
        // The values become rule data once; calculations replace their
        // field's member as they run, each seeing those before it.
        let mut pairs = values::pairs(object, &arena);
        pairs.push(("today", DataValue::String(arena.alloc_str(&today_text))));
        let calculated = walk.calculate(&self.fields, &mut pairs);
        let root: &DataValue<'_> = arena.object(&pairs);
        walk.fields(&self.fields, object, Some(&calculated), "", root);
        for c in &self.checks {
            let def = &self.definition.checks[c.index];
            if !side_runs(def.on, side) {
                continue;
            }
            if let Some(when) = &c.when
                && !walk.holds(when, root)
            {
                continue;
            }
            if !walk.holds(&c.check, root) {
                for f in &def.fields {
                    walk.push(def.severity, f.clone(), &def.code, &def.message);
                }
            }
        }
        for (req, a) in self.attachments.iter().zip(&self.definition.attachments) {
            if let Some(attached) = attached
                && walk.requires(req, root)
                && !attached.contains(&a.role.as_str())
            {
                let path = format!("attachments.{}", a.role);
                walk.error(path, Code::AttachmentMissing);
            }
        }
        state.calculated = calculated.into_iter().collect();
        state
    }
}

fn side_runs(rule: Side, side: Side) -> bool {
    rule == Side::Both || side == Side::Both || rule == side
}

struct Walk<'s, 'a> {
    today: CivilDate,
    side: Side,
    arena: &'a Bump,
    state: &'s mut FormState,
}

impl<'a> Walk<'_, 'a> {
    fn with_item(&self, root: &'a DataValue<'a>, item: &Value) -> &'a DataValue<'a> {
        let mut pairs: Vec<(&'a str, DataValue<'a>)> = root.as_object().unwrap_or(&[]).to_vec();
        pairs.push(("item", values::to_data(item, self.arena)));
        self.arena.object(&pairs)
    }

    // A rule that fails at run time (a type an operator cannot take)
    // answers null: the form stays usable, and the lint's test vectors are
    // where a broken rule shows.
    fn eval(&self, logic: &'a Logic, data: &'a DataValue<'a>) -> Option<Value> {
        rules::engine()
            .evaluate(logic, data, self.arena)
            .ok()
            .map(values::from_data)
    }

    fn holds(&self, logic: &'a Logic, data: &'a DataValue<'a>) -> bool {
        rules::engine()
            .evaluate(logic, data, self.arena)
            .map(rules::truthy)
            .unwrap_or(false)
    }

    fn requires(&self, req: &'a Requirement, data: &'a DataValue<'a>) -> bool {
        match req {
            Requirement::No => false,
            Requirement::Yes => true,
            Requirement::When(l) => self.holds(l, data),
        }
    }

    fn push(&mut self, severity: Severity, field: String, code: &str, message: &Text) {
        if self.state.errors.len() + self.state.warnings.len() >= MAX_ISSUES {
            return;
        }
        let issue = Issue {
            field,
            code: code.to_owned(),
            message: message.clone(),
        };
        match severity {
            Severity::Error => self.state.errors.push(issue),
            Severity::Warning => self.state.warnings.push(issue),
        }
    }

    fn error(&mut self, field: String, code: Code) {
        if self.state.errors.len() + self.state.warnings.len() >= MAX_ISSUES {
            return;
        }
        self.state.errors.push(Issue::of_code(field, code));
    }

    /// Runs the top-level calculations in form order, each replacing its
    /// field's member of `pairs`; answers their values by field id.
    fn calculate(
        &mut self,
        fields: &'a [CompiledField],
        pairs: &mut Vec<(&'a str, DataValue<'a>)>,
    ) -> Map<String, Value> {
        let mut calculated = Map::new();
        for f in fields {
            if let Some(logic) = &f.calculate {
                let root = self.arena.object(pairs);
                let value = self.eval(logic, root).unwrap_or(Value::Null);
                let data = values::to_data(&value, self.arena);
                match pairs.iter_mut().find(|(k, _)| *k == f.field.id) {
                    Some(pair) => pair.1 = data,
                    None => pairs.push((self.arena.alloc_str(&f.field.id), data)),
                }
                calculated.insert(f.field.id.clone(), value);
            }
        }
        calculated
    }

    /// Judges `object` by `fields`; `calculated` (top level only) holds the
    /// calculated values, which stand in for what the object says.
    fn fields(
        &mut self,
        fields: &'a [CompiledField],
        object: &Map<String, Value>,
        calculated: Option<&Map<String, Value>>,
        prefix: &str,
        data: &'a DataValue<'a>,
    ) {
        for key in object.keys() {
            if !fields.iter().any(|f| &f.field.id == key) {
                // Named only when it is an id: a key may be anything (a
                // name, a NIK), and issues travel to logs and refusals.
                let at = if crate::model::is_purpose(key) {
                    format!("{prefix}{key}")
                } else {
                    prefix.trim_end_matches('.').to_owned()
                };
                self.error(at, Code::UnknownField);
            }
        }
        for f in fields {
            let path = format!("{prefix}{}", f.field.id);
            let visible = f.relevant.as_ref().is_none_or(|l| self.holds(l, data));
            let required = visible && self.requires(&f.required, data);
            self.state.fields.push(FieldState {
                field: path.clone(),
                visible,
                required,
            });
            if !visible {
                continue;
            }
            let value = calculated
                .and_then(|c| c.get(&f.field.id))
                .or_else(|| object.get(&f.field.id))
                .unwrap_or(&Value::Null);
            if is_empty(value) {
                if required {
                    self.error(path, Code::Required);
                }
                continue;
            }
            self.value(f, value, &path, data);
        }
    }

    fn value(&mut self, f: &'a CompiledField, value: &Value, path: &str, data: &'a DataValue<'a>) {
        let field = &f.field;
        let before = self.state.errors.len();
        match (field.kind, &field.list) {
            (FieldType::Group, _) => match value.as_object() {
                Some(o) => self.fields(&f.children, o, None, &format!("{path}."), data),
                None => self.error(path.to_owned(), Code::WrongType),
            },
            (FieldType::Repeat, _) => self.repeat(f, value, path, data),
            (_, Some(list)) => match value.as_array() {
                Some(items) => {
                    let count = items.len();
                    if count < list.min as usize || count > list.max as usize {
                        self.error(path.to_owned(), Code::Count);
                    }
                    // Beyond the engine's limit the items are not walked
                    // (uniqueness compares each with those before).
                    let walked = if count > MAX_ENTRIES {
                        &items[..0]
                    } else {
                        &items[..]
                    };
                    for (i, item) in walked.iter().enumerate() {
                        let at = format!("{path}[{i}]");
                        self.scalar(field, item, &at);
                        if list.unique && items[..i].contains(item) {
                            self.error(at, Code::Duplicate);
                        }
                    }
                }
                None => self.error(path.to_owned(), Code::WrongType),
            },
            _ => self.scalar(field, value, path),
        }
        if self.state.errors.len() > before {
            return;
        }
        for c in &f.constraints {
            let def = &field.constraints[c.index];
            if side_runs(def.on, self.side) && !self.holds(&c.logic, data) {
                self.push(def.severity, path.to_owned(), &def.code, &def.message);
            }
        }
    }

    fn repeat(&mut self, f: &'a CompiledField, value: &Value, path: &str, root: &'a DataValue<'a>) {
        let Some(entries) = value.as_array() else {
            return self.error(path.to_owned(), Code::WrongType);
        };
        let min = f.field.min.unwrap_or(0.0);
        let max = f.field.max.unwrap_or(f64::MAX).min(MAX_ENTRIES as f64);
        let n = entries.len() as f64;
        if n < min || n > max {
            self.error(path.to_owned(), Code::Count);
        }
        // Beyond the engine's limit the entries are not walked (each is
        // judged with the whole form's data, and uniqueness compares each
        // with those before).
        if entries.len() > MAX_ENTRIES {
            return;
        }
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let Some(o) = entry.as_object() else {
                self.error(at, Code::WrongType);
                continue;
            };
            let data = self.with_item(root, entry);
            self.fields(&f.children, o, None, &format!("{at}."), data);
            for sub in &f.field.unique {
                // Exactly equal answers, as the compiled-in kinds compare.
                fn key<'v>(e: &'v Value, sub: &str) -> Option<&'v Value> {
                    e.get(sub).filter(|v| !is_empty(v))
                }
                if let Some(k) = key(entry, sub)
                    && entries[..i].iter().any(|e| key(e, sub) == Some(k))
                {
                    self.error(format!("{at}.{sub}"), Code::Duplicate);
                }
            }
        }
    }

    fn scalar(&mut self, field: &Field, value: &Value, path: &str) {
        use crate::identifiers as id;
        use FieldType::*;
        let text = value.as_str();
        if field.kind.is_string() && text.is_none() {
            return self.error(path.to_owned(), Code::WrongType);
        }
        let s = text.unwrap_or_default();
        let codes: Vec<Code> = match field.kind {
            Text => {
                let max = field
                    .max_length
                    .unwrap_or(crate::model::MAX_SHORT_TEXT as u32);
                if s.trim().is_empty() {
                    vec![Code::Required]
                } else if s.chars().count() > max as usize {
                    vec![Code::TooLong]
                } else {
                    vec![]
                }
            }
            Number => match value.as_f64() {
                None => vec![Code::WrongType],
                Some(n) if field.integer && n.fract() != 0.0 => vec![Code::WrongType],
                Some(n) if field.min.is_some_and(|m| n < m) || field.max.is_some_and(|m| n > m) => {
                    vec![Code::OutOfRange]
                }
                Some(_) => vec![],
            },
            Money => match value.as_u64() {
                None => vec![Code::WrongType],
                Some(n) => {
                    let n = n as f64;
                    if field.min.is_some_and(|m| n < m) || field.max.is_some_and(|m| n > m) {
                        vec![Code::Amount]
                    } else {
                        vec![]
                    }
                }
            },
            Date => match CivilDate::parse(s) {
                None => vec![Code::DateFormat],
                Some(d) if field.past && d > self.today => vec![Code::DateInFuture],
                Some(_) => vec![],
            },
            Time => {
                if crate::time::is_time_of_day(s) {
                    vec![]
                } else {
                    vec![Code::TimeFormat]
                }
            }
            Boolean => {
                if value.is_boolean() {
                    vec![]
                } else {
                    vec![Code::WrongType]
                }
            }
            Choice => self.choice(field, s, path),
            MultiChoice => self.multi_choice(field, value, path),
            Location => {
                return self.composite::<crate::model::Location>(value, path, |l, v| l.validate(v));
            }
            Person => {
                return self.composite::<crate::model::Person>(value, path, |p, v| p.validate(v));
            }
            Phone => id::Phone(s.to_owned()).check(),
            Email => values::check_email(s),
            Nik => id::Nik(s.to_owned()).check(),
            Kk => id::Kk(s.to_owned()).check(),
            Nop => id::Nop(s.to_owned()).check(),
            Nib => id::Nib(s.to_owned()).check(),
            Npwp => values::check_npwp(s),
            Kbli => id::Kbli(s.to_owned()).check(),
            Plate => id::Plate(s.to_owned()).check(),
            Region => region_codes(s, field.level),
            PostalCode => {
                if s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit()) {
                    vec![]
                } else {
                    vec![Code::PostalCode]
                }
            }
            TaxYear => match value.as_u64() {
                Some(y) if y >= 1990 && y <= self.today.year.max(0) as u64 => vec![],
                Some(_) => vec![Code::TaxYear],
                None => vec![Code::WrongType],
            },
            Group | Repeat => vec![Code::WrongType],
        };
        for c in codes {
            self.error(path.to_owned(), c);
        }
    }

    fn choice(&mut self, field: &Field, s: &str, path: &str) -> Vec<Code> {
        if let Some(list) = &field.code_list {
            self.state
                .code_uses
                .push((path.to_owned(), list.clone(), s.to_owned()));
        }
        match &field.options {
            Some(options) if !options.iter().any(|o| o.value == s) => vec![Code::NotAnOption],
            _ => vec![],
        }
    }

    fn multi_choice(&mut self, field: &Field, value: &Value, path: &str) -> Vec<Code> {
        let Some(items) = value.as_array() else {
            return vec![Code::WrongType];
        };
        let mut codes = Vec::new();
        let n = items.len() as f64;
        if field.min.is_some_and(|m| n < m) || field.max.is_some_and(|m| n > m) {
            codes.push(Code::Count);
        }
        // Beyond the engine's limit: a count, not walked.
        if items.len() > MAX_ENTRIES {
            codes.push(Code::Count);
            codes.dedup();
            return codes;
        }
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                None => codes.push(Code::WrongType),
                Some(s) => {
                    codes.extend(self.choice(field, s, path));
                    if items[..i].contains(item) {
                        codes.push(Code::Duplicate);
                    }
                }
            }
        }
        codes.dedup();
        codes
    }

    /// A composite value checked by the model's own validator (person,
    /// location), so the catalog and the compiled-in kinds agree exactly.
    fn composite<T: serde::de::DeserializeOwned>(
        &mut self,
        value: &Value,
        path: &str,
        validate: impl FnOnce(&T, &mut crate::validation::Validator),
    ) {
        let Ok(parsed) = serde_json::from_value::<T>(value.clone()) else {
            return self.error(path.to_owned(), Code::WrongType);
        };
        let mut v = crate::validation::Validator::new(self.today);
        validate(&parsed, &mut v);
        let report = v.finish();
        let at = |f: &str| {
            if f.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{f}")
            }
        };
        for e in report.errors {
            self.state.errors.push(Issue::of_code(at(&e.field), e.code));
        }
        for w in report.warnings {
            self.state
                .warnings
                .push(Issue::of_code(at(&w.field), w.code));
        }
    }
}

fn region_codes(s: &str, depth: Option<RegionDepth>) -> Vec<Code> {
    use crate::identifiers::{RegionCode, RegionLevel};
    let code = RegionCode(s.to_owned());
    let mut codes = code.check();
    let needed = match depth {
        None => return codes,
        Some(RegionDepth::Province) => RegionLevel::Province,
        Some(RegionDepth::Regency) => RegionLevel::Regency,
        Some(RegionDepth::District) => RegionLevel::District,
        Some(RegionDepth::Village) => RegionLevel::Village,
    };
    if codes.is_empty() && code.level().is_some_and(|l| l < needed) {
        codes.push(Code::RegionLevel);
    }
    codes
}
