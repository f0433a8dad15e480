//! HTML building blocks for the console: escaping (every string an alert carries is the attacker's), the page frame with its navigation and inline style, forms with their CSRF field, and readable renderings of JSON.

use std::fmt::Write;

use serde_json::Value;

use super::session::Session;
use crate::triage::access::Role;

/// `s` with `& < > " '` escaped: safe in element content and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded for a query string value (alert ids hold `/`).
pub fn url(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The link to an alert's page.
pub fn alert_href(id: &str) -> String {
    format!("/console/alert?id={}", url(id))
}

/// `2026-12-07T13:48:51Z` for seconds since the epoch.
pub fn time(secs: i64) -> String {
    crate::event::time::format_rfc3339(secs)
}

/// [`time`] for wall-clock milliseconds.
pub fn time_ms(ms: u64) -> String {
    time(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}\
header{background:#1d2430;color:#fff;padding:8px 20px;display:flex;gap:18px;align-items:center}\
header a{color:#cfd8e3;text-decoration:none}header a.on{color:#fff;font-weight:600}\
header .me{margin-left:auto;color:#9aa7b7}header form{display:inline}\
main{padding:16px 20px;max-width:1300px}h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:20px 0 8px}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}\
th{background:#eef0f3;font-weight:600}td.num,th.num{text-align:right}\
.sev{padding:1px 6px;border-radius:3px;color:#fff;font-size:12px}.sev-critical{background:#8b0000}.sev-high{background:#c0392b}\
.sev-medium{background:#d68910}.sev-low{background:#2e86c1}.sev-info{background:#7f8c8d}\
.badge{padding:1px 6px;border-radius:3px;font-size:12px;background:#e3e6ea}.badge.sup{background:#6c5ce7;color:#fff}\
.badge.fp{background:#f5b7b1}.badge.tp{background:#abebc6}.badge.benign{background:#d6eaf8}\
.note{background:#fff;border-left:4px solid #2e86c1;padding:8px 12px;margin:10px 0}.err{border-color:#c0392b}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:4px 0;background:#fff;padding:8px}\
dt{font-weight:600;color:#4a5565}dd{margin:0;word-break:break-all}dl dl{padding:0 0 0 4px}\
pre{background:#fff;padding:10px;overflow:auto;max-height:480px;border:1px solid #e3e6ea}\
form.filters,form.act{display:flex;flex-wrap:wrap;gap:8px;align-items:end;background:#fff;padding:8px;margin:6px 0}\
label{display:flex;flex-direction:column;font-size:12px;color:#4a5565}input,select,button{font:inherit;padding:3px 6px}\
button{cursor:pointer;border:1px solid #8792a2;border-radius:3px;background:#fff}button.go{background:#1d6fb8;color:#fff;border-color:#1d6fb8}\
button.bad{background:#c0392b;color:#fff;border-color:#c0392b}.muted{color:#7b8594}";

/// The pages the navigation lists.
const NAV: [(&str, &str); 5] = [
    ("alerts", "Alerts"),
    ("approvals", "Approvals"),
    ("suppressions", "Suppressions"),
    ("tuning", "Tuning"),
    ("health", "Health"),
];

/// A whole page: the frame (navigation, who is signed in, sign-out) around `body`.
pub fn page(title: &str, active: &str, session: Option<&Session>, body: &str) -> String {
    let mut h = String::with_capacity(body.len() + 4096);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"same-origin\">\
<title>{} · rampart</title><style>{STYLE}</style></head><body><header><strong>rampart</strong>",
        esc(title)
    );
    if let Some(s) = session {
        for (path, name) in NAV {
            let on = if path == active { " class=\"on\"" } else { "" };
            let _ = write!(h, "<a href=\"/console/{path}\"{on}>{name}</a>");
        }
        let _ = write!(
            h,
            "<span class=\"me\">{} ({})</span><form method=\"post\" action=\"/console/logout\">{}<button>Sign out</button></form>",
            esc(&s.user.name),
            s.user.role.as_str(),
            csrf_field(s)
        );
    }
    let _ = write!(h, "</header><main>{body}</main></body></html>");
    h
}

/// The hidden field every state-changing form carries.
pub fn csrf_field(s: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&s.csrf)
    )
}

/// True when the session may change things (forms are shown to approvers only).
pub fn can_act(s: &Session) -> bool {
    s.user.role >= Role::Approver
}

/// A one-button form posting `fields` to `action`.
pub fn button(
    s: &Session,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> String {
    let mut h = format!(
        "<form method=\"post\" action=\"{}\" style=\"display:inline\">{}",
        esc(action),
        csrf_field(s)
    );
    for (k, v) in fields {
        let _ = write!(
            h,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(k),
            esc(v)
        );
    }
    let _ = write!(
        h,
        "<button class=\"{}\">{}</button></form>",
        esc(class),
        esc(label)
    );
    h
}

/// A result sentence (or an error) shown above a page.
pub fn notice(msg: &str, error: bool) -> String {
    format!(
        "<div class=\"note{}\" role=\"status\">{}</div>",
        if error { " err" } else { "" },
        esc(msg)
    )
}

/// The severity badge.
pub fn severity(s: crate::model::Severity) -> String {
    let name = serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("<span class=\"sev sev-{name}\">{name}</span>")
}

/// A `<select>` of `options` (value, label) with `current` selected.
pub fn select(name: &str, label: &str, options: &[(String, String)], current: &str) -> String {
    let mut h = format!("<label>{}<select name=\"{}\">", esc(label), esc(name));
    for (v, l) in options {
        let sel = if v == current { " selected" } else { "" };
        let _ = write!(h, "<option value=\"{}\"{sel}>{}</option>", esc(v), esc(l));
    }
    h.push_str("</select></label>");
    h
}

/// A JSON value as nested definition lists (objects), lists (arrays) or text.
pub fn value(v: &Value) -> String {
    let mut h = String::new();
    write_value(&mut h, v, 0);
    h
}

fn write_value(h: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Object(m) if depth < 8 => {
            if m.is_empty() {
                h.push_str("<span class=\"muted\">{}</span>");
                return;
            }
            h.push_str("<dl>");
            for (k, x) in m {
                let _ = write!(h, "<dt>{}</dt><dd>", esc(k));
                write_value(h, x, depth + 1);
                h.push_str("</dd>");
            }
            h.push_str("</dl>");
        }
        Value::Array(a) if depth < 8 && a.iter().all(|x| !x.is_object()) => {
            let parts: Vec<String> = a.iter().map(scalar).collect();
            h.push_str(&esc(&parts.join(", ")));
        }
        Value::Array(a) if depth < 8 => {
            for x in a {
                write_value(h, x, depth + 1);
            }
        }
        other => h.push_str(&esc(&scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// A JSON value, pretty-printed and escaped, in a `<pre>` block.
pub fn json_block(v: &Value) -> String {
    format!(
        "<pre>{}</pre>",
        esc(&serde_json::to_string_pretty(v).unwrap_or_default())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("plain été"), "plain été");
    }

    #[test]
    fn json_renders_inert() {
        let v = serde_json::json!({"user": "<img src=x onerror=alert(1)>", "n": [1, "<b>"],
            "<k>": {"deep": null}});
        let h = value(&v);
        assert!(!h.contains("<img"), "{h}");
        assert!(!h.contains("<b>"), "{h}");
        assert!(!h.contains("<k>"), "{h}");
        assert!(h.contains("&lt;img src=x onerror=alert(1)&gt;"), "{h}");
        let pre = json_block(&v);
        assert!(!pre.contains("<img"), "{pre}");
    }

    #[test]
    fn urls_and_attributes_are_encoded() {
        assert_eq!(
            alert_href("prod/a b/pb"),
            "/console/alert?id=prod%2Fa+b%2Fpb"
        );
        assert!(
            select("x", "X", &[("\"><script>".into(), "<i>".into())], "")
                .contains("value=\"&quot;&gt;&lt;script&gt;\"")
        );
    }
}
