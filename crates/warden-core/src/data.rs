//! Reading warden's data files. Operators write TOML; the files embedded in the binary are
//! converted to JSON by the build script (TOML syntax errors there fail the build), because
//! deserializing JSON costs a tenth of parsing TOML, and the catalog is loaded on every run.
//! A document starting with `{` is JSON (a TOML document cannot start so).

use serde::de::DeserializeOwned;

/// A data file that does not deserialize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataError {
    /// What the parser said.
    pub(crate) message: String,
    /// The 1-based line, when known.
    pub(crate) line: Option<usize>,
}

/// Deserializes a TOML or (embedded) JSON document.
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, DataError> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| DataError {
            message: e.to_string(),
            line: Some(e.line()),
        });
    }
    toml::from_str(text).map_err(|e| DataError {
        message: e.message().to_owned(),
        line: e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        name: String,
    }

    #[test]
    fn toml_and_json_read_alike_and_errors_carry_lines() {
        assert_eq!(
            from_str::<Doc>("name = \"a\"\n"),
            from_str::<Doc>("{\"name\": \"a\"}")
        );
        let err = from_str::<Doc>("name = \"a\"\ncolour = 1\n").expect_err("unknown field");
        assert_eq!(err.line, Some(2));
        assert!(from_str::<Doc>("{\"name\": 1}").is_err());
    }
}
