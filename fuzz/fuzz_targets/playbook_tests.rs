//! Fuzz target: the playbook test-file loader (`playbook::testcases::parse_cases`, the `*.tests.yaml` parser) on any text: it never panics, every merge key (`<<: *base`) is resolved (in files without tags), and each inline event goes through the decoder the runner uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::event::decode_record;
use rampart::playbook::testcases::parse_cases;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cases) = parse_cases(text) else {
        return;
    };
    // A key with a tag of its own (`!x <<`) is not a merge key, and converting
    // to JSON drops the tag, so the check holds for files without tags.
    let tagged = text.contains('!');
    for case in &cases {
        let values = case
            .event
            .iter()
            .chain(&case.before)
            .chain(&case.enrichment);
        for v in values {
            assert!(
                tagged || !has_merge_key(v),
                "case {:?} kept a `<<` key: {v}",
                case.name
            );
            let _ = decode_record(v.to_string().as_bytes(), &Default::default());
        }
    }
});

fn has_merge_key(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("<<") || m.values().any(has_merge_key),
        Value::Array(items) => items.iter().any(has_merge_key),
        _ => false,
    }
}
