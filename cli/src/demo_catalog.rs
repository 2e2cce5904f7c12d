//! The demo's catalog scene: a service the code has never known, defined
//! as data, listed for a village, drawn as a form, filled with one field
//! refused and then fixed, and a new version checked by the publisher's
//! lint. Offline, like part one; delivery to phones comes with issue 15's
//! next part.

use sambung_core::catalog::{self, FormView, Need, Side, lint};
use sambung_core::time::CivilDate;

use crate::output::CliError;

const SERVICE: &str = "surat_keterangan_tidak_mampu";

fn failed(what: &str) -> CliError {
    CliError::Failed(format!("catalog scene: {what}"))
}

pub fn run() -> Result<(), CliError> {
    let catalog = catalog::builtin().map_err(|e| failed(&e.to_string()))?;
    let village = "61.05.02.2004";
    let offered = catalog.services(Some(village));
    println!(
        "  {} services offered in {village}, {} of them village letters",
        offered.len(),
        offered
            .iter()
            .filter(|d| d.level == catalog::Level::Desa)
            .count()
    );
    let form = catalog.latest(SERVICE).ok_or_else(|| failed("no SKTM"))?;
    let view = FormView::of(form.definition(), "id");
    println!("  {} — {} field(s):", view.name, view.fields.len());
    for f in view.fields.iter().take(6) {
        let mark = match f.required {
            Need::Always => "*",
            Need::Sometimes => "?",
            Need::Optional => " ",
        };
        println!("    {mark} {:<22} {}", f.path, f.label);
    }
    let mut answers = form
        .definition()
        .example()
        .cloned()
        .ok_or_else(|| failed("no example answers"))?;
    answers["purpose"] = "other".into();
    let today = CivilDate::new(2026, 12, 3).ok_or_else(|| failed("a date"))?;
    let docs = ["ktp_copy", "kk_copy", "rt_letter"];
    let state = form.evaluate_for_submit(&answers, &docs, today, Side::Device);
    for e in &state.errors {
        println!("  refused: {:<16} {:<10} {}", e.field, e.code, e.message.id);
    }
    if state.errors.len() != 1 {
        return Err(failed(
            "the changed purpose did not refuse exactly one field",
        ));
    }
    answers["purpose_detail"] = "Persyaratan beasiswa kuliah".into();
    let state = form.evaluate_for_submit(&answers, &docs, today, Side::Device);
    if !state.is_ok() {
        return Err(failed("the fixed answers were refused"));
    }
    println!(
        "  fixed: accepted; household size {} and income per person Rp{} calculated by the form",
        state.calculated["household_size"], state.calculated["income_per_person_idr"]
    );
    // The office adds a field in version 2: a file, linted against version 1.
    let mut next = form.definition().clone();
    next.version = 2;
    let field: catalog::Field = serde_json::from_value(serde_json::json!({
        "id": "dtks_number", "type": "text", "max_length": 40,
        "label": {"id": "Nomor DTKS (bila terdaftar)", "en": "Social welfare register (DTKS) number, if registered"}
    }))
    .map_err(|e| failed(&e.to_string()))?;
    next.fields.push(field);
    let mut problems = lint::check(&next);
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
