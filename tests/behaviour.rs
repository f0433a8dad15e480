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

#[tokio::test]
async fn planted_anomalies_are_caught_and_benign_weeks_stay_nearly_quiet() {
    use rampart::bench::behaviour::{evaluate, EvalOptions};
    use rampart::synth::behaviour::AnomalyKind;
    let opts = EvalOptions {
        config: "rampart.yaml".into(),
        seed: 5,
        weeks: 3,
        incidents_per_kind: 3,
        trace_misses: false,
        humans: 60,
        service_accounts: 40,
    };
    let r = evaluate(&opts).await.unwrap();
    assert!(
        r.benign_scored > 100_000,
        "{} benign events scored",
        r.benign_scored
    );
    // The kinds the full evaluation catches nearly always: each must catch most of its incidents here.
    for kind in [
        AnomalyKind::StolenHumanAccount,
        AnomalyKind::StolenCiToken,
        AnomalyKind::SlowSecretHarvest,
        AnomalyKind::NewTool,
    ] {
        let k = &r.kinds[&kind];
        assert!(
            k.caught * 3 >= k.incidents * 2,
            "{}: {} of {} caught",
            kind.name(),
            k.caught,
            k.incidents
        );
    }
    assert!(
        r.false_per_100k() < 10.0,
        "{} false alerts on {} benign events: {:?}",
        r.false_alerts,
        r.benign_scored,
        r.false_examples
    );
}
