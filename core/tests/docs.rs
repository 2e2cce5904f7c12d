//! The documentation's examples and code lists stay true to the code.

use sambung_core::model::Kind;
use sambung_core::templates;

fn read(path: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path),
    )
    .unwrap()
}

#[test]
fn requests_md_shows_every_template_as_the_cli_prints_it() {
    let doc = read("docs/requests.md");
    for kind in Kind::ALL {
        let json = serde_json::to_string_pretty(&templates::example(*kind)).unwrap();
        assert!(
            doc.contains(&format!("### `{kind}`\n\n```json\n{json}\n```")),
            "docs/requests.md is stale for {kind}"
        );
    }
}

#[test]
fn requests_md_lists_every_validation_code() {
    let doc = read("docs/requests.md");
    let codes = [
        "required",
        "too_long",
        "nik_format",
        "nik_province",
        "nik_birth_date",
        "nik_serial",
        "nik_mismatch",
        "nik_sex",
        "anonymous_identity",
        "kk_format",
        "kk_province",
        "nop_format",
        "nop_province",
        "nop_special_code",
        "nib_format",
        "kbli_format",
        "region_format",
        "region_province",
        "region_level",
        "phone_format",
        "plate_format",
        "date_format",
        "date_in_future",
        "time_format",
        "tax_year",
        "latitude",
        "longitude",
        "accuracy",
        "outside_indonesia",
        "amount",
        "percentage",
        "count",
        "postal_code",
        "duplicate",
        "one_of_required",
        "consent_missing",
        "attachment_missing",
        "late_report",
    ];
    for c in codes {
        assert!(doc.contains(c), "{c} missing from docs/requests.md");
    }
}
