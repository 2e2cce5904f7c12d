//! The JSON form of a request (`sambung device new --json`, the bindings'
//! records come from the same model) and every validator: any text parses to
//! a request or fails with a typed error, validation never panics, and what
//! parses serialises back to an equal request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_core::CivilDate;
use sambung_core::model::RequestContent;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(content) = serde_json::from_str::<RequestContent>(text) else {
        return;
    };
    let today = CivilDate::new(2026, 11, 28).expect("a date");
    let report = content.validate(today);
    for issue in report.errors.iter().chain(report.warnings.iter()) {
        // Messages are fixed texts: never the value that was wrong.
        assert!(!issue.message_en.is_empty() && !issue.message_id.is_empty());
    }
    let json = serde_json::to_string(&content).expect("serialises");
    let again: RequestContent = serde_json::from_str(&json).expect("parses back");
    assert_eq!(again, content);
});
