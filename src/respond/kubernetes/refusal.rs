//! Why a revocation request, or a configured label selector, is refused before anything is read or changed.

/// A revocation the responder will not attempt: the delivery does not name a well-formed binding,
/// or its parameters cannot be read. Journaled as the failure's reason; nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the delivery names no binding (the event was not about a RoleBinding or ClusterRoleBinding)")]
    NoTarget,
    #[error("the target is a {0:?}, not a RoleBinding or ClusterRoleBinding")]
    NotABinding(String),
    #[error("the binding name {0:?} is not a valid object name")]
    InvalidName(String),
    #[error("the RoleBinding {0} has no namespace")]
    NoNamespace(String),
    #[error("the namespace {0:?} is not a valid namespace")]
    InvalidNamespace(String),
    #[error("unknown mode {0:?} (expected remove_subject or delete)")]
    UnknownMode(String),
    #[error("the request has no mode (use revoke_binding() or delete_binding())")]
    NoMode,
    #[error("the audit event did not record the subjects of {0} (Metadata level), so rampart cannot tell which to remove; name one with the subject parameter or use delete_binding()")]
    SubjectsNotRecorded(String),
    #[error("the subject parameter needs `kind` and `name`")]
    SubjectIncomplete,
    #[error("the subject parameter must be a name or {{kind, name, namespace}}")]
    SubjectNotAName,
    #[error("cannot read the subject parameter {0:?}")]
    SubjectUnreadable(String),
}

/// A label selector rampart cannot use (`protected.label_selector`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("empty term in label selector {0:?}")]
    EmptyTerm(String),
    #[error("unsupported term {0:?}: only `key=value` and `key` are supported")]
    Unsupported(String),
    #[error("invalid label key {0:?}")]
    Key(String),
    #[error("invalid label value {0:?}")]
    Value(String),
}
