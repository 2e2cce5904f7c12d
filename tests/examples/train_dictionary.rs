//! Trains the zstd dictionary of the sync envelope (`scripts/train-dictionary`
//! writes `core/src/protocol/sync-v3.dict`).
//!
//! The samples are the CBOR of sync messages as the protocol builds them —
//! pushes of new requests (filed: one change, as the device squashes a
//! request's history before its first push), acknowledgements, pulls of
//! status changes and notes, first syncs — over realistic requests of every
//! kind drawn from the training half of `sambung_e2e::corpus`, whose names,
//! streets and phrases the benchmarks never use. So the dictionary learns
//! the protocol's and Automerge's structure, the field names and the shape
//! of Indonesian requests, not the benchmarks' values (which would flatter
//! it). It is judged on messages over the benchmarks' half.

use automerge::ActorId;
use sambung_core::Timestamp;
use sambung_core::document::RequestDoc;
use sambung_core::edits::{self, Author};
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{Kind, Request, RequestId};
use sambung_core::protocol::{self, DocAck, DocPull, DocPush, SyncRequest, SyncResponse};
use sambung_e2e::corpus::Corpus;
use sambung_linksim::Rng;

fn actor(rng: &mut Rng) -> ActorId {
    let bytes: Vec<u8> = (0..16).map(|_| rng.below(256) as u8).collect();
    ActorId::from(bytes)
}

fn response(acks: Vec<DocAck>, pull: Vec<DocPull>, cursor: u64, cursor_tag: u32) -> SyncResponse {
    SyncResponse {
        acks,
        pull,
        ..SyncResponse::at(cursor, cursor_tag)
    }
}

fn id_bytes(r: &Request) -> [u8; 16] {
    r.id.to_bytes().unwrap()
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "core/src/protocol/sync-v3.dict".into());
    let training = samples(Corpus::training(0x5a4d_b1c7), 0x5a4d_b1c7, 600);
    let total: usize = training.iter().map(Vec::len).sum();
    let dict = zstd::dict::from_samples(&training, 16 * 1024).expect("train");
    std::fs::write(&out, &dict).expect("write the dictionary");
    println!(
        "{} samples, {total} bytes → {} byte dictionary in {out}",
        training.len(),
        dict.len()
    );
    // Judged on messages it never saw (another seed): compressed sizes
    // without and with it, small messages apart.
    let held_out = samples(Corpus::new(0x0dd_ba11), 0x0dd_ba11, 100);
    let mut with = zstd::bulk::Compressor::with_dictionary(19, &dict).unwrap();
    let (mut small, mut large) = ([0usize; 3], [0usize; 3]);
    for m in &held_out {
        let plain = zstd::bulk::compress(m, 19).unwrap().len();
        let dicted = with.compress(m).unwrap().len();
        let row = if m.len() < 2048 {
            &mut small
        } else {
            &mut large
        };
        row[0] += 1;
        row[1] += plain;
        row[2] += dicted;
    }
    for (name, [n, plain, dicted]) in [("under 2 KiB", small), ("larger", large)] {
        println!(
            "held out, {name}: {n} messages, zstd -19 {plain} B, with the dictionary {dicted} B ({:.0} %)",
            100.0 * dicted as f64 / plain.max(1) as f64
        );
    }
}

fn samples(mut corpus: Corpus, seed: u64, rounds: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let now = Timestamp::now();
    for round in 0..rounds {
        let device = actor(&mut rng);
        let server = actor(&mut rng);
        let n = 1 + rng.below(6) as usize;
        let mut docs = Vec::new();
        for i in 0..n {
            let kind = Kind::ALL[(round + i) % Kind::ALL.len()];
            let mut request = Request {
                id: RequestId::random(),
                created_at: Timestamp(now.0 - rng.below(90 * 86_400_000) as i64),
                created_by: format!("warga-{}", rng.below(100_000)),
                created_role: if rng.below(3) == 0 {
                    Role::Officer
                } else {
                    Role::Resident
                },
                content: corpus.request(kind),
                attachments: Vec::new(),
                history: Vec::new(),
                notes: Vec::new(),
                assignee: None,
                erased_at: None,
            };
            // Filed: submitted, unless the kind needs attachments first.
            let filer = request.created_by.clone();
            let filer = Author {
                user: &filer,
                role: request.created_role,
            };
            let _ = edits::transition(&mut request, filer, Status::Submitted, None);
            docs.push(RequestDoc::new(&request, device.clone()).unwrap());
        }
        // A push of new requests, and its acknowledgement.
        let push: Vec<DocPush> = docs
            .iter_mut()
            .map(|d| DocPush {
                id: None,
                since: vec![],
                changes: d.save_after(&[]),
                heads: d.heads().into_iter().map(Into::into).collect(),
            })
            .collect();
        let request = SyncRequest {
            cursor: rng.below(1 << 20),
            cursor_tag: rng.below(u32::MAX as u64) as u32,
            push,
            repair: vec![],
            max_response_bytes: 65_536,
            catalog: 0,
        };
        samples.push(protocol::cbor(&request).unwrap());
        let acks = docs
            .iter_mut()
            .map(|d| DocAck {
                id: id_bytes(&d.hydrate().unwrap()),
                heads: vec![],
            })
            .collect();
        let mut answer = response(acks, vec![], request.cursor + n as u64, request.cursor_tag);
        // Usually every push is taken as pushed: no list at all.
        if rng.below(4) > 0 {
            answer.acks.clear();
            answer.acked_all = true;
        }
        samples.push(protocol::cbor(&answer).unwrap());
        // The agency or an officer moves them on, with a note now and then;
        // the device pulls the changes.
        let mut pulls = Vec::new();
        for d in docs.iter_mut() {
            let mut server_doc = RequestDoc::load(&d.save(), [], server.clone()).unwrap();
            let before = server_doc.heads();
            let by = Author {
                user: "dinas-kota",
                role: Role::Agency,
            };
            let note = rng.below(2) == 0;
            let _ = server_doc.update(|r| {
                // Drafts waiting for attachments get the agency's note alone.
                if r.status() == Status::Submitted {
                    edits::transition(r, by, Status::Received, None)?;
                }
                if note {
                    edits::add_note(r, by, "Mohon lengkapi dokumen pendukung", false)?;
                }
                Ok(())
            });
            pulls.push(DocPull {
                id: id_bytes(&server_doc.hydrate().unwrap()),
                changes: server_doc.save_after(&before),
                heads: server_doc.heads().into_iter().map(Into::into).collect(),
                replace: false,
            });
        }
        let answer = response(
            vec![],
            pulls,
            rng.below(1 << 24),
            rng.below(u32::MAX as u64) as u32,
        );
        samples.push(protocol::cbor(&answer).unwrap());
        // A first sync of a colleague's requests: whole documents.
        if round % 3 == 0 {
            let pull = docs
                .iter_mut()
                .map(|d| DocPull {
                    id: id_bytes(&d.hydrate().unwrap()),
                    changes: d.automerge().save_nocompress(),
                    heads: d.heads().into_iter().map(Into::into).collect(),
                    replace: false,
                })
                .collect();
            samples.push(protocol::cbor(&response(vec![], pull, 0, 0)).unwrap());
        }
        // A pull-only request.
        samples.push(
            protocol::cbor(&SyncRequest {
                cursor: rng.below(1 << 24),
                cursor_tag: rng.below(u32::MAX as u64) as u32,
                push: vec![],
                repair: vec![],
                max_response_bytes: 65_536,
                catalog: 0,
            })
            .unwrap(),
        );
    }
    samples
}
