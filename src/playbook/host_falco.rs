//! Host functions for the Falco k8saudit pack (`playbooks/falco/`): Falco's field semantics that the generic helpers do not give.

use rhai::{Dynamic, Engine};
use serde_json::Value;

use super::host::Ev;

/// Falco's `ka.req.pod.containers.image.repository`: the image without its tag or digest.
pub fn image_repository(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(r, _)| r);
    match (image.rfind(':'), image.rfind('/')) {
        (Some(colon), Some(slash)) if colon > slash => &image[..colon],
        (Some(colon), None) => &image[..colon],
        _ => image,
    }
}

/// The whole event as JSON (as written to the output), for Falco's `jevt.value[/pointer]`.
fn event_value(e: &Ev) -> Value {
    let mut v = serde_json::to_value(e.event()).unwrap_or(Value::Null);
    // rampart's own additions are not part of the audit event Falco sees.
    if let Some(obj) = v.as_object_mut() {
        obj.remove("verdicts");
        obj.remove("enrichment");
    }
    v
}

pub fn register(engine: &mut Engine) {
    // `jevt.value[/pointer]` over the whole audit event: the value, or `()` when it does not exist.
    engine.register_fn("jevt", |e: &mut Ev, ptr: &str| -> Dynamic {
        event_value(e)
            .pointer(ptr)
            .filter(|v| !v.is_null())
            .and_then(|v| rhai::serde::to_dynamic(v).ok())
            .unwrap_or(Dynamic::UNIT)
    });
    // The JSON text at a pointer of the whole event ("" when absent), for Falco's `contains` over an object (`ka.req.configmap.obj`).
    engine.register_fn("jevt_text", |e: &mut Ev, ptr: &str| -> String {
        event_value(e)
            .pointer(ptr)
            .filter(|v| !v.is_null())
            .map(Value::to_string)
            .unwrap_or_default()
    });
}

#[cfg(test)]
mod tests {
    use super::image_repository;

    #[test]
    fn repository_drops_tag_and_digest_but_not_a_registry_port() {
        assert_eq!(image_repository("nginx"), "nginx");
        assert_eq!(image_repository("nginx:1.7.9"), "nginx");
        assert_eq!(
            image_repository("docker.io/calico/node:v3"),
            "docker.io/calico/node"
        );
        assert_eq!(image_repository("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(
            image_repository("localhost:5000/app:1@sha256:ab"),
            "localhost:5000/app"
        );
    }
}
