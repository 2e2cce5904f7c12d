//! The service catalog for the app's UI (issue 15): what services this
//! device knows, a service's form in the user's language, and the live
//! state of a form for the answers typed so far. The catalog is the
//! built-in one until delivery from the server lands; these are plain
//! functions because they need no store.

use std::collections::HashMap;
use std::sync::OnceLock;

use sambung_core::catalog::{self, Catalog, FieldState, Form, FormView, Issue, ServiceView, Side};

use crate::error::{SambungError, guard};

fn known() -> Result<&'static Catalog, SambungError> {
    static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
    CATALOG
        .get_or_init(|| catalog::builtin().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|reason| SambungError::Internal {
            reason: reason.clone(),
        })
}

fn service(id: &str) -> Result<&'static Form, SambungError> {
    known()?
        .latest(id)
        .ok_or(sambung_core::Error::NotFound { what: "service" })
        .map_err(SambungError::from)
}

/// The live state of a form: what to show, what is required, every
/// problem (errors block submission, warnings do not), and the calculated
/// values (each as JSON text, keyed by field path).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FormCheck {
    pub fields: Vec<FieldState>,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
    pub calculated: HashMap<String, String>,
}

/// The services this device knows, offered in `region` (a Kemendagri code;
/// none: all), with texts in `lang` (`"en"`, or Indonesian otherwise).
#[uniffi::export]
pub fn services(region: Option<String>, lang: String) -> Result<Vec<ServiceView>, SambungError> {
    guard(|| {
        Ok(known()?
            .services(region.as_deref())
            .into_iter()
            .map(|d| ServiceView::of(d, &lang))
            .collect())
    })
}

/// A service's form as the UI draws it: fields in order with labels,
/// hints, choices and limits; the documents asked for. `NotFound` for a
/// service this device does not know.
#[uniffi::export]
pub fn form(service_id: String, lang: String) -> Result<FormView, SambungError> {
    guard(|| Ok(FormView::of(service(&service_id)?.definition(), &lang)))
}

/// Filled-in example answers of a service (JSON), to start from.
#[uniffi::export]
pub fn service_template(service_id: String) -> Result<String, SambungError> {
    guard(|| {
        let d = service(&service_id)?.definition();
        let example = d
            .example()
            .ok_or(sambung_core::Error::NotFound { what: "example" })?;
        Ok(example.to_string())
    })
}

/// The form's state for `answers_json` (an object keyed by field id) with
/// the documents of `attached` roles: call it on every edit. Answers that
/// are not JSON: `Forbidden` naming where the JSON breaks; a value of the
/// wrong shape is one of the returned errors, not a failure.
#[uniffi::export]
pub fn evaluate(
    service_id: String,
    answers_json: String,
    attached: Vec<String>,
) -> Result<FormCheck, SambungError> {
    guard(|| {
        let form = service(&service_id)?;
        let answers: serde_json::Value =
            serde_json::from_str(&answers_json).map_err(sambung_core::Error::from)?;
        let roles: Vec<&str> = attached.iter().map(String::as_str).collect();
        let today = sambung_core::Timestamp::now().today_in_indonesia();
        let state = form.evaluate_for_submit(&answers, &roles, today, Side::Device);
        Ok(FormCheck {
            fields: state.fields,
            errors: state.errors,
            warnings: state.warnings,
            calculated: state
                .calculated
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_listed_rendered_and_evaluated() {
        let all = services(None, "en".into()).unwrap();
        assert!(
            all.iter()
                .any(|s| s.service == "surat_keterangan_tidak_mampu")
        );
        let f = form("izin_reklame".into(), "id".into()).unwrap();
        assert_eq!(f.name, "Izin Penyelenggaraan Reklame");
        let answers = service_template("izin_reklame".into()).unwrap();
        let docs = vec!["ktp_copy".into(), "design".into(), "site_photo".into()];
        let check = evaluate("izin_reklame".into(), answers, docs).unwrap();
        assert!(check.errors.is_empty(), "{:?}", check.errors);
        assert_eq!(
            check.calculated.get("area_m2").map(String::as_str),
            Some("3")
        );
    }

    #[test]
    fn bad_input_gets_typed_errors() {
        assert!(matches!(
            form("izin_terbang".into(), "en".into()),
            Err(SambungError::NotFound { .. })
        ));
        assert!(matches!(
            evaluate("ktp_el".into(), "{nik".into(), vec![]),
            Err(SambungError::Forbidden { .. })
        ));
        let check = evaluate("ktp_el".into(), "[1]".into(), vec![]).unwrap();
        assert_eq!(check.errors[0].code, "wrong_type");
    }
}
