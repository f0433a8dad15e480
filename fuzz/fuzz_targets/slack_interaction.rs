//! Fuzz target: Slack interactivity requests: the signature check (`interact::Verifier`) on any timestamp and signature headers, and the `payload` parser (`interact::parse`) on any body.
//!
//! Input: the timestamp header, a newline, the signature header, a newline, the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::config::Secret;
use rampart::respond::slack::interact::{parse, signature, Rejection, Verifier, WINDOW};

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let ts = parts
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let sig = parts
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let secret = Secret::new("fuzz-signing-secret");

    if let Ok(i) = parse(body) {
        let _ = format!("{i:?}");
    }

    // Whatever the headers say, a request passes only with the right signature, in the window.
    let verifier = Verifier::default();
    let verdict = verifier.verify(&secret, Some(&ts), Some(&sig), body, NOW);
    if verdict.is_ok() {
        assert_eq!(sig.trim(), signature(secret.expose(), ts.trim(), body));
        let t: i64 = ts.trim().parse().expect("accepted a malformed timestamp");
        assert!(NOW.abs_diff(t) <= WINDOW as u64, "accepted a stale request");
    }

    // A correctly signed request passes once, then is a replay; inside the window only.
    let verifier = Verifier::default();
    let t: i64 = ts.trim().parse().unwrap_or(NOW);
    let ts = t.to_string();
    let good = signature(secret.expose(), &ts, body);
    let first = verifier.verify(&secret, Some(&ts), Some(&good), body, NOW);
    if NOW.abs_diff(t) <= WINDOW as u64 {
        assert_eq!(first, Ok(()));
        let again = verifier.verify(&secret, Some(&ts), Some(&good), body, NOW);
        assert_eq!(again, Err(Rejection::Replayed));
    } else {
        assert_eq!(first, Err(Rejection::Stale));
    }
});
