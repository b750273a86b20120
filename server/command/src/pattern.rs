//! Parsing minicli command patterns (`vm config net [netspec]...`) into items (reference §1.2).
//!
//! The grammar and its error texts follow minicli's pattern lexer: literals,
//! `<key doc>` / `[key doc]` strings, `<a,b>` / `[a,b]` choices, `<key>...` /
//! `[key]...` lists and a trailing `(command)`.

use thiserror::Error;

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A literal word (`vm`).
    Literal(String),
    /// A string argument, `<key doc>` or `[key doc]`; stored under `key`.
    Str {
        /// First word inside the brackets.
        key: String,
        /// Written with `[]`.
        optional: bool,
    },
    /// One of several keywords, `<a,b>` or `[a,b]` (`<a,>` is a one-word choice).
    Choice {
        /// The keywords, in pattern order.
        options: Vec<String>,
        /// Written with `[]`.
        optional: bool,
    },
    /// The rest of the words, `<key>...` (one or more) or `[key]...` (zero or more).
    List {
        /// First word inside the brackets.
        key: String,
        /// Written with `[]`.
        optional: bool,
    },
    /// A nested command taking the rest of the line, `(key)`.
    Sub {
        /// The word inside the parentheses.
        key: String,
    },
}

impl Item {
    /// Whether the item may be left out at the end of a line.
    pub fn is_optional(&self) -> bool {
        match self {
            Item::Str { optional, .. }
            | Item::Choice { optional, .. }
            | Item::List { optional, .. } => *optional,
            Item::Literal(_) | Item::Sub { .. } => false,
        }
    }
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The pattern as written.
    pub text: String,
    /// Its items in order.
    pub items: Vec<Item>,
}

/// Why a pattern is malformed; texts are minicli's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// Quotes appear in the pattern.
    #[error("single and double quotes are not allowed")]
    Quotes,
    /// A bracket opens inside another.
    #[error("cannot nest items")]
    Nested,
    /// A bracket never closes.
    #[error("missing terminal {0}")]
    MissingTerminal(char),
    /// A choice has spaces in it.
    #[error("spaces not allowed in multiple choice")]
    SpaceInChoice,
    /// An optional item, list or sub-command is followed by more text.
    #[error("trailing characters when EOF expected")]
    TrailingItems,
    /// Something other than `...` follows a closing bracket.
    #[error("invalid trailing characters after {0}")]
    TrailingChars(char),
    /// A sub-command written as a choice, `(a,b)`.
    #[error("sub-command cannot be a choice")]
    SubChoice,
}

/// Parse a pattern.
pub fn parse(text: &str) -> Result<Pattern, PatternError> {
    let items = lex_pattern(text)?
        .into_iter()
        .map(|(item, _)| item)
        .collect();
    Ok(Pattern {
        text: text.to_string(),
        items,
    })
}

impl Pattern {
    /// The pattern as minicli prints it under `Usage:` (one-word choices `<a,>` shown bare).
    pub fn usage(&self) -> String {
        match lex_pattern(&self.text) {
            Ok(items) => items
                .into_iter()
                .map(|(_, shown)| shown)
                .collect::<Vec<_>>()
                .join(" "),
            Err(_) => self.text.clone(),
        }
    }
}

/// The pattern's items, each with the text minicli shows for it.
fn lex_pattern(text: &str) -> Result<Vec<(Item, String)>, PatternError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut literal = String::new();
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let close = match c {
            '<' => '>',
            '[' => ']',
            '(' => ')',
            '"' | '\'' => return Err(PatternError::Quotes),
            c if c.is_whitespace() => {
                if !literal.is_empty() {
                    let word = std::mem::take(&mut literal);
                    out.push((Item::Literal(word.clone()), word));
                }
                continue;
            }
            c => {
                literal.push(c);
                continue;
            }
        };
        if !literal.is_empty() {
            let word = std::mem::take(&mut literal);
            out.push((Item::Literal(word.clone()), word));
        }
        let (item, shown) = lex_variable(&chars, &mut i, close)?;
        out.push((item, shown));
    }
    if !literal.is_empty() {
        out.push((Item::Literal(literal.clone()), literal));
    }
    Ok(out)
}

/// Lex a bracketed item whose opening bracket was just consumed.
fn lex_variable(
    chars: &[char],
    i: &mut usize,
    close: char,
) -> Result<(Item, String), PatternError> {
    let optional = close == ']';
    let mut inner = String::new();
    let mut key: Option<String> = None;
    let mut options: Option<Vec<String>> = None;
    let mut current = String::new();
    loop {
        let Some(&c) = chars.get(*i) else {
            return Err(PatternError::MissingTerminal(close));
        };
        *i += 1;
        match c {
            '<' | '[' | '(' => return Err(PatternError::Nested),
            '"' | '\'' => return Err(PatternError::Quotes),
            c if c == close => break,
            ',' if key.is_none() => {
                options
                    .get_or_insert_with(Vec::new)
                    .push(std::mem::take(&mut current));
                inner.push(c);
            }
            c if c.is_whitespace() && options.is_some() => return Err(PatternError::SpaceInChoice),
            c if c.is_whitespace() && key.is_none() => {
                key = Some(std::mem::take(&mut current));
                inner.push(c);
            }
            c => {
                current.push(c);
                inner.push(c);
            }
        }
    }
    if let Some(mut opts) = options {
        if !current.is_empty() {
            opts.push(current);
        }
        if close == ')' {
            return Err(PatternError::SubChoice);
        }
        enforce_eof(chars, i, optional)?;
        let shown = match (optional, opts.len()) {
            (false, 1) => opts[0].clone(),
            (false, _) => format!("<{inner}>"),
            (true, _) => format!("[{inner}]"),
        };
        return Ok((
            Item::Choice {
                options: opts,
                optional,
            },
            shown,
        ));
    }
    let commented = key.is_some();
    let key = key.unwrap_or(current);
    if close == ')' {
        enforce_eof(chars, i, true)?;
        return Ok((Item::Sub { key }, format!("({inner})")));
    }
    let list = check_list(chars, i, close)?;
    // minicli only insists on end-of-pattern after a commented item when it is a list.
    if list || !commented {
        enforce_eof(chars, i, list || optional)?;
    }
    let (open, close_text) = if optional { ('[', "]") } else { ('<', ">") };
    let dots = if list { "..." } else { "" };
    let shown = format!("{open}{inner}{close_text}{dots}");
    let item = if list {
        Item::List { key, optional }
    } else {
        Item::Str { key, optional }
    };
    Ok((item, shown))
}

/// Consume `...` right after a closing bracket; anything else but whitespace is an error.
fn check_list(chars: &[char], i: &mut usize, close: char) -> Result<bool, PatternError> {
    let mut count = 0;
    while let Some(&c) = chars.get(*i) {
        *i += 1;
        if c.is_whitespace() {
            break;
        }
        if c != '.' {
            return Err(PatternError::TrailingChars(close));
        }
        count += 1;
    }
    match count {
        0 => Ok(false),
        3 => Ok(true),
        _ => Err(PatternError::TrailingChars(close)),
    }
}

/// Items that must end the pattern: nothing may follow them.
fn enforce_eof(chars: &[char], i: &mut usize, required: bool) -> Result<(), PatternError> {
    if required && *i < chars.len() {
        return Err(PatternError::TrailingItems);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Vec<Item> {
        parse(text).expect("parses").items
    }

    fn lit(s: &str) -> Item {
        Item::Literal(s.to_string())
    }

    #[test]
    fn parse_literals_split_on_whitespace() {
        assert_eq!(items("vm  info"), vec![lit("vm"), lit("info")]);
    }

    #[test]
    fn parse_required_and_optional_strings_use_first_word_as_key() {
        assert_eq!(
            items("vm start <vm target> [extra]"),
            vec![
                lit("vm"),
                lit("start"),
                Item::Str {
                    key: "vm".into(),
                    optional: false
                },
                Item::Str {
                    key: "extra".into(),
                    optional: true
                },
            ]
        );
    }

    #[test]
    fn parse_choices_required_optional_and_single() {
        assert_eq!(
            items("vm launch <kvm,container>")[2],
            Item::Choice {
                options: vec!["kvm".into(), "container".into()],
                optional: false
            }
        );
        assert_eq!(
            items("ns <hosts,>")[1],
            Item::Choice {
                options: vec!["hosts".into()],
                optional: false
            }
        );
        assert_eq!(
            items(".csv [true,false]")[1],
            Item::Choice {
                options: vec!["true".into(), "false".into()],
                optional: true
            }
        );
    }

    #[test]
    fn parse_lists_and_subcommands() {
        assert_eq!(
            items("echo [args]...")[1],
            Item::List {
                key: "args".into(),
                optional: true
            }
        );
        assert_eq!(
            items("shell <command>...")[1],
            Item::List {
                key: "command".into(),
                optional: false
            }
        );
        assert_eq!(
            items(".columns <columns as csv> (command)"),
            vec![
                lit(".columns"),
                Item::Str {
                    key: "columns".into(),
                    optional: false
                },
                Item::Sub {
                    key: "command".into()
                }
            ]
        );
    }

    #[test]
    fn parse_rejects_malformed_patterns() {
        assert_eq!(parse("a <b").unwrap_err().to_string(), "missing terminal >");
        assert_eq!(parse("a <b [c]>").unwrap_err(), PatternError::Nested);
        assert_eq!(parse("a \"b\"").unwrap_err(), PatternError::Quotes);
        assert_eq!(parse("a <b, c>").unwrap_err(), PatternError::SpaceInChoice);
        assert_eq!(parse("a [b] c").unwrap_err(), PatternError::TrailingItems);
        assert_eq!(parse("a (b) c").unwrap_err(), PatternError::TrailingItems);
        assert_eq!(
            parse("a <b>.. c").unwrap_err().to_string(),
            "invalid trailing characters after >"
        );
        assert_eq!(
            parse("a <b>x").unwrap_err(),
            PatternError::TrailingChars('>')
        );
        assert_eq!(
            parse("a <b>... c").unwrap_err(),
            PatternError::TrailingItems
        );
    }

    #[test]
    fn usage_collapses_single_choices_and_keeps_docs() {
        let p = parse("ns <add-hosts,> <hosts>").expect("parses");
        assert_eq!(p.usage(), "ns add-hosts <hosts>");
        let p = parse("vm config net [netspec]...").expect("parses");
        assert_eq!(p.usage(), "vm config net [netspec]...");
        let p = parse("vm launch <kvm,container> <name or count>").expect("parses");
        assert_eq!(p.usage(), "vm launch <kvm,container> <name or count>");
        assert_eq!(
            parse(".x <a,b> (command)").expect("parses").usage(),
            ".x <a,b> (command)"
        );
    }
}
