//! The argv template of a tool that wraps a host command:
//! `command = ["/usr/bin/jq", "-r", "{filter}", "{files...}"]`.
//!
//! Placeholders name properties of the tool's input schema, checked when the tool file is
//! read: `{name}` alone is one argument, `{name...}` alone spreads an array of strings into
//! zero or more arguments, `{name}` inside a longer element is substituted as text, `{{` and
//! `}}` are literal braces. The argv goes to `execve` directly, never through a shell.
//!
//! A value that becomes the start of an argument and begins with `-` would be read by the
//! program as an option (`--output=/etc/passwd`), so it is refused unless the template has
//! put `--` (the POSIX end of options) before it.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::schema::{JsonType, Schema};

/// A template element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    /// Taken as written (braces unescaped).
    Literal(String),
    /// `{name}`: the value as one argument.
    Whole(String),
    /// `{name...}`: each string of the array as one argument.
    Spread(String),
    /// Text and placeholders mixed (`--max-count={n}`).
    Text(Vec<Piece>),
}

/// A piece of a mixed element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(String),
}

/// A checked command template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    argv: Vec<String>,
    program: PathBuf,
    elements: Vec<Element>,
    /// Index of the first element that is exactly `--`.
    end_of_options: Option<usize>,
}

/// A template that cannot be used, or an input it cannot be expanded with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template has no program.
    #[error("the command is empty")]
    Empty,
    /// The program is not a plain absolute path.
    #[error("the program {program:?} must be an absolute path without placeholders or `..`")]
    Program {
        /// argv\[0\] as written.
        program: String,
    },
    /// An element's braces do not parse.
    #[error("element {element:?}: {problem}")]
    Syntax {
        /// The element.
        element: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A placeholder names no property of the input schema.
    #[error("placeholder {{{name}}} names no property of the input schema")]
    UnknownProperty {
        /// The placeholder's name.
        name: String,
    },
    /// A placeholder's property has the wrong type.
    #[error("placeholder {placeholder} needs {needs}, but the property's type is {found}")]
    PropertyType {
        /// The placeholder as written.
        placeholder: String,
        /// What it needs.
        needs: &'static str,
        /// The schema's types.
        found: String,
    },
    /// The input is not an object.
    #[error("the input must be an object")]
    NotAnObject,
    /// A required property is absent.
    #[error("the input has no value for {name:?}")]
    Missing {
        /// The property.
        name: String,
    },
    /// A value does not fit its placeholder.
    #[error("value of {name:?} must be {needs}")]
    ValueType {
        /// The property.
        name: String,
        /// What the placeholder takes.
        needs: &'static str,
    },
    /// A value would start an argument with `-`.
    #[error("value of {name:?} begins with '-' and would be read as an option")]
    LeadingDash {
        /// The property.
        name: String,
    },
    /// A value contains a NUL byte, which no argument can hold.
    #[error("value of {name:?} contains a NUL byte")]
    Nul {
        /// The property.
        name: String,
    },
}

const SCALAR: &str = "a string, number, integer or boolean";
const STRINGS: &str = "an array of strings";

impl CommandTemplate {
    /// Checks a template against the input schema its placeholders name.
    pub fn parse(argv: &[String], schema: &Schema) -> Result<Self, TemplateError> {
        let program = argv.first().ok_or(TemplateError::Empty)?;
        let path = Path::new(program);
        let plain = path.is_absolute()
            && !program.contains(['{', '}', '\0'])
            && !path.components().any(|c| c == Component::ParentDir);
        if !plain {
            return Err(TemplateError::Program {
                program: program.clone(),
            });
        }
        let mut elements = vec![Element::Literal(program.clone())];
        for arg in &argv[1..] {
            let element = parse_element(arg)?;
            check_types(&element, schema)?;
            elements.push(element);
        }
        let end_of_options = elements
            .iter()
            .position(|e| *e == Element::Literal("--".to_owned()));
        Ok(Self {
            argv: argv.to_vec(),
            program: path.to_path_buf(),
            elements,
            end_of_options,
        })
    }

    /// The program run: argv\[0\], an absolute path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The template as written.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The property names the template uses, in order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for element in &self.elements {
            let used: Vec<&str> = match element {
                Element::Literal(_) => Vec::new(),
                Element::Whole(n) | Element::Spread(n) => vec![n],
                Element::Text(pieces) => pieces
                    .iter()
                    .filter_map(|p| match p {
                        Piece::Value(n) => Some(n.as_str()),
                        Piece::Text(_) => None,
                    })
                    .collect(),
            };
            for name in used {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// The argv for one input (validated against the schema beforehand). An absent optional
    /// property drops the element that names it.
    pub fn expand(&self, input: &Value) -> Result<Vec<String>, TemplateError> {
        let input = input.as_object().ok_or(TemplateError::NotAnObject)?;
        let mut argv = Vec::with_capacity(self.elements.len());
        for (i, element) in self.elements.iter().enumerate() {
            let options_ended = self.end_of_options.is_some_and(|end| end < i);
            let guard = |name: &str, text: &str| {
                if text.starts_with('-') && !options_ended {
                    Err(TemplateError::LeadingDash {
                        name: name.to_owned(),
                    })
                } else {
                    Ok(())
                }
            };
            match element {
                Element::Literal(text) => argv.push(text.clone()),
                Element::Whole(name) => {
                    if let Some(value) = input.get(name) {
                        let text = scalar_text(name, value)?;
                        guard(name, &text)?;
                        argv.push(text);
                    }
                }
                Element::Spread(name) => {
                    for text in spread_texts(name, input.get(name))? {
                        guard(name, &text)?;
                        argv.push(text);
                    }
                }
                Element::Text(pieces) => {
                    if let Some(text) = expand_text(pieces, input, guard)? {
                        argv.push(text);
                    }
                }
            }
        }
        Ok(argv)
    }
}

/// A number written with a fraction or an exponent whose value is a whole number (`1.0`,
/// `1e2`, what a client that has only floats sends for an `integer`), as that integer: `head
/// -n 100.0` is not `head -n 100`. Beyond 2^53 a float is no exact integer: left as it is.
fn integral_text(n: &serde_json::Number) -> Option<String> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let f = n.as_f64().filter(|_| n.is_f64())?;
    (f.fract() == 0.0 && f.abs() <= EXACT).then(|| format!("{}", f as i64))
}

/// A scalar value as an argument: strings as they are, numbers and booleans as JSON text
/// (a whole number as an integer, [`integral_text`]).
fn scalar_text(name: &str, value: &Value) -> Result<String, TemplateError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => integral_text(n).unwrap_or_else(|| n.to_string()),
        Value::Bool(b) => b.to_string(),
        _ => {
            return Err(TemplateError::ValueType {
                name: name.to_owned(),
                needs: SCALAR,
            })
        }
    };
    if text.contains('\0') {
        return Err(TemplateError::Nul {
            name: name.to_owned(),
        });
    }
    Ok(text)
}

fn spread_texts(name: &str, value: Option<&Value>) -> Result<Vec<String>, TemplateError> {
    let wrong = || TemplateError::ValueType {
        name: name.to_owned(),
        needs: STRINGS,
    };
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = value.as_array().ok_or_else(wrong)?;
    items
        .iter()
        .map(|item| match item {
            Value::String(_) => scalar_text(name, item),
            _ => Err(wrong()),
        })
        .collect()
}

/// A mixed element, or `None` when a property it names is absent. A value that starts the
/// element (the first piece, or one after values that came out empty: `{a}{b}` with `a` empty)
/// is guarded like a whole argument.
fn expand_text(
    pieces: &[Piece],
    input: &serde_json::Map<String, Value>,
    guard: impl Fn(&str, &str) -> Result<(), TemplateError>,
) -> Result<Option<String>, TemplateError> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Value(name) => {
                let Some(value) = input.get(name) else {
                    return Ok(None);
                };
                let text = scalar_text(name, value)?;
                if out.is_empty() {
                    guard(name, &text)?;
                }
                out.push_str(&text);
            }
        }
    }
    Ok(Some(out))
}

fn parse_element(arg: &str) -> Result<Element, TemplateError> {
    let syntax = |problem| TemplateError::Syntax {
        element: arg.to_owned(),
        problem,
    };
    if arg.contains('\0') {
        return Err(syntax("contains a NUL byte"));
    }
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = arg;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") || rest.starts_with("}}") {
            text.push(c);
            rest = &rest[2..];
        } else if c == '}' {
            return Err(syntax("has a `}` without `{` (write `}}` for a brace)"));
        } else if c == '{' {
            let end = rest
                .find('}')
                .ok_or_else(|| syntax("has an unclosed `{` (write `{{` for a brace)"))?;
            let name = &rest[1..end];
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Value(name.to_owned()));
            rest = &rest[end + 1..];
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    element_of(pieces, arg)
}

fn element_of(mut pieces: Vec<Piece>, arg: &str) -> Result<Element, TemplateError> {
    let syntax = |problem| TemplateError::Syntax {
        element: arg.to_owned(),
        problem,
    };
    for piece in &pieces {
        if let Piece::Value(name) = piece {
            let base = name.strip_suffix("...").unwrap_or(name);
            let ok = !base.is_empty()
                && base
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(syntax(
                    "a placeholder is {name} or {name...}, of letters, digits, _ and -",
                ));
            }
            if name.ends_with("...") && pieces.len() > 1 {
                return Err(syntax("a {name...} placeholder must be the whole element"));
            }
        }
    }
    Ok(match pieces.as_mut_slice() {
        [] => Element::Literal(String::new()),
        [Piece::Text(text)] => Element::Literal(std::mem::take(text)),
        [Piece::Value(name)] => match name.strip_suffix("...") {
            Some(base) => Element::Spread(base.to_owned()),
            None => Element::Whole(std::mem::take(name)),
        },
        _ => Element::Text(pieces),
    })
}

fn check_types(element: &Element, schema: &Schema) -> Result<(), TemplateError> {
    let property = |name: &str| {
        schema
            .property(name)
            .ok_or_else(|| TemplateError::UnknownProperty {
                name: name.to_owned(),
            })
    };
    let mismatch = |placeholder: String, needs, property: &Schema| {
        let found: Vec<&str> = property.types().iter().map(|t| t.as_str()).collect();
        TemplateError::PropertyType {
            placeholder,
            needs,
            found: if found.is_empty() {
                "not given".to_owned()
            } else {
                found.join(" or ")
            },
        }
    };
    let scalar = |name: &str| {
        let p = property(name)?;
        let ok = !p.types().is_empty()
            && p.types().iter().all(|t| {
                matches!(
                    t,
                    JsonType::String | JsonType::Number | JsonType::Integer | JsonType::Boolean
                )
            });
        ok.then_some(())
            .ok_or_else(|| mismatch(format!("{{{name}}}"), SCALAR, p))
    };
    match element {
        Element::Literal(_) => Ok(()),
        Element::Whole(name) => scalar(name),
        Element::Text(pieces) => pieces.iter().try_for_each(|p| match p {
            Piece::Value(name) => scalar(name),
            Piece::Text(_) => Ok(()),
        }),
        Element::Spread(name) => {
            let p = property(name)?;
            let ok = p.types() == [JsonType::Array]
                && p.items().is_some_and(|i| i.types() == [JsonType::String]);
            ok.then_some(())
                .ok_or_else(|| mismatch(format!("{{{name}...}}"), STRINGS, p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::parse(&json!({
            "type": "object",
            "required": ["filter"],
            "properties": {
                "filter": {"type": "string"},
                "n": {"type": "integer"},
                "raw": {"type": "boolean"},
                "files": {"type": "array", "items": {"type": "string"}},
                "opts": {"type": "object"},
                "nums": {"type": "array", "items": {"type": "integer"}}
            }
        }))
        .expect("valid")
    }

    fn template(argv: &[&str]) -> Result<CommandTemplate, TemplateError> {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        CommandTemplate::parse(&argv, &schema())
    }

    #[test]
    fn placeholders_expand_spread_and_drop() {
        let t = template(&[
            "/usr/bin/jq",
            "-r",
            "--max={n}",
            "{filter}",
            "{raw}",
            "{files...}",
        ])
        .expect("valid");
        assert_eq!(t.program(), Path::new("/usr/bin/jq"));
        assert_eq!(t.placeholders(), ["n", "filter", "raw", "files"]);
        let argv = t
            .expand(&json!({"filter": ".a b", "n": 3, "raw": true, "files": ["x", "y z"]}))
            .expect("expands");
        assert_eq!(
            argv,
            ["/usr/bin/jq", "-r", "--max=3", ".a b", "true", "x", "y z"]
        );
        let argv = t
            .expand(&json!({"filter": "."}))
            .expect("optional ones absent");
        assert_eq!(argv, ["/usr/bin/jq", "-r", "."]);
        let argv = t
            .expand(&json!({"filter": ".", "files": []}))
            .expect("empty spread");
        assert_eq!(argv, ["/usr/bin/jq", "-r", "."]);
    }

    /// Hunt tools 9: a client with only floats sends `1.0` or `1e2` for an integer; the
    /// program got `1.0` and `100.0` (`head -n 100.0` fails). A whole number is written as one.
    #[test]
    fn a_whole_number_sent_as_a_float_is_written_as_an_integer() {
        let t = template(&["/usr/bin/head", "-n", "{n}"]).expect("valid");
        for (n, text) in [
            (json!(1.0), "1"),
            (json!(1e2), "100"),
            (json!(-0.0), "0"),
            (json!(2.5), "2.5"),
            (json!(1e300), "1e+300"),
            (json!(7), "7"),
        ] {
            let argv = t.expand(&json!({"filter": ".", "n": n})).expect("expands");
            assert_eq!(argv[2], text, "{n}");
        }
    }

    #[test]
    fn braces_escape_and_mixed_text() {
        let t = template(&["/bin/echo", "{{literal}}", "a{filter}b{n}", "x}}"]).expect("valid");
        let argv = t
            .expand(&json!({"filter": "-F-", "n": 1.5}))
            .expect("expands");
        assert_eq!(argv, ["/bin/echo", "{literal}", "a-F-b1.5", "x}"]);
    }

    #[test]
    fn values_that_would_be_options_are_refused_before_dash_dash() {
        let t = template(&["/usr/bin/grep", "{filter}", "{files...}"]).expect("valid");
        let err = t.expand(&json!({"filter": "-e"})).expect_err("option");
        assert_eq!(
            err.to_string(),
            "value of \"filter\" begins with '-' and would be read as an option"
        );
        let err = t
            .expand(&json!({"filter": "x", "files": ["a", "--output=/etc/passwd"]}))
            .expect_err("option in spread");
        assert!(matches!(err, TemplateError::LeadingDash { name } if name == "files"));
        let t = template(&["/usr/bin/grep", "{n}x"]).expect("valid");
        assert!(
            t.expand(&json!({"filter": "", "n": -1})).is_err(),
            "mixed at start"
        );
        // Bug hunt: a value after values that came out empty starts the element too.
        let t = template(&["/usr/bin/printf", "<%s>", "{filter}{n}"]).expect("valid");
        let err = t
            .expand(&json!({"filter": "", "n": -1}))
            .expect_err("-1 starts the argument");
        assert!(matches!(err, TemplateError::LeadingDash { name } if name == "n"));
        let t = template(&["/usr/bin/grep", "-e", "--", "{filter}", "{files...}"]).expect("valid");
        let argv = t
            .expand(&json!({"filter": "-v", "files": ["-rf"]}))
            .expect("after --");
        assert_eq!(argv, ["/usr/bin/grep", "-e", "--", "-v", "-rf"]);
    }

    #[test]
    fn nul_bytes_and_wrong_values_are_refused() {
        let t = template(&["/bin/x", "{filter}", "{files...}"]).expect("valid");
        let err = t.expand(&json!({"filter": "a\u{0}b"})).expect_err("nul");
        assert!(matches!(err, TemplateError::Nul { .. }), "{err}");
        let err = t
            .expand(&json!({"filter": "a", "files": ["\u{0}"]}))
            .expect_err("nul in spread");
        assert!(matches!(err, TemplateError::Nul { .. }), "{err}");
        assert!(t.expand(&json!({"filter": {"x": 1}})).is_err());
        assert!(t.expand(&json!({"filter": "a", "files": [1]})).is_err());
        assert!(t.expand(&json!({"filter": "a", "files": "b"})).is_err());
        assert_eq!(t.expand(&json!([])), Err(TemplateError::NotAnObject));
    }

    #[test]
    fn bad_templates_are_refused_by_name() {
        let cases: [(&[&str], &str); 12] = [
            (&[], "empty"),
            (&["jq", "."], "absolute path"),
            (&["/usr/bin/../bin/sh"], "absolute path"),
            (&["/usr/bin/{filter}"], "absolute path"),
            (&["/bin/x", "{colour}"], "{colour} names no property"),
            (&["/bin/x", "{opts}"], "{opts} needs a string, number"),
            (&["/bin/x", "{files}"], "{files} needs a string"),
            (
                &["/bin/x", "{filter...}"],
                "{filter...} needs an array of strings",
            ),
            (
                &["/bin/x", "{nums...}"],
                "{nums...} needs an array of strings",
            ),
            (&["/bin/x", "-{files...}"], "whole element"),
            (&["/bin/x", "{fil"], "unclosed"),
            (&["/bin/x", "a}b"], "without `{`"),
        ];
        for (argv, expected) in cases {
            let err = template(argv).expect_err(expected).to_string();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
        assert!(template(&["/bin/x", "{ filter }"]).is_err());
        assert!(template(&["/bin/x", "{}"]).is_err());
        assert!(template(&["/bin/x", "a\u{0}"]).is_err());
    }
}
