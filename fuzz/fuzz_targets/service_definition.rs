//! Service definitions and the values filled into them (issue 15): a
//! definition comes from an agency's file or, later, from the server to
//! every phone, and values from whoever fills the form. Input: definition
//! JSON, a NUL byte, values JSON (no NUL: the values against a shipped
//! definition). Parsing, the lint (with the test vectors), compiling and
//! evaluating never panic; every issue has a code and both messages; a
//! definition the lint passes is one a catalog takes. A definition with a
//! top-level `code_list` is a code list: read, checked, cut into parts.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sambung_core::CivilDate;
use sambung_core::catalog::{self, Catalog, Form, Side, codes, lint};

/// A code list: reading and checking never panic; a list the check
/// passes travels in parts that read back as themselves.
fn code_list(text: &str) {
    let _ = codes::parse_part(text);
    let Ok(list) = codes::parse_code_list(text) else {
        return;
    };
    if !codes::check_code_list(&list).is_empty() {
        return;
    }
    for part in codes::parts(&Default::default(), 0, &list) {
        let json = serde_json::to_string(&part).expect("a part serialises");
        assert_eq!(
            codes::parse_part(&json).expect("a part of a checked list reads"),
            part
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let (definition, values) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[][..], data),
    };
    let today = CivilDate::new(2026, 12, 3).expect("a date");
    static BUILTIN: OnceLock<Vec<Form>> = OnceLock::new();
    let builtin = BUILTIN.get_or_init(|| {
        let catalog = catalog::builtin().expect("the built-in catalog loads");
        let services = catalog.services(None);
        services
            .into_iter()
            .map(|d| Form::compile(d.clone()).expect("a shipped definition compiles"))
            .collect()
    });
    let owned;
    let form = if definition.is_empty() {
        &builtin[values.len() % builtin.len()]
    } else {
        let Ok(text) = std::str::from_utf8(definition) else {
            return;
        };
        if codes::is_code_list(text) {
            code_list(text);
            return;
        }
        let Ok(d) = catalog::parse(text) else {
            return;
        };
        let problems = lint::check(&d, &Default::default());
        if problems.is_empty() {
            Catalog::new(vec![d.clone()]).expect("what the lint passes, a catalog takes");
        }
        match Form::compile(d) {
            Ok(f) => {
                owned = f;
                &owned
            }
            Err(_) => return,
        }
    };
    let Ok(values) = serde_json::from_slice::<serde_json::Value>(values) else {
        return;
    };
    for side in [Side::Device, Side::Server, Side::Both] {
        let state = form.evaluate_for_submit(&values, &["ktp_copy"], today, side);
        for issue in state.errors.iter().chain(&state.warnings) {
            assert!(!issue.code.is_empty());
            assert!(!issue.message.id.is_empty() && !issue.message.en.is_empty());
        }
    }
});
