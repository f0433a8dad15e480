//! Extra host functions for the detection playbooks: impersonated groups, and allowlists matched with globs.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine};

use super::host::{Ev, Lists};

/// `*` matches any run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || value.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &value[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

fn list_matches(lists: &Lists, cluster: &str, name: &str, value: &str) -> bool {
    let global = lists.global.get(name).into_iter().flatten();
    let local = lists
        .per_cluster
        .get(cluster)
        .and_then(|c| c.get(name))
        .into_iter()
        .flatten();
    global.chain(local).any(|p| glob_match(p, value))
}

/// Registers `impersonated_groups(e)` and `in_list_glob(name, value)`.
pub fn register(engine: &mut Engine, lists: Arc<Lists>) {
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
    use super::glob_match;

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
