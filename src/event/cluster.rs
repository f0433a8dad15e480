//! Which cluster an event belongs to: from a Kafka header, the record key, a per-topic mapping, an annotation, or the default.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::AuditEvent;
use crate::config::ClusterConfig;

/// The cluster name as the transport told it, before the event is looked at.
pub type ClusterHint = Option<Arc<str>>;

/// Resolves the cluster name of every event, in a fixed precedence:
/// header, record key, topic mapping, event annotation, configured default.
#[derive(Debug, Clone)]
pub struct ClusterResolver {
    header: Option<String>,
    from_key: bool,
    topics: BTreeMap<String, Arc<str>>,
    annotation: Option<String>,
    default: Arc<str>,
}

impl ClusterResolver {
    pub fn new(cfg: &ClusterConfig) -> Self {
        Self {
            header: cfg.header.clone(),
            from_key: cfg.from_key,
            topics: cfg
                .topics
                .iter()
                .map(|(t, c)| (t.clone(), Arc::from(c.as_str())))
                .collect(),
            annotation: cfg.annotation.clone(),
            default: Arc::from(cfg.default.as_str()),
        }
    }

    /// The configured header name that carries the cluster, if any.
    pub fn header_name(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// What the transport says: a header value, the key, or the topic's mapping.
    pub fn from_transport(
        &self,
        header_value: Option<&[u8]>,
        key: Option<&[u8]>,
        topic: Option<&str>,
    ) -> ClusterHint {
        let usable = |b: &[u8]| {
            std::str::from_utf8(b)
                .ok()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Arc::from)
        };
        if let Some(v) = header_value.and_then(usable) {
            return Some(v);
        }
        if self.from_key {
            if let Some(v) = key.and_then(usable) {
                return Some(v);
            }
        }
        topic.and_then(|t| self.topics.get(t).cloned())
    }

    /// The transport's hint, else the default (for records that did not decode).
    pub fn resolve_default(&self, hint: &ClusterHint) -> String {
        hint.as_deref().unwrap_or(&self.default).to_owned()
    }

    /// The final name: the transport's hint, else the annotation, else the default.
    pub fn resolve(&self, hint: &ClusterHint, event: &AuditEvent) -> String {
        if let Some(h) = hint {
            return h.to_string();
        }
        // A cloud envelope (EKS log group, AKS resource id, GKE resource labels) names it.
        if !event.provenance.cluster.is_empty() {
            return event.provenance.cluster.clone();
        }
        if let Some(a) = &self.annotation {
            if let Some(v) = event.annotations.get(a).filter(|v| !v.is_empty()) {
                return v.clone();
            }
        }
        self.default.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{decode_record, DecodeOptions};

    fn event_with_annotation() -> AuditEvent {
        let raw = r#"{"auditID":"1","stage":"ResponseComplete","verb":"get","user":{"username":"u"},"annotations":{"rampart.io/cluster":"from-annotation"}}"#;
        decode_record(raw.as_bytes(), &DecodeOptions::default())
            .events
            .remove(0)
    }

    fn resolver() -> ClusterResolver {
        ClusterResolver::new(&ClusterConfig {
            default: "fallback".into(),
            header: Some("cluster".into()),
            from_key: true,
            topics: [("audit-prod".to_owned(), "prod".to_owned())].into(),
            annotation: Some("rampart.io/cluster".into()),
        })
    }

    #[test]
    fn header_wins_over_key_topic_and_annotation() {
        let r = resolver();
        let hint = r.from_transport(Some(b"hdr"), Some(b"key"), Some("audit-prod"));
        assert_eq!(r.resolve(&hint, &event_with_annotation()), "hdr");
    }

    #[test]
    fn key_then_topic_then_annotation_then_default() {
        let r = resolver();
        let ev = event_with_annotation();
        let hint = r.from_transport(None, Some(b"key"), Some("audit-prod"));
        assert_eq!(r.resolve(&hint, &ev), "key");
        let hint = r.from_transport(None, Some(b"  "), Some("audit-prod"));
        assert_eq!(r.resolve(&hint, &ev), "prod");
        let hint = r.from_transport(None, None, Some("other"));
        assert_eq!(r.resolve(&hint, &ev), "from-annotation");
        let mut bare = ev.clone();
        bare.annotations.clear();
        assert_eq!(r.resolve(&hint, &bare), "fallback");
    }
}
