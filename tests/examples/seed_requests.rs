//! Fills a server's data folder (SQLite) with N realistic requests, for
//! measuring the agency's console on a big office (`scripts/bench-console`):
//! `cargo run --release -p sambung-e2e --example seed_requests -- DIR N`.
//!
//! Each request is a real Automerge document of distinct content (the
//! benchmark corpus: names, texts, coordinates drawn afresh), filed in one
//! of Kota Bandung's real villages (Kemendagri's codes), submitted by its
//! resident and moved on by the office through the lifecycle, so the
//! statuses spread as a working queue's do; a fifth are assigned to one of
//! twenty field officers; the last change times spread over a year.
//! Deterministic: the same N gives the same data.

use automerge::ActorId;
use sambung_core::Timestamp;
use sambung_core::document::RequestDoc;
use sambung_core::edits::{self, Author};
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{Kind, Request};
use sambung_e2e::corpus::{Corpus, Data};
use sambung_server::accounts::{Draft, Scope};
use sambung_server::documents::{DocWrite, update_documents};
use sambung_server::storage::{Delivered, SqliteStorage, StoredDoc};

/// Kinds weighted as an office sees them (complaints first); those that
/// need attachments to be submitted are left out (no bytes are seeded).
const KINDS: &[(Kind, u32)] = &[
    (Kind::Complaint, 6),
    (Kind::PbbReduction, 1),
    (Kind::PbbObjection, 1),
    (Kind::VehicleTax, 1),
    (Kind::MoveAddress, 1),
    (Kind::BusinessLicence, 1),
    (Kind::KtpEl, 1),
];

/// How far the office has taken each request: (the statuses after
/// `submitted`, in order; weight).
const PATHS: &[(&[Status], u32)] = &[
    (&[], 15),
    (&[Status::Received], 15),
    (&[Status::Received, Status::InReview], 20),
    (&[Status::Received, Status::InReview, Status::NeedsInfo], 8),
    (&[Status::Received, Status::InReview, Status::Approved], 20),
    (&[Status::Received, Status::InReview, Status::Rejected], 5),
    (
        &[
            Status::Received,
            Status::InReview,
            Status::Approved,
            Status::Completed,
        ],
        17,
    ),
];

fn pick<T: Copy>(table: &[(T, u32)], roll: u32) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut r = roll % total;
    for (t, w) in table {
        if r < *w {
            return *t;
        }
        r -= w;
    }
    table[0].0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (
        args.next(),
        args.next().and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: seed_requests DIR N");
        std::process::exit(2);
    };
    let storage = SqliteStorage::open(std::path::Path::new(&dir)).expect("the data folder");
    let villages: Vec<String> = sambung_e2e::regions::regions("32.73")
        .codes
        .into_iter()
        .map(|c| c.code)
        .filter(|c| c.len() == 13)
        .collect();
    let mut corpus = Corpus::new(20_261_204);
    let kinds: Vec<(Kind, u32)> = KINDS
        .iter()
        .copied()
        .filter(|(k, _)| {
            let mut r = Request::draft(
                Data::Realistic.request(&mut corpus, *k),
                "warga",
                Role::Resident,
                Timestamp::now(),
            );
            let by = Author {
                user: "warga",
                role: Role::Resident,
            };
            edits::transition(&mut r, by, Status::Submitted, None).is_ok()
        })
        .collect();
    let year_ms: i64 = 365 * 24 * 3600 * 1000;
    let now = Timestamp::now().as_millis();
    let office = Author {
        user: "dinas-kota",
        role: Role::Agency,
    };
    for start in (0..n).step_by(500) {
        let end = n.min(start + 500);
        let mut docs = Vec::with_capacity(end - start);
        for i in start..end {
            let roll = (i as u32).wrapping_mul(2_654_435_761);
            let kind = pick(&kinds, roll);
            let mut content = Data::Realistic.request(&mut corpus, kind);
            content.region = villages[roll as usize % villages.len()].as_str().into();
            let resident = format!("warga-{}", i % 40_000);
            let mut request = Request::draft(content, &resident, Role::Resident, Timestamp(now));
            let by = Author {
                user: &resident,
                role: Role::Resident,
            };
            edits::transition(&mut request, by, Status::Submitted, None).expect("a valid request");
            for to in pick(PATHS, roll.rotate_left(7)) {
                let note = matches!(to, Status::NeedsInfo | Status::Rejected)
                    .then(|| "Mohon lengkapi dokumen pendukung.".to_owned());
                edits::transition(&mut request, office, *to, note).expect("an allowed move");
            }
            let assignee = roll
                .is_multiple_of(5)
                .then(|| format!("petugas-{}", roll % 20));
            request.assignee = assignee.clone();
            let mut meta = sambung_server::exchange::doc_meta(&request, None);
            meta.updated_at = now - (i64::from(roll) % year_ms);
            // Submitted up to three weeks before its last change: some of
            // the open ones are past their service standard's days.
            meta.submitted_at = Some(meta.updated_at - i64::from(roll % 21) * 86_400_000);
            let id = request.id.to_bytes().expect("a UUID");
            let mut doc = RequestDoc::new(&request, ActorId::from([7u8; 16])).expect("a document");
            let data = doc.save();
            let heads = sambung_core::document::encode_heads(&doc.heads());
            let scope = Scope {
                region: request.content.region.as_str().to_owned(),
                owner: resident.clone(),
                applicant_nik_hash: None,
                assignee,
                draft: Draft::No,
            };
            docs.push((id, data, heads, scope, meta));
        }
        let ids: Vec<[u8; 16]> = docs.iter().map(|d| d.0).collect();
        update_documents(&storage, &ids, &mut |k, _| {
            let (_, data, heads, scope, meta) = &docs[k];
            Ok(DocWrite::Write {
                scope_keys: sambung_server::scope_index::write_keys(None, scope),
                doc: StoredDoc {
                    data: data.clone(),
                    scope: scope.clone(),
                    meta: meta.clone(),
                },
                heads: heads.clone(),
                log_data: data.clone(),
                device: [7; 16],
                changes: Vec::new(),
                delivery: Delivered {
                    account: scope.owner.clone(),
                    device: None,
                    exchange: None,
                    at: meta.updated_at,
                },
                events: Vec::new(),
                replace: false,
                attachments: Vec::new(),
            })
        })
        .expect("written");
    }
    println!("seeded {n} requests into {dir}");
}
