//! Extra host functions for the detection playbooks: impersonated groups, allowlists matched with globs or CIDRs, settings, and pod-security facts.

use std::net::IpAddr;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine};
use serde_json::Value;

use super::host::{Ev, Lists};
use crate::enrich::Cidr;

/// Ranges that never leave a private network (the network enricher's built-in internal ranges).
const PRIVATE: &[&str] = &[
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
    "100.64.0.0/10",
];

/// Is `ip` in a private, loopback, link-local or CGNAT range? Unparsable text is not.
pub fn is_private_ip(ip: &str) -> bool {
    let Ok(ip) = ip.trim().parse::<IpAddr>() else {
        return false;
    };
    PRIVATE
        .iter()
        .filter_map(|c| Cidr::parse(c).ok())
        .any(|c| c.contains(ip))
}

fn cidr_list_matches(lists: &Lists, cluster: &str, name: &str, ip: &str) -> bool {
    let Ok(ip) = ip.trim().parse::<IpAddr>() else {
        return false;
    };
    lists
        .entries(cluster, name)
        .filter_map(|c| Cidr::parse(c).ok())
        .any(|c| c.contains(ip))
}

/// `name=value` from the list `settings` (a cluster's entry wins; the smallest of several), else `default`.
fn setting(lists: &Lists, cluster: &str, name: &str, default: i64) -> i64 {
    // A name given more than once (a test case adding its own entry) counts with its smallest value.
    let find = |set: Option<&std::collections::HashSet<String>>| {
        set.into_iter()
            .flatten()
            .filter_map(|entry| {
                let (k, v) = entry.split_once('=')?;
                (k.trim() == name).then(|| v.trim().parse::<i64>().ok())?
            })
            .min()
    };
    find(
        lists
            .per_cluster
            .get(cluster)
            .and_then(|c| c.get("settings")),
    )
    .or_else(|| find(lists.global.get("settings")))
    .unwrap_or(default)
}

/// Containers of a pod spec that run, or may run, as root: an explicit `runAsUser: 0`, or neither a
/// non-zero `runAsUser` nor `runAsNonRoot: true` at container or pod level (the image decides).
pub fn root_containers(obj: &Value) -> Vec<String> {
    let Some(spec) = super::host_objects::pod_spec(obj) else {
        return Vec::new();
    };
    let pod = spec.get("securityContext");
    let pod_user = pod.and_then(|p| p.get("runAsUser")).and_then(Value::as_i64);
    let pod_nonroot = pod
        .and_then(|p| p.get("runAsNonRoot"))
        .and_then(Value::as_bool);
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .filter(|c| {
            let sc = c.get("securityContext");
            let user = sc
                .and_then(|s| s.get("runAsUser"))
                .and_then(Value::as_i64)
                .or(pod_user);
            let nonroot = sc
                .and_then(|s| s.get("runAsNonRoot"))
                .and_then(Value::as_bool)
                .or(pod_nonroot);
            match user {
                Some(0) => true,
                Some(_) => false,
                None => nonroot != Some(true),
            }
        })
        .map(|c| c["name"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// `*` matches any run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    // No allocation: lists are matched on every event.
    let Some((first, after)) = pattern.split_once('*') else {
        return pattern == value;
    };
    let (middles, last) = after.rsplit_once('*').unwrap_or(("", after));
    if !value.starts_with(first) || value.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &value[first.len()..];
    if after.contains('*') {
        for mid in middles.split('*') {
            match rest.find(mid) {
                Some(i) => rest = &rest[i + mid.len()..],
                None => return false,
            }
        }
    }
    rest.ends_with(last)
}

pub(super) fn list_matches(lists: &Lists, cluster: &str, name: &str, value: &str) -> bool {
    lists.entries(cluster, name).any(|p| glob_match(p, value))
}

/// Registers `impersonated_groups(e)`, `in_list_glob`, `in_cidr_list`, `is_private_ip` and `setting` (`root_containers(e)` is in `host_objects`).
pub fn register(engine: &mut Engine, lists: Arc<Lists>) {
    engine.register_fn("is_private_ip", |ip: &str| is_private_ip(ip));
    let l = lists.clone();
    engine.register_fn("in_cidr_list", move |name: &str, ip: &str| {
        super::state_api::with_cluster(|cluster| cidr_list_matches(&l, cluster, name, ip))
    });
    let l = lists.clone();
    engine.register_fn("setting", move |name: &str, default: i64| {
        super::state_api::with_cluster(|cluster| setting(&l, cluster, name, default))
    });
    engine.register_fn("impersonated_groups", |e: &mut Ev| {
        e.event()
            .impersonated_user
            .as_ref()
            .map(|u| {
                u.groups
                    .iter()
                    .map(|g| Dynamic::from(g.clone()))
                    .collect::<Array>()
            })
            .unwrap_or_default()
    });
    engine.register_fn("in_list_glob", move |name: &str, value: &str| {
        super::state_api::with_cluster(|cluster| list_matches(&lists, cluster, name, value))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_and_cidr_lists() {
        assert!(
            is_private_ip("10.1.2.3") && is_private_ip("100.64.0.9") && is_private_ip("fd00::1")
        );
        assert!(!is_private_ip("3.5.140.2") && !is_private_ip("not an address"));
        let mut lists = Lists::default();
        lists.global.insert(
            "aws".into(),
            ["3.0.0.0/9".to_owned(), "garbage".to_owned()].into(),
        );
        lists
            .global
            .insert("settings".into(), ["burst=7".to_owned()].into());
        assert!(cidr_list_matches(&lists, "c", "aws", "3.5.140.2"));
        assert!(!cidr_list_matches(&lists, "c", "aws", "35.200.1.9"));
        assert_eq!(setting(&lists, "c", "burst", 20), 7);
        assert_eq!(setting(&lists, "c", "other", 20), 20);
    }

    #[test]
    fn root_containers_are_explicit_root_or_unconstrained() {
        let pod = serde_json::json!({"spec": {"securityContext": {"runAsNonRoot": true}, "containers": [
            {"name": "app"},
            {"name": "zero", "securityContext": {"runAsUser": 0}},
            {"name": "loose", "securityContext": {"runAsNonRoot": false}}]}});
        assert_eq!(root_containers(&pod), ["zero", "loose"]);
        let bare = serde_json::json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 1000}}]}});
        assert_eq!(root_containers(&bare), ["a"]);
    }

    #[test]
    fn globs_match_prefixes_suffixes_and_middles() {
        assert!(glob_match("eks:*", "eks:addon-manager"));
        assert!(glob_match(
            "*@*.iam.gserviceaccount.com",
            "ci@proj.iam.gserviceaccount.com"
        ));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exact2"));
        assert!(!glob_match("eks:*", "system:eks"));
        assert!(!glob_match("a*b*c", "ab"));
        assert!(glob_match("*", ""));
    }
}
