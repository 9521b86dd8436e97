//! The tree-sitter grammars warden can parse with, as a closed set: a rule file names its
//! grammar (`grammar = "python"`), so a new language that reuses a grammar is a data file, and a
//! new grammar is one variant here plus its crate.

use serde::Deserialize;

/// A tree-sitter grammar compiled into warden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grammar {
    /// GNU Bash and POSIX shell.
    Bash,
    /// C.
    C,
    /// C++.
    Cpp,
    /// Go.
    Go,
    /// Java.
    Java,
    /// JavaScript (also Node.js's CommonJS).
    Javascript,
    /// PHP, including the text around `<?php ... ?>`.
    Php,
    /// Python 3.
    Python,
    /// R.
    R,
    /// Ruby.
    Ruby,
    /// Rust.
    Rust,
}

impl Grammar {
    /// Every grammar.
    pub const ALL: [Grammar; 11] = [
        Grammar::Bash,
        Grammar::C,
        Grammar::Cpp,
        Grammar::Go,
        Grammar::Java,
        Grammar::Javascript,
        Grammar::Php,
        Grammar::Python,
        Grammar::R,
        Grammar::Ruby,
        Grammar::Rust,
    ];

    /// The name used in rule files.
    pub const fn name(self) -> &'static str {
        match self {
            Grammar::Bash => "bash",
            Grammar::C => "c",
            Grammar::Cpp => "cpp",
            Grammar::Go => "go",
            Grammar::Java => "java",
            Grammar::Javascript => "javascript",
            Grammar::Php => "php",
            Grammar::Python => "python",
            Grammar::R => "r",
            Grammar::Ruby => "ruby",
            Grammar::Rust => "rust",
        }
    }

    /// The tree-sitter language.
    pub fn language(self) -> tree_sitter::Language {
        match self {
            Grammar::Bash => tree_sitter_bash::LANGUAGE.into(),
            Grammar::C => tree_sitter_c::LANGUAGE.into(),
            Grammar::Cpp => tree_sitter_cpp::LANGUAGE.into(),
            Grammar::Go => tree_sitter_go::LANGUAGE.into(),
            Grammar::Java => tree_sitter_java::LANGUAGE.into(),
            Grammar::Javascript => tree_sitter_javascript::LANGUAGE.into(),
            Grammar::Php => tree_sitter_php::LANGUAGE_PHP.into(),
            Grammar::Python => tree_sitter_python::LANGUAGE.into(),
            Grammar::R => tree_sitter_r::LANGUAGE.into(),
            Grammar::Ruby => tree_sitter_ruby::LANGUAGE.into(),
            Grammar::Rust => tree_sitter_rust::LANGUAGE.into(),
        }
    }
}
