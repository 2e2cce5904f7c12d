//! What every benchmark of this crate shares: whether it is a measuring run,
//! where criterion writes, reading back this run's medians for the closing
//! table of ratios, and a seeded generator for varied, realistic data.

#![allow(dead_code)] // each bench uses part of it

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `cargo bench` (measuring) rather than `cargo test --benches` (once).
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

pub fn output_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion")
}

thread_local! {
    static STARTED: SystemTime = SystemTime::now();
}

/// Call first in `main`: results older than this are not this run's.
pub fn start() {
    STARTED.with(|_| ());
}

/// The median of a benchmark measured in this run (older results are
/// ignored, so a filtered run prints only what it measured).
pub fn median_ns(group: &str, id: &str) -> Option<f64> {
    let p = output_dir().join(group).join(id).join("new/estimates.json");
    let fresh = std::fs::metadata(&p).and_then(|m| m.modified()).ok()? >= STARTED.with(|s| *s);
    if !fresh {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// SplitMix64: a seeded, dependency-free generator, so every run measures
/// the same varied data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A float in `lo..hi`.
    pub fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}
