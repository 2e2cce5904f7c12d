//! The demo's catalog scenes. Part one, offline: the village letters built
//! into the app, one drawn as a form. Part two, against the real server:
//! the agency publishes a service the app has never known (the SKTM
//! letter, `catalog/examples/`) while the resident's phone is offline; the
//! phone picks it up in its next sync's round trip, files it offline with
//! one answer refused and then fixed, and the office decides it. A version
//! 2 is checked by the publisher's lint against the published one.

use sambung_core::catalog::{self, EXAMPLES, FormView, Need, lint};
use sambung_core::lifecycle::Status;
use sambung_core::model::{AttachmentRole, Details, Kind, RequestContent, ServiceRequest};
use sambung_core::sync::SyncConfig;
use sambung_linksim::Link;
use sambung_server::api::AppState;
use serde_json::{Map, Value};

use crate::demo_sync::{Party, sync};
use crate::output::CliError;

const SERVICE: &str = "surat_keterangan_tidak_mampu";

fn failed(what: &str) -> CliError {
    CliError::Failed(format!("catalog scene: {what}"))
}

/// Part one, step 11: the letters a village offers, from the app alone.
pub fn run() -> Result<(), CliError> {
    let catalog = catalog::builtin().map_err(|e| failed(&e.to_string()))?;
    let village = "61.05.02.2004";
    let offered = catalog.services(Some(village));
    println!(
        "  {} services built into the app for {village}, {} of them village letters",
        offered.len(),
        offered
            .iter()
            .filter(|d| d.level == catalog::Level::Desa)
            .count()
    );
    let form = catalog
        .latest("surat_keterangan_domisili")
        .ok_or_else(|| failed("no domicile letter"))?;
    draw(&FormView::of(form.definition(), "id"));
    println!("  (a service the app has never known arrives from the agency in part two)");
    Ok(())
}

fn draw(view: &FormView) {
    println!("  {} — {} field(s):", view.name, view.fields.len());
    for f in view.fields.iter().take(6) {
        let mark = match f.required {
            Need::Always => "*",
            Need::Sometimes => "?",
            Need::Optional => " ",
        };
        println!("    {mark} {:<22} {}", f.path, f.label);
    }
}

/// The SKTM definition as the agency publishes it.
fn sktm() -> Result<&'static str, CliError> {
    EXAMPLES
        .iter()
        .find(|(name, _)| name.starts_with(SERVICE))
        .map(|(_, json)| *json)
        .ok_or_else(|| failed("no SKTM file"))
}

/// A request's content for the SKTM: the resident's own details and
/// `answers`, recording the version and hash the phone holds.
fn content(
    catalog: &catalog::Catalog,
    answers: &Map<String, Value>,
) -> Result<RequestContent, CliError> {
    let form = catalog.latest(SERVICE).ok_or_else(|| failed("not held"))?;
    let d = form.definition();
    let hash = catalog
        .published(&d.id, d.version)
        .map(|p| p.hash.clone())
        .ok_or_else(|| failed("no hash"))?;
    let mut c = sambung_core::templates::example(Kind::Service);
    c.details = Details::Service(ServiceRequest::new(d, &hash, answers));
    Ok(c)
}

/// Part two's last scene.
pub async fn publish_and_file(
    state: &AppState,
    resident: &Party,
    office: &Party,
    link: &Link,
    config: &SyncConfig,
) -> Result<(), CliError> {
    println!(
        "\nThe agency publishes a new service while the resident's phone is offline: the SKTM letter (a file, not a release)."
    );
    let json = sktm()?;
    let published = sambung_server::catalog::publish(
        state.storage(),
        state.catalogs(),
        crate::catalog::console("sambung admin catalog publish"),
        json,
    )
    .map_err(|e| failed(&e.to_string()))?;
    println!(
        "  published {}@{} sha256:{}… ({} B of JSON; linted, test vectors run, in the audit trail)",
        published.service,
        published.version,
        &published.hash[..16],
        json.len()
    );
    if resident.store.catalog()?.latest(SERVICE).is_some() {
        return Err(failed("the phone knew the service before it synced"));
    }
    println!("  the resident's phone does not know it yet");

    println!("\nThe signal returns: the service comes inside the same single round trip.");
    sync(resident, link, config).await?;
    let catalog = resident.store.catalog()?;
    let form = catalog
        .latest(SERVICE)
        .ok_or_else(|| failed("the phone did not receive the service"))?;
    draw(&FormView::of(form.definition(), "id"));

    println!("\nOffline again, the resident files it; one answer is refused, then fixed:");
    let mut answers = form
        .definition()
        .example()
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| failed("no example answers"))?;
    answers.insert("purpose".into(), "other".into());
    match resident.store.create(content(&catalog, &answers)?) {
        Err(sambung_core::Error::Form(issues)) if issues.len() == 1 => {
            let i = &issues[0];
            let field = i.field.trim_start_matches("details.answers.");
            println!("  refused: {field:<16} {:<10} {}", i.code, i.message.id);
        }
        other => {
            return Err(failed(&format!(
                "the changed purpose did not refuse exactly one field: {other:?}"
            )));
        }
    }
    answers.insert(
        "purpose_detail".into(),
        "Persyaratan beasiswa kuliah".into(),
    );
    let id = resident.store.create(content(&catalog, &answers)?)?;
    let state_now = form.evaluate(
        &Value::Object(answers),
        sambung_core::Timestamp::now().today_in_indonesia(),
        catalog::Side::Device,
    );
    println!(
        "  fixed: accepted; household size {} and income per person Rp{} calculated by the form",
        state_now.calculated["household_size"], state_now.calculated["income_per_person_idr"]
    );
    for (role, name) in [
        (AttachmentRole::KtpCopy, "ktp.pdf"),
        (AttachmentRole::KkCopy, "kk.pdf"),
    ] {
        resident
            .store
            .attach(&id, role, name, "application/pdf", &b"%PDF-1.4 salinan"[..])?;
    }
    // The RT letter is the service's own document, not one of the app's roles.
    resident.store.attach_for_service(
        &id,
        "rt_letter",
        "pengantar-rt.pdf",
        "application/pdf",
        &b"%PDF-1.4 pengantar RT 014"[..],
    )?;
    resident.store.submit(&id)?;
    println!(
        "  submitted with its three documents; the phone judged it by exactly the definition the server will"
    );

    println!("\nThe signal returns; the office decides.");
    sync(resident, link, config).await?;
    sync(office, link, config).await?;
    for to in [Status::Received, Status::InReview, Status::Approved] {
        office.store.transition(&id, to, None)?;
    }
    sync(office, link, config).await?;
    sync(resident, link, config).await?;
    let status = resident.store.get(&id)?.status();
    println!("  the resident's phone shows the SKTM request {status}");
    if status != Status::Approved {
        return Err(failed("the decision did not reach the phone"));
    }

    // The office's next version: an optional field, linted against the
    // published one before it is published.
    let mut next = form.definition().clone();
    next.version = 2;
    let field: catalog::Field = serde_json::from_value(serde_json::json!({
        "id": "dtks_number", "type": "text", "max_length": 40,
        "label": {"id": "Nomor DTKS (bila terdaftar)", "en": "Social welfare register (DTKS) number, if registered"}
    }))
    .map_err(|e| failed(&e.to_string()))?;
    next.fields.push(field);
    let mut problems = lint::check(&next, &Default::default());
    problems.extend(lint::check_publish(form.definition(), &next));
    if !problems.is_empty() {
        return Err(failed(&problems.join("; ")));
    }
    println!(
        "  version 2 with an optional DTKS number: passes the lint and is compatible ({} blocker(s) for drafts)",
        lint::upgrade_blockers(form.definition(), &next).len()
    );
    Ok(())
}
