//! Trains the zstd dictionary of the sync envelope (`scripts/train-dictionary`
//! writes `core/src/protocol/sync-v2.dict`).
//!
//! The samples are the CBOR of sync messages as the protocol builds them —
//! pushes of new requests, edits, acknowledgements, pulls of status changes
//! and notes, first syncs — over requests of every kind whose every text
//! value is replaced by random text of the same shape. So the dictionary
//! learns the protocol's and Automerge's structure and the field names, not
//! the example values the benchmarks use (which would flatter it).

use automerge::ActorId;
use sambung_core::document::RequestDoc;
use sambung_core::edits::{self, Author};
use sambung_core::lifecycle::{Role, Status};
use sambung_core::model::{Kind, Request, RequestContent, RequestId};
use sambung_core::protocol::{self, DocAck, DocPull, DocPush, SyncRequest, SyncResponse};
use sambung_core::{Timestamp, templates};
use sambung_linksim::Rng;

/// Replaces text values with random text of the same shape (digits for
/// digits, letters for letters), keeping each one only if the request
/// still reads back (codes and dates must stay valid).
fn scramble(content: &RequestContent, rng: &mut Rng) -> RequestContent {
    let mut value = serde_json::to_value(content).unwrap();
    let mut paths = Vec::new();
    collect(&value, String::new(), &mut paths);
    for path in paths {
        let original = value.pointer(&path).cloned().unwrap();
        let serde_json::Value::String(s) = &original else {
            continue;
        };
        let fresh: String = s
            .chars()
            .map(|c| match c {
                '0'..='9' => char::from(b'0' + rng.below(10) as u8),
                'a'..='z' => char::from(b'a' + rng.below(26) as u8),
                'A'..='Z' => char::from(b'A' + rng.below(26) as u8),
                other => other,
            })
            .collect();
        *value.pointer_mut(&path).unwrap() = serde_json::Value::String(fresh);
        if serde_json::from_value::<RequestContent>(value.clone()).is_err() {
            *value.pointer_mut(&path).unwrap() = original;
        }
    }
    serde_json::from_value(value).unwrap()
}

fn collect(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                collect(v, format!("{at}/{k}"), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                collect(v, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::String(_) => out.push(at),
        _ => {}
    }
}

fn actor(rng: &mut Rng) -> ActorId {
    let bytes: Vec<u8> = (0..16).map(|_| rng.below(256) as u8).collect();
    ActorId::from(bytes)
}

fn response(acks: Vec<DocAck>, pull: Vec<DocPull>, cursor: u64, cursor_tag: u32) -> SyncResponse {
    SyncResponse {
        acks,
        refused: vec![],
        unknown_heads: vec![],
        repair: vec![],
        pull,
        cursor,
        cursor_tag,
        more: false,
        reset: false,
        wipe: false,
        acked_all: false,
    }
}

fn id_bytes(r: &Request) -> [u8; 16] {
    r.id.to_bytes().unwrap()
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "core/src/protocol/sync-v2.dict".into());
    let training = samples(0x5a4d_b1c7, 600);
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
    let held_out = samples(0x0dd_ba11, 100);
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

fn samples(seed: u64, rounds: usize) -> Vec<Vec<u8>> {
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
            let request = Request {
                id: RequestId::random(),
                created_at: Timestamp(now.0 - rng.below(90 * 86_400_000) as i64),
                created_by: format!("warga-{}", rng.below(100_000)),
                created_role: if rng.below(3) == 0 {
                    Role::Officer
                } else {
                    Role::Resident
                },
                content: scramble(&templates::example(kind), &mut rng),
                attachments: Vec::new(),
                history: Vec::new(),
                notes: Vec::new(),
                assignee: None,
                erased_at: None,
            };
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
                let filer = r.created_by.clone();
                let filer = Author {
                    user: &filer,
                    role: r.created_role,
                };
                // Not every example passes submission's checks: then the
                // agency's note alone.
                if edits::transition(r, filer, Status::Submitted, None).is_ok() {
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
            })
            .unwrap(),
        );
    }
    samples
}
