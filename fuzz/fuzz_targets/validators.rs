//! Every validator: each identifier's checks (NIK, KK, NOP, NIB, KBLI,
//! region codes, phones, plates) on any text, and the rules table on any
//! pair of requests (`[before, after]` in JSON) by any role — a list of
//! codes or a typed refusal, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_core::CivilDate;
use sambung_core::edits::Author;
use sambung_core::identifiers::{Kbli, Kk, Nib, Nik, Nop, Phone, Plate, RegionCode};
use sambung_core::lifecycle::Role;
use sambung_core::model::Request;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let t = text.to_owned();
    let _ = Nik(t.clone()).check();
    let nik = Nik(t.clone());
    let _ = (nik.birth(), nik.province());
    if let Some(d) = CivilDate::new(1990, 1, 1) {
        let _ = nik.agrees_with(d, sambung_core::identifiers::Sex::Female);
    }
    let _ = Kk(t.clone()).check();
    let nop = Nop(t.clone());
    let _ = (nop.check(), nop.formatted(), nop.normalised().check());
    let _ = Nib(t.clone()).check();
    let _ = Kbli(t.clone()).check();
    let region = RegionCode(t.clone());
    let _ = (
        region.check(),
        region.check_village(),
        region.level(),
        region.regency(),
    );
    let _ = region.is_within(&RegionCode::from("32.73"));
    let _ = Phone(t.clone()).check();
    let _ = Plate(t).check();
    // The rules table on two requests that parse.
    if let Ok([before, after]) = serde_json::from_str::<[Request; 2]>(text) {
        let role = [Role::Resident, Role::Officer, Role::Agency][selector as usize % 3];
        let author = Author {
            user: &after.created_by,
            role,
        };
        let subject = sambung_core::rules::Subject {
            kind: before.kind(),
            field_checked: before.notes.len() % 2 == 0,
        };
        let _ = sambung_core::rules::check(Some(&before), &after, author, subject);
        let _ = sambung_core::rules::check(None, &after, author, subject);
        let _ = sambung_core::rules::changed_parts(&before, &after);
    }
});
