//! Pure validation of a parsed config: every semantic problem, each with its path, in one pass.

use super::{load::Problem, Config};

fn problem(problems: &mut Vec<Problem>, path: &str, message: impl Into<String>) {
    problems.push(Problem {
        path: path.to_owned(),
        message: message.into(),
    });
}

/// Problems of one enrichment section (the global one or a cluster's), under `at`.
fn validate_enrich(e: &super::EnrichConfig, at: &str, p: &mut Vec<Problem>) {
    if let Some(api) = &e.identity.api {
        let http = api.url.starts_with("http://") || api.url.starts_with("https://");
        if !http || !api.url.contains("{user}") {
            problem(
                p,
                &format!("{at}.identity.api.url"),
                "must be an http(s) URL containing {user}",
            );
        }
        if api.timeout.get().is_zero() {
            problem(
                p,
                &format!("{at}.identity.api.timeout"),
                "must be greater than zero",
            );
        }
    }
    let b = &e.baseline;
    if b.max_principals == 0 || b.max_values == 0 {
        problem(
            p,
            &format!("{at}.baseline"),
            "max_principals and max_values must be at least 1",
        );
    }
    let h = &b.behaviour;
    let days = h.history_window.get().as_secs() / 86_400;
    if !(1..=3650).contains(&days) {
        problem(
            p,
            &format!("{at}.baseline.behaviour.history_window"),
            "must be between 1 day and 10 years",
        );
    }
    if !(h.spike_score.is_finite()
        && h.spike_score > 0.0
        && h.spike_ratio.is_finite()
        && h.spike_ratio >= 1.0)
    {
        problem(
            p,
            &format!("{at}.baseline.behaviour"),
            "spike_score must be above 0 and spike_ratio at least 1",
        );
    }
    if !((64 << 10)..=(8 << 30)).contains(&h.sketch_memory.0) {
        problem(
            p,
            &format!("{at}.baseline.behaviour.sketch_memory"),
            "must be between 64KiB and 8GiB",
        );
    }
    if e.network.geoip.reload_interval.get().is_zero() || b.flush_interval.get().is_zero() {
        problem(
            p,
            at,
            "reload_interval and flush_interval must be greater than zero",
        );
    }
}

/// Returns every problem found; an empty list means the config is usable.
pub fn validate(c: &Config) -> Vec<Problem> {
    let mut p = Vec::new();
    let s = &c.sources;
    if s.kafka.is_none() && s.webhook.is_none() && s.files.is_empty() {
        problem(
            &mut p,
            "sources",
            "no source configured: add kafka, webhook or files",
        );
    }
    if c.cluster.default.trim().is_empty() {
        problem(&mut p, "cluster.default", "must not be empty");
    }
    if let Some(k) = &c.kafka {
        if k.brokers.trim().is_empty() {
            problem(&mut p, "kafka.brokers", "must not be empty");
        }
    }
    let needs_kafka = |p: &mut Vec<Problem>, path: &str| {
        if c.kafka.is_none() {
            problem(
                p,
                path,
                "kafka: required (the top-level kafka connection is not configured)",
            );
        }
    };
    if let Some(k) = &s.kafka {
        needs_kafka(&mut p, "sources.kafka");
        if k.group_id.trim().is_empty() {
            problem(&mut p, "sources.kafka.group_id", "must not be empty");
        }
        if k.topics.is_empty() {
            problem(&mut p, "sources.kafka.topics", "name at least one topic");
        }
        if k.group_instance_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            problem(
                &mut p,
                "sources.kafka.group_instance_id",
                "must not be empty (leave it out for dynamic membership)",
            );
        }
        if !(6..=1800).contains(&k.session_timeout.get().as_secs()) {
            problem(
                &mut p,
                "sources.kafka.session_timeout",
                "must be between 6s and 30m (the brokers' default bounds)",
            );
        }
        for (i, t) in k.topics.iter().enumerate() {
            if t.trim().is_empty() {
                problem(
                    &mut p,
                    &format!("sources.kafka.topics[{i}]"),
                    "must not be empty",
                );
            }
        }
    }
    if let Some(w) = &s.webhook {
        if !w.path.starts_with('/') {
            problem(&mut p, "sources.webhook.path", "must start with /");
        }
        if w.max_body.0 == 0 {
            problem(
                &mut p,
                "sources.webhook.max_body",
                "must be greater than zero",
            );
        }
        if w.read_timeout.get().is_zero() {
            problem(
                &mut p,
                "sources.webhook.read_timeout",
                "must be greater than zero",
            );
        }
        if w.bridge_topic.is_some() {
            needs_kafka(&mut p, "sources.webhook.bridge_topic");
        }
        if w.tls.is_none() && w.bearer_token.is_none() && !w.listen.ip().is_loopback() {
            problem(
                &mut p,
                "sources.webhook",
                "listening beyond loopback needs tls (with client_ca) or bearer_token",
            );
        }
    }
    for (i, f) in s.files.iter().enumerate() {
        if f.path.as_os_str().is_empty() {
            problem(
                &mut p,
                &format!("sources.files[{i}].path"),
                "must not be empty",
            );
        }
    }
    match (&c.dead_letter.file, &c.dead_letter.topic) {
        (Some(_), Some(_)) => problem(&mut p, "dead_letter", "set either file or topic, not both"),
        (None, Some(_)) => needs_kafka(&mut p, "dead_letter.topic"),
        _ => {}
    }
    validate_enrich(&c.enrich, "enrich", &mut p);
    for (name, o) in &c.clusters {
        if let Some(e) = &o.enrich {
            validate_enrich(e, &format!("clusters.{name}.enrich"), &mut p);
        }
    }
    if c.pipeline.workers == 0 {
        problem(&mut p, "pipeline.workers", "must be at least 1");
    }
    if c.pipeline.batch_size == 0 {
        problem(&mut p, "pipeline.batch_size", "must be at least 1");
    }
    if c.pipeline.channel_capacity == 0 {
        problem(&mut p, "pipeline.channel_capacity", "must be at least 1");
    }
    super::state::validate(&c.state, &mut p);
    c.respond.validate(&mut p);
    c.console.validate(&mut p);
    if c.respond
        .slack
        .as_ref()
        .is_some_and(|s| s.approvals.is_some())
        && c.telemetry.listen.is_none()
    {
        p.push(Problem {
            path: "respond.slack.approvals".into(),
            message:
                "needs telemetry.listen: Slack's interactivity requests are served on that listener"
                    .into(),
        });
    }
    if c.output.kafka_topic.is_some() && c.kafka.is_none() {
        p.push(Problem {
            path: "output.kafka_topic".into(),
            message: "needs the `kafka` connection (brokers) to be configured".into(),
        });
    }
    if let Some(k) = &c.respond.kafka {
        crate::respond::kafka_alerts::validate(k, c.kafka.as_ref(), &mut p);
    }
    p
}
