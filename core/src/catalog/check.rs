//! One request judged by the catalog: what the device runs before it lets
//! a request leave draft, and the server on every transition out of draft
//! and every change to what was filed. The same code on both sides.

use super::codes::CodeLookup;
use super::{Catalog, Issue, Side, Text};
use crate::model::{Details, Request, ServiceRequest};
use crate::time::CivilDate;
use crate::validation::{Code, FieldIssue};

impl Catalog {
    /// What the rules table is asked about `request`: its kind, and for a
    /// catalog service whether its definition has the office verify it on
    /// site (a service this catalog does not hold: not).
    pub fn subject(&self, request: &Request) -> crate::rules::Subject {
        match &request.content.details {
            Details::Service(s) => crate::rules::Subject {
                kind: request.kind(),
                field_checked: self
                    .get(&s.service, s.version)
                    .is_some_and(|f| f.definition().workflow.field_check),
            },
            _ => request.kind().into(),
        }
    }

    /// Every error that keeps `request` from being filed (`for_submit`:
    /// the required attachments too), as `side` judges: the request's
    /// common fields by the compiled-in checks, and a catalog service's
    /// answers by the exact definition it was created on — its version
    /// held by this catalog, its hash the published one, not retired
    /// before the request was created; its codes by `codes`, the lists'
    /// holder. Empty: valid.
    ///
    /// ```
    /// use sambung_core::{catalog::{builtin, codes::NoCodes, Side}, model::{Request, Kind}, templates, CivilDate, Timestamp, lifecycle::Role};
    /// let catalog = builtin().unwrap();
    /// let request = Request::draft(templates::example(Kind::Service), "me", Role::Resident, Timestamp::now());
    /// let today = CivilDate::new(2026, 12, 4).unwrap();
    /// assert!(catalog.check_request(&request, today, Side::Device, false, &NoCodes).is_empty());
    /// ```
    pub fn check_request(
        &self,
        request: &Request,
        today: CivilDate,
        side: Side,
        for_submit: bool,
        codes: &dyn CodeLookup,
    ) -> Vec<Issue> {
        let report = if for_submit {
            request.validate_for_submit(today)
        } else {
            request.content.validate(today)
        };
        let mut issues: Vec<Issue> = report.errors.iter().map(issue_of).collect();
        // Answers whose shape is refused (too many, too long, not JSON) are
        // not evaluated: that would cost what their size allows.
        let shape_refused = report
            .errors
            .iter()
            .any(|e| e.field.starts_with("details."));
        if let Details::Service(s) = &request.content.details
            && !shape_refused
        {
            issues.extend(self.check_answers(request, s, today, side, for_submit, codes));
        }
        issues
    }

    fn check_answers(
        &self,
        request: &Request,
        s: &ServiceRequest,
        today: CivilDate,
        side: Side,
        for_submit: bool,
        codes: &dyn CodeLookup,
    ) -> Vec<Issue> {
        let (Some(form), Some(published)) = (
            self.get(&s.service, s.version),
            self.published(&s.service, s.version),
        ) else {
            return vec![issue("details.service", Code::UnknownService)];
        };
        if published.hash != s.hash {
            return vec![issue("details.hash", Code::DefinitionMismatch)];
        }
        if let Some(until) = published.accept_until
            && request.created_at.today_in_indonesia() > until
        {
            return vec![issue("details.version", Code::ServiceRetired)];
        }
        let values = s.values();
        let mut state = if for_submit {
            let attached: Vec<&str> = request
                .attachments
                .iter()
                .map(|a| a.purpose_name())
                .collect();
            form.evaluate_for_submit(&values, &attached, today, side)
        } else {
            form.evaluate(&values, today, side)
        };
        state.judge_codes(codes);
        state
            .errors
            .into_iter()
            .map(|mut i| {
                if !i.field.starts_with("attachments.") {
                    i.field = if i.field.is_empty() {
                        "details.answers".to_owned()
                    } else {
                        format!("details.answers.{}", i.field)
                    };
                }
                i
            })
            .collect()
    }
}

fn issue(field: &str, code: Code) -> Issue {
    issue_of(&FieldIssue::new(field, code))
}

fn issue_of(i: &FieldIssue) -> Issue {
    Issue {
        field: i.field.clone(),
        code: i.code.as_str().to_owned(),
        message: Text {
            id: i.message_id.to_owned(),
            en: i.message_en.to_owned(),
        },
    }
}
