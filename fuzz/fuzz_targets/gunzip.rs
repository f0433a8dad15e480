//! Fuzz target: the bounded gzip inflate (`event::gunzip`) used for webhook bodies and EKS records: never more than the limit, and what was compressed comes back exactly.
//!
//! Input: the limit as two little-endian bytes, then the data.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use rampart::event::{gunzip, Gunzip};

fuzz_target!(|data: &[u8]| {
    let [lo, hi, raw @ ..] = data else {
        return;
    };
    let limit = usize::from(u16::from_le_bytes([*lo, *hi]));
    // Any bytes, taken as gzip: nothing beyond the limit comes out.
    if let Ok(out) = gunzip(raw, limit) {
        assert!(out.len() <= limit, "{} bytes out, limit {limit}", out.len());
    }
    // The bytes compressed: they come back exactly, or are refused as too large.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(raw);
    let zipped = enc.finish().unwrap_or_default();
    match gunzip(&zipped, limit) {
        Ok(out) => assert_eq!(out, raw),
        Err(Gunzip::TooLarge) => assert!(raw.len() > limit),
        Err(Gunzip::Corrupt) => panic!("our own gzip stream judged corrupt"),
    }
});
