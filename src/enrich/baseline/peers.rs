//! Peer groups: a person's team, a service account's family (namespace and name stem, `ci/ci-runner-*`), a node's pool.

use crate::model::enrichment::{Identity, PrincipalKind};

/// The name without its trailing parts that carry digits (`ci-runner-payments-7f9c2` is
/// `ci-runner-payments`, `gke-prod-pool-1-3f2a-xk2p` is `gke-prod-pool`); at least the first part.
pub fn stem(name: &str) -> &str {
    let mut end = name.len();
    while let Some(dash) = name[..end].rfind('-') {
        if !name[dash + 1..end].bytes().any(|b| b.is_ascii_digit()) {
            break;
        }
        end = dash;
    }
    &name[..end]
}

/// A peer group: what kind it is, and its one or two names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    kind: &'static str,
    a: &'a str,
    b: &'a str,
}

impl Group<'_> {
    /// A team of people (the other groups are service-account families and node pools).
    pub fn is_team(&self) -> bool {
        self.kind == "team"
    }

    /// A stable key of the group within `cluster`.
    pub fn key(&self, cluster: &str) -> u64 {
        crate::state::stable_hash([
            cluster.as_bytes(),
            b"\x1f",
            self.kind.as_bytes(),
            b"\x1f",
            self.a.as_bytes(),
            b"/",
            self.b.as_bytes(),
        ])
    }

    /// As written in explanations: `team payments`, `service accounts ci/ci-runner-*`, `node pool gke-prod-pool-*`.
    pub fn describe(&self) -> String {
        match self.kind {
            "team" => format!("team {}", self.a),
            "sa" => format!("service accounts {}/{}*", self.a, self.b),
            _ => format!("node pool {}*", self.a),
        }
    }
}

/// The peer group of an identity: a person's team, a service account's family, a node's pool.
pub fn group(id: &Identity) -> Option<Group<'_>> {
    match id.kind {
        PrincipalKind::Human => id.team.as_deref().map(|t| Group {
            kind: "team",
            a: t,
            b: "",
        }),
        PrincipalKind::ServiceAccount => Some(Group {
            kind: "sa",
            a: id.sa_namespace.as_deref()?,
            b: stem(id.sa_name.as_deref()?),
        }),
        PrincipalKind::Node => {
            let node = id.node.as_deref()?;
            let host = node.split('.').next().unwrap_or(node);
            Some(Group {
                kind: "pool",
                a: stem(host),
                b: "",
            })
        }
        PrincipalKind::System | PrincipalKind::Anonymous => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_drop_numbered_and_hashed_suffixes() {
        assert_eq!(stem("ci-runner-payments-1"), "ci-runner-payments");
        assert_eq!(stem("ci-runner-7f9c2"), "ci-runner");
        assert_eq!(stem("gke-prod-pool-1-3f2a-xk2p"), "gke-prod-pool");
        assert_eq!(stem("deployer"), "deployer");
        assert_eq!(stem("ip-10-0-1-12"), "ip");
        assert_eq!(stem("1234"), "1234");
    }

    #[test]
    fn groups_come_from_teams_families_and_pools() {
        let mut id = Identity {
            kind: PrincipalKind::Human,
            team: Some("payments".into()),
            ..Identity::default()
        };
        assert_eq!(
            group(&id).map(|g| g.describe()).as_deref(),
            Some("team payments")
        );
        id.team = None;
        assert_eq!(group(&id), None);
        let peer = Identity {
            kind: PrincipalKind::ServiceAccount,
            sa_namespace: Some("ci".into()),
            sa_name: Some("ci-runner-payments-7".into()),
            ..Identity::default()
        };
        let sa = Identity {
            kind: PrincipalKind::ServiceAccount,
            sa_namespace: Some("ci".into()),
            sa_name: Some("ci-runner-payments-2".into()),
            team: Some("platform".into()),
            ..Identity::default()
        };
        assert_eq!(
            group(&sa).map(|g| g.describe()).as_deref(),
            Some("service accounts ci/ci-runner-payments*")
        );
        let node = Identity {
            kind: PrincipalKind::Node,
            node: Some("gke-prod-pool-1-3f2a-xk2p".into()),
            ..Identity::default()
        };
        let same = |a: &Identity, b: &Identity| {
            group(a).map(|g| g.key("prod")) == group(b).map(|g| g.key("prod"))
        };
        assert!(same(&sa, &peer), "one family");
        assert_ne!(
            group(&sa).map(|g| g.key("prod")),
            group(&sa).map(|g| g.key("staging")),
            "clusters apart"
        );
        assert_eq!(
            group(&node).map(|g| g.describe()).as_deref(),
            Some("node pool gke-prod-pool*")
        );
    }
}
