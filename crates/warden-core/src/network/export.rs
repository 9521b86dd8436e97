//! Writing a policy back as TOML (`warden network export`), in the layout of the built-in
//! files, so that what is exported imports again to the same policy. Written by hand: the
//! format is a handful of keys, and the `toml` crate's writer would be one more dependency.

use std::fmt::Write as _;

use super::rule::PortRange;
use super::{NetLimits, Policy};
use crate::units::format_duration;

impl Policy {
    /// The policy as a TOML document that [`Policy::from_toml`] reads back unchanged.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("name = {}", quote(&self.name)));
        line(format!("description = {}", quote(&self.description)));
        line(format!("level = {}", quote(self.level.name())));
        line(format!(
            "default_action = {}",
            quote(self.default_action.name())
        ));
        line(format!("registries = {}", self.registries));
        line(format!("log_detail = {}", self.log_detail));
        if !self.allow_denied.is_empty() {
            let nets: Vec<String> = self
                .allow_denied
                .iter()
                .map(|n| quote(&n.to_string()))
                .collect();
            line(format!("allow_denied = [{}]", nets.join(", ")));
        }
        out.push_str(&limits(&self.limits));
        for rule in &self.rules {
            out.push_str("\n[[rule]]\n");
            let _ = writeln!(out, "protocol = {}", quote(rule.protocol.name()));
            let _ = writeln!(out, "host = {}", quote(&rule.host.to_string()));
            match rule.ports {
                PortRange::Any => {}
                PortRange::Single(p) => {
                    let _ = writeln!(out, "ports = {p}");
                }
                range => {
                    let _ = writeln!(out, "ports = {}", quote(&range.to_string()));
                }
            }
            let _ = writeln!(out, "action = {}", quote(rule.action.name()));
            let _ = writeln!(out, "reason = {}", quote(&rule.reason));
        }
        out
    }
}

/// The `[limits]` table, set keys only.
fn limits(limits: &NetLimits) -> String {
    let mut out = String::from("\n[limits]\n");
    let sizes = [
        ("bandwidth_up", limits.bandwidth_up),
        ("bandwidth_down", limits.bandwidth_down),
        ("total_bytes", limits.total_bytes),
    ];
    for (key, size) in sizes {
        if let Some(size) = size {
            let _ = writeln!(out, "{key} = {}", quote(&size.to_string()));
        }
    }
    let counts = [
        ("max_connections", limits.max_connections),
        ("total_connections", limits.total_connections),
    ];
    for (key, count) in counts {
        if let Some(count) = count {
            let _ = writeln!(out, "{key} = {count}");
        }
    }
    let _ = writeln!(
        out,
        "connect_timeout = {}",
        quote(&format_duration(limits.connect_timeout))
    );
    let _ = writeln!(
        out,
        "idle_timeout = {}",
        quote(&format_duration(limits.idle_timeout))
    );
    out
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_export_quotes_what_toml_would_misread() {
        assert_eq!(
            quote("a \"b\" \\ c\nd\u{7}"),
            "\"a \\\"b\\\" \\\\ c\\nd\\u0007\""
        );
        let text = format!("name = \"q\"\ndescription = {}\n", quote("x\"\\\n\u{1}é"));
        let value: toml::Value = toml::from_str(&text).expect("valid TOML");
        assert_eq!(value["description"].as_str(), Some("x\"\\\n\u{1}é"));
    }
}
