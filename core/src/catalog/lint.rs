//! The publisher's lint: what `sambung admin catalog check` and `publish`
//! run, what the server runs before it accepts a definition, and what CI
//! runs on every shipped one. Every problem is named, with where, at once.
//!
//! [`check`] judges one definition alone: ids, types and their settings,
//! rules that compile and read only fields that exist, messages in both
//! languages, and its test vectors. [`check_publish`] judges a new version
//! against the one before: ids immutable, types only widened, options
//! deprecated rather than removed, the version going forward.
//! [`upgrade_blockers`] says what keeps a draft from moving to the new
//! version.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::definition::{Definition, ENGINE_FORMAT, Field, FieldType, Text};
use super::form::Form;
use super::rules;
use crate::identifiers::RegionCode;
use crate::lifecycle::Status;
use crate::time::CivilDate;

/// Whether `s` is a service, field or code list id: a lowercase letter,
/// then lowercase letters, digits and `_`, at most 64 bytes.
///
/// ```
/// use sambung_core::catalog::lint::is_id;
/// assert!(is_id("surat_keterangan_tidak_mampu"));
/// assert!(!is_id("9lives") && !is_id("Complaint"));
/// ```
pub fn is_id(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(b'a'..=b'z'))
        && s.len() <= 64
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

fn text(problems: &mut Vec<String>, at: &str, t: &Text) {
    if t.id.trim().is_empty() {
        problems.push(format!("{at}: the Indonesian text (id) is empty"));
    }
    if t.en.trim().is_empty() {
        problems.push(format!("{at}: the English text (en) is empty"));
    }
}

/// Every problem of `definition` on its own; empty when it is fit to
/// publish. `code_lists` are the code lists its choices may name (list →
/// version), those the catalog holds.
pub fn check(definition: &Definition, code_lists: &BTreeMap<String, u32>) -> Vec<String> {
    let d = definition;
    let mut p = Vec::new();
    if d.format == 0 || d.format > ENGINE_FORMAT {
        p.push(format!(
            "format: {} is not a format this engine reads (1 to {ENGINE_FORMAT})",
            d.format
        ));
    }
    if !is_id(&d.id) {
        p.push("id: use lowercase letters, digits and _ (a letter first, at most 64)".into());
    }
    if d.version == 0 {
        p.push("version: versions start at 1".into());
    }
    text(&mut p, "name", &d.name);
    text(&mut p, "description", &d.description);
    for r in &d.regions {
        if !RegionCode(r.clone()).check().is_empty() {
            p.push(format!("regions: {r:?} is not a region code"));
        }
    }
    workflow(&mut p, d);
    let scope = Scope::of(&d.fields, None, code_lists);
    fields(&mut p, &d.fields, "fields", &scope);
    let mut roles = BTreeSet::new();
    for (i, a) in d.attachments.iter().enumerate() {
        let at = format!("attachments[{i}]");
        if !is_id(&a.role) {
            p.push(format!("{at}.role: use lowercase letters, digits and _"));
        }
        if !roles.insert(&a.role) {
            p.push(format!("{at}.role: {} is listed twice", a.role));
        }
        text(&mut p, &format!("{at}.label"), &a.label);
        if let Some(r) = &a.required {
            rule_reads(&mut p, &format!("{at}.required"), r, &scope);
        }
    }
    for (i, c) in d.checks.iter().enumerate() {
        let at = format!("checks[{i}]");
        if !is_id(&c.code) {
            p.push(format!("{at}.code: use lowercase letters, digits and _"));
        }
        text(&mut p, &format!("{at}.message"), &c.message);
        if c.fields.is_empty() {
            p.push(format!(
                "{at}.fields: name at least one field to show the problem at"
            ));
        }
        for f in &c.fields {
            if !scope.resolves(f) {
                p.push(format!("{at}.fields: {f} is not a field of this form"));
            }
        }
        rule_reads(&mut p, &format!("{at}.check"), &c.check, &scope);
        if let Some(w) = &c.when {
            rule_reads(&mut p, &format!("{at}.when"), w, &scope);
        }
    }
    if p.is_empty() {
        // Only a definition that is otherwise sound is compiled and run
        // against its test vectors.
        match Form::compile(d.clone()) {
            Err(problems) => p.extend(problems),
            Ok(form) => vectors(&mut p, &form),
        }
    }
    p
}

fn workflow(p: &mut Vec<String>, d: &Definition) {
    let mut seen = BTreeSet::new();
    for s in &d.workflow.statuses {
        if Status::parse(s).is_none() {
            p.push(format!(
                "workflow.statuses: {s:?} is not a status of the lifecycle"
            ));
        }
        if !seen.insert(s.as_str()) {
            p.push(format!("workflow.statuses: {s} is listed twice"));
        }
    }
    for needed in ["draft", "submitted"] {
        if !seen.contains(needed) {
            p.push(format!("workflow.statuses: every service uses {needed}"));
        }
    }
    for s in d.workflow.sla_days.keys() {
        if !seen.contains(s.as_str()) {
            p.push(format!("workflow.sla_days: {s} is not among the statuses"));
        }
    }
}

/// The fields a rule may name at one place in the form.
struct Scope<'d> {
    top: &'d [Field],
    item: Option<&'d [Field]>,
    /// The code lists choices may name, with their versions.
    code_lists: &'d BTreeMap<String, u32>,
}

impl<'d> Scope<'d> {
    fn of(
        top: &'d [Field],
        item: Option<&'d [Field]>,
        code_lists: &'d BTreeMap<String, u32>,
    ) -> Self {
        Scope {
            top,
            item,
            code_lists,
        }
    }

    /// Whether `path` (`a`, `a.b`, `item.c`, `today`) names something.
    fn resolves(&self, path: &str) -> bool {
        let mut parts = path.split('.');
        let first = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        match first {
            "today" => rest.is_empty(),
            "item" => self.item.is_some_and(|fields| resolve_in(fields, &rest)),
            _ => resolve_in(self.top, &[&[first], &rest[..]].concat()),
        }
    }
}

impl<'d> Scope<'d> {
    /// The sub-fields of the repeat at `path`, for rules iterating it.
    fn element(&self, path: &str) -> Option<&'d [Field]> {
        let parts: Vec<&str> = path.split('.').collect();
        let (fields, parts) = match parts.split_first() {
            Some((&"item", rest)) => (self.item?, rest),
            _ => (self.top, &parts[..]),
        };
        let mut fields = fields;
        let mut found = None;
        for part in parts {
            let f = fields.iter().find(|f| f.id == *part)?;
            fields = f.fields.as_deref().unwrap_or(&[]);
            found = Some(f);
        }
        found
            .filter(|f| f.kind == FieldType::Repeat)
            .and_then(|f| f.fields.as_deref())
    }
}

fn resolve_in(fields: &[Field], path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Some(f) = fields.iter().find(|f| f.id == *first) else {
        return false;
    };
    match (f.kind, rest) {
        (_, []) => true,
        // A number after a list or a repeat is an index.
        (FieldType::Repeat, [i, more @ ..]) if i.parse::<usize>().is_ok() => {
            more.is_empty() || resolve_in(f.fields.as_deref().unwrap_or(&[]), more)
        }
        (FieldType::Group, more) => resolve_in(f.fields.as_deref().unwrap_or(&[]), more),
        (FieldType::Person, [sub]) => matches!(*sub, "nik" | "name" | "birth_date" | "sex"),
        (FieldType::Location, [sub]) => matches!(*sub, "lat" | "lon" | "accuracy_m"),
        (_, [i]) => f.list.is_some() && i.parse::<usize>().is_ok(),
        _ => false,
    }
}

fn rule_reads(p: &mut Vec<String>, at: &str, rule: &Value, scope: &Scope<'_>) {
    if let Err(e) = rules::compile(rule) {
        p.push(format!("{at}: does not compile: {e}"));
        return;
    }
    for read in rules::variables(rule) {
        let v = &read.path;
        let ok = match &read.over {
            None => v.is_empty() || scope.resolves(v),
            // The element itself, or a part of an element of a repeat.
            Some(_) if v.is_empty() => true,
            Some(Some(list)) => scope
                .element(list)
                .is_some_and(|fields| resolve_in(fields, &v.split('.').collect::<Vec<_>>())),
            Some(None) => {
                p.push(format!(
                    "{at}: iterates over something that is not a field ({v} cannot be checked)"
                ));
                continue;
            }
        };
        if !ok {
            p.push(format!(
                "{at}: reads {v}, which is not a field of this form"
            ));
        }
    }
}

fn fields(p: &mut Vec<String>, list: &[Field], at: &str, scope: &Scope<'_>) {
    if list.is_empty() {
        p.push(format!("{at}: a form needs at least one field"));
    }
    let mut ids = BTreeSet::new();
    for (i, f) in list.iter().enumerate() {
        let here = format!("{at}[{i}] ({})", f.id);
        if !is_id(&f.id) {
            p.push(format!(
                "{here}.id: use lowercase letters, digits and _ (a letter first)"
            ));
        }
        if rules::RESERVED.contains(&f.id.as_str()) {
            p.push(format!("{here}.id: {} is reserved for rules", f.id));
        }
        if !ids.insert(f.id.as_str()) {
            p.push(format!("{here}.id: {} is used twice", f.id));
        }
        field(p, f, &here, scope);
    }
}

fn field(p: &mut Vec<String>, f: &Field, here: &str, scope: &Scope<'_>) {
    use FieldType::*;
    text(p, &format!("{here}.label"), &f.label);
    if let Some(h) = &f.hint {
        text(p, &format!("{here}.hint"), h);
    }
    let not_for = |p: &mut Vec<String>, what: &str| {
        p.push(format!(
            "{here}.{what}: a {} field has no {what}",
            f.kind.as_str()
        ));
    };
    if f.max_length.is_some() && f.kind != Text {
        not_for(p, "max_length");
    }
    if f.max_length == Some(0) {
        p.push(format!("{here}.max_length: must be at least 1"));
    }
    let ranged = matches!(f.kind, Number | Money | Repeat | MultiChoice);
    if (f.min.is_some() || f.max.is_some()) && !ranged {
        not_for(p, "min/max");
    }
    if let (Some(lo), Some(hi)) = (f.min, f.max)
        && lo > hi
    {
        p.push(format!("{here}: min is above max"));
    }
    if f.integer && f.kind != Number {
        not_for(p, "integer");
    }
    if f.past && f.kind != Date {
        not_for(p, "past");
    }
    if f.level.is_some() && f.kind != Region {
        not_for(p, "level");
    }
    let choice = matches!(f.kind, Choice | MultiChoice);
    match (&f.options, &f.code_list, choice) {
        (Some(_), Some(_), _) => p.push(format!("{here}: give options or a code_list, not both")),
        (None, None, true) => p.push(format!("{here}: a choice needs options or a code_list")),
        (Some(_), _, false) => not_for(p, "options"),
        (_, Some(_), false) => not_for(p, "code_list"),
        _ => {}
    }
    if let Some(options) = &f.options {
        if options.is_empty() {
            p.push(format!("{here}.options: empty"));
        }
        let mut seen = BTreeSet::new();
        for (j, o) in options.iter().enumerate() {
            if o.value.trim().is_empty() {
                p.push(format!("{here}.options[{j}]: empty value"));
            }
            if !seen.insert(o.value.as_str()) {
                p.push(format!("{here}.options[{j}]: {} is listed twice", o.value));
            }
            text(p, &format!("{here}.options[{j}].label"), &o.label);
        }
    }
    if let Some(list) = &f.code_list
        && !scope.code_lists.contains_key(list)
    {
        let known: Vec<&str> = scope.code_lists.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "none: publish the list first".to_owned()
        } else {
            known.join(", ")
        };
        p.push(format!(
            "{here}.code_list: no code list named {list} (known: {known})"
        ));
    }
    let sub_scope;
    let scope = match (f.kind, &f.fields) {
        (Group, Some(subs)) => {
            fields(p, subs, &format!("{here}.fields"), scope);
            scope
        }
        (Repeat, Some(subs)) => {
            sub_scope = Scope::of(scope.top, Some(subs), scope.code_lists);
            fields(p, subs, &format!("{here}.fields"), &sub_scope);
            for u in &f.unique {
                if !subs.iter().any(|s| &s.id == u) {
                    p.push(format!("{here}.unique: {u} is not a sub-field"));
                }
            }
            &sub_scope
        }
        (Group | Repeat, None) => {
            p.push(format!("{here}: a {} needs fields", f.kind.as_str()));
            scope
        }
        (_, Some(_)) => {
            not_for(p, "fields");
            scope
        }
        (_, None) => scope,
    };
    if !f.unique.is_empty() && f.kind != Repeat {
        not_for(p, "unique");
    }
    if let Some(list) = &f.list {
        if matches!(f.kind, Group | Repeat | Person | Location | MultiChoice) {
            not_for(p, "list");
        }
        if list.max == 0 || list.min > list.max {
            p.push(format!("{here}.list: need 1 ≤ max and min ≤ max"));
        }
    }
    for (what, rule) in [
        ("required", &f.required),
        ("relevant", &f.relevant),
        ("calculate", &f.calculate),
    ] {
        match rule {
            Some(Value::Bool(_)) if what == "required" => {}
            Some(r) => rule_reads(p, &format!("{here}.{what}"), r, scope),
            None => {}
        }
    }
    for (j, c) in f.constraints.iter().enumerate() {
        let at = format!("{here}.constraints[{j}]");
        if !is_id(&c.code) {
            p.push(format!("{at}.code: use lowercase letters, digits and _"));
        }
        text(p, &format!("{at}.message"), &c.message);
        rule_reads(p, &format!("{at}.check"), &c.check, scope);
    }
}

fn vectors(p: &mut Vec<String>, form: &Form) {
    for (i, t) in form.definition().tests.iter().enumerate() {
        let at = format!("tests[{i}] ({})", t.name);
        let Some(today) = CivilDate::parse(&t.today) else {
            p.push(format!("{at}.today: not a YYYY-MM-DD date"));
            continue;
        };
        let state = form.evaluate(&t.values, today, super::Side::Both);
        let mut expected = t.errors.clone();
        expected.sort();
        let got = state.error_keys();
        if got != expected {
            p.push(format!(
                "{at}: expected errors {expected:?}, the form gives {got:?}"
            ));
        }
        for h in &t.hidden {
            if state.visible(h) != Some(false) {
                p.push(format!("{at}: expected {h} hidden, it is shown"));
            }
        }
    }
}

/// Every field by path (`a`, `a.b`, `r.c` for a repeat's sub-field).
fn by_path(fields: &[Field]) -> BTreeMap<String, &Field> {
    let mut out = BTreeMap::new();
    fn walk<'f>(fields: &'f [Field], prefix: &str, out: &mut BTreeMap<String, &'f Field>) {
        for f in fields {
            let path = format!("{prefix}{}", f.id);
            if let Some(subs) = &f.fields {
                walk(subs, &format!("{path}."), out);
            }
            out.insert(path, f);
        }
    }
    walk(fields, "", &mut out);
    out
}

/// Every problem of publishing `next` after `prev` (the newest published
/// version of the same service); empty when it may be published.
pub fn check_publish(prev: &Definition, next: &Definition) -> Vec<String> {
    let mut p = Vec::new();
    if next.version <= prev.version {
        p.push(format!(
            "version: {} does not come after the published {}",
            next.version, prev.version
        ));
        return p;
    }
    let before = by_path(&prev.fields);
    let after = by_path(&next.fields);
    for (path, old) in &before {
        let Some(new) = after.get(path) else {
            p.push(format!("fields: {path} was removed (field ids are immutable; stop asking for it with `relevant: false`)"));
            continue;
        };
        if new.kind != old.kind {
            p.push(format!(
                "fields: {path} changed type ({} to {})",
                old.kind.as_str(),
                new.kind.as_str()
            ));
            continue;
        }
        let narrower = |o: Option<f64>, n: Option<f64>, lower: bool| match (o, n) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(o), Some(n)) => {
                if lower {
                    n > o
                } else {
                    n < o
                }
            }
        };
        if narrower(old.min, new.min, true) || narrower(old.max, new.max, false) {
            p.push(format!(
                "fields: {path} narrows its range (types may only widen)"
            ));
        }
        if new.max_length.unwrap_or(200) < old.max_length.unwrap_or(200) {
            p.push(format!(
                "fields: {path} shortens max_length (types may only widen)"
            ));
        }
        if new.integer && !old.integer {
            p.push(format!(
                "fields: {path} becomes integer-only (types may only widen)"
            ));
        }
        if let (Some(o), Some(n)) = (&old.list, &new.list)
            && (n.max < o.max || n.min > o.min || (n.unique && !o.unique))
        {
            p.push(format!(
                "fields: {path} narrows its list (types may only widen)"
            ));
        }
        if old.list.is_some() != new.list.is_some() {
            p.push(format!(
                "fields: {path} changes between one value and a list"
            ));
        }
        for o in old.options.iter().flatten() {
            if !new.options.iter().flatten().any(|n| n.value == o.value) {
                p.push(format!(
                    "fields: {path} removes option {} (mark it deprecated instead)",
                    o.value
                ));
            }
        }
    }
    p
}

/// What keeps a draft made on `prev` from moving to `next` (fields it must
/// now answer, rules that changed); empty when the upgrade is safe.
pub fn upgrade_blockers(prev: &Definition, next: &Definition) -> Vec<String> {
    let mut p = check_publish(prev, next);
    let before = by_path(&prev.fields);
    for (path, new) in by_path(&next.fields) {
        let newly_required = new
            .required
            .as_ref()
            .is_some_and(|r| r != &Value::Bool(false));
        match before.get(&path) {
            None if newly_required => p.push(format!("{path} is new and required")),
            Some(old) if old.required != new.required && newly_required => {
                p.push(format!("{path} is now required"))
            }
            Some(old) if old.constraints != new.constraints => {
                p.push(format!("{path} has other constraints"))
            }
            _ => {}
        }
    }
    if prev.checks != next.checks {
        p.push("the checks across fields changed".into());
    }
    let roles = |d: &Definition| -> BTreeSet<String> {
        d.attachments.iter().map(|a| a.role.clone()).collect()
    };
    for r in roles(next).difference(&roles(prev)) {
        p.push(format!("attachment {r} is new"));
    }
    p
}
