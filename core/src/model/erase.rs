//! Erasure of a person's data from a request (UU PDP art. 8 and 16: the
//! right to erasure, within what other law requires to be kept).
//!
//! **Kept** — the non-personal record of a government decision that
//! archival and administrative law require (UU 43/2009 on archives, UU
//! 30/2014 on government administration): the request's id, kind, region,
//! lawful basis, when it was created and by which (pseudonymous) account,
//! its status history — who decided what and when — without the notes on
//! it, the assignment, and the attachments' roles and sizes.
//!
//! **Erased** — the applicant (name, NIK, birth date, sex, address), the
//! contact phone, the consent's free text, every value of the kind-specific
//! details (required categorical fields — a reason, a category, the sex of
//! an unnamed witness — are kept: with names, numbers, dates and free text
//! gone they identify nobody; free text, numbers, dates, identifiers and
//! optional values go), the text
//! of every note and history note, and attachment names and content
//! addresses (the blobs themselves are deleted where they are held).

use serde_json::Value;

use super::{Details, Request};
use crate::Timestamp;

/// What erased text reads.
pub const ERASED: &str = "[dihapus]";

/// The request with the person's data erased, marked erased at `at`. The
/// caller stores it as a new document with a new history: the old history
/// holds the erased values.
pub fn erased(request: &Request, at: Timestamp) -> Request {
    let mut r = request.clone();
    r.content.applicant = None;
    r.content.contact_phone = None;
    if let Some(c) = &mut r.content.consent {
        c.purpose = ERASED.into();
    }
    r.content.details = erased_details(&r.content.details);
    for n in &mut r.notes {
        n.text = ERASED.into();
    }
    for e in &mut r.history {
        if e.note.is_some() {
            e.note = Some(ERASED.into());
        }
    }
    for a in &mut r.attachments {
        a.name = ERASED.into();
        a.sha256 = String::new();
        a.mime = String::new();
    }
    r.erased_at = Some(at);
    r
}

/// Every leaf of the details blanked where the type allows: `null` for an
/// optional value, [`ERASED`] for text, 0 for a number; a value that
/// allows none of these (a required category) stays. Booleans stay.
fn erased_details(details: &Details) -> Details {
    let Ok(mut value) = serde_json::to_value(details) else {
        return details.clone();
    };
    let mut paths = Vec::new();
    leaves(&value, &mut Vec::new(), &mut paths);
    for path in paths {
        if path.first().map(String::as_str) == Some("kind") {
            continue;
        }
        let original = get(&value, &path).cloned().unwrap_or(Value::Null);
        if original.is_boolean() || original.is_null() {
            continue;
        }
        let candidates = [Value::Null, Value::String(ERASED.into()), Value::from(0)];
        let mut done = false;
        for c in candidates {
            set(&mut value, &path, c);
            if serde_json::from_value::<Details>(value.clone()).is_ok() {
                done = true;
                break;
            }
        }
        if !done {
            set(&mut value, &path, original);
        }
    }
    serde_json::from_value(value).unwrap_or_else(|_| details.clone())
}

fn leaves(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(k.clone());
                leaves(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(i.to_string());
                leaves(child, at, out);
                at.pop();
            }
        }
        _ => out.push(at.clone()),
    }
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| match v {
        Value::Object(m) => m.get(k),
        Value::Array(a) => a.get(k.parse::<usize>().ok()?),
        _ => None,
    })
}

fn set(v: &mut Value, path: &[String], new: Value) {
    let mut cur = v;
    for k in path {
        cur = match cur {
            Value::Object(m) => match m.get_mut(k) {
                Some(c) => c,
                None => return,
            },
            Value::Array(a) => match k.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(c) => c,
                None => return,
            },
            _ => return,
        };
    }
    *cur = new;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn every_kind_keeps_its_record_and_loses_the_persons_data() {
        let mut all_survivors: Vec<String> = Vec::new();
        for &kind in Kind::ALL {
            let content = crate::templates::example(kind);
            let original = serde_json::to_string(&content).unwrap();
            let request = Request {
                id: crate::model::RequestId::random(),
                created_at: Timestamp(1),
                created_by: "warga-1".into(),
                created_role: crate::lifecycle::Role::Resident,
                content,
                attachments: vec![],
                history: vec![],
                notes: vec![],
                assignee: Some("petugas-1".into()),
                erased_at: None,
            };
            let e = erased(&request, Timestamp(2));
            assert_eq!(e.id, request.id);
            assert_eq!(e.kind(), kind);
            assert_eq!(e.content.region, request.content.region);
            assert_eq!(e.assignee, request.assignee);
            assert_eq!(e.erased_at, Some(Timestamp(2)));
            assert!(e.content.applicant.is_none());
            // No text value of the example survives, but categorical ones.
            let after = serde_json::to_string(&e.content).unwrap();
            let value: Value = serde_json::from_str(&original).unwrap();
            let mut paths = Vec::new();
            leaves(&value, &mut Vec::new(), &mut paths);
            let mut survivors = Vec::new();
            for p in paths {
                // The request's own region is kept on purpose.
                if let Some(Value::String(s)) = get(&value, &p)
                    && s.len() >= 4
                    && *s != request.content.region.0
                    && p.last().map(String::as_str) != Some("kind")
                    && !matches!(p[0].as_str(), "lawful_basis" | "region")
                    && after.contains(s.as_str())
                {
                    survivors.push(format!("{kind:?} {p:?} {s}"));
                }
            }
            all_survivors.extend(survivors);
            for nik_like in ["3273014108900007", "Siti Aminah", "+62 812"] {
                assert!(!after.contains(nik_like), "{kind:?}: {nik_like} survived");
            }
        }
        // Only required categorical values stay — what kind of request,
        // which reason, the sex of an unnamed witness — which identify
        // nobody once names, numbers, dates and free text are gone. (The
        // applicant's "female" is listed only because a child's sex
        // still reads "female"; the applicant is removed whole.)
        let categorical = [
            r#"BusinessLicence ["details", "building_status"] rented"#,
            r#"BuildingApproval ["details", "environmental_document"] sppl"#,
            r#"Birth ["applicant", "sex"] female"#,
            r#"Birth ["details", "child_sex"] female"#,
            r#"Birth ["details", "witnesses", "0", "sex"] male"#,
            r#"Birth ["details", "witnesses", "1", "sex"] female"#,
            r#"Death ["details", "cause"] old_age"#,
            r#"MoveAddress ["details", "reason"] work"#,
            r#"FamilyCardUpdate ["details", "change"] correct_data"#,
            r#"KtpEl ["details", "reason"] damaged"#,
            r#"PbbReduction ["details", "reason"] disaster"#,
            r#"VehicleTax ["details", "service"] annual"#,
            r#"Bphtb ["details", "transfer"] sale"#,
            r#"Complaint ["details", "category"] infrastructure"#,
        ];
        assert_eq!(all_survivors, categorical);
    }
}
