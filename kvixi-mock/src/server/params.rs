//! Query-string and form parameters, read without ever rejecting a request.

use std::collections::HashMap;

/// Decoded `name=value` pairs; the first occurrence of a name wins.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parameters of a query string (`None` when the URL has none).
    pub(crate) fn from_query(query: Option<&str>) -> Self {
        Self::from_urlencoded(query.unwrap_or_default().as_bytes())
    }

    /// Parameters of an `application/x-www-form-urlencoded` body (or a query string).
    pub(crate) fn from_urlencoded(input: &[u8]) -> Self {
        let mut params = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(input) {
            params
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Self(params)
    }

    /// The value of `name` when present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_missing() {
        let params = Params::from_query(Some("a=&b=x%20y&b=z"));
        assert_eq!(params.get("a"), None);
        assert_eq!(params.get("b"), Some("x y"));
        assert_eq!(params.get("c"), None);
        assert_eq!(Params::from_query(None).get("a"), None);
    }
}
