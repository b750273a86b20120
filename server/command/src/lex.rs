//! Tokenising a command line exactly as minicli's input lexer does (reference §1.1).
//!
//! Words split on Unicode whitespace; `"…"`/`'…'` group (and may be glued to
//! adjacent text, `a"b c"` → `ab c`); backslash escapes work inside and outside
//! quotes; `#` outside quotes starts a comment.

use thiserror::Error;

/// Why a command line could not be tokenised; texts are minimega's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LexError {
    /// A quote was opened and never closed.
    #[error("missing terminal {0}")]
    MissingTerminal(char),
    /// A backslash was followed by a character that cannot be escaped.
    #[error("unexpected escaped character: {0}")]
    UnexpectedEscape(char),
    /// The line ended right after a backslash.
    #[error("expected escape character")]
    ExpectedEscape,
}

/// The character an escape sequence `\c` stands for, if `c` may be escaped.
fn unescape(c: char) -> Option<char> {
    match c {
        'r' => Some('\r'),
        'n' => Some('\n'),
        't' => Some('\t'),
        '\\' | '"' | '\'' | '#' => Some(c),
        _ => None,
    }
}

/// Split `input` into tokens; blank or comment-only input gives no tokens.
pub fn lex(input: &str) -> Result<Vec<String>, LexError> {
    let mut tokens = Vec::new();
    let mut content = String::new();
    // Forces a token out even when empty (`""`).
    let mut emit = false;
    let mut quote: Option<char> = None;
    let mut chars = input.chars();

    while let Some(c) = chars.next() {
        if c == '\\' {
            let next = chars.next().ok_or(LexError::ExpectedEscape)?;
            content.push(unescape(next).ok_or(LexError::UnexpectedEscape(next))?);
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                emit = true;
            }
            Some(_) => content.push(c),
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' => break,
                c if c.is_whitespace() => {
                    if !content.is_empty() || emit {
                        tokens.push(std::mem::take(&mut content));
                        emit = false;
                    }
                }
                c => content.push(c),
            },
        }
    }
    if let Some(q) = quote {
        return Err(LexError::MissingTerminal(q));
    }
    if !content.is_empty() || emit {
        tokens.push(content);
    }
    Ok(tokens)
}

/// Quote `token` so that [`lex`] gives it back unchanged.
///
/// Plain words stay bare; anything empty or containing whitespace, quotes, `#`
/// or backslashes is double-quoted with escapes.
pub fn quote(token: &str) -> String {
    let plain = !token.is_empty()
        && !token
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '#' | '\\'));
    if plain {
        return token.to_string();
    }
    let mut out = String::with_capacity(token.len() + 2);
    out.push('"');
    for c in token.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Vec<String> {
        lex(input).expect("lexes")
    }

    #[test]
    fn lex_splits_on_unicode_whitespace() {
        assert_eq!(ok("  vm\tinfo \u{a0}x  "), vec!["vm", "info", "x"]);
    }

    #[test]
    fn lex_blank_and_comment_only_give_no_tokens() {
        assert!(ok("").is_empty());
        assert!(ok("   ").is_empty());
        assert!(ok("# just a comment").is_empty());
    }

    #[test]
    fn lex_comment_ends_the_line_outside_quotes() {
        assert_eq!(
            ok("vm config net A # should be 102"),
            vec!["vm", "config", "net", "A"]
        );
        assert_eq!(ok("foo#bar baz"), vec!["foo"]);
        assert_eq!(ok("echo \"a # b\""), vec!["echo", "a # b"]);
    }

    #[test]
    fn lex_quotes_group_and_are_removed() {
        assert_eq!(
            ok(r#"echo "hello world" 'a b'"#),
            vec!["echo", "hello world", "a b"]
        );
        assert_eq!(ok(r#"a"b c"d"#), vec!["ab cd"]);
        assert_eq!(ok(r#"say "it's""#), vec!["say", "it's"]);
    }

    #[test]
    fn lex_empty_quotes_give_an_empty_token() {
        assert_eq!(ok(r#".env name """#), vec![".env", "name", ""]);
        assert_eq!(ok("''"), vec![""]);
    }

    #[test]
    fn lex_escapes_inside_and_outside_quotes() {
        assert_eq!(ok(r"a\tb"), vec!["a\tb"]);
        assert_eq!(ok(r#""x\"y\n""#), vec!["x\"y\n"]);
        assert_eq!(
            ok(r"\#notcomment \\ \' \r"),
            vec!["#notcomment", "\\", "'", "\r"]
        );
    }

    #[test]
    fn lex_unknown_escape_is_an_error() {
        let err = lex(r"foo\q").unwrap_err();
        assert_eq!(err.to_string(), "unexpected escaped character: q");
    }

    #[test]
    fn lex_trailing_backslash_is_an_error() {
        assert_eq!(lex("foo\\").unwrap_err(), LexError::ExpectedEscape);
    }

    #[test]
    fn lex_unterminated_quote_names_the_quote() {
        assert_eq!(
            lex(r#"echo "abc"#).unwrap_err().to_string(),
            "missing terminal \""
        );
        assert_eq!(
            lex("echo 'abc").unwrap_err().to_string(),
            "missing terminal '"
        );
    }

    #[test]
    fn quote_round_trips_through_lex() {
        for t in [
            "plain",
            "",
            "a b",
            "x\"y",
            "it's",
            "#hash",
            "back\\slash",
            "tab\tnl\n",
        ] {
            assert_eq!(ok(&quote(t)), vec![t.to_string()], "token {t:?}");
        }
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a b"), "\"a b\"");
    }
}
