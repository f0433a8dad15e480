//! Which named lists a playbook's source reads with a literal name, and where: so that a list defined nowhere fails the load instead of being silently empty.

/// The helpers whose first argument names a list.
const READERS: &[&str] = &["in_list", "in_list_glob", "in_cidr_list", "list"];

/// `(list name, line, column)` of every `in_list("name", …)`, `in_list_glob`, `in_cidr_list` or
/// `list("name")` call with a string literal, outside `//` comments. Lines and columns are 1-based.
pub fn list_refs(source: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.find("//").map_or(line, |i| &line[..i]);
        let bytes = code.as_bytes();
        for reader in READERS {
            let mut from = 0;
            while let Some(i) = code[from..].find(reader).map(|i| i + from) {
                from = i + reader.len();
                let before_ok = i == 0 || !is_ident(bytes[i - 1]);
                let rest = code[from..].trim_start_matches([' ', '\t']);
                let Some(rest) = rest.strip_prefix('(') else {
                    continue;
                };
                let rest = rest.trim_start_matches([' ', '\t']);
                if !before_ok || !rest.starts_with('"') {
                    continue;
                }
                if let Some(end) = rest[1..].find('"') {
                    out.push((rest[1..=end].to_owned(), n + 1, i + 1));
                }
            }
        }
    }
    out.sort_by_key(|r| (r.1, r.2));
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::list_refs;

    #[test]
    fn finds_literal_list_names_with_their_position() {
        let src = "fn rule(e) {\n    in_list(\"admins\", e.user) || in_list_glob( \"bots\", e.user)\n    // in_list(\"commented\", x)\n    for p in list(\"patterns\") {}\n    my_list(\"not_a_list\"); in_list(name, x);\n}\n";
        let refs = list_refs(src);
        assert_eq!(
            refs,
            vec![
                ("admins".to_owned(), 2, 5),
                ("bots".to_owned(), 2, 34),
                ("patterns".to_owned(), 4, 14),
            ]
        );
    }
}
