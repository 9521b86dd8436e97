//! What a tool needs, as a category of risk, and whether that matches what its file declares.
//!
//! A pure function of the tool file and, for a tool that runs a program of its own, the static
//! analysis of that program (mapped by the engine onto [`Implies`]). A tool that needs more
//! than it declares is refused at registration: the declared category is what an operator
//! reads and approves, so it must not understate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::file::{Builtin, Runner, Tool};
use crate::threat::{Finding, ThreatLevel};

/// How much a tool can do, ordered from the least risky.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Reads what it is given, nothing else.
    ReadOnly,
    /// Computes in a sandbox, without network or persistent files.
    Compute,
    /// Reads and writes a persistent workspace.
    Filesystem,
    /// Reaches the network.
    Network,
    /// Runs arbitrary code or starts processes.
    Shell,
    /// Runs a program of the host, outside warden's own sandboxed runtimes.
    Host,
}

impl Category {
    /// Every category, least risky first.
    pub const ALL: [Category; 6] = [
        Category::ReadOnly,
        Category::Compute,
        Category::Filesystem,
        Category::Network,
        Category::Shell,
        Category::Host,
    ];

    /// The name used in tool files and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::ReadOnly => "read_only",
            Category::Compute => "compute",
            Category::Filesystem => "filesystem",
            Category::Network => "network",
            Category::Shell => "shell",
            Category::Host => "host",
        }
    }

    /// The threat level of a tool of this category before its program is looked at.
    pub const fn base_level(self) -> ThreatLevel {
        match self {
            Category::ReadOnly | Category::Compute => ThreatLevel::Low,
            Category::Filesystem | Category::Network => ThreatLevel::Medium,
            Category::Shell | Category::Host => ThreatLevel::High,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown category {s:?} (read_only, compute, filesystem, network, shell, host)"
                )
            })
    }
}

/// What a finding of the program's analysis says the program does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Implies {
    /// Opens network connections.
    Network,
    /// Reads or writes files.
    Filesystem,
    /// Starts processes.
    Process,
    /// Nothing that changes the category.
    Other,
}

/// The static analysis of a tool's program, as the assessment needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgramAnalysis {
    /// The analysis's rolled-up level.
    pub threat_level: ThreatLevel,
    /// Each finding, with what it implies.
    pub findings: Vec<(Finding, Implies)>,
}

/// The assessment of one tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// What the tool needs: the highest category of its needs.
    pub category: Category,
    /// What its file declares.
    pub declared: Category,
    /// How dangerous it looks.
    pub level: ThreatLevel,
    /// Why, one sentence per need.
    pub reasons: Vec<String>,
    /// Why registration is refused; empty when it is not.
    pub problems: Vec<String>,
}

impl Assessment {
    /// Whether the tool may be registered.
    pub fn is_acceptable(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Assesses a tool; `program` is the analysis of its program, when it runs one.
pub fn assess(tool: &Tool, program: Option<&ProgramAnalysis>) -> Assessment {
    let mut needs = runner_needs(tool);
    if tool.network != NO_ACCESS {
        needs.push((
            Category::Network,
            format!("network policy {}", tool.network),
        ));
    }
    if tool.writable {
        needs.push((
            Category::Filesystem,
            "keeps a persistent writable workspace".to_owned(),
        ));
    }
    if !tool.read_only.is_empty() {
        // What the host's paths hold is the host's, whatever the tool runs: showing them is
        // as much the operator's decision as running a host command.
        let paths: Vec<String> = tool
            .read_only
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        needs.push((
            Category::Host,
            format!("shows its program the host's {}", paths.join(", ")),
        ));
    }
    let mut reasons = Vec::new();
    let mut problems = Vec::new();
    for (finding, implies) in program.map(|p| p.findings.as_slice()).unwrap_or_default() {
        let at = format!("({}, line {})", finding.rule, finding.line);
        match implies {
            Implies::Network => {
                let reason = format!("the program opens network connections {at}");
                if tool.network == NO_ACCESS {
                    problems.push(format!("{reason} but its network policy is {NO_ACCESS}"));
                }
                needs.push((Category::Network, reason));
            }
            Implies::Process => {
                needs.push((
                    Category::Shell,
                    format!("the program starts processes {at}"),
                ));
            }
            // The sandbox confines file access to the tool's workspace, so this informs
            // without raising the category.
            Implies::Filesystem if !tool.writable => reasons.push(format!(
                "the program touches files {at}; the sandbox confines it to a scratch workspace"
            )),
            Implies::Filesystem => {
                needs.push((
                    Category::Filesystem,
                    format!("the program touches files {at}"),
                ));
            }
            Implies::Other => reasons.push(format!("{} {at}", finding.explanation)),
        }
    }
    let category = needs
        .iter()
        .map(|(c, _)| *c)
        .max()
        .unwrap_or(Category::ReadOnly);
    for (need, reason) in &needs {
        if *need > tool.category {
            problems.push(format!(
                "{reason} but the tool declares category {}",
                tool.category
            ));
        }
    }
    let level = program
        .map(|p| p.threat_level)
        .unwrap_or_default()
        .max(category.base_level());
    let mut all_reasons: Vec<String> = needs.into_iter().map(|(_, r)| r).collect();
    all_reasons.append(&mut reasons);
    Assessment {
        category,
        declared: tool.category,
        level,
        reasons: all_reasons,
        problems,
    }
}

const NO_ACCESS: &str = "no_access";

fn runner_needs(tool: &Tool) -> Vec<(Category, String)> {
    let need = match &tool.runner {
        Runner::Builtin(b @ (Builtin::RunCode | Builtin::Python | Builtin::Shell)) => (
            Category::Shell,
            format!("the built-in {} runs arbitrary code", b.as_str()),
        ),
        Runner::Builtin(Builtin::Files) => (
            Category::Filesystem,
            "the built-in files reads and writes a workspace".to_owned(),
        ),
        Runner::Command(template) => (
            Category::Host,
            format!("runs the host command {}", template.program().display()),
        ),
        Runner::Mcp(argv) => (
            Category::Host,
            format!(
                "starts the MCP server {}",
                argv.first().map(String::as_str).unwrap_or_default()
            ),
        ),
        Runner::Program { file, .. } => (
            Category::Compute,
            format!("runs its program {file} in a sandbox"),
        ),
    };
    vec![need]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::file::ToolOrigin;

    fn tool(category: &str, run: &str) -> Tool {
        let text = format!(
            "name = \"t\"\ndescription = \"d\"\ncategory = \"{category}\"\n\
             [input]\ntype = \"object\"\n[input.properties.q]\ntype = \"string\"\n[run]\n{run}\n"
        );
        Tool::parse(&text, ToolOrigin::Embedded).expect("a valid tool")
    }

    fn finding(rule: &str, line: u32) -> Finding {
        Finding {
            rule: rule.to_owned(),
            severity: ThreatLevel::Medium,
            line,
            excerpt: String::new(),
            explanation: "reads the environment".to_owned(),
        }
    }

    #[test]
    fn categories_are_ordered_and_named() {
        assert!(Category::ReadOnly < Category::Compute && Category::Shell < Category::Host);
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).expect("serializable"),
                format!("\"{c}\"")
            );
        }
        assert!("root".parse::<Category>().is_err());
    }

    #[test]
    fn each_runner_needs_its_category() {
        let cases = [
            ("builtin = \"run_code\"", Category::Shell, ThreatLevel::High),
            ("builtin = \"python\"", Category::Shell, ThreatLevel::High),
            (
                "builtin = \"files\"",
                Category::Filesystem,
                ThreatLevel::Medium,
            ),
            (
                "builtin = \"shell\"\nnetwork = \"internet_access\"",
                Category::Shell,
                ThreatLevel::High,
            ),
            (
                "command = [\"/usr/bin/jq\", \"{q}\"]",
                Category::Host,
                ThreatLevel::High,
            ),
            (
                "mcp = [\"/usr/bin/python3\", \"/srv/s.py\"]",
                Category::Host,
                ThreatLevel::High,
            ),
            ("program = \"p.py\"", Category::Compute, ThreatLevel::Low),
            (
                "program = \"p.py\"\nwritable = true",
                Category::Filesystem,
                ThreatLevel::Medium,
            ),
            (
                "program = \"p.py\"\nnetwork = \"limited_access\"",
                Category::Network,
                ThreatLevel::Medium,
            ),
            (
                "program = \"p.py\"\nread_only = [\"/srv/data\"]",
                Category::Host,
                ThreatLevel::High,
            ),
        ];
        for (run, category, level) in cases {
            let a = assess(&tool("host", run), None);
            assert_eq!((a.category, a.level), (category, level), "{run}");
            assert!(a.problems.is_empty(), "{run}: {:?}", a.problems);
            assert_eq!(a.declared, Category::Host);
        }
        let a = assess(&tool("host", "command = [\"/usr/bin/jq\"]"), None);
        assert_eq!(a.reasons, ["runs the host command /usr/bin/jq"]);
        let a = assess(&tool("compute", "builtin = \"shell\""), None);
        assert_eq!(
            a.problems,
            ["the built-in shell runs arbitrary code but the tool declares category compute"]
        );
        // Bug hunt: a compute tool with read_only paths let any API token read the host's
        // world-readable files (the server's own configuration among them).
        let a = assess(
            &tool(
                "compute",
                "program = \"p.py\"\nread_only = [\"/srv/a\", \"/srv/b\"]",
            ),
            None,
        );
        assert_eq!(
            a.problems,
            ["shows its program the host's /srv/a, /srv/b but the tool declares category compute"]
        );
    }

    #[test]
    fn program_findings_raise_the_category_and_network_needs_a_policy() {
        let analysis = ProgramAnalysis {
            threat_level: ThreatLevel::Medium,
            findings: vec![(finding("python.network", 3), Implies::Network)],
        };
        let a = assess(&tool("compute", "program = \"p.py\""), Some(&analysis));
        assert_eq!(a.category, Category::Network);
        assert_eq!(
            a.problems,
            [
                "the program opens network connections (python.network, line 3) but its \
                 network policy is no_access",
                "the program opens network connections (python.network, line 3) but the tool \
                 declares category compute",
            ]
        );
        let a = assess(
            &tool(
                "network",
                "program = \"p.py\"\nnetwork = \"internet_access\"",
            ),
            Some(&analysis),
        );
        assert!(a.is_acceptable(), "{:?}", a.problems);
    }

    #[test]
    fn file_findings_inform_and_the_level_takes_the_analysis() {
        let analysis = ProgramAnalysis {
            threat_level: ThreatLevel::Critical,
            findings: vec![
                (finding("python.open", 5), Implies::Filesystem),
                (finding("python.environ", 6), Implies::Other),
            ],
        };
        let a = assess(&tool("compute", "program = \"p.py\""), Some(&analysis));
        assert!(a.is_acceptable(), "{:?}", a.problems);
        assert_eq!(a.category, Category::Compute);
        assert_eq!(a.level, ThreatLevel::Critical);
        assert_eq!(a.reasons.len(), 3);
        assert!(
            a.reasons[1].contains("(python.open, line 5)"),
            "{:?}",
            a.reasons
        );
        let processes = ProgramAnalysis {
            threat_level: ThreatLevel::Medium,
            findings: vec![(finding("python.subprocess", 2), Implies::Process)],
        };
        let a = assess(&tool("compute", "program = \"p.py\""), Some(&processes));
        assert_eq!((a.category, a.level), (Category::Shell, ThreatLevel::High));
        assert_eq!(a.problems.len(), 1);
        let json = serde_json::to_value(&a).expect("serializable");
        assert_eq!(json["category"], "shell");
        assert_eq!(json["declared"], "compute");
    }
}
