//! Matching a command line against the handler table: minicli's compile and suggest (§1.2, §12.3).
//!
//! Literals and choices match by prefix ("apropos"); a match where every
//! literal and choice was typed in full wins at once, otherwise exactly one
//! handler may match by prefix. `(command)` items compile the rest of the line
//! recursively.

use thiserror::Error;

use crate::lex::{self, LexError};
use crate::pattern::{self, Item, Pattern, PatternError};
use crate::{Args, Command, HandlerSpec};

/// Why a line does not compile.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompileError {
    /// The line could not be tokenised.
    #[error(transparent)]
    Lex(#[from] LexError),
    /// No pattern matches the line.
    #[error("invalid command: `{0}`")]
    Invalid(String),
    /// Several handlers match the line by prefix and none exactly (minimega
    /// reports it as an invalid command too).
    #[error("invalid command: `{0}`")]
    Ambiguous(String),
    /// A pattern of handler `handler` is malformed.
    #[error("bad pattern `{pattern}` of {handler}: {source}")]
    Pattern {
        /// The handler's name.
        handler: String,
        /// The pattern text.
        pattern: String,
        /// What is wrong with it.
        source: PatternError,
    },
}

/// How deeply `(command)` sub-commands may nest (`.columns a .filter b .columns c …`).
pub const MAX_NESTING: usize = 32;

/// Compiled sub-commands of one line, by the number of tokens they span.
type Memo = std::collections::HashMap<usize, Option<Command>>;

/// A handler table with its patterns parsed once.
#[derive(Debug, Clone)]
pub struct Compiler {
    patterns: Vec<Vec<Pattern>>,
}

/// One successful pattern match.
struct Match {
    args: Args,
    sub: Option<Box<Command>>,
    exact: bool,
}

impl Compiler {
    /// Parse every pattern of `table`; the handler indices of compiled commands refer to it.
    pub fn new(table: &[HandlerSpec]) -> Result<Self, CompileError> {
        let patterns = table
            .iter()
            .map(|h| {
                h.patterns
                    .iter()
                    .map(|p| {
                        pattern::parse(p).map_err(|source| CompileError::Pattern {
                            handler: h.name.clone(),
                            pattern: p.clone(),
                            source,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Compiler { patterns })
    }

    /// Compile one line; blank or comment-only lines give `Ok(None)`. Sub-commands may
    /// nest [`MAX_NESTING`] deep.
    pub fn compile(&self, input: &str) -> Result<Option<Command>, CompileError> {
        let original = input.trim();
        let tokens = lex::lex(original)?;
        if tokens.is_empty() {
            return Ok(None);
        }
        let mut memo = Memo::default();
        self.compile_tokens(&tokens, original, &mut memo, 0)
            .map(Some)
    }

    fn compile_tokens(
        &self,
        tokens: &[String],
        original: &str,
        memo: &mut Memo,
        depth: usize,
    ) -> Result<Command, CompileError> {
        if depth > MAX_NESTING {
            return Err(CompileError::Invalid(original.to_string()));
        }
        let mut apropos: Vec<(usize, usize, Match)> = Vec::new();
        for (h, patterns) in self.patterns.iter().enumerate() {
            for (p, pattern) in patterns.iter().enumerate() {
                let Some(m) = self.match_pattern(&pattern.items, tokens, memo, depth) else {
                    continue;
                };
                if m.exact {
                    return Ok(command(h, p, m, original));
                }
                apropos.push((h, p, m));
            }
        }
        let first = apropos.first().map(|(h, _, _)| *h);
        if apropos.iter().any(|(h, _, _)| Some(*h) != first) {
            return Err(CompileError::Ambiguous(original.to_string()));
        }
        match apropos.into_iter().next() {
            Some((h, p, m)) => Ok(command(h, p, m, original)),
            None => Err(CompileError::Invalid(original.to_string())),
        }
    }

    /// Match `tokens` against one pattern's items.
    fn match_pattern(
        &self,
        items: &[Item],
        tokens: &[String],
        memo: &mut Memo,
        depth: usize,
    ) -> Option<Match> {
        let mut m = Match {
            args: Args::default(),
            sub: None,
            exact: true,
        };
        let mut t = 0;
        for (i, item) in items.iter().enumerate() {
            let Some(tok) = tokens.get(t) else {
                // Out of input: the rest of the pattern must be optional.
                return items[i..].iter().all(Item::is_optional).then_some(m);
            };
            match item {
                Item::Literal(word) => {
                    if !word.starts_with(tok.as_str()) {
                        return None;
                    }
                    m.exact &= word == tok;
                }
                Item::Str { key, .. } => {
                    m.args.strings.insert(key.clone(), tok.clone());
                }
                Item::Choice { options, .. } => {
                    let chosen = if options.contains(tok) {
                        tok.clone()
                    } else {
                        let mut prefixed = options.iter().filter(|o| o.starts_with(tok.as_str()));
                        let only = prefixed.next()?;
                        if prefixed.next().is_some() {
                            return None;
                        }
                        m.exact = false;
                        only.clone()
                    };
                    m.args.bools.insert(chosen, true);
                }
                Item::List { key, .. } => {
                    m.args.lists.insert(key.clone(), tokens[t..].to_vec());
                    t = tokens.len();
                    continue;
                }
                Item::Sub { .. } => {
                    let rest = &tokens[t..];
                    let text = rest
                        .iter()
                        .map(|s| lex::quote(s))
                        .collect::<Vec<_>>()
                        .join(" ");
                    // A sub-command is always a suffix of the line: compile each suffix
                    // once, or ambiguous prefixes would recompile it exponentially.
                    let sub = match memo.get(&rest.len()) {
                        Some(done) => done.clone()?,
                        None => {
                            let done = self.compile_tokens(rest, &text, memo, depth + 1).ok();
                            memo.insert(rest.len(), done.clone());
                            done?
                        }
                    };
                    m.args.subcommand = Some(text);
                    m.sub = Some(Box::new(sub));
                    t = tokens.len();
                    continue;
                }
            }
            t += 1;
        }
        (t == tokens.len()).then_some(m)
    }

    /// Tab completion: whole candidate lines for the last (possibly empty) word of `input`.
    pub fn suggest(&self, input: &str) -> Vec<String> {
        let Ok(tokens) = lex::lex(input) else {
            return Vec::new();
        };
        let ends_in_space = input.is_empty() || input.ends_with(char::is_whitespace);
        let (complete, last) = match tokens.split_last() {
            Some((last, rest)) if !ends_in_space => (rest, last.as_str()),
            _ => (tokens.as_slice(), ""),
        };
        let prefix = if ends_in_space {
            input
        } else {
            input.rfind(char::is_whitespace).map_or("", |i| {
                let ws = input[i..].chars().next().map_or(1, char::len_utf8);
                &input[..i + ws]
            })
        };
        let mut words = self.suggest_words(complete, last);
        words.sort();
        words.dedup();
        words.into_iter().map(|w| format!("{prefix}{w} ")).collect()
    }

    fn suggest_words(&self, complete: &[String], last: &str) -> Vec<String> {
        let mut out = Vec::new();
        for pattern in self.patterns.iter().flatten() {
            self.suggest_pattern(&pattern.items, complete, last, &mut out);
        }
        out
    }

    fn suggest_pattern(
        &self,
        items: &[Item],
        complete: &[String],
        last: &str,
        out: &mut Vec<String>,
    ) {
        for (i, item) in items.iter().enumerate() {
            let Some(word) = complete.get(i) else {
                match item {
                    Item::Literal(w) if w.starts_with(last) => out.push(w.clone()),
                    Item::Choice { options, .. } => {
                        out.extend(options.iter().filter(|o| o.starts_with(last)).cloned());
                    }
                    Item::Sub { .. } => out.extend(self.suggest_words(&[], last)),
                    _ => {}
                }
                return;
            };
            match item {
                Item::Literal(w) if !w.starts_with(word.as_str()) => return,
                Item::Choice { options, .. }
                    if !options.iter().any(|o| o.starts_with(word.as_str())) =>
                {
                    return
                }
                Item::List { .. } => return,
                Item::Sub { .. } => {
                    out.extend(self.suggest_words(&complete[i..], last));
                    return;
                }
                _ => {}
            }
        }
    }
}

fn command(handler: usize, pattern: usize, m: Match, original: &str) -> Command {
    Command {
        handler,
        pattern,
        args: m.args,
        sub: m.sub,
        original: original.to_string(),
    }
}

/// Compile one line against `table`; blank or comment-only lines give `Ok(None)`.
pub fn compile(table: &[HandlerSpec], input: &str) -> Result<Option<Command>, CompileError> {
    Compiler::new(table)?.compile(input)
}

/// Tab completion against `table`: sorted, deduplicated whole candidate lines.
pub fn suggest(table: &[HandlerSpec], input: &str) -> Vec<String> {
    Compiler::new(table)
        .map(|c| c.suggest(input))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scope;

    fn spec(name: &str, patterns: &[&str]) -> HandlerSpec {
        HandlerSpec {
            name: name.into(),
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
            help_short: String::new(),
            help_long: String::new(),
            scope: Scope::Local,
        }
    }

    fn table() -> Vec<HandlerSpec> {
        vec![
            spec("vm_info", &["vm info"]),
            spec("vm_start", &["vm start <vm target>"]),
            spec("vm_stop", &["vm stop <vm target>"]),
            spec("vm_launch", &["vm launch <kvm,container> <name or count>"]),
            spec(
                "vm_config_tag",
                &["vm config tags [key]", "vm config tags <key> <value>"],
            ),
            spec("echo", &["echo [args]..."]),
            spec("shell", &["shell <command>..."]),
            spec("csv", &[".csv [true,false]", ".csv <true,false> (command)"]),
            spec("columns", &[".columns <columns as csv> (command)"]),
            spec("ns_hosts", &["ns <hosts,>", "ns <add-hosts,> <hosts>"]),
            spec("choice", &["pick <alpha,alps,beta>"]),
        ]
    }

    fn ok(input: &str) -> Command {
        compile(&table(), input)
            .expect("compiles")
            .expect("a command")
    }

    fn name(c: &Command) -> String {
        table()[c.handler].name.clone()
    }

    #[test]
    fn compile_blank_and_comment_lines_give_none() {
        assert!(compile(&table(), "   ").expect("ok").is_none());
        assert!(compile(&table(), "# comment").expect("ok").is_none());
    }

    #[test]
    fn compile_exact_literals_match() {
        let c = ok("  vm info  ");
        assert_eq!(name(&c), "vm_info");
        assert_eq!(c.original, "vm info");
    }

    #[test]
    fn compile_unique_prefix_matches_apropos() {
        assert_eq!(name(&ok("vm inf")), "vm_info");
        assert_eq!(name(&ok("vm config tag a b")), "vm_config_tag");
    }

    #[test]
    fn compile_ambiguous_prefix_is_invalid_command() {
        let err = compile(&table(), "vm st foo").unwrap_err();
        assert_eq!(err, CompileError::Ambiguous("vm st foo".into()));
        assert_eq!(err.to_string(), "invalid command: `vm st foo`");
    }

    #[test]
    fn compile_no_match_reports_trimmed_input() {
        let err = compile(&table(), " vm foo ").unwrap_err();
        assert_eq!(err.to_string(), "invalid command: `vm foo`");
    }

    #[test]
    fn compile_extra_tokens_do_not_match() {
        assert!(matches!(
            compile(&table(), "vm info extra"),
            Err(CompileError::Invalid(_))
        ));
    }

    #[test]
    fn compile_lex_errors_pass_through() {
        assert_eq!(
            compile(&table(), "echo \"x").unwrap_err().to_string(),
            "missing terminal \""
        );
    }

    #[test]
    fn compile_strings_go_to_strings_under_their_key() {
        let c = ok("vm start foo[1-3]");
        assert_eq!(c.args.string("vm"), Some("foo[1-3]"));
    }

    #[test]
    fn compile_choice_prefix_stores_full_option() {
        let c = ok("vm launch k 3");
        assert!(c.args.flag("kvm"));
        assert_eq!(c.args.string("name"), Some("3"));
    }

    #[test]
    fn compile_choice_prefixing_two_options_fails_unless_exact() {
        assert!(compile(&table(), "pick al").is_err());
        assert!(ok("pick alps").args.flag("alps"));
        assert!(ok("pick alph").args.flag("alpha"));
        assert!(ok("pick b").args.flag("beta"));
    }

    #[test]
    fn compile_optional_items_may_be_missing() {
        let c = ok("vm config tags");
        assert!(c.args.strings.is_empty());
        let c = ok(".csv");
        assert!(c.args.bools.is_empty());
        assert_eq!(c.pattern, 0);
    }

    #[test]
    fn compile_single_choice_literal_sets_bool() {
        let c = ok("ns add-hosts mm[1-3]");
        assert_eq!((c.pattern, c.args.flag("add-hosts")), (1, true));
        assert_eq!(c.args.string("hosts"), Some("mm[1-3]"));
    }

    #[test]
    fn compile_lists_take_the_rest_and_are_absent_when_empty() {
        let c = ok("echo a \"b c\"");
        assert_eq!(c.args.list("args"), ["a".to_string(), "b c".to_string()]);
        assert!(!ok("echo").args.lists.contains_key("args"));
        assert!(compile(&table(), "shell").is_err());
    }

    #[test]
    fn compile_subcommand_is_requoted_and_compiled() {
        let c = ok(".columns name,state echo \"a b\" c");
        assert_eq!(name(&c), "columns");
        assert_eq!(c.args.string("columns"), Some("name,state"));
        assert_eq!(c.args.subcommand.as_deref(), Some("echo \"a b\" c"));
        let sub = c.sub.expect("sub");
        assert_eq!(table()[sub.handler].name, "echo");
        assert_eq!(sub.original, "echo \"a b\" c");
    }

    #[test]
    fn compile_nested_subcommands_and_exact_choice_wins() {
        let c = ok(".csv true .columns name vm info");
        assert_eq!(c.pattern, 1);
        assert!(c.args.flag("true"));
        let inner = c.sub.expect("sub");
        assert_eq!(table()[inner.sub.expect("nested").handler].name, "vm_info");
    }

    #[test]
    fn compile_bad_or_empty_subcommand_is_invalid() {
        let err = compile(&table(), ".columns name vm bogus").unwrap_err();
        assert_eq!(err.to_string(), "invalid command: `.columns name vm bogus`");
        assert!(compile(&table(), ".columns name").is_err());
    }

    #[test]
    fn suggest_completes_last_word_as_whole_lines() {
        assert_eq!(suggest(&table(), "vm st"), vec!["vm start ", "vm stop "]);
        assert_eq!(
            suggest(&table(), "vm launch "),
            vec!["vm launch container ", "vm launch kvm "]
        );
        assert_eq!(suggest(&table(), ".csv t"), vec![".csv true "]);
    }

    #[test]
    fn suggest_recurses_into_subcommands() {
        assert_eq!(
            suggest(&table(), ".csv true vm i"),
            vec![".csv true vm info "]
        );
    }

    #[test]
    fn suggest_nothing_after_a_mismatch() {
        assert!(suggest(&table(), "vm bogus i").is_empty());
    }
}
