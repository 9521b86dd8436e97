//! A JSON Schema validator for the subset a tool's input needs, written here rather than taken
//! from a crate so that the subset is closed and documented: an unknown keyword is an error (a
//! typo like `requried` must not silently loosen a tool's input), and the validator's cost is
//! bounded by the schema's depth (at most [`MAX_DEPTH`]), never by the input's.
//!
//! Supported: `type` (one name or an array of `object`, `array`, `string`, `number`,
//! `integer`, `boolean`, `null`), `properties`, `required`, `additionalProperties` (boolean or
//! schema), `items`, `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum`, `minLength`, `maxLength` (in characters), `minItems`, `maxItems`,
//! `pattern` (regex-lite syntax, searched, not anchored), `default` (must itself validate).
//! Accepted and ignored: `description`, `title`, `examples`, `format`, `$schema`, `$comment`.
//!
//! A pattern's match costs its compiled program's size times the string's length (regex-lite
//! runs a Pike VM: every state of the program may be live at every character), and a schema
//! is a client's (`POST /v1/tools`) while its inputs are checked before a call is admitted:
//! a pattern compiles to at most [`MAX_PATTERN_PROGRAM`], and one validation matches at most
//! [`MAX_PATTERN_WORK`] (hunt mcp 2: `(?:a{1,300}){1,300}b`, 20 characters, compiled to
//! 6 MiB, and took hours over a 1 MiB string).

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use regex_lite::{Regex, RegexBuilder};
use serde_json::{Map, Number, Value};

/// The deepest nesting of schemas accepted (the root is depth 1).
pub const MAX_DEPTH: usize = 32;

/// The most errors one validation reports.
pub const MAX_ERRORS: usize = 20;

/// The largest schema, in bytes of compact JSON. A schema is published whole in every
/// `tools/list` answer that lists its tool, which a client's event stream takes in one
/// event (the Python SDK's limit is 1 MiB): the built-in ones take under 4 KiB.
pub const MAX_SCHEMA_BYTES: usize = 64 << 10;

/// The longest string anywhere in a schema (a description, a title, a pattern, a value of
/// `enum`, `examples` or `default`, a property's name), in characters: as long as a tool's
/// own description may be.
pub const MAX_SCHEMA_STRING_CHARS: usize = 2000;

/// The largest program a `pattern` may compile to, in bytes of regex-lite's program (its
/// NFA): `^[a-z0-9_-]{1,64}$` takes 7 KiB, `^\w{1,256}$` 27 KiB. A counted repetition makes
/// a copy of its body per count; past this, `maxLength` bounds a length better.
pub const MAX_PATTERN_PROGRAM: usize = 32 << 10;

/// The most work one validation (an input, an example, a schema's defaults) spends matching
/// patterns: the sum, over the strings matched, of the pattern's program size (in bytes,
/// rounded up to a power of two) times the string's length in bytes. About 1.3 ns a unit on
/// a 2020s core, so under a tenth of a second: a pattern of 512 bytes checks 128 KiB, one of
/// [`MAX_PATTERN_PROGRAM`] 2 KiB. A string that fails `minLength` or `maxLength` is not
/// matched, and costs nothing.
pub const MAX_PATTERN_WORK: u64 = 1 << 26;

/// The smallest program size a pattern is charged for.
const MIN_PATTERN_PROGRAM: usize = 512;

const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "examples",
    "format",
    "$schema",
    "$comment",
];

/// A JSON type name of the `type` keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JsonType {
    /// An object.
    Object,
    /// An array.
    Array,
    /// A string.
    String,
    /// Any number.
    Number,
    /// A number without a fractional part (`1.0` included).
    Integer,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
}

impl JsonType {
    /// Every type.
    pub const ALL: [JsonType; 7] = [
        JsonType::Object,
        JsonType::Array,
        JsonType::String,
        JsonType::Number,
        JsonType::Integer,
        JsonType::Boolean,
        JsonType::Null,
    ];

    /// The name used in schemas.
    pub const fn as_str(self) -> &'static str {
        match self {
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::Null => "null",
        }
    }

    /// Whether `value` is of this type.
    pub fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (JsonType::Object, Value::Object(_))
            | (JsonType::Array, Value::Array(_))
            | (JsonType::String, Value::String(_))
            | (JsonType::Number, Value::Number(_))
            | (JsonType::Boolean, Value::Bool(_))
            | (JsonType::Null, Value::Null) => true,
            (JsonType::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }

    /// The name of a value's type as messages say it (`number` for every number).
    fn of(value: &Value) -> &'static str {
        match value {
            Value::Object(_) => "object",
            Value::Array(_) => "array",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A schema that cannot be used; `path` is the JSON pointer of the schema at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// A keyword outside the supported subset, or misspelled.
    #[error("unknown keyword {keyword:?} at {}", at(path))]
    UnknownKeyword {
        /// Where the schema holding it sits.
        path: String,
        /// The keyword.
        keyword: String,
    },
    /// A keyword's value is unusable.
    #[error("{keyword} at {}: {problem}", at(path))]
    Invalid {
        /// Where the schema holding it sits.
        path: String,
        /// The keyword.
        keyword: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Something other than an object where a schema belongs.
    #[error("the schema at {} must be an object, not {found}", at(path))]
    NotASchema {
        /// Where.
        path: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// Schemas nested deeper than [`MAX_DEPTH`].
    #[error("the schema at {} is nested deeper than {MAX_DEPTH} levels", at(path))]
    TooDeep {
        /// Where the limit was passed.
        path: String,
    },
    /// The schema is larger than [`MAX_SCHEMA_BYTES`] as compact JSON.
    #[error("the schema is {bytes} bytes as JSON, more than {MAX_SCHEMA_BYTES}")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// A string in the schema is longer than [`MAX_SCHEMA_STRING_CHARS`].
    #[error(
        "a string at {} is {chars} characters long, more than {MAX_SCHEMA_STRING_CHARS}",
        at(path)
    )]
    LongString {
        /// Where it is, as a JSON pointer into the schema (the key itself for a name).
        path: String,
        /// Its length in characters.
        chars: usize,
    },
}

/// Refuses a string of `json` (a value or an object's key) longer than
/// [`MAX_SCHEMA_STRING_CHARS`], naming where it is. The recursion is bounded by the schema's
/// size, checked before ([`MAX_SCHEMA_BYTES`]), and by serde_json's depth limit.
fn check_strings(json: &Value, path: &mut String) -> Result<(), SchemaError> {
    let long = |text: &str, path: &str| {
        let chars = text.chars().count();
        (chars > MAX_SCHEMA_STRING_CHARS).then(|| SchemaError::LongString {
            path: path.to_owned(),
            chars,
        })
    };
    let len = path.len();
    let result = match json {
        Value::String(text) => long(text, path).map_or(Ok(()), Err),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            path.truncate(len);
            path.push_str(&format!("/{i}"));
            check_strings(item, path)
        }),
        Value::Object(map) => map.iter().try_for_each(|(key, value)| {
            path.truncate(len);
            // A long name is placed by its object, not quoted whole in the message.
            if let Some(error) = long(key, &format!("{} (a name in it)", at(path))) {
                return Err(error);
            }
            path.push('/');
            path.push_str(&key.replace('~', "~0").replace('/', "~1"));
            check_strings(value, path)
        }),
        _ => Ok(()),
    };
    path.truncate(len);
    result
}

fn at(path: &str) -> &str {
    if path.is_empty() {
        "the root"
    } else {
        path
    }
}

/// One way an input fails its schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputError {
    /// JSON pointer of the offending value (`/files/0/name`); empty for the whole input.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "input"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// What an object admits beyond its `properties`.
#[derive(Debug, Clone)]
enum Additional {
    Any,
    Nothing,
    Matching(Box<Schema>),
}

/// A parsed schema: the original JSON plus its keywords, checked and compiled.
#[derive(Debug, Clone)]
pub struct Schema {
    json: Value,
    types: Vec<JsonType>,
    properties: BTreeMap<String, Schema>,
    required: Vec<String>,
    additional: Additional,
    items: Option<Box<Schema>>,
    enumeration: Option<Vec<Value>>,
    constant: Option<Value>,
    minimum: Option<Number>,
    maximum: Option<Number>,
    exclusive_minimum: Option<Number>,
    exclusive_maximum: Option<Number>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    pattern: Option<Pattern>,
}

/// A compiled `pattern` and the size of its program, which its matches are charged by.
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    program: u64,
}

/// What is left of one validation's [`MAX_PATTERN_WORK`].
struct PatternBudget(Cell<u64>);

impl PatternBudget {
    fn full() -> Self {
        PatternBudget(Cell::new(MAX_PATTERN_WORK))
    }

    /// Takes `work` if that much is left.
    fn spend(&self, work: u64) -> bool {
        match self.0.get().checked_sub(work) {
            Some(left) => {
                self.0.set(left);
                true
            }
            None => false,
        }
    }
}

/// Two schemas are equal when written alike: the compiled form follows from the JSON.
impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Schema {
    /// Checks and compiles a schema: its size and strings bounded first (it is published
    /// whole, [`MAX_SCHEMA_BYTES`]), then its keywords.
    pub fn parse(json: &Value) -> Result<Schema, SchemaError> {
        let bytes = serde_json::to_vec(json).map_or(usize::MAX, |v| v.len());
        if bytes > MAX_SCHEMA_BYTES {
            return Err(SchemaError::TooLarge { bytes });
        }
        check_strings(json, &mut String::new())?;
        // One budget for all the defaults: a schema is parsed again at each registry load.
        Schema::parse_at(json, "", 1, &PatternBudget::full())
    }

    /// The JSON the schema was parsed from (what MCP's `tools/list` publishes).
    pub fn to_json(&self) -> &Value {
        &self.json
    }

    /// The admitted types; empty when `type` is absent (any type).
    pub fn types(&self) -> &[JsonType] {
        &self.types
    }

    /// The schema of one declared property.
    pub fn property(&self, name: &str) -> Option<&Schema> {
        self.properties.get(name)
    }

    /// Whether `name` is listed in `required`.
    pub fn is_required(&self, name: &str) -> bool {
        self.required.iter().any(|r| r == name)
    }

    /// The schema of an array's items, if `items` is given.
    pub fn items(&self) -> Option<&Schema> {
        self.items.as_deref()
    }

    /// Checks `value`, reporting up to [`MAX_ERRORS`] problems with their paths.
    pub fn validate(&self, value: &Value) -> Result<(), Vec<InputError>> {
        self.validate_within(value, &PatternBudget::full())
    }

    fn validate_within(
        &self,
        value: &Value,
        budget: &PatternBudget,
    ) -> Result<(), Vec<InputError>> {
        let mut errors = Vec::new();
        self.check(value, &mut String::new(), &mut errors, budget);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn parse_at(
        json: &Value,
        path: &str,
        depth: usize,
        budget: &PatternBudget,
    ) -> Result<Schema, SchemaError> {
        if depth > MAX_DEPTH {
            return Err(SchemaError::TooDeep {
                path: path.to_owned(),
            });
        }
        let Value::Object(map) = json else {
            return Err(SchemaError::NotASchema {
                path: path.to_owned(),
                found: JsonType::of(json),
            });
        };
        let reader = Reader { map, path, budget };
        reader.check_keywords()?;
        let schema = Schema {
            json: json.clone(),
            types: reader.types()?,
            properties: reader.properties(depth)?,
            required: reader.required()?,
            additional: reader.additional(depth)?,
            items: reader.sub("items", depth)?.map(|(_, s)| Box::new(s)),
            enumeration: reader.enumeration()?,
            constant: map.get("const").cloned(),
            minimum: reader.number("minimum")?,
            maximum: reader.number("maximum")?,
            exclusive_minimum: reader.number("exclusiveMinimum")?,
            exclusive_maximum: reader.number("exclusiveMaximum")?,
            min_length: reader.count("minLength")?,
            max_length: reader.count("maxLength")?,
            min_items: reader.count("minItems")?,
            max_items: reader.count("maxItems")?,
            pattern: reader.pattern()?,
        };
        schema.check_consistency(path, budget)?;
        Ok(schema)
    }

    fn check_consistency(&self, path: &str, budget: &PatternBudget) -> Result<(), SchemaError> {
        let invalid = |keyword, problem: String| SchemaError::Invalid {
            path: path.to_owned(),
            keyword,
            problem,
        };
        if let (Some(min), Some(max)) = (self.min_length, self.max_length) {
            if min > max {
                return Err(invalid(
                    "minLength",
                    format!("{min} is above maxLength {max}"),
                ));
            }
        }
        // A string `maxLength` admits must be one the pattern can be checked against: at
        // most 4 bytes a character, alone in its validation. Without it, a string the schema
        // promised to take was refused at each call (its check past the work budget).
        if let (Some(pattern), Some(max)) = (&self.pattern, self.max_length) {
            let most = MAX_PATTERN_WORK / pattern.program / 4;
            if max > most {
                return Err(invalid(
                    "maxLength",
                    format!(
                        "{max} is more characters than the pattern {} can be checked against \
                         ({most} at most, 4 bytes each, for a pattern of its size): lower \
                         maxLength or simplify the pattern",
                        pattern.regex.as_str()
                    ),
                ));
            }
        }
        if let (Some(min), Some(max)) = (self.min_items, self.max_items) {
            if min > max {
                return Err(invalid(
                    "minItems",
                    format!("{min} is above maxItems {max}"),
                ));
            }
        }
        if let (Some(min), Some(max)) = (&self.minimum, &self.maximum) {
            if compare(min, max) == Some(Ordering::Greater) {
                return Err(invalid("minimum", format!("{min} is above maximum {max}")));
            }
        }
        if matches!(self.additional, Additional::Nothing) {
            if let Some(name) = self
                .required
                .iter()
                .find(|r| !self.properties.contains_key(*r))
            {
                return Err(invalid(
                    "required",
                    format!("{name:?} is not in properties and additionalProperties is false"),
                ));
            }
        }
        if let Some(default) = self.json.get("default") {
            if let Err(errors) = self.validate_within(default, budget) {
                let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                return Err(invalid(
                    "default",
                    format!("does not match the schema: {}", list.join("; ")),
                ));
            }
        }
        Ok(())
    }

    fn check(
        &self,
        value: &Value,
        path: &mut String,
        errors: &mut Vec<InputError>,
        budget: &PatternBudget,
    ) {
        if errors.len() >= MAX_ERRORS {
            return;
        }
        if !self.types.is_empty() && !self.types.iter().any(|t| t.admits(value)) {
            let names: Vec<&str> = self.types.iter().map(|t| t.as_str()).collect();
            let got = JsonType::of(value);
            push(
                errors,
                path,
                format!("expected {}, got {got}", names.join(" or ")),
            );
            return;
        }
        let mut messages = Vec::new();
        let listed = |allowed: &Vec<Value>| allowed.iter().any(|a| same_value(a, value));
        if let Some(allowed) = self.enumeration.as_ref().filter(|a| !listed(a)) {
            messages.push(format!("must be one of {}", list_values(allowed)));
        }
        if let Some(constant) = self.constant.as_ref().filter(|c| !same_value(c, value)) {
            messages.push(format!("must be {}", short_json(constant)));
        }
        match value {
            Value::Number(n) => self.check_number(n, &mut messages),
            Value::String(s) => self.check_string(s, &mut messages, budget),
            _ => {}
        }
        for message in messages {
            push(errors, path, message);
        }
        match value {
            Value::Array(items) => self.check_array(items, path, errors, budget),
            Value::Object(map) => self.check_object(map, path, errors, budget),
            _ => {}
        }
    }

    /// Compared by value, exactly: as floats, an integer past 2^53 passed a bound just below
    /// it, and a placeholder then wrote the integer (hunt mcp 8).
    fn check_number(&self, n: &Number, out: &mut Vec<String>) {
        use Ordering::{Equal, Greater, Less};
        let outside = |bound: &Number, allowed: &[Ordering]| {
            compare(n, bound).is_none_or(|o| !allowed.contains(&o))
        };
        if let Some(min) = self
            .minimum
            .as_ref()
            .filter(|b| outside(b, &[Greater, Equal]))
        {
            out.push(format!("below the minimum {min}"));
        }
        if let Some(max) = self.maximum.as_ref().filter(|b| outside(b, &[Less, Equal])) {
            out.push(format!("above the maximum {max}"));
        }
        if let Some(min) = self
            .exclusive_minimum
            .as_ref()
            .filter(|b| outside(b, &[Greater]))
        {
            out.push(format!("must be greater than {min}"));
        }
        if let Some(max) = self
            .exclusive_maximum
            .as_ref()
            .filter(|b| outside(b, &[Less]))
        {
            out.push(format!("must be less than {max}"));
        }
    }

    fn check_string(&self, s: &str, out: &mut Vec<String>, budget: &PatternBudget) {
        // Counting stops past the largest bound, so a huge string costs no more than a short one.
        let bound = self.max_length.max(self.min_length).unwrap_or(0);
        let limit = usize::try_from(bound)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let len = s.chars().take(limit).count() as u64;
        let short = self.min_length.filter(|min| len < *min);
        let long = self.max_length.filter(|max| len > *max);
        if let Some(min) = short {
            out.push(format!("shorter than {min} characters"));
        }
        if let Some(max) = long {
            out.push(format!("longer than {max} characters"));
        }
        let Some(pattern) = self
            .pattern
            .as_ref()
            .filter(|_| short.is_none() && long.is_none())
        else {
            return;
        };
        let work = pattern.program.saturating_mul(s.len() as u64);
        if !budget.spend(work) {
            out.push(format!(
                "too long to be checked against the pattern {} ({} bytes; a validation checks \
                 at most {} bytes against a pattern of its size, less after other strings: \
                 bound the string with maxLength, or simplify the pattern)",
                pattern.regex.as_str(),
                s.len(),
                MAX_PATTERN_WORK / pattern.program,
            ));
        } else if !pattern.regex.is_match(s) {
            out.push(format!(
                "does not match the pattern {}",
                pattern.regex.as_str()
            ));
        }
    }

    fn check_array(
        &self,
        items: &[Value],
        path: &mut String,
        errors: &mut Vec<InputError>,
        budget: &PatternBudget,
    ) {
        let len = items.len() as u64;
        if let Some(min) = self.min_items.filter(|min| len < *min) {
            push(errors, path, format!("fewer than {min} items"));
        }
        if let Some(max) = self.max_items.filter(|max| len > *max) {
            push(errors, path, format!("more than {max} items"));
        }
        if let Some(schema) = &self.items {
            for (i, item) in items.iter().enumerate() {
                if errors.len() >= MAX_ERRORS {
                    return;
                }
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                schema.check(item, path, errors, budget);
                path.truncate(len);
            }
        }
    }

    fn check_object(
        &self,
        map: &Map<String, Value>,
        path: &mut String,
        errors: &mut Vec<InputError>,
        budget: &PatternBudget,
    ) {
        for name in self.required.iter().filter(|r| !map.contains_key(*r)) {
            push(errors, path, format!("missing required property {name:?}"));
        }
        for (name, value) in map {
            if errors.len() >= MAX_ERRORS {
                return;
            }
            let schema = match (self.properties.get(name), &self.additional) {
                (Some(schema), _) => schema,
                (None, Additional::Matching(schema)) => schema.as_ref(),
                (None, Additional::Any) => continue,
                (None, Additional::Nothing) => {
                    push(
                        errors,
                        path,
                        format!("unknown property {:?}", shorten(name)),
                    );
                    continue;
                }
            };
            let len = path.len();
            path.push('/');
            path.push_str(&name.replace('~', "~0").replace('/', "~1"));
            schema.check(value, path, errors, budget);
            path.truncate(len);
        }
    }
}

/// Whether two JSON values are equal as JSON Schema compares them (`enum`, `const`): numbers
/// by their value (`1.0` is `1`, as the type check takes `1.0` for an integer), arrays and
/// objects member by member.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (exact_integer(x), exact_integer(y)) {
            (Some(x), Some(y)) => x == y,
            // An integer beside a float that is no exact integer (a fraction, or beyond what
            // a float holds exactly): not equal, however close their floats (2^53 + 1).
            (Some(_), None) | (None, Some(_)) => false,
            (None, None) => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// How two numbers compare by value, exactly: integers as integers (not as floats, which
/// hold integers exactly only up to 2^53), an integer and a float by the float's integer value
/// when it has no fraction; `None` when either is no number (NaN cannot be written in JSON).
fn compare(a: &Number, b: &Number) -> Option<Ordering> {
    let integer = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    // A float of no fraction below 10^38 converts to an i128 exactly.
    let whole = |f: f64| (f.fract() == 0.0 && f.abs() < 1e38).then_some(f as i128);
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        (Some(x), None) => {
            let f = b.as_f64()?;
            match whole(f) {
                Some(y) => Some(x.cmp(&y)),
                // A fraction (so below 2^53) or beyond 10^38: the integer's float is on the
                // same side of it.
                None => (x as f64).partial_cmp(&f),
            }
        }
        (None, Some(_)) => compare(b, a).map(Ordering::reverse),
        (None, None) => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// `n` as an exact integer: an integer as written, or a float with no fraction within
/// 2^53, where a float is an integer exactly.
fn exact_integer(n: &serde_json::Number) -> Option<i128> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() <= EXACT).then_some(f as i128)
}

fn push(errors: &mut Vec<InputError>, path: &str, message: String) {
    if errors.len() < MAX_ERRORS {
        errors.push(InputError {
            path: path.to_owned(),
            message,
        });
    }
}

/// A value as JSON text, cut to keep messages short.
fn short_json(value: &Value) -> String {
    shorten(&value.to_string())
}

fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

fn list_values(values: &[Value]) -> String {
    let mut shown: Vec<String> = values.iter().take(10).map(short_json).collect();
    if values.len() > shown.len() {
        shown.push(format!("({} more)", values.len() - shown.len()));
    }
    shown.join(", ")
}

/// Reads the keywords of one schema object.
struct Reader<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
    budget: &'a PatternBudget,
}

impl Reader<'_> {
    const KEYWORDS: &'static [&'static str] = &[
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "pattern",
        "default",
    ];

    fn check_keywords(&self) -> Result<(), SchemaError> {
        match self
            .map
            .keys()
            .find(|k| !Self::KEYWORDS.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()))
        {
            Some(keyword) => Err(SchemaError::UnknownKeyword {
                path: self.path.to_owned(),
                keyword: keyword.clone(),
            }),
            None => Ok(()),
        }
    }

    fn invalid(&self, keyword: &'static str, problem: impl Into<String>) -> SchemaError {
        SchemaError::Invalid {
            path: self.path.to_owned(),
            keyword,
            problem: problem.into(),
        }
    }

    fn types(&self) -> Result<Vec<JsonType>, SchemaError> {
        let names: Vec<&Value> = match self.map.get("type") {
            None => return Ok(Vec::new()),
            Some(Value::Array(names)) if !names.is_empty() => names.iter().collect(),
            Some(one) => vec![one],
        };
        let mut types = Vec::new();
        for name in names {
            let found = JsonType::ALL
                .into_iter()
                .find(|t| name.as_str() == Some(t.as_str()))
                .ok_or_else(|| {
                    self.invalid(
                        "type",
                        format!(
                            "{} is not a type (object, array, string, number, integer, \
                             boolean, null)",
                            short_json(name)
                        ),
                    )
                })?;
            if types.contains(&found) {
                return Err(self.invalid("type", format!("{found} is listed twice")));
            }
            types.push(found);
        }
        Ok(types)
    }

    fn child_path(&self, keyword: &str, name: Option<&str>) -> String {
        let mut path = format!("{}/{keyword}", self.path);
        if let Some(name) = name {
            path.push('/');
            path.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        path
    }

    fn sub(&self, keyword: &str, depth: usize) -> Result<Option<(String, Schema)>, SchemaError> {
        let Some(json) = self.map.get(keyword) else {
            return Ok(None);
        };
        let path = self.child_path(keyword, None);
        let schema = Schema::parse_at(json, &path, depth + 1, self.budget)?;
        Ok(Some((path, schema)))
    }

    fn properties(&self, depth: usize) -> Result<BTreeMap<String, Schema>, SchemaError> {
        let Some(json) = self.map.get("properties") else {
            return Ok(BTreeMap::new());
        };
        let Value::Object(map) = json else {
            return Err(self.invalid("properties", "must be an object of schemas"));
        };
        let mut properties = BTreeMap::new();
        for (name, json) in map {
            let path = self.child_path("properties", Some(name));
            let schema = Schema::parse_at(json, &path, depth + 1, self.budget)?;
            properties.insert(name.clone(), schema);
        }
        Ok(properties)
    }

    fn required(&self) -> Result<Vec<String>, SchemaError> {
        let Some(json) = self.map.get("required") else {
            return Ok(Vec::new());
        };
        let problem = || self.invalid("required", "must be an array of distinct property names");
        let names = json.as_array().ok_or_else(problem)?;
        let mut required: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_str().ok_or_else(problem)?;
            if required.iter().any(|r| r == name) {
                return Err(problem());
            }
            required.push(name.to_owned());
        }
        Ok(required)
    }

    fn additional(&self, depth: usize) -> Result<Additional, SchemaError> {
        match self.map.get("additionalProperties") {
            None | Some(Value::Bool(true)) => Ok(Additional::Any),
            Some(Value::Bool(false)) => Ok(Additional::Nothing),
            Some(_) => {
                let (_, schema) = self
                    .sub("additionalProperties", depth)?
                    .expect("the keyword is present");
                Ok(Additional::Matching(Box::new(schema)))
            }
        }
    }

    fn enumeration(&self) -> Result<Option<Vec<Value>>, SchemaError> {
        match self.map.get("enum") {
            None => Ok(None),
            Some(Value::Array(values)) if !values.is_empty() => Ok(Some(values.clone())),
            Some(_) => Err(self.invalid("enum", "must be a non-empty array")),
        }
    }

    fn number(&self, keyword: &'static str) -> Result<Option<Number>, SchemaError> {
        match self.map.get(keyword) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n.clone())),
            Some(_) => Err(self.invalid(keyword, "must be a number")),
        }
    }

    fn count(&self, keyword: &'static str) -> Result<Option<u64>, SchemaError> {
        match self.map.get(keyword) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.invalid(keyword, "must be a non-negative integer")),
        }
    }

    fn pattern(&self) -> Result<Option<Pattern>, SchemaError> {
        let Some(json) = self.map.get("pattern") else {
            return Ok(None);
        };
        let text = json
            .as_str()
            .ok_or_else(|| self.invalid("pattern", "must be a string"))?;
        let build = |limit| RegexBuilder::new(text).size_limit(limit).build();
        if let Err(e) = build(MAX_PATTERN_PROGRAM) {
            // regex-lite's errors have no kind: only the size limit's says so.
            let problem = if e.to_string().contains("size limit") {
                format!(
                    "{text:?} compiles to a program larger than {} KiB (a counted repetition \
                     copies its body once per count: bound a length with maxLength instead)",
                    MAX_PATTERN_PROGRAM >> 10
                )
            } else {
                format!("{text:?} does not compile: {e}")
            };
            return Err(self.invalid("pattern", problem));
        }
        // Its size, by the smallest power of two it fits: each attempt stops at its limit.
        let mut program = MIN_PATTERN_PROGRAM;
        loop {
            match build(program) {
                Ok(regex) => {
                    return Ok(Some(Pattern {
                        regex,
                        program: program as u64,
                    }))
                }
                Err(_) if program < MAX_PATTERN_PROGRAM => program *= 2,
                Err(e) => return Err(self.invalid("pattern", format!("{text:?}: {e}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(json: Value) -> Schema {
        Schema::parse(&json).expect("a valid schema")
    }

    fn errors(schema: &Schema, value: Value) -> Vec<String> {
        schema
            .validate(&value)
            .expect_err("invalid input")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Hunt tools 9: `enum` and `const` compare numbers by value, as JSON Schema does and as
    /// the type check already took `1.0` for an integer: `1.0` is `1`, in arrays too.
    /// Left undone, then fixed: a string within `maxLength` could still be too long to be
    /// checked against the pattern, and was refused at every call, never at registration.
    #[test]
    fn a_max_length_the_pattern_cannot_check_is_refused_at_registration() {
        let pattern = "^[a-z0-9_-]{1,64}$";
        let with = |max: u64| {
            Schema::parse(&json!({"type": "string", "pattern": pattern, "maxLength": max}))
        };
        assert!(with(100).is_ok(), "{:?}", with(100).err());
        let text = with(1_000_000)
            .expect_err("a length past the pattern's work")
            .to_string();
        assert!(text.contains("maxLength"), "{text}");
        // The most it allows is one a validation checks, 4 bytes a character.
        let most: u64 = text
            .split("checked against (")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("the most in the message: {text}"));
        let schema = with(most).expect("at the most");
        let long = "\u{10348}".repeat(usize::try_from(most).expect("usize"));
        let errors = schema.validate(&json!(long)).err().unwrap_or_default();
        assert!(
            errors
                .iter()
                .all(|e| !e.to_string().contains("too long to be checked")),
            "{errors:?}"
        );
        assert!(with(most + 1).is_err());
    }

    #[test]
    fn enum_and_const_compare_numbers_by_value() {
        let s = schema(json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer", "enum": [1, 2]},
                "k": {"const": 3},
                "v": {"const": [1, {"a": 2}]}
            }
        }));
        for ok in [
            json!({"n": 1.0, "k": 3.0, "v": [1.0, {"a": 2e0}]}),
            json!({"n": 2e0, "k": 3, "v": [1, {"a": 2}]}),
        ] {
            assert!(s.validate(&ok).is_ok(), "{ok}");
        }
        // Hunt mcp 8: the bounds compare integers exactly, past 2^53 too.
        let bounded = schema(
            json!({"type": "integer", "maximum": 9_007_199_254_740_992_u64,
                                    "minimum": -9_007_199_254_740_992_i64}),
        );
        assert!(bounded.validate(&json!(9_007_199_254_740_992_u64)).is_ok());
        let refused = bounded
            .validate(&json!(9_007_199_254_740_993_u64))
            .expect_err("past the maximum");
        assert_eq!(refused[0].message, "above the maximum 9007199254740992");
        assert!(bounded
            .validate(&json!(-9_007_199_254_740_993_i64))
            .is_err());
        assert!(bounded.validate(&json!(1e16)).is_err());
        let exclusive = schema(json!({"exclusiveMaximum": 9_007_199_254_740_993_u64,
                                      "exclusiveMinimum": 0.5}));
        assert!(exclusive
            .validate(&json!(9_007_199_254_740_992_u64))
            .is_ok());
        assert!(exclusive
            .validate(&json!(9_007_199_254_740_993_u64))
            .is_err());
        assert!(exclusive.validate(&json!(1)).is_ok() && exclusive.validate(&json!(0)).is_err());
        assert!(schema(json!({"maximum": 2.5})).validate(&json!(3)).is_err());
        assert!(schema(json!({"minimum": 1e300}))
            .validate(&json!(u64::MAX))
            .is_err());
        // Beyond 2^53 a float is no exact integer: 2^53 as a float is not 2^53 + 1.
        let big = schema(json!({"enum": [9_007_199_254_740_993_u64]}));
        assert!(big.validate(&json!(9_007_199_254_740_992.0)).is_err());
        assert!(big.validate(&json!(9_007_199_254_740_993_u64)).is_ok());
        assert_eq!(
            errors(&s, json!({"n": 1.5, "k": 3.5, "v": [1, {"a": 3}]})),
            [
                "/k: must be 3",
                "/n: expected integer, got number",
                "/v: must be [1,{\"a\":2}]"
            ]
        );
    }

    #[test]
    fn every_supported_keyword_parses() {
        let s = schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": "c", "title": "t", "description": "d", "examples": [{}],
            "type": "object",
            "required": ["name"],
            "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 9,
                                     "exclusiveMinimum": -1, "exclusiveMaximum": 10},
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$",
                         "format": "hostname", "default": "abc"},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 0,
                         "maxItems": 3},
                "kind": {"const": "fixed"},
                "maybe": {"type": ["string", "null"]}
            }
        }));
        assert_eq!(s.types(), [JsonType::Object]);
        assert!(s.is_required("name") && !s.is_required("tags"));
        let tags = s.property("tags").expect("declared");
        assert_eq!(tags.items().expect("items").types(), []);
        assert_eq!(s.to_json()["required"], json!(["name"]));
        assert!(s
            .validate(&json!({"name": "ab", "tags": ["a"], "kind": "fixed", "maybe": null, "x": 3}))
            .is_ok());
    }

    /// Bug hunt: only a tool's own description was bounded; a property's description of
    /// 1.1 MiB was accepted, published in every caller's `tools/list`, and past the 1 MiB an
    /// MCP client's event stream takes, broke every other token's client.
    #[test]
    fn a_schema_is_bounded_in_size_and_in_its_strings() {
        let long = "A".repeat(MAX_SCHEMA_STRING_CHARS + 1);
        let err = Schema::parse(&json!({
            "type": "object",
            "properties": {"text": {"type": "string", "description": long}}
        }))
        .expect_err("a long description");
        assert_eq!(
            err.to_string(),
            "a string at /properties/text/description is 2001 characters long, more than 2000"
        );
        let err = Schema::parse(&json!({"type": "object", "properties": {long.clone(): {}}}))
            .expect_err("a long name");
        assert_eq!(
            err.to_string(),
            "a string at /properties (a name in it) is 2001 characters long, more than 2000"
        );
        let err = Schema::parse(&json!({"type": "object", "examples": [{"a": [long]}]}))
            .expect_err("a long example");
        assert!(err.to_string().contains("/examples/0/a/0 "), "{err}");
        let many: Map<String, Value> = (0..2000)
            .map(|i| {
                (
                    format!("p{i}"),
                    json!({"type": "string", "description": "d".repeat(40)}),
                )
            })
            .collect();
        let err =
            Schema::parse(&json!({"type": "object", "properties": many})).expect_err("too large");
        assert!(
            matches!(err, SchemaError::TooLarge { bytes } if bytes > MAX_SCHEMA_BYTES),
            "{err}"
        );
        let fits = "d".repeat(MAX_SCHEMA_STRING_CHARS);
        schema(json!({"type": "object", "properties": {"t": {"description": fits}}}));
    }

    /// Regression (hunt mcp 2): a short pattern of counted repetitions compiled to a program
    /// of megabytes, whose match over a client's string took hours of the server's CPU
    /// before the call was admitted.
    #[test]
    fn a_pattern_whose_program_is_large_is_refused() {
        let err = Schema::parse(&json!({"type": "string", "pattern": "(?:a{1,300}){1,300}b"}))
            .expect_err("too large a program");
        let text = err.to_string();
        assert!(text.contains("larger than 32 KiB"), "{text}");
        assert!(text.contains("maxLength"), "{text}");
        let fitting = [
            ("^[a-z0-9_-]{1,64}$", true),
            (r"^\w{1,256}$", true),
            ("^https?://", false),
        ];
        for (pattern, matches) in fitting {
            let s = schema(json!({"type": "string", "pattern": pattern}));
            assert_eq!(s.validate(&json!("ab_1")).is_ok(), matches, "{pattern}");
        }
    }

    /// Regression (hunt mcp 2): what one validation matches is bounded by the patterns'
    /// program sizes times the strings' lengths, over all its strings; a string its length
    /// bounds refuse is not matched.
    #[test]
    fn the_work_of_matching_patterns_is_bounded_per_validation() {
        let s = schema(json!({"type": "string", "pattern": "[a-z]+x"}));
        assert!(s.validate(&json!("a".repeat(64 << 10))).is_err());
        assert!(s
            .validate(&json!(format!("{}x", "a".repeat(64 << 10))))
            .is_ok());
        let errors = s
            .validate(&json!("a".repeat(1 << 20)))
            .expect_err("too long");
        assert!(
            errors[0]
                .message
                .starts_with("too long to be checked against the pattern"),
            "{errors:?}"
        );
        let costly =
            json!({"type": "array", "items": {"type": "string", "pattern": r"^\w{1,200}x"}});
        let costly = schema(costly);
        let one = "a".repeat(1000);
        assert!(costly
            .validate(&json!([one]))
            .is_err_and(|e| e[0].message.starts_with("does not match")));
        let errors = costly.validate(&json!(vec![one; 8])).expect_err("too much");
        assert!(
            errors.iter().any(|e| e.message.starts_with("too long")),
            "{errors:?}"
        );
        let bounded = json!({"type": "string", "pattern": "[a-z]+x", "maxLength": 10});
        let errors = schema(bounded)
            .validate(&json!("a".repeat(1 << 20)))
            .expect_err("long");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "longer than 10 characters");
    }

    #[test]
    fn unknown_keywords_are_refused_with_their_path() {
        let err = Schema::parse(&json!({
            "type": "object",
            "properties": {"code": {"type": "string", "requried": true}}
        }))
        .expect_err("typo");
        assert_eq!(
            err.to_string(),
            "unknown keyword \"requried\" at /properties/code"
        );
        let err = Schema::parse(&json!({"$ref": "#/x"})).expect_err("unsupported");
        assert_eq!(err.to_string(), "unknown keyword \"$ref\" at the root");
    }

    #[test]
    fn bad_keyword_values_are_refused() {
        let cases = [
            (json!({"type": "text"}), "is not a type"),
            (json!({"type": ["string", "string"]}), "listed twice"),
            (json!({"type": []}), "is not a type"),
            (json!({"pattern": "(unclosed"}), "does not compile"),
            (json!({"pattern": 3}), "must be a string"),
            (json!({"minLength": -1}), "non-negative integer"),
            (json!({"maxItems": 1.5}), "non-negative integer"),
            (json!({"minimum": "1"}), "must be a number"),
            (json!({"enum": []}), "non-empty array"),
            (json!({"required": ["a", "a"]}), "distinct"),
            (json!({"required": [1]}), "distinct"),
            (json!({"properties": []}), "object of schemas"),
            (json!({"items": "string"}), "must be an object, not string"),
            (json!({"minLength": 3, "maxLength": 2}), "above maxLength"),
            (json!({"minimum": 3, "maximum": 2}), "above maximum"),
            (
                json!({"type": "string", "default": 3}),
                "default at the root: does not match",
            ),
            (
                json!({"required": ["a"], "additionalProperties": false}),
                "not in properties",
            ),
        ];
        for (json, expected) in cases {
            let err = Schema::parse(&json).expect_err(expected).to_string();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
        assert!(Schema::parse(&json!(true)).is_err());
    }

    #[test]
    fn nesting_is_capped() {
        let mut json = json!({"type": "string"});
        for _ in 0..MAX_DEPTH - 1 {
            json = json!({"type": "array", "items": json});
        }
        assert!(Schema::parse(&json).is_ok());
        let json = json!({"type": "array", "items": json});
        let err = Schema::parse(&json).expect_err("too deep");
        assert!(matches!(err, SchemaError::TooDeep { .. }), "{err}");
    }

    #[test]
    fn errors_name_the_path_and_the_problem() {
        let s = schema(json!({
            "type": "object",
            "required": ["code", "files"],
            "additionalProperties": false,
            "properties": {
                "code": {"type": "string", "maxLength": 100},
                "n": {"type": "integer", "minimum": 1, "exclusiveMaximum": 10},
                "files": {"type": "array", "maxItems": 2, "items": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}}
                }},
                "mode": {"enum": ["fast", "slow"]}
            }
        }));
        assert_eq!(
            errors(&s, json!({"colour": 1})),
            [
                "input: missing required property \"code\"",
                "input: missing required property \"files\"",
                "input: unknown property \"colour\""
            ]
        );
        assert_eq!(
            errors(
                &s,
                json!({"code": 5, "files": [{"name": "ok"}, {"name": 3}, {}]})
            ),
            [
                "/code: expected string, got number",
                "/files: more than 2 items",
                "/files/1/name: expected string, got number",
                "/files/2: missing required property \"name\"",
            ]
        );
        assert_eq!(
            errors(
                &s,
                json!({"code": "x".repeat(101), "files": [{"name": "A"}], "n": 10})
            ),
            [
                "/code: longer than 100 characters",
                "/files/0/name: does not match the pattern ^[a-z]+$",
                "/n: must be less than 10",
            ]
        );
        assert_eq!(
            errors(
                &s,
                json!({"code": "", "files": [], "mode": "medium", "n": 0.5})
            ),
            [
                "/mode: must be one of \"fast\", \"slow\"",
                "/n: expected integer, got number"
            ]
        );
        assert_eq!(
            errors(&s, json!({"code": "", "files": [], "n": 0})),
            ["/n: below the minimum 1"]
        );
        assert_eq!(errors(&s, json!([])), ["input: expected object, got array"]);
    }

    #[test]
    fn integers_include_whole_floats_and_lengths_count_characters() {
        let s = schema(json!({"type": "integer"}));
        assert!(s.validate(&json!(1.0)).is_ok() && s.validate(&json!(-3)).is_ok());
        assert!(s.validate(&json!(1.5)).is_err());
        let s = schema(json!({"type": "string", "maxLength": 2, "minLength": 2}));
        assert!(s.validate(&json!("éé")).is_ok());
        assert_eq!(errors(&s, json!("é")), ["input: shorter than 2 characters"]);
        let s = schema(json!({"const": {"a": [1]}}));
        assert_eq!(
            errors(&s, json!({"a": [2]})),
            ["input: must be {\"a\":[1]}"]
        );
    }

    #[test]
    fn hostile_inputs_stay_cheap_and_bounded() {
        let s = schema(json!({"type": "object", "properties": {
            "s": {"type": "string", "maxLength": 10},
            "a": {"type": "array", "items": {"type": "string"}}
        }}));
        let huge = "x".repeat(10 << 20);
        assert_eq!(
            errors(&s, json!({"s": huge})),
            ["/s: longer than 10 characters"]
        );
        let many: Vec<Value> = (0..1000).map(Value::from).collect();
        assert_eq!(errors(&s, json!({"a": many})).len(), MAX_ERRORS);
        let mut deep = json!("leaf");
        for _ in 0..100 {
            deep = Value::Array(vec![deep]);
        }
        assert!(s.validate(&json!({"deep": deep})).is_ok());
        let odd = schema(json!({"type": "object", "additionalProperties": false}));
        assert_eq!(
            errors(&odd, json!({"a/b~c": 1})),
            ["input: unknown property \"a/b~c\""]
        );
    }
}
