//! The console output: one readable line (or one JSON object) per event on stdout, optionally a JSON-lines file too.

use std::fs::File;
use std::io::{BufWriter, Stdout, Write};
use std::path::PathBuf;

use crate::config::{OutputConfig, OutputFormat};
use crate::event::AuditEvent;

/// Errors of the output stage.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot open output file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state stage failed (its message names the store).
    #[error("{0}")]
    State(String),
    #[error("cannot produce enriched events to {0}")]
    Kafka(String),
    /// Whoever read stdout went away (`rampart run | head`): the run stops as if shut down.
    #[error("stdout is closed")]
    StdoutClosed,
    #[error("cannot write output {target}: {source}")]
    Write {
        target: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes decoded events where the config says; buffered, flushed before acknowledging.
pub struct Output {
    console: OutputFormat,
    stdout: BufWriter<Stdout>,
    file: Option<(PathBuf, BufWriter<File>)>,
    kafka: Option<EventsTopic>,
    scratch: Vec<u8>,
}

/// The enriched-events topic: records in flight until the next flush.
struct EventsTopic {
    topic: String,
    producer: rdkafka::producer::FutureProducer,
    in_flight: Vec<rdkafka::producer::DeliveryFuture>,
}

impl Output {
    pub fn build(
        cfg: &OutputConfig,
        conn: Option<&crate::config::KafkaConnection>,
    ) -> Result<Self, OutputError> {
        let kafka = match (&cfg.kafka_topic, conn) {
            (Some(topic), Some(conn)) => Some(EventsTopic {
                topic: topic.clone(),
                producer: crate::sources::kafka::producer_config(conn)
                    .set("linger.ms", "5")
                    .set("compression.type", "zstd")
                    .create()
                    .map_err(|e| OutputError::Kafka(format!("{topic}: {e}")))?,
                in_flight: Vec::new(),
            }),
            _ => None,
        };
        let file = match &cfg.file {
            Some(path) => {
                let (f, cut) =
                    crate::fsutil::open_append_lines(path).map_err(|source| OutputError::Open {
                        path: path.clone(),
                        source,
                    })?;
                if cut > 0 {
                    tracing::warn!(path = %path.display(), bytes = cut, "output file ended in a line a crash cut short; removed it (its event is delivered again)");
                }
                Some((path.clone(), BufWriter::with_capacity(1 << 16, f)))
            }
            None => None,
        };
        Ok(Self {
            console: cfg.console,
            stdout: BufWriter::with_capacity(1 << 16, std::io::stdout()),
            file,
            kafka,
            scratch: Vec::with_capacity(4096),
        })
    }

    pub fn write(&mut self, ev: &AuditEvent) -> Result<(), OutputError> {
        let needs_json =
            self.console == OutputFormat::Json || self.file.is_some() || self.kafka.is_some();
        if needs_json {
            self.scratch.clear();
            // Serialising our own types into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.scratch, ev);
            self.scratch.push(b'\n');
        }
        match self.console {
            OutputFormat::Off => {}
            OutputFormat::Json => self.stdout.write_all(&self.scratch).map_err(stdout_err)?,
            OutputFormat::Alerts if ev.verdicts.is_empty() => {}
            OutputFormat::Text | OutputFormat::Alerts => {
                writeln!(self.stdout, "{}", text_line(ev)).map_err(stdout_err)?;
                for v in &ev.verdicts {
                    writeln!(self.stdout, "{}", alert_line(v)).map_err(stdout_err)?;
                }
            }
        }
        if let Some((path, f)) = &mut self.file {
            f.write_all(&self.scratch)
                .map_err(|source| OutputError::Write {
                    target: path.display().to_string(),
                    source,
                })?;
        }
        if let Some(k) = &mut self.kafka {
            let payload = self.scratch.strip_suffix(b"\n").unwrap_or(&self.scratch);
            k.send(&ev.provenance.cluster, payload)?;
        }
        Ok(())
    }

    /// Flushes everything written so far; only then may the events be acknowledged.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        if let Some(k) = &mut self.kafka {
            k.settle()?;
        }
        if self.console != OutputFormat::Off {
            self.stdout.flush().map_err(stdout_err)?;
        }
        if let Some((path, f)) = &mut self.file {
            f.flush().map_err(|source| OutputError::Write {
                target: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }
}

impl Output {
    /// Stops writing to stdout for good (its reader has gone); the file and topic carry on.
    pub fn close_stdout(&mut self) {
        self.console = OutputFormat::Off;
        // What is still buffered has nowhere to go: drop it rather than let the drop retry it.
        let _ = std::mem::replace(
            &mut self.stdout,
            BufWriter::with_capacity(0, std::io::stdout()),
        )
        .into_parts();
    }
}

/// A stdout error: a broken pipe is its own kind, so that the run can end instead of retrying.
fn stdout_err(source: std::io::Error) -> OutputError {
    if source.kind() == std::io::ErrorKind::BrokenPipe {
        OutputError::StdoutClosed
    } else {
        OutputError::Write {
            target: "stdout".into(),
            source,
        }
    }
}

impl EventsTopic {
    /// Queues one record, waiting for room when librdkafka's queue is full (backpressure).
    fn send(&mut self, key: &str, payload: &[u8]) -> Result<(), OutputError> {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        use rdkafka::producer::FutureRecord;
        loop {
            let record = FutureRecord::to(&self.topic).key(key).payload(payload);
            match self.producer.send_result(record) {
                Ok(f) => {
                    self.in_flight.push(f);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(std::time::Duration::from_millis(50));
                }
                Err((e, _)) => return Err(OutputError::Kafka(format!("{}: {e}", self.topic))),
            }
        }
    }

    /// Waits until the broker has acknowledged every record sent (the output loop is a plain thread).
    fn settle(&mut self) -> Result<(), OutputError> {
        let pending = std::mem::take(&mut self.in_flight);
        for r in futures::executor::block_on(futures::future::join_all(pending)) {
            match r {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(OutputError::Kafka(format!("{}: {e}", self.topic))),
                Err(_) => {
                    return Err(OutputError::Kafka(format!(
                        "{}: the producer went away",
                        self.topic
                    )))
                }
            }
        }
        Ok(())
    }
}

/// `  ALERT [severity] title (playbook, score, MITRE) dedup=... -> responses`
pub fn alert_line(v: &crate::playbook::Verdict) -> String {
    let mut line = format!(
        "  ALERT [{}] {} (playbook {}, score {}{}) dedup={}",
        format!("{:?}", v.severity).to_uppercase(),
        v.title,
        v.playbook,
        v.score,
        if v.mitre.is_empty() {
            String::new()
        } else {
            format!(", {}", v.mitre.join(" "))
        },
        v.dedup
    );
    if !v.responses.is_empty() {
        let r: Vec<String> = v
            .responses
            .iter()
            .map(|r| {
                let target = r
                    .params
                    .values()
                    .filter_map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                format!(
                    "{}{}{}",
                    r.kind,
                    if target.is_empty() {
                        String::new()
                    } else {
                        format!(" {target}")
                    },
                    if r.approval { " (needs approval)" } else { "" }
                )
            })
            .collect();
        line.push_str(&format!(" -> {}", r.join(", ")));
    }
    line
}

/// `time cluster verb resource ns/name user from ip -> code`
pub fn text_line(ev: &AuditEvent) -> String {
    let time = ev
        .stage_timestamp
        .as_deref()
        .or(ev.request_received_timestamp.as_deref())
        .unwrap_or("-");
    let target = match &ev.object_ref {
        Some(o) => {
            let name = o.name.as_deref().unwrap_or("");
            match o.namespace.as_deref() {
                Some(ns) if !name.is_empty() => format!("{ns}/{name}"),
                Some(ns) => format!("{ns}/*"),
                None if !name.is_empty() => name.to_owned(),
                None => "*".to_owned(),
            }
        }
        None => ev.request_uri.clone(),
    };
    let resource = ev.resource_path();
    let user = match &ev.impersonated_user {
        Some(imp) => format!("{} (as {})", ev.user.username, imp.username),
        None => ev.user.username.clone(),
    };
    let ip = ev.source_ips.first().map_or("-", String::as_str);
    let code = ev
        .response_code()
        .map_or_else(|| "-".to_owned(), |c| c.to_string());
    let mut line = format!(
        "{time} [{cluster}] {verb} {resource} {target} by {user}",
        cluster = ev.provenance.cluster,
        verb = ev.verb,
    );
    let Some(e) = ev.enrichment.as_deref() else {
        line.push_str(&format!(" from {ip} -> {code}"));
        return line;
    };
    let id = &e.identity;
    match (&id.team, id.known) {
        (Some(team), _) => line.push_str(&format!(" ({team})")),
        (None, false) if id.kind == crate::enrich::identity::PrincipalKind::Human => {
            line.push_str(" (unknown human)")
        }
        _ => {}
    }
    let n = &e.network;
    line.push_str(&format!(" from {}", n.client_ip.as_deref().unwrap_or(ip)));
    let mut place = Vec::new();
    if let Some(class) = &n.class {
        place.push(class.clone());
    }
    match (&n.geo.country, &n.geo.city) {
        (Some(c), Some(city)) => place.push(format!("{c} {city}")),
        (Some(c), None) => place.push(c.clone()),
        _ => {}
    }
    if let Some(asn) = n.geo.asn {
        place.push(format!("AS{asn}"));
    }
    for (flag, name) in [
        (n.geo.tor_exit, "tor"),
        (n.geo.anonymous_vpn, "vpn"),
        (n.geo.public_proxy, "proxy"),
        (n.geo.hosting, "hosting"),
    ] {
        if flag {
            place.push(name.to_owned());
        }
    }
    if !place.is_empty() {
        line.push_str(&format!(" ({})", place.join(", ")));
    }
    line.push_str(
        &format!(" -> {code} [{:?}/{}]", e.asset.tier, e.asset.data_class).to_lowercase(),
    );
    if let Some(b) = &e.baseline {
        for (flag, name) in [
            (b.new_country, "new-country"),
            (b.new_asn, "new-asn"),
            (b.new_user_agent, "new-agent"),
            (b.new_verb_resource, "new-action"),
            (b.new_source_network, "new-network"),
            (b.unusual_hour, "unusual-hour"),
        ] {
            if flag {
                line.push_str(&format!(" !{name}"));
            }
        }
    }
    line
}
