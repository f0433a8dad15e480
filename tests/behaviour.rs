//! Behavioural analytics end to end: the generated population through the real enrichers and the shipped behavioural playbooks.

use std::path::Path;

#[tokio::test]
async fn a_fresh_install_replaying_a_background_day_raises_no_behavioural_alert() {
    let (events, alerts) =
        rampart::bench::behaviour::fresh_install(Path::new("rampart.yaml"), 3, 1)
            .await
            .unwrap();
    assert!(
        events > 10_000,
        "a day of a few hundred principals: {events}"
    );
    assert!(alerts.is_empty(), "{alerts:?}");
}
