//! The `revoke_binding` responder: revokes the RoleBinding or ClusterRoleBinding a playbook judged — exactly that object, never a protected one — through the Kubernetes API, and undoes it on request.
//!
//! - [`config`]: [`KubernetesConfig`] and its validation.
//! - [`client`]: connecting (kubeconfig, in-cluster) and the few API requests made.
//! - [`safety`]: what is refused.
//! - [`refusal`]: why a request or a label selector is refused.
//! - [`revoke`]: one revocation, from GET to Event.
//! - [`undo`]: restoring from the journal's undo record.
//! - [`events`]: Kubernetes Events on the bindings.
//! - [`target`]: the binding a judged event touched, as the delivery carries it.

pub mod client;
pub mod config;
pub mod events;
pub mod refusal;
pub mod revoke;
pub mod safety;
pub mod target;
pub mod undo;

use serde_json::Value;

pub use client::ConnectError;
pub use config::{KubernetesConfig, OwnConfig, ProtectedConfig, ServiceAccountRef};
pub use refusal::{Refusal, SelectorError};
pub use target::{binding_target, BindingTarget};
pub use undo::UndoError;

use super::registry::{BuildContext, Built, RespondError};
use super::{BoxFuture, Effect, Responder, Retry};
use crate::state::model::Delivery;
use client::Api;
use events::Reporter;
use safety::Policy;

/// Revokes judged bindings (`revoke_binding()` and `delete_binding()` in playbooks).
pub struct KubernetesResponder {
    /// `respond.kubernetes.dry_run`: this responder only reads and journals.
    dry_run: bool,
    api: Api,
    policy: Policy,
    reporter: Reporter,
}

impl std::fmt::Debug for KubernetesResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesResponder")
            .field("api", &self.api)
            .field("policy", &self.policy)
            .field("reporter", &self.reporter)
            .finish()
    }
}

impl KubernetesResponder {
    /// Connects as `cfg` says: its kubeconfig (and context), else in-cluster, else `KUBECONFIG` / `~/.kube/config`.
    pub async fn from_config(cfg: &KubernetesConfig) -> Result<Self, ConnectError> {
        let client = client::connect(cfg).await?;
        Ok(Self::with_client(client, cfg))
    }

    /// Uses a ready client (its connection settings win over `cfg`'s).
    pub fn with_client(client: kube::Client, cfg: &KubernetesConfig) -> Self {
        Self {
            dry_run: cfg.dry_run,
            api: Api::new(client, cfg.timeout.get(), &cfg.field_manager),
            policy: Policy::new(cfg),
            reporter: Reporter {
                enabled: cfg.events,
                controller: cfg.field_manager.clone(),
                instance: cfg.instance(),
            },
        }
    }

    /// Undoes a revocation from its journal entry's `undo` value (`JournalEntry.undo`);
    /// returns one sentence saying what was restored.
    pub async fn undo(&self, entry_undo: &Value) -> Result<String, UndoError> {
        undo::restore(&self.api, &self.reporter, entry_undo).await
    }
}

/// Connects as `cfg` says and undoes one revocation (for `rampart actions undo ID`).
pub async fn undo(cfg: &KubernetesConfig, entry_undo: &Value) -> Result<String, UndoError> {
    KubernetesResponder::from_config(cfg)
        .await?
        .undo(entry_undo)
        .await
}

/// `respond.kubernetes` (registered in [`super::registry`]).
pub fn build<'a>(
    cx: &'a BuildContext<'a>,
    out: &'a mut Built,
) -> BoxFuture<'a, Result<(), RespondError>> {
    Box::pin(async move {
        if let Some(k) = &cx.config.respond.kubernetes {
            let r = KubernetesResponder::from_config(k).await?;
            out.responders.push(std::sync::Arc::new(r));
        }
        Ok(())
    })
}

impl Responder for KubernetesResponder {
    fn name(&self) -> &str {
        "revoke_binding"
    }

    fn target(&self, ev: &crate::event::AuditEvent) -> Option<Value> {
        binding_target(ev).and_then(|t| serde_json::to_value(t).ok())
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Effect, Retry>> {
        Box::pin(revoke::deliver(self, d, dry_run || self.dry_run))
    }
}
