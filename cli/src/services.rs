//! `sambung device services | form | check | template --service`: the
//! services the device knows, offline, as the app shows them (issue 15).
//! The device knows the built-in catalog and what its server delivered
//! (read from its store when there is one; the built-in catalog without).

use std::path::Path;
use std::sync::Arc;

use clap::Args;
use sambung_core::catalog::{self, Catalog, Form, FormView, Need, ServiceView, Side};

use crate::device::print_json;
use crate::input::read_text;
use crate::output::CliError;

/// The language of the texts shown.
#[derive(Args, Debug, Clone)]
pub struct Lang {
    /// `id` (Indonesian, the default) or `en`.
    #[arg(long, default_value = "id", value_parser = ["id", "en"])]
    pub lang: String,
}

/// The catalog of the device at `home` (its store when it has one: built
/// in and delivered; the built-in catalog otherwise). Delivered versions
/// this app cannot use are named on standard error.
pub fn known(home: Option<&Path>) -> Result<Arc<Catalog>, CliError> {
    Ok(known_with_store(home)?.0)
}

/// [`known`], and the store it came from (which holds the code lists).
pub fn known_with_store(
    home: Option<&Path>,
) -> Result<(Arc<Catalog>, Option<sambung_core::store::Store>), CliError> {
    if let Some(home) = home
        && sambung_core::store::Store::exists(home)
    {
        let store = crate::device::open(home)?;
        for u in store.catalog_unusable()? {
            eprintln!("note: {u}");
        }
        return Ok((store.catalog()?, Some(store)));
    }
    Ok((
        Arc::new(catalog::builtin().map_err(|e| CliError::Failed(e.to_string()))?),
        None,
    ))
}

/// The newest version of service `id`.
pub fn service<'c>(catalog: &'c Catalog, id: &str) -> Result<&'c Form, CliError> {
    catalog.latest(id).ok_or_else(|| {
        let ids: Vec<String> = catalog
            .services(None)
            .iter()
            .map(|d| d.id.clone())
            .collect();
        CliError::Usage(format!("unknown service {id}; one of: {}", ids.join(", ")))
    })
}

/// `device services`.
pub fn services(
    catalog: &Catalog,
    region: Option<&str>,
    json: bool,
    lang: &str,
) -> Result<(), CliError> {
    if let Some(r) = region
        && !sambung_core::identifiers::RegionCode::from(r)
            .check()
            .is_empty()
    {
        return Err(CliError::Usage(format!("not a region code: {r}")));
    }
    let list = catalog.services(region);
    if json {
        let views: Vec<ServiceView> = list.iter().map(|d| ServiceView::of(d, lang)).collect();
        return print_json(&views);
    }
    for d in list {
        println!(
            "{:<30} v{:<3} {:<10} {:>3} day(s)  Rp{:<8} {}",
            d.id,
            d.version,
            d.level.as_str(),
            d.standard.days,
            d.standard.fee_idr,
            d.name.get(lang)
        );
    }
    Ok(())
}

/// `device form SERVICE`.
pub fn form(catalog: &Catalog, id: &str, json: bool, lang: &str) -> Result<(), CliError> {
    let view = FormView::of(service(catalog, id)?.definition(), lang);
    if json {
        return print_json(&view);
    }
    println!("{} ({} v{})", view.name, view.service, view.version);
    println!("{}", view.description);
    println!("{} day(s), Rp{}\n", view.days, view.fee_idr);
    let mark = |n: Need| match n {
        Need::Always => "*",
        Need::Sometimes => "?",
        Need::Optional => " ",
    };
    for f in &view.fields {
        let depth = f.path.matches('.').count();
        let mut line = format!(
            "{}{} {:<24} {:<12} {}",
            "  ".repeat(depth),
            mark(f.required),
            f.path,
            f.kind.as_str(),
            f.label
        );
        if f.conditional {
            line.push_str(" [when…]");
        }
        if f.calculated {
            line.push_str(" [calculated]");
        }
        println!("{line}");
        if !f.options.is_empty() {
            let opts: Vec<String> = f
                .options
                .iter()
                .map(|o| format!("{} ({})", o.value, o.label))
                .collect();
            println!("{}      {}", "  ".repeat(depth), opts.join(", "));
        }
    }
    if !view.documents.is_empty() {
        println!();
        for d in &view.documents {
            println!("{} document {:<20} {}", mark(d.required), d.role, d.label);
        }
    }
    println!("\n* required   ? required when the answers ask for it");
    Ok(())
}

/// `device template --service SERVICE`: a filled-in example.
pub fn template(catalog: &Catalog, id: &str) -> Result<(), CliError> {
    let d = service(catalog, id)?.definition();
    let example = d.example().ok_or_else(|| {
        CliError::Failed(format!(
            "{} carries no valid example (test vector)",
            d.key()
        ))
    })?;
    print_json(example)
}

/// `device check --service SERVICE --json FILE`: the form's verdict on the
/// answers, as the app shows it live; exit 3 when something blocks.
pub fn check(
    catalog: &Catalog,
    codes: &dyn sambung_core::catalog::codes::CodeLookup,
    id: &str,
    path: &Path,
    attached: &[String],
    json: bool,
    lang: &str,
) -> Result<(), CliError> {
    let form = service(catalog, id)?;
    let asked: Vec<&str> = form
        .definition()
        .attachments
        .iter()
        .map(|a| a.role.as_str())
        .collect();
    if let Some(unknown) = attached.iter().find(|a| !asked.contains(&a.as_str())) {
        return Err(CliError::Usage(format!(
            "{id} asks for no document {unknown}; it asks for: {}",
            asked.join(", ")
        )));
    }
    let text = read_text(path)?;
    let values: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("the answers are not JSON: {e}")))?;
    let roles: Vec<&str> = attached.iter().map(String::as_str).collect();
    let mut state = form.evaluate_for_submit(
        &values,
        &roles,
        sambung_core::Timestamp::now().today_in_indonesia(),
        Side::Device,
    );
    state.judge_codes(codes);
    if json {
        print_json(&state)?;
    } else {
        for (v, issues) in [("error", &state.errors), ("warning", &state.warnings)] {
            for i in issues {
                println!(
                    "{v:<8} {:<28} {:<22} {}",
                    i.field,
                    i.code,
                    i.message.get(lang)
                );
            }
        }
        for (path, value) in &state.calculated {
            println!("{:<8} {path:<28} = {value}", "value");
        }
    }
    if state.is_ok() {
        if !json {
            println!("ok: {} can be submitted", form.definition().key());
        }
        Ok(())
    } else {
        Err(CliError::Refused(format!(
            "{} problem(s) block submission",
            state.errors.len()
        )))
    }
}

/// The content of a new request for service `id` (its newest version
/// here): the JSON is a request's content whose `details` holds the
/// answers, by field id (`device template --service`).
pub fn content_for(
    catalog: &Catalog,
    id: &str,
    path: &Path,
) -> Result<sambung_core::model::RequestContent, CliError> {
    let form = service(catalog, id)?;
    let d = form.definition();
    let hash = catalog
        .published(&d.id, d.version)
        .map(|p| p.hash.clone())
        .ok_or_else(|| CliError::Failed(format!("{} has no published hash", d.key())))?;
    let text = read_text(path)?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(sambung_core::Error::from)?;
    let Some(object) = value.as_object_mut() else {
        return Err(CliError::Usage(
            "the JSON is a request's content: an object with region, lawful_basis, applicant, details".into(),
        ));
    };
    let answers = match object.remove("details") {
        Some(serde_json::Value::Object(a)) => a,
        Some(_) => {
            return Err(CliError::Usage(
                "with --service, details holds the answers: an object by field id".into(),
            ));
        }
        None => serde_json::Map::new(),
    };
    let details = sambung_core::model::ServiceRequest::new(d, &hash, &answers);
    object.insert(
        "details".into(),
        serde_json::to_value(sambung_core::model::Details::Service(details))
            .map_err(|e| CliError::Failed(e.to_string()))?,
    );
    Ok(serde_json::from_value(value).map_err(sambung_core::Error::from)?)
}
