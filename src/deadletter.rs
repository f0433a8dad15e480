//! The dead-letter sink: undecodable records, with the reason, the original bytes and provenance, to a JSON-lines file or a Kafka topic.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;

use crate::config::{Config, KafkaConnection};
use crate::sources::Origin;

/// Errors of the dead-letter sink.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("cannot open dead-letter file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write dead-letter file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create dead-letter producer: {0}")]
    Producer(#[source] rdkafka::error::KafkaError),
    #[error("cannot produce to dead-letter topic {topic}: {source}")]
    Produce {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// One dead-lettered record or item.
#[derive(Debug)]
pub struct DeadLetterEntry<'a> {
    pub reason: String,
    pub origin: &'a Origin,
    pub cluster: &'a str,
    pub index: u32,
    pub whole_record: bool,
    pub bytes: &'a [u8],
}

/// The JSON-lines shape of a dead-letter file entry.
#[derive(Serialize)]
struct FileEntry<'a> {
    reason: &'a str,
    source: &'a str,
    cluster: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    index: u32,
    whole_record: bool,
    received_at_ms: i64,
    /// The original bytes as text when they are UTF-8...
    #[serde(skip_serializing_if = "Option::is_none")]
    original: Option<&'a str>,
    /// ...and base64 when they are not.
    #[serde(skip_serializing_if = "Option::is_none")]
    original_base64: Option<String>,
}

/// Where dead letters go.
pub enum DeadLetter {
    File {
        path: PathBuf,
        file: Mutex<File>,
    },
    Kafka {
        topic: String,
        producer: FutureProducer,
    },
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetter::File { path, .. } => write!(f, "DeadLetter::File({})", path.display()),
            DeadLetter::Kafka { topic, .. } => write!(f, "DeadLetter::Kafka({topic})"),
        }
    }
}

impl DeadLetter {
    /// Opens the configured sink; with none configured, `dead-letter.jsonl` in the state directory.
    pub fn build(cfg: &Config) -> Result<Self, DeadLetterError> {
        match (&cfg.dead_letter.topic, &cfg.kafka) {
            (Some(topic), Some(conn)) => Self::kafka(conn, topic),
            _ => {
                let path = cfg
                    .dead_letter
                    .file
                    .clone()
                    .unwrap_or_else(|| cfg.state.dir.join("dead-letter.jsonl"));
                Self::file(&path)
            }
        }
    }

    pub fn file(path: &Path) -> Result<Self, DeadLetterError> {
        let (file, cut) =
            crate::fsutil::open_append_lines(path).map_err(|source| DeadLetterError::Open {
                path: path.to_owned(),
                source,
            })?;
        if cut > 0 {
            tracing::warn!(path = %path.display(), bytes = cut, "dead-letter file ended in an entry a crash cut short; removed it (its record is read again)");
        }
        Ok(DeadLetter::File {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    pub fn kafka(conn: &KafkaConnection, topic: &str) -> Result<Self, DeadLetterError> {
        let producer = crate::sources::kafka::producer_config(conn)
            .create()
            .map_err(DeadLetterError::Producer)?;
        Ok(DeadLetter::Kafka {
            topic: topic.to_owned(),
            producer,
        })
    }

    /// Writes one entry durably (file synced, or produced with acks=all) before returning.
    pub async fn write(&self, e: &DeadLetterEntry<'_>) -> Result<(), DeadLetterError> {
        match self {
            DeadLetter::File { path, file } => {
                let text = std::str::from_utf8(e.bytes).ok();
                let entry = FileEntry {
                    reason: &e.reason,
                    source: e.origin.source.as_str(),
                    cluster: e.cluster,
                    topic: e.origin.topic.as_deref(),
                    partition: e.origin.partition,
                    offset: e.origin.offset,
                    file: e.origin.file.as_deref(),
                    line: e.origin.line,
                    index: e.index,
                    whole_record: e.whole_record,
                    received_at_ms: e.origin.received_at_ms,
                    original: text,
                    original_base64: text
                        .is_none()
                        .then(|| base64::engine::general_purpose::STANDARD.encode(e.bytes)),
                };
                let mut line = serde_json::to_vec(&entry).unwrap_or_default();
                line.push(b'\n');
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                f.write_all(&line)
                    .and_then(|()| f.sync_data())
                    .map_err(|source| DeadLetterError::Write {
                        path: path.clone(),
                        source,
                    })
            }
            DeadLetter::Kafka { topic, producer } => {
                let partition = e.origin.partition.map(|p| p.to_string());
                let offset = e.origin.offset.map(|o| o.to_string());
                let index = e.index.to_string();
                let mut headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "rampart.reason",
                        value: Some(e.reason.as_str()),
                    })
                    .insert(Header {
                        key: "rampart.source",
                        value: Some(e.origin.source.as_str()),
                    })
                    .insert(Header {
                        key: "rampart.cluster",
                        value: Some(e.cluster),
                    })
                    .insert(Header {
                        key: "rampart.index",
                        value: Some(index.as_str()),
                    });
                for (key, value) in [
                    ("rampart.topic", e.origin.topic.as_deref()),
                    ("rampart.partition", partition.as_deref()),
                    ("rampart.offset", offset.as_deref()),
                    ("rampart.file", e.origin.file.as_deref()),
                ] {
                    if let Some(v) = value {
                        headers = headers.insert(Header {
                            key,
                            value: Some(v),
                        });
                    }
                }
                let record: FutureRecord<'_, (), [u8]> =
                    FutureRecord::to(topic).payload(e.bytes).headers(headers);
                producer
                    .send(record, Duration::from_secs(30))
                    .await
                    .map(|_| ())
                    .map_err(|(source, _)| DeadLetterError::Produce {
                        topic: topic.clone(),
                        source,
                    })
            }
        }
    }
}
