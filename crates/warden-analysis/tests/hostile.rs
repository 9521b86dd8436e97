//! Hostile input: deep nesting, huge files, invalid UTF-8, binary data, empty input, garbage,
//! an exhausted time budget, many findings, many threads. The analyzer must never panic and
//! must grade what it cannot analyse with a level of its own (docs/analysis.md).

use std::sync::OnceLock;
use std::time::Duration;

use warden_analysis::{
    Analyzer, INVALID_UTF8_LEVEL, MAX_FINDINGS, MAX_INPUT_BYTES, MAX_NESTING,
    UNKNOWN_LANGUAGE_LEVEL, UNPARSEABLE_LEVEL,
};
use warden_core::ThreatLevel;

fn analyzer() -> &'static Analyzer {
    static ANALYZER: OnceLock<Analyzer> = OnceLock::new();
    ANALYZER.get_or_init(|| Analyzer::builtin().expect("the embedded rule files load"))
}

fn languages() -> Vec<&'static str> {
    analyzer().languages().collect()
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced.
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[3]
        })
        .collect()
}

#[test]
fn hundred_thousand_nested_brackets_are_refused_in_every_language() {
    for open_close in [("(", ")"), ("[", "]"), ("{", "}")] {
        let code = format!(
            "{}{}",
            open_close.0.repeat(100_000),
            open_close.1.repeat(100_000)
        );
        for language in languages() {
            let analysis = analyzer().analyze(language, code.as_bytes());
            assert_eq!(analysis.threat_level, UNPARSEABLE_LEVEL, "{language}");
            let why = analysis.parse_error.expect("a reason");
            assert!(why.contains("nested"), "{language}: {why}");
        }
    }
}

#[test]
fn nesting_below_the_limit_is_analysed() {
    let depth = MAX_NESTING - 10;
    let code = format!(
        "import os\nx = {}1{}\nos.system('ls')\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    let analysis = analyzer().analyze("python", code.as_bytes());
    assert_eq!(analysis.parse_error, None);
    assert_eq!(analysis.threat_level, ThreatLevel::Medium);
}

#[test]
fn deep_indentation_is_analysed_without_trouble() {
    let mut code = String::new();
    for depth in 0..2_000 {
        code.push_str(&" ".repeat(depth));
        code.push_str("if x:\n");
    }
    code.push_str(&" ".repeat(2_000));
    code.push_str("os.system('ls')\n");
    let analysis = analyzer().analyze("python", code.as_bytes());
    assert!(analysis.threat_level >= ThreatLevel::Medium, "{analysis:?}");
}

#[test]
fn a_five_megabyte_file_is_refused_in_every_language() {
    let code = "x = 1\n".repeat(5 * 1024 * 1024 / 6 + 1);
    assert!(code.len() > 5 * 1024 * 1024);
    for language in languages() {
        let analysis = analyzer().analyze(language, code.as_bytes());
        assert_eq!(analysis.threat_level, UNPARSEABLE_LEVEL, "{language}");
        assert!(analysis
            .parse_error
            .expect("a reason")
            .contains("larger than"));
    }
}

#[test]
fn a_file_just_under_the_cap_is_analysed() {
    let line = "print(sum(range(10)))\n";
    let code = line.repeat((MAX_INPUT_BYTES - 100) / line.len());
    let analysis = Analyzer::builtin()
        .expect("rules")
        .with_time_budget(Duration::from_secs(60))
        .analyze("python", code.as_bytes());
    assert_eq!(analysis.parse_error, None);
    assert_eq!(analysis.threat_level, ThreatLevel::None);
}

#[test]
fn random_binary_is_refused_in_every_language() {
    for (i, language) in languages().into_iter().enumerate() {
        let bytes = random_bytes(64 * 1024, 0x9e37_79b9_7f4a_7c15 + i as u64);
        let analysis = analyzer().analyze(language, &bytes);
        assert_eq!(analysis.threat_level, UNPARSEABLE_LEVEL, "{language}");
        assert!(analysis.parse_error.expect("a reason").contains("binary"));
    }
    let elf = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00";
    let analysis = analyzer().analyze("c", elf);
    assert_eq!(analysis.threat_level, UNPARSEABLE_LEVEL);
}

#[test]
fn invalid_utf8_is_analysed_and_noted() {
    let code = b"import os\n# caf\xe9 \xff\xfe\nos.system('ls')\n";
    let analysis = analyzer().analyze("python", code);
    assert!(analysis
        .parse_error
        .as_deref()
        .is_some_and(|e| e.contains("UTF-8")));
    assert_eq!(analysis.threat_level, ThreatLevel::Medium);
    assert_eq!(analysis.findings[0].line, 3);

    let quiet = analyzer().analyze("python", b"# caf\xe9\nprint(1)\n");
    assert_eq!(quiet.threat_level, INVALID_UTF8_LEVEL);
    assert!(quiet.findings.is_empty());
    for language in languages() {
        let excerpt = analyzer().analyze(language, b"\xc3\x28 \xa0\xa1 \xf0\x28\x8c\x28 x\n");
        assert!(excerpt.threat_level >= INVALID_UTF8_LEVEL, "{language}");
    }
}

/// Bug hunt: CPython decodes a source with the codec its PEP 263 cookie names (line 1, or line
/// 2 after a comment or blank line), and UTF-7 or the escape codecs turn what the grammar reads
/// as a comment into code: `os.system` hid in a comment, graded `none`. A cookie the analysis
/// does not decode makes the program unparseable; UTF-8, ASCII and Latin-1 under any name
/// CPython knows them by are read as they are. The same for Ruby's magic comment.
#[test]
fn a_python_source_encoding_the_analysis_does_not_decode_is_unparseable() {
    let hidden = [
        "# -*- coding: utf-7 -*-\n# +AAo-import os+ADs- os.system(+ACI-echo pwned+ACI-)\n",
        "# coding: unicode_escape\n# \\nimport os\\nos.system('echo esc')\n",
        "# coding: raw_unicode_escape\n# \\u000aimport os\\u000aos.system('echo esc')\n",
        "# vim: set fileencoding=utf_7 :\n# +AAo-import os+ADs-os.system(+ACI-echo vim+ACI-)\n",
        "#!/usr/bin/env python3\n# coding=UTF-7\nprint(1)\n",
        "\n  # encoding: euc-jp\nprint(1)\n",
        "\u{feff}# coding: utf-16\nprint(1)\n",
        "# x\r# coding: utf-7\nprint(1)\n",
    ];
    for code in hidden {
        let analysis = analyzer().analyze("python", code.as_bytes());
        assert_eq!(
            analysis.threat_level, UNPARSEABLE_LEVEL,
            "{code:?}: {analysis:?}"
        );
        let why = analysis.parse_error.expect("a reason");
        assert!(why.contains("encoding"), "{code:?}: {why}");
    }
    let read = [
        "# -*- coding: utf-8 -*-\nprint(1)\n",
        "#!/usr/bin/python\n# vim: set fileencoding=UTF8 :\nprint(1)\n",
        "# coding: latin-1\nprint(1)\n",
        "# coding=iso_8859_1\nprint(1)\n",
        "# coding: Latin1\nprint(1)\n",
        "# coding: us-ascii\nprint(1)\n",
        "# coding: utf-8-sig\nprint(1)\n",
        "# coding: cp65001\nprint(1)\n",
        // Not a cookie: on line 2 after code, on line 3, or not alone on its line.
        "print(1)\n# coding: utf-7\n",
        "#!/usr/bin/python\n\n# coding: utf-7\nprint(1)\n",
        "x = 1  # coding: utf-7\nprint(x)\n",
    ];
    for code in read {
        let analysis = analyzer().analyze("python", code.as_bytes());
        assert_eq!(
            analysis.threat_level,
            ThreatLevel::None,
            "{code:?}: {analysis:?}"
        );
        assert_eq!(analysis.parse_error, None, "{code:?}");
    }
    // Ruby reads its magic comment the same way: in Shift_JIS the lead byte 0x95 takes the
    // `\` after it, so the `"` the grammar reads as escaped ends the string and `system` runs.
    let shift_jis = b"# encoding: shift_jis\nx = \"\x95\\\" ; system('id') #\"\nputs x\n";
    let ruby = analyzer().analyze("ruby", shift_jis);
    assert_eq!(ruby.threat_level, UNPARSEABLE_LEVEL, "{ruby:?}");
    let ruby = analyzer().analyze("ruby", b"# -*- encoding: UTF-8 -*-\nputs 1\n");
    assert_eq!(ruby.parse_error, None);
    // Other languages have no cookie.
    let bash = analyzer().analyze("bash", b"# coding: utf-7\necho 1\n");
    assert_eq!(bash.parse_error, None);
}

#[test]
fn empty_and_blank_input_is_nothing() {
    for language in languages() {
        for code in [&b""[..], b"\n\n", b"   \t\r\n"] {
            let analysis = analyzer().analyze(language, code);
            assert_eq!(analysis.threat_level, ThreatLevel::None, "{language}");
            assert!(analysis.findings.is_empty() && analysis.parse_error.is_none());
        }
    }
}

#[test]
fn text_that_is_not_code_is_unparseable() {
    let prose = "Dear committee, ) this ( is ] not { a } program; it's => prose ?: with \\ odd @ punctuation # ~ ` and more ) ) ]\n".repeat(20);
    for language in ["python", "java", "c", "go", "rust"] {
        let analysis = analyzer().analyze(language, prose.as_bytes());
        assert_eq!(
            analysis.threat_level, UNPARSEABLE_LEVEL,
            "{language}: {analysis:?}"
        );
        assert!(analysis
            .parse_error
            .expect("a reason")
            .contains("does not parse"));
    }
}

#[test]
fn an_unknown_language_is_reported() {
    let analysis = analyzer().analyze("cobol", b"DISPLAY 'HELLO'.");
    assert_eq!(analysis.threat_level, UNKNOWN_LANGUAGE_LEVEL);
    assert!(analysis.parse_error.expect("a reason").contains("cobol"));
}

#[test]
fn findings_are_capped_but_all_count_for_the_level() {
    let mut code = "import os\n".to_string() + &"os.system('ls')\n".repeat(MAX_FINDINGS * 3);
    code.push_str("while True:\n    os.fork()\n");
    let analysis = analyzer().analyze("python", code.as_bytes());
    assert_eq!(analysis.findings.len(), MAX_FINDINGS);
    assert_eq!(analysis.threat_level, ThreatLevel::Critical);
}

/// Hunt "ana": 250 `os.getenv` lines before `import ctypes` listed the first 200 findings,
/// all `low`, and the `high` one that decided the program's level was in no record.
#[test]
fn the_findings_kept_are_the_most_severe() {
    let mut code = "import os\n".to_string() + &"os.getenv('A')\n".repeat(250);
    code.push_str("import ctypes\nos.getenv('B')\n");
    let analysis = analyzer().analyze("python", code.as_bytes());
    assert_eq!(analysis.findings.len(), MAX_FINDINGS);
    assert_eq!(analysis.threat_level, ThreatLevel::High);
    let native = analysis
        .findings
        .iter()
        .position(|f| f.rule == "python.native_code");
    assert_eq!(
        native,
        Some(MAX_FINDINGS - 1),
        "{:?}",
        analysis.findings.last()
    );
    assert!(analysis.findings.windows(2).all(|w| w[0].line <= w[1].line));
}

#[test]
fn an_exhausted_time_budget_is_unparseable_and_leaves_the_parser_usable() {
    let hurried = Analyzer::builtin()
        .expect("rules")
        .with_time_budget(Duration::ZERO);
    let code = "def f(x):\n    return [i * x for i in range(10)]\n".repeat(20_000);
    let analysis = hurried.analyze("python", code.as_bytes());
    assert_eq!(analysis.threat_level, UNPARSEABLE_LEVEL);
    assert!(analysis
        .parse_error
        .expect("a reason")
        .contains("longer than"));
    // The same thread's parser was cancelled: the next parse must start afresh.
    let next = analyzer().analyze("python", b"import os\nos.system('ls')\n");
    assert_eq!(next.parse_error, None);
    assert_eq!(next.findings.len(), 1);
}

/// Regression hunt "ana" 10: where a bash variable assigned `eval` is read, the analysis
/// climbed to the root one `Node::parent` at a time, which tree-sitter answers by a walk down
/// from the root: 8 000 nested `if`s around it ran to the analysing process's 3 s kill. With a
/// budget that never ends, 20 000 took hours (the test runner's slow-timeout); each question
/// is one walk down now.
#[test]
fn a_variable_read_deep_in_nested_blocks_is_followed_in_one_walk_down() {
    let patient = Analyzer::builtin()
        .expect("rules")
        .with_time_budget(Duration::from_secs(3600));
    let code = "if true; then\n".repeat(20_000) + "E=eval\necho \"$E\"\n" + &"fi\n".repeat(20_000);
    let analysis = patient.analyze("bash", code.as_bytes());
    assert_eq!(analysis.parse_error, None);
    assert_eq!(analysis.threat_level, ThreatLevel::None, "{analysis:#?}");
}

/// Hunt "ana": a bash fork bomb followed by a here-document that never ends was graded `high`
/// with no findings, and ran isolated instead of being refused: the shell runs the loop before
/// it reads the rest. The commands before the line that cannot be read count.
#[test]
fn the_commands_before_an_unreadable_here_document_count() {
    let code = b"while true; do sleep 100 & done\ncat <<EOF\n";
    let analysis = analyzer().analyze("bash", code);
    assert_eq!(analysis.threat_level, ThreatLevel::Critical, "{analysis:?}");
    let why = analysis.parse_error.unwrap_or_default();
    assert!(
        why.contains("never comes") && why.contains("first line"),
        "{why}"
    );
    let joined = analyzer().analyze("bash", b":(){ :|:& };:\ncat<<EOF;id\nEOF\n");
    assert_eq!(joined.threat_level, ThreatLevel::Critical, "{joined:?}");
    // Nothing before it: `high`, as any input that cannot be read.
    let first = analyzer().analyze("bash", b"cat <<EOF\nwhile true; do sleep 100 & done\n");
    assert_eq!(first.threat_level, UNPARSEABLE_LEVEL, "{first:?}");
    assert!(first.findings.is_empty(), "{first:?}");
}

#[test]
fn one_analyzer_serves_many_threads() {
    let code = "import os\nwhile True:\n    os.fork()\n";
    let expected = analyzer().analyze("python", code.as_bytes());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    assert_eq!(analyzer().analyze("python", code.as_bytes()), expected);
                    assert!(analyzer()
                        .analyze("c", b"int main(void) { return 0; }")
                        .findings
                        .is_empty());
                }
            });
        }
    });
}

#[test]
fn random_text_in_every_language_never_panics() {
    let alphabet = b"()[]{}<>;:,.'\"`$@#!?%^&*-+=/\\|~ \n\tabcxyzXYZ019_";
    for (i, language) in languages().into_iter().enumerate() {
        for round in 0..20u64 {
            let bytes: Vec<u8> = random_bytes(2_000, 7 + round * 31 + i as u64)
                .into_iter()
                .map(|b| alphabet[usize::from(b) % alphabet.len()])
                .collect();
            let analysis = analyzer().analyze(language, &bytes);
            assert!(analysis.findings.len() <= MAX_FINDINGS);
        }
    }
}

/// Regression reg2 F1: CPython ends a line at a lone carriage return before it looks for the
/// cookie, so `\r# coding: utf-7\r` names UTF-7 on line 2.
#[test]
fn a_python_cookie_after_a_lone_carriage_return_is_found() {
    for code in [
        "\r# coding: utf-7\r# +AAo-import os+AAo-os.system(+ACI-echo pwned+ACI-)\r",
        " \t\r# coding: utf-7\r# +AAo-import os+AAo-os.system(+ACI-echo pwned+ACI-)\r",
        "\x0c\r# coding: utf-7\rprint(1)\r",
        "#!/usr/bin/python\r\n# coding: utf-7\r\nprint(1)\r\n",
    ] {
        let analysis = analyzer().analyze("python", code.as_bytes());
        assert_eq!(
            analysis.threat_level, UNPARSEABLE_LEVEL,
            "{code:?}: {analysis:?}"
        );
    }
    let analysis = analyzer().analyze("python", b"print(1)\r# coding: utf-7\rprint(2)\r");
    assert_eq!(analysis.parse_error, None, "{analysis:?}");
}

/// Regression reg2 F2: CPython matches `coding` in lower case only, so in `# Coding=utf-8,
/// coding=utf-7` the cookie is the second, UTF-7.
#[test]
fn a_python_cookie_is_matched_in_the_case_cpython_matches_it() {
    for code in [
        "# Coding=utf-8, coding=utf-7\n# +AAo-import os+AAo-os.system(+ACI-echo pwned+ACI-)\n",
        "# CODING: latin-1 coding: utf-7\n# +AAo-import os+AAo-os.system(+ACI-echo pwned+ACI-)\n",
    ] {
        let analysis = analyzer().analyze("python", code.as_bytes());
        assert_eq!(
            analysis.threat_level, UNPARSEABLE_LEVEL,
            "{code:?}: {analysis:?}"
        );
    }
    // CPython does not read an upper-case cookie: the file is UTF-8.
    let analysis = analyzer().analyze("python", b"# -*- CODING: utf-7 -*-\nprint(1)\n");
    assert_eq!(analysis.parse_error, None, "{analysis:?}");
}

/// Regression reg2 F3: Ruby reads a magic comment with blanks before the separator, a quoted
/// value and the emacs form; in Shift_JIS `\xc3` is a character and `\x93` takes the `\`, so
/// the string ends there and `system` runs.
#[test]
fn ruby_magic_comments_are_read_in_every_spelling_ruby_accepts() {
    let payload = "x = \"\u{d3}\\\"; system(%q(echo pwned)) #\"\n";
    for comment in [
        "# coding : Shift_JIS",
        "# encoding: \"Shift_JIS\"",
        "# -*- encoding : Shift_JIS -*-",
        "# -*- mode: ruby; Encoding = 'Shift_JIS' -*-",
        "# vim: set fileencoding = shift_jis :",
        "#!/usr/bin/ruby\n# CODING:Shift_JIS",
        "# encoding: \"Shift\\_JIS\"",
    ] {
        let code = format!("{comment}\n{payload}");
        let analysis = analyzer().analyze("ruby", code.as_bytes());
        assert_eq!(
            analysis.threat_level, UNPARSEABLE_LEVEL,
            "{code:?}: {analysis:?}"
        );
    }
    for code in [
        "# encoding: \"UTF-8\"\nputs 1\n",
        "# -*- coding : utf-8; mode: ruby -*-\nputs 1\n",
        "# frozen_string_literal: true\nputs 1\n",
    ] {
        let analysis = analyzer().analyze("ruby", code.as_bytes());
        assert_eq!(analysis.parse_error, None, "{code:?}: {analysis:?}");
    }
}
