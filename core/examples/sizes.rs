use sambung_core::{crypto::DataKey, lifecycle::Role, model::Kind, store::*, templates};
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::init(
        dir.path(),
        &Secret::Key(DataKey::from_bytes([1; 32])),
        Identity {
            user: "u".into(),
            role: Role::Resident,
        },
    )
    .unwrap();
    let mut json = 0;
    for i in 0..2000 {
        let id = s.create(templates::example(Kind::ALL[i % 13])).unwrap();
        json += serde_json::to_string(&s.get(&id).unwrap()).unwrap().len();
    }
    drop(s);
    let c = rusqlite::Connection::open(dir.path().join("sambung.db")).unwrap();
    let q = |sql: &str| -> f64 { c.query_row(sql, [], |r| r.get::<_, f64>(0)).unwrap() };
    println!("json/req {}", json / 2000);
    println!("snapshot {}", q("SELECT avg(length(data)) FROM snapshots"));
    println!("title {}", q("SELECT avg(length(title)) FROM requests"));
    println!("lookups/req {}", q("SELECT count(*)*1.0/2000 FROM lookups"));
    println!(
        "file/req {}",
        q("SELECT page_count*page_size/2000.0 FROM pragma_page_count, pragma_page_size")
    );
    println!(
        "freelist {}",
        q("SELECT freelist_count FROM pragma_freelist_count")
    );
}
