use proptest::prelude::*;

use super::*;

fn account(id: &str, role: Role, regions: &[&str], nik: Option<u8>) -> Account {
    Account {
        id: id.into(),
        role,
        regions: regions.iter().map(|r| r.to_string()).collect(),
        nik_hash: nik.map(|n| vec![n]),
    }
}

fn scope(
    region: &str,
    owner: &str,
    nik: Option<u8>,
    assignee: Option<&str>,
    draft: Draft,
) -> Scope {
    Scope {
        region: region.into(),
        owner: owner.into(),
        applicant_nik_hash: nik.map(|n| vec![n]),
        assignee: assignee.map(Into::into),
        draft,
    }
}

/// Whether the index finds an entry of `scope` for `account`.
fn found(account: &Account, scope: &Scope) -> bool {
    match reader_of(account) {
        Reader::All { .. } => true,
        Reader::Keys(keys) => {
            let filed = doc_keys(scope);
            keys.iter().any(|k| filed.contains(k))
        }
    }
}

#[test]
fn region_prefixes_are_whole_segments() {
    assert_eq!(
        region_prefixes("32.73.01.1001").collect::<Vec<_>>(),
        ["32", "32.73", "32.73.01", "32.73.01.1001"]
    );
    assert_eq!(region_prefixes("32").collect::<Vec<_>>(), ["32"]);
    assert_eq!(region_prefixes("").count(), 0);
}

#[test]
fn an_officer_reads_its_regions_and_assignments_not_its_neighbours() {
    let o = account("petugas-1", Role::Officer, &["32.73"], None);
    assert!(found(
        &o,
        &scope("32.73.01.1001", "warga-1", None, None, Draft::No)
    ));
    assert!(!found(
        &o,
        &scope("32.74.01.1001", "warga-1", None, None, Draft::No)
    ));
    // "32.7" is not a prefix of "32.73" by segments.
    let p = account("petugas-2", Role::Officer, &["32.7"], None);
    assert!(!found(
        &p,
        &scope("32.73.01.1001", "warga-1", None, None, Draft::No)
    ));
    assert!(found(
        &o,
        &scope("91.01", "warga-1", None, Some("petugas-1"), Draft::No)
    ));
    // A resident's draft is filed under its owner alone.
    assert_eq!(
        doc_keys(&scope(
            "32.73.01.1001",
            "warga-1",
            Some(1),
            Some("petugas-1"),
            Draft::Own
        )),
        BTreeSet::from([account_key("warga-1")])
    );
    assert_eq!(
        reader_of(&account("dinas", Role::Agency, &[], None)),
        Reader::All {
            account: "dinas".into()
        }
    );
}

#[test]
fn a_changed_scope_files_the_entry_under_both() {
    let before = scope(
        "32.73.01.1001",
        "warga-1",
        None,
        Some("petugas-1"),
        Draft::No,
    );
    let after = scope(
        "32.73.01.1001",
        "warga-1",
        None,
        Some("petugas-2"),
        Draft::No,
    );
    let keys = write_keys(Some(&before), &after);
    assert!(keys.contains(&assignee_key("petugas-1")));
    assert!(keys.contains(&assignee_key("petugas-2")));
    assert_eq!(
        write_keys(Some(&after), &after),
        doc_keys(&after).into_iter().collect::<Vec<_>>()
    );
}

#[test]
fn account_changes_name_what_became_visible_and_what_went() {
    let before = account("petugas-1", Role::Officer, &["32.73"], None);
    let after = account("petugas-1", Role::Officer, &["32.74"], None);
    let Candidates::Keys(keys) = candidates(&before, &after) else {
        panic!("a region change has candidates by key");
    };
    assert!(keys.contains(&region_key("32.73")) && keys.contains(&region_key("32.74")));
    assert_eq!(candidates(&before, &before), Candidates::None);
    let all = account("petugas-1", Role::Agency, &[], None);
    assert_eq!(candidates(&before, &all), Candidates::All);
    let docs = [
        (
            [1; 16],
            scope("32.73.01.1001", "warga-1", None, None, Draft::No),
        ),
        (
            [2; 16],
            scope("32.74.01.1001", "warga-1", None, None, Draft::No),
        ),
        (
            [3; 16],
            scope("32.74.01.1001", "warga-1", None, None, Draft::Own),
        ),
        ([4; 16], scope("33.01", "petugas-1", None, None, Draft::No)),
    ];
    assert_eq!(
        account_notices(&before, &after, &docs),
        vec![([1; 16], Notice::Gone), ([2; 16], Notice::Visible)]
    );
}

fn any_role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Resident),
        Just(Role::Officer),
        Just(Role::Agency)
    ]
}

fn any_region() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![Just("32"), Just("73"), Just("01"), Just("1001")],
        1..=4,
    )
    .prop_map(|parts| parts.join("."))
}

fn any_draft() -> impl Strategy<Value = Draft> {
    prop_oneof![Just(Draft::No), Just(Draft::Own), Just(Draft::OnBehalf)]
}

fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned())
    ]
}

proptest! {
    /// The index never hides a document an account may see.
    #[test]
    fn what_an_account_may_see_is_found(
        role in any_role(),
        id in any_name(),
        regions in prop::collection::vec(any_region(), 0..3),
        nik in prop::option::of(0u8..3),
        region in any_region(),
        owner in any_name(),
        applicant in prop::option::of(0u8..3),
        assignee in prop::option::of(any_name()),
        draft in any_draft(),
    ) {
        let a = Account { id, role, regions, nik_hash: nik.map(|n| vec![n]) };
        let s = Scope { region, owner, applicant_nik_hash: applicant.map(|n| vec![n]), assignee, draft };
        if a.may_see(&s) {
            prop_assert!(found(&a, &s));
        }
    }

    /// An account change's notices are exactly the documents whose
    /// visibility changed, and every one is among the candidates.
    #[test]
    fn account_changes_find_every_document_that_changed_sight(
        role in any_role(),
        new_role in any_role(),
        regions in prop::collection::vec(any_region(), 0..3),
        new_regions in prop::collection::vec(any_region(), 0..3),
        nik in prop::option::of(0u8..3),
        new_nik in prop::option::of(0u8..3),
        region in any_region(),
        owner in any_name(),
        applicant in prop::option::of(0u8..3),
        assignee in prop::option::of(any_name()),
        draft in any_draft(),
    ) {
        let before = Account { id: "a".into(), role, regions, nik_hash: nik.map(|n| vec![n]) };
        let after = Account { id: "a".into(), role: new_role, regions: new_regions, nik_hash: new_nik.map(|n| vec![n]) };
        let s = Scope { region, owner, applicant_nik_hash: applicant.map(|n| vec![n]), assignee, draft };
        let changed = before.may_see(&s) != after.may_see(&s);
        let candidate = match candidates(&before, &after) {
            Candidates::None => false,
            Candidates::All => true,
            Candidates::Keys(keys) => {
                let filed = doc_keys(&s);
                keys.iter().any(|k| filed.contains(k))
            }
        };
        if changed {
            prop_assert!(candidate, "a document whose visibility changed is not a candidate");
        }
        let notices = account_notices(&before, &after, &[([0; 16], s.clone())]);
        prop_assert_eq!(notices.len(), usize::from(changed));
    }
}
