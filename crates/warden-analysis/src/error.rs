//! Why a set of rules could not be loaded. Analysing a program never fails: what goes wrong
//! with the program is part of its `Analysis`.

/// A rule file is malformed, or one of its rules is.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalysisError {
    /// The file is not valid TOML (or, embedded, JSON) or does not have the rule file's shape.
    #[error("{file}: not a valid rule file: {message}")]
    Format {
        /// The rule file.
        file: String,
        /// What the parser said.
        message: String,
    },
    /// The file's name does not make a language id.
    #[error("{file}: the file name must be `<language-id>.toml`")]
    FileName {
        /// The rule file.
        file: String,
    },
    /// Two files define rules for the same language.
    #[error("{file}: rules for language {language:?} are already defined")]
    DuplicateLanguage {
        /// The rule file.
        file: String,
        /// The language id.
        language: String,
    },
    /// A rule's query does not compile against its grammar.
    #[error("{file}: rule {rule}: the query does not compile: {message}")]
    Query {
        /// The rule file.
        file: String,
        /// The rule's id.
        rule: String,
        /// What tree-sitter said, with the line and column in the rule's query.
        message: String,
    },
    /// A rule breaks one of the rule file's conventions.
    #[error("{file}: rule {rule}: {problem}")]
    Rule {
        /// The rule file.
        file: String,
        /// The rule's id.
        rule: String,
        /// What is wrong.
        problem: String,
    },
    /// The grammar cannot be loaded by the tree-sitter runtime (an ABI mismatch).
    #[error("{file}: grammar {grammar} cannot be used: {message}")]
    Grammar {
        /// The rule file.
        file: String,
        /// The grammar's name.
        grammar: &'static str,
        /// What tree-sitter said.
        message: String,
    },
}
