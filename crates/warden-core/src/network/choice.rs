//! A key of a policy file that takes one of a closed set of names (`level`, `default_action`, a
//! rule's `protocol` and `action`), read so that a value of any other type, or a name not in the
//! set, is refused naming the key and the names it takes: the parser's own messages for a
//! derived enum name neither for a number or a boolean (`wanted string or table`).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A closed set of names a policy file's key takes.
pub(super) trait Choice: Copy + 'static {
    /// Every value, in the order messages list them.
    const ALL: &'static [Self];

    /// Its name in the file.
    fn name(self) -> &'static str;
}

/// Reads the value of `key`, one of `T`'s names.
pub(super) fn read<'de, D: Deserializer<'de>, T: Choice>(
    d: D,
    key: &'static str,
) -> Result<T, D::Error> {
    d.deserialize_any(ChoiceVisitor {
        key,
        of: PhantomData,
    })
}

struct ChoiceVisitor<T> {
    key: &'static str,
    of: PhantomData<T>,
}

impl<T: Choice> ChoiceVisitor<T> {
    /// The refusal of `found`, the value as the file wrote it.
    fn refuse<E: de::Error>(&self, found: impl fmt::Display) -> E {
        let names: Vec<String> = T::ALL.iter().map(|c| format!("{:?}", c.name())).collect();
        E::custom(format!(
            "{} {found}: expected one of {}",
            self.key,
            names.join(", ")
        ))
    }
}

impl<'de, T: Choice> Visitor<'de> for ChoiceVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as one of its names", self.key)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        T::ALL
            .iter()
            .find(|c| c.name() == s)
            .copied()
            .ok_or_else(|| self.refuse(format_args!("{s:?}")))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        Err(self.refuse(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        Err(self.refuse(n))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<T, E> {
        Err(self.refuse(x))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<T, E> {
        Err(self.refuse(b))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<T, A::Error> {
        Err(self.refuse("(a list)"))
    }

    /// A table, and a date-time (which the TOML parser hands over as one).
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<T, A::Error> {
        Err(self.refuse("(a table)"))
    }
}
