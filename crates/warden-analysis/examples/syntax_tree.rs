//! Prints the syntax tree of a file as tree-sitter sees it, the shape rule queries match
//! against: `cargo run -p warden-analysis --example syntax_tree -- python prog.py`.

use std::io::Write;

use warden_analysis::Grammar;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(path)) = (args.next(), args.next()) else {
        return Err("usage: syntax_tree GRAMMAR FILE".into());
    };
    let grammar = Grammar::ALL
        .into_iter()
        .find(|g| g.name() == name)
        .ok_or_else(|| format!("unknown grammar {name:?}"))?;
    let code = std::fs::read(path)?;
    let mut parser = tree_sitter::Parser::new();
    parser.set_language(&grammar.language())?;
    let tree = parser.parse(&code, None).ok_or("the parser gave up")?;
    let mut out = std::io::stdout().lock();
    let mut cursor = tree.walk();
    let mut depth = 0usize;
    loop {
        let node = cursor.node();
        if !node.is_named() && node.kind().chars().any(|c| !c.is_alphanumeric()) {
            writeln!(out, "{:indent$}{:?}", "", node.kind(), indent = depth * 2)?;
        } else if node.is_named() || node.is_missing() {
            let field = cursor
                .field_name()
                .map(|f| format!("{f}: "))
                .unwrap_or_default();
            let text = if node.child_count() == 0 {
                format!(" {:?}", String::from_utf8_lossy(&code[node.byte_range()]))
            } else {
                String::new()
            };
            writeln!(
                out,
                "{:indent$}{field}{}{text}  [{}]",
                "",
                node.kind(),
                node.start_position().row + 1,
                indent = depth * 2
            )?;
        }
        if cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return Ok(());
            }
            depth -= 1;
        }
    }
}
