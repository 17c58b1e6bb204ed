//! The parameter names of a request's query string, for the decisions made before s3s parses
//! the request (which checks apply, which API a metric counts).

/// The names in a query string: `a=1&b&c=` gives `a`, `b`, `c`.
pub fn names(query: Option<&str>) -> impl Iterator<Item = &str> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .filter(|name| !name.is_empty())
}

/// Whether the query string names `name`, with or without a value.
pub fn has(query: Option<&str>, name: &str) -> bool {
    names(query).any(|n| n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_values() {
        let q = Some("uploadId=abc&tagging&versionId=");
        assert_eq!(
            names(q).collect::<Vec<_>>(),
            ["uploadId", "tagging", "versionId"]
        );
        assert!(has(q, "tagging") && has(q, "versionId"));
        assert!(!has(q, "abc") && !has(None, "tagging") && !has(Some(""), ""));
    }
}
