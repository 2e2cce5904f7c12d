//! The service catalog for the app's UI (issue 15): the services this
//! device knows — built in, and what its server delivered at its last
//! sync —, a service's form in the user's language, the live state of a
//! form for the answers typed so far, and the details of a new request
//! for a service. Read from the client's store, offline.

use std::collections::HashMap;
use std::sync::Arc;

use sambung_core::catalog::{Catalog, FieldState, Form, FormView, Issue, ServiceView, Side};
use sambung_core::model::{AttachmentRef, Details, RequestId, ServiceRequest};
use sambung_core::store::{CodeMatch, HeldCodeList};

use crate::client::Client;
use crate::error::SambungError;

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

/// The newest version of service `id` here.
fn latest<'c>(catalog: &'c Catalog, id: &str) -> Result<&'c Form, sambung_core::Error> {
    catalog
        .latest(id)
        .ok_or(sambung_core::Error::NotFound { what: "service" })
}

fn answers_of(
    json: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, sambung_core::Error> {
    match serde_json::from_str::<serde_json::Value>(json)? {
        serde_json::Value::Object(m) => Ok(m),
        _ => Err(sambung_core::Error::Forbidden(
            "the answers are a JSON object keyed by field id".into(),
        )),
    }
}

#[uniffi::export]
impl Client {
    /// The services this device knows, offered in `region` (a Kemendagri
    /// code; none: all), with texts in `lang` (`"en"`, or Indonesian
    /// otherwise). Delivered definitions this app cannot read (a newer
    /// format) are left out: see `unusable_services`.
    pub async fn services(
        &self,
        region: Option<String>,
        lang: String,
    ) -> Result<Vec<ServiceView>, SambungError> {
        self.read(move |s| {
            Ok(s.catalog()?
                .services(region.as_deref())
                .into_iter()
                .map(|d| ServiceView::of(d, &lang))
                .collect())
        })
        .await
    }

    /// Delivered services this app cannot use, each `id@version: reason`
    /// ("update the app").
    pub async fn unusable_services(&self) -> Result<Vec<String>, SambungError> {
        self.read(|s| s.catalog_unusable()).await
    }

    /// A service's form (its newest version here) as the UI draws it:
    /// fields in order with labels, hints, choices and limits; the
    /// documents asked for. `NotFound` for a service this device does not
    /// know.
    pub async fn form(&self, service_id: String, lang: String) -> Result<FormView, SambungError> {
        self.read(move |s| {
            let catalog = s.catalog()?;
            Ok(FormView::of(
                latest(&catalog, &service_id)?.definition(),
                &lang,
            ))
        })
        .await
    }

    /// Filled-in example answers of a service (JSON), to start from.
    pub async fn service_template(&self, service_id: String) -> Result<String, SambungError> {
        self.read(move |s| {
            let catalog = s.catalog()?;
            let d = latest(&catalog, &service_id)?.definition();
            let example = d
                .example()
                .ok_or(sambung_core::Error::NotFound { what: "example" })?;
            Ok(example.to_string())
        })
        .await
    }

    /// The form's state for `answers_json` (an object keyed by field id)
    /// with the documents of `attached` roles: call it on every edit.
    /// Answers that are not a JSON object: `Forbidden`; a value of the
    /// wrong shape is one of the returned errors, not a failure.
    pub async fn evaluate(
        &self,
        service_id: String,
        answers_json: String,
        attached: Vec<String>,
    ) -> Result<FormCheck, SambungError> {
        self.read(move |s| {
            let catalog = s.catalog()?;
            let form = latest(&catalog, &service_id)?;
            let answers = serde_json::Value::Object(answers_of(&answers_json)?);
            let roles: Vec<&str> = attached.iter().map(String::as_str).collect();
            let today = sambung_core::Timestamp::now().today_in_indonesia();
            let mut state = form.evaluate_for_submit(&answers, &roles, today, Side::Device);
            state.judge_codes(s);
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
        .await
    }

    /// Codes of code list `list` (a choice field's `code_list`) matching
    /// `query`, offline, at most `limit` (1 to 200): digits find the codes
    /// starting with them (`"32.01"`), words find names holding words
    /// starting with each (`"keude bak"`), best first. A list this device
    /// does not hold yet: `NotFound`; a query over 100 characters:
    /// `Forbidden`.
    pub async fn search_codes(
        &self,
        list: String,
        query: String,
        limit: u32,
    ) -> Result<Vec<CodeMatch>, SambungError> {
        self.read(move |s| s.search_codes(&list, &query, limit))
            .await
    }

    /// The code lists this device holds, with their versions.
    pub async fn code_lists(&self) -> Result<Vec<HeldCodeList>, SambungError> {
        self.read(|s| s.code_lists()).await
    }

    /// The details of a new request for a service (its newest version
    /// here, with the hash of that version as published), for the
    /// `RequestContent` given to `create_draft`.
    pub async fn service_details(
        &self,
        service_id: String,
        answers_json: String,
    ) -> Result<Details, SambungError> {
        self.read(move |s| {
            let catalog = s.catalog()?;
            let d = latest(&catalog, &service_id)?.definition();
            let hash = catalog
                .published(&d.id, d.version)
                .map(|p| p.hash.clone())
                .ok_or(sambung_core::Error::NotFound { what: "service" })?;
            Ok(Details::Service(ServiceRequest::new(
                d,
                &hash,
                &answers_of(&answers_json)?,
            )))
        })
        .await
    }

    /// Attaches a document a service asks for by its own name (`purpose`,
    /// e.g. `rt_letter`; one of the app's roles is taken as that role).
    pub async fn attach_for_service(
        self: Arc<Self>,
        id: RequestId,
        purpose: String,
        bytes: Vec<u8>,
        name: String,
        mime: String,
    ) -> Result<AttachmentRef, SambungError> {
        let i = id.clone();
        self.write(id, move |s| {
            s.attach_for_service(&i, &purpose, &name, &mime, bytes.as_slice())
        })
        .await
    }
}
