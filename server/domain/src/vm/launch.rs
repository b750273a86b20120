//! `vm launch` argument rules: counts, names in range syntax, reserved words and duplicates.

use ferromega_command::ranges;

/// Why a launch request is refused; the texts are minimega's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// A count of zero.
    #[error("invalid number of vms (must be > 0)")]
    BadCount,
    /// A count beyond what one launch may ask for.
    #[error("invalid number of vms (must be <= {MAX_LAUNCH})")]
    TooMany,
    /// Nothing to launch.
    #[error("no VMs to launch")]
    Empty,
    /// A name that is `all`.
    #[error("invalid vm name, `all` is a reserved word")]
    Reserved,
    /// A name that is an integer (it would read as an ID).
    #[error("invalid vm name, `{0}` is an integer")]
    Integer(String),
    /// A name with characters outside `[A-Za-z0-9_.-]`.
    #[error("invalid vm name, `{0}` may only contain letters, digits, '_', '.' and '-'")]
    Characters(String),
    /// The same name twice.
    #[error("`{0}` is specified twice in VMs to launch")]
    Twice(String),
    /// A malformed range.
    #[error("{0}")]
    Range(String),
}

/// The most VMs one `vm launch` may ask for.
pub const MAX_LAUNCH: i64 = 100_000;

/// Checks a VM (or namespace) name: not empty, only `[A-Za-z0-9_.-]`.
pub fn check_name(name: &str) -> Result<(), LaunchError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(LaunchError::Characters(name.to_string()))
    }
}

/// What `vm launch <type> <name or count>` asked for: names, or empty names for a count.
pub fn parse_names(spec: &str) -> Result<Vec<String>, LaunchError> {
    if let Ok(n) = spec.parse::<i64>() {
        if n <= 0 {
            return Err(LaunchError::BadCount);
        }
        if n > MAX_LAUNCH {
            return Err(LaunchError::TooMany);
        }
        return Ok(vec![String::new(); n as usize]);
    }
    let names = ranges::split_list(spec).map_err(|e| LaunchError::Range(e.to_string()))?;
    if names.is_empty() {
        return Err(LaunchError::Empty);
    }
    let mut seen = std::collections::BTreeSet::new();
    for name in &names {
        if name == "all" {
            return Err(LaunchError::Reserved);
        }
        if name.parse::<i64>().is_ok() {
            return Err(LaunchError::Integer(name.clone()));
        }
        check_name(name)?;
        if !seen.insert(name.as_str()) {
            return Err(LaunchError::Twice(name.clone()));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_gives_that_many_unnamed_vms() {
        assert_eq!(parse_names("3").unwrap(), vec![String::new(); 3]);
    }

    #[test]
    fn huge_counts_are_rejected_before_allocating() {
        assert_eq!(parse_names("99999999999"), Err(LaunchError::TooMany));
    }

    #[test]
    fn zero_count_is_rejected() {
        assert_eq!(parse_names("0"), Err(LaunchError::BadCount));
    }

    #[test]
    fn range_names_expand() {
        assert_eq!(
            parse_names("foo[1-2],bar").unwrap(),
            vec!["foo1", "foo2", "bar"]
        );
    }

    #[test]
    fn bracketed_zero_is_an_integer_name() {
        assert_eq!(
            parse_names("[0]").unwrap_err().to_string(),
            "invalid vm name, `0` is an integer"
        );
        assert_eq!(
            parse_names("foo,[0]").unwrap_err().to_string(),
            "invalid vm name, `0` is an integer"
        );
    }

    #[test]
    fn all_is_reserved() {
        assert_eq!(parse_names("foo,all"), Err(LaunchError::Reserved));
    }

    #[test]
    fn duplicates_are_rejected() {
        assert_eq!(
            parse_names("a,a").unwrap_err().to_string(),
            "`a` is specified twice in VMs to launch"
        );
    }

    #[test]
    fn bad_characters_are_rejected() {
        assert!(matches!(
            parse_names("a/b"),
            Err(LaunchError::Characters(_))
        ));
    }
}
