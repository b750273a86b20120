//! The `help` command's text: the command listing and per-command usage, as minicli prints them (§1.6).

use thiserror::Error;

use crate::pattern::{self, Item};
use crate::render::tabwrite;
use crate::HandlerSpec;

/// Why there is no help to show.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HelpError {
    /// No handler's patterns start with the words (minimega prints this text as the response).
    #[error("no help entry for `{0}`")]
    NoEntry(String),
}

/// Help for `words`: no words lists every pattern; otherwise the usage of the matching handler(s).
pub fn help(table: &[HandlerSpec], words: &[String]) -> Result<String, HelpError> {
    if words.is_empty() {
        return Ok(listing(table.iter()));
    }
    let matches: Vec<&HandlerSpec> = table.iter().filter(|h| help_matches(h, words)).collect();
    match matches.as_slice() {
        [] => Err(HelpError::NoEntry(words.join(" "))),
        [only] => Ok(usage(
            only.patterns.iter(),
            &only.help_short,
            &only.help_long,
        )),
        _ => {
            // Several handlers but only one with long help: show them as one.
            let mut long = matches.iter().filter(|h| !h.help_long.trim().is_empty());
            match (long.next(), long.next()) {
                (Some(one), None) => Ok(usage(
                    matches.iter().flat_map(|h| h.patterns.iter()),
                    &one.help_short,
                    &one.help_long,
                )),
                _ => Ok(listing(matches.into_iter())),
            }
        }
    }
}

/// Whether some pattern of `h` starts with `words` (prefix matching literals and choices).
fn help_matches(h: &HandlerSpec, words: &[String]) -> bool {
    h.patterns
        .iter()
        .filter_map(|p| pattern::parse(p).ok())
        .any(|p| {
            for (i, word) in words.iter().enumerate() {
                match p.items.get(i) {
                    None => return false,
                    Some(Item::Literal(w)) if !w.starts_with(word.as_str()) => return false,
                    Some(Item::Choice { options, .. })
                        if !options.iter().any(|o| o.starts_with(word.as_str())) =>
                    {
                        return false
                    }
                    // A list swallows the remaining words only when it may be empty (minicli's trie).
                    Some(Item::List { optional, .. }) => return *optional,
                    Some(Item::Sub { .. }) => return false,
                    Some(_) => {}
                }
            }
            true
        })
}

/// `Usage:`, one tab-indented pattern per line, a blank line, then the long (or short) help.
fn usage<'a>(patterns: impl Iterator<Item = &'a String>, short: &str, long: &str) -> String {
    let mut out = String::from("Usage:\n");
    for p in patterns {
        let shown = pattern::parse(p)
            .map(|p| p.usage())
            .unwrap_or_else(|_| p.clone());
        out.push('\t');
        out.push_str(&shown);
        out.push('\n');
    }
    out.push('\n');
    let long = long.trim();
    out.push_str(if long.is_empty() { short.trim() } else { long });
    out
}

/// Every pattern, sorted, with its handler's short help, aligned by Go's tabwriter with tabs.
fn listing<'a>(handlers: impl Iterator<Item = &'a HandlerSpec>) -> String {
    let mut entries: Vec<(&str, &str)> = handlers
        .flat_map(|h| {
            h.patterns
                .iter()
                .map(move |p| (p.as_str(), h.help_short.trim()))
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::new();
    for (p, short) in entries {
        // Go: fmt.Fprintln(w, pattern, "\t", ":\t", short, "\t")
        text.push_str(&format!("{p} \t :\t {short} \t\n"));
    }
    format!(
        "Display help on a command. Here is a list of commands:\n{}",
        tabwrite(&text, 0, 8, 0, '\t')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scope;

    fn spec(name: &str, patterns: &[&str], short: &str, long: &str) -> HandlerSpec {
        HandlerSpec {
            name: name.into(),
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
            help_short: short.into(),
            help_long: long.into(),
            scope: Scope::Local,
        }
    }

    fn table() -> Vec<HandlerSpec> {
        vec![
            spec(
                "vm_info",
                &["vm info"],
                "print information about VMs",
                "Print VM info.\n",
            ),
            spec(
                "vm_config_mem",
                &["vm config memory [value]"],
                "set memory",
                "",
            ),
            spec(
                "vm_config_net",
                &["vm config net [netspec]..."],
                "set networks",
                "",
            ),
            spec(
                "ns",
                &["ns <hosts,>", "ns <add-hosts,> <hosts>"],
                "namespace hosts",
                "",
            ),
            spec("echo", &["echo [args]..."], "print args", ""),
            spec(
                "csv",
                &[".csv [true,false]", ".csv <true,false> (command)"],
                "csv",
                "CSV mode.",
            ),
        ]
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn help_without_words_lists_sorted_patterns_with_short_help() {
        let text = help(&table(), &[]).expect("help");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Display help on a command. Here is a list of commands:"
        );
        assert_eq!(lines[1], ".csv <true,false> (command) \t :\t csv \t\t\t\t");
        assert_eq!(lines[3], "echo [args]... \t\t\t :\t print args \t\t\t");
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn help_for_one_handler_prints_usage_and_long_help() {
        let text = help(&table(), &words("vm info")).expect("help");
        assert_eq!(text, "Usage:\n\tvm info\n\nPrint VM info.");
    }

    #[test]
    fn help_falls_back_to_short_help_and_collapses_single_choices() {
        let text = help(&table(), &words("ns")).expect("help");
        assert_eq!(
            text,
            "Usage:\n\tns hosts\n\tns add-hosts <hosts>\n\nnamespace hosts"
        );
    }

    #[test]
    fn help_prefix_words_match_apropos() {
        let text = help(&table(), &words("vm conf mem")).expect("help");
        assert!(text.starts_with("Usage:\n\tvm config memory [value]\n"));
    }

    #[test]
    fn help_for_a_group_lists_its_handlers() {
        let text = help(&table(), &words("vm config")).expect("help");
        assert!(text.starts_with("Display help on a command."));
        assert!(text.contains("vm config memory [value]"));
        assert!(text.contains("vm config net [netspec]..."));
        assert!(!text.contains("vm info"));
    }

    #[test]
    fn help_optional_list_takes_extra_words() {
        assert!(help(&table(), &words("echo a b")).is_ok());
    }

    #[test]
    fn help_unknown_command_is_no_entry() {
        let err = help(&table(), &words("bogus thing")).unwrap_err();
        assert_eq!(err.to_string(), "no help entry for `bogus thing`");
    }
}
