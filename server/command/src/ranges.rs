//! Host and VM name ranges, `foo[1-3,5]`, as minimega's `src/ranges` expands and compresses them (§3.5).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

/// Why a range expression is malformed; texts are minimega's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RangeError {
    /// A `[` inside brackets (byte offset).
    #[error("nested '[' at char {0}")]
    Nested(usize),
    /// A `]` without its `[` (byte offset).
    #[error("unmatched ']' at char {0}")]
    Unmatched(usize),
    /// A `[` never closed.
    #[error("unterminated '['")]
    Unterminated,
    /// Text after `]`, or a malformed element.
    #[error("invalid range specification")]
    Invalid,
    /// A `a-b` part that is not two numbers.
    #[error("invalid subrange {0}")]
    Subrange(String),
    /// A part that is not a number (Go's `strconv.Atoi` text).
    #[error("strconv.Atoi: parsing {0:?}: {1}")]
    Number(String, &'static str),
    /// A number beyond Go's `MaxInt32`.
    #[error("value of out range: {0}")]
    OutOfRange(i64),
    /// More names than [`MAX_NAMES`]: refused rather than exhausting memory.
    #[error("range too large: more than {MAX_NAMES} names")]
    TooLarge,
}

/// The most names one range expression may expand to.
pub const MAX_NAMES: i64 = 100_000;

/// Go's `strconv.Atoi` on a 64-bit platform.
fn atoi(s: &str) -> Result<i64, RangeError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::Number(s.to_string(), "invalid syntax"));
    }
    s.parse()
        .map_err(|_| RangeError::Number(s.to_string(), "value out of range"))
}

/// Check bracket structure, returning the byte ranges of the comma-separated elements.
fn split_elements(list: &str) -> Result<Vec<&str>, RangeError> {
    let mut parts = Vec::new();
    let (mut prev, mut inside) = (0, false);
    for (i, b) in list.bytes().enumerate() {
        match b {
            b'[' if inside => return Err(RangeError::Nested(i)),
            b'[' => inside = true,
            b']' if !inside => return Err(RangeError::Unmatched(i)),
            b']' => inside = false,
            b',' if !inside => {
                parts.push(&list[prev..i]);
                prev = i + 1;
            }
            _ => {}
        }
    }
    if inside {
        return Err(RangeError::Unterminated);
    }
    if prev < list.len() {
        parts.push(&list[prev..]);
    }
    Ok(parts)
}

/// Expand one element `prefix[a-b,c]`; an element without brackets is returned as is.
pub fn expand(spec: &str) -> Result<Vec<String>, RangeError> {
    // Same bracket checks as a list; commas outside brackets stay part of the name.
    split_elements(spec)?;
    expand_element(spec)
}

fn expand_element(spec: &str) -> Result<Vec<String>, RangeError> {
    let Some(open) = spec.find('[') else {
        return Ok(vec![spec.to_string()]);
    };
    let (prefix, rest) = spec.split_at(open);
    let Some(inner) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return Err(RangeError::Invalid);
    };
    // -1: no number seen yet; 0: widths differ, no padding.
    let mut pad: i64 = -1;
    let mut seen = BTreeSet::new();
    let mut note = |text: &str, n: i64, pad: &mut i64| -> Result<(), RangeError> {
        let width = text.len() as i64;
        if *pad == -1 {
            *pad = width;
        } else if width != *pad {
            *pad = 0;
        }
        if n > i64::from(i32::MAX) || n < 0 {
            return Err(RangeError::OutOfRange(n));
        }
        seen.insert(n);
        Ok(())
    };
    for part in inner.split(',') {
        if !part.contains('-') {
            let n = atoi(part)?;
            note(part, n, &mut pad)?;
            continue;
        }
        let limits: Vec<&str> = part.split('-').collect();
        let [lo, hi] = limits[..] else {
            return Err(RangeError::Subrange(part.to_string()));
        };
        let width = if lo.len() == hi.len() { lo.len() } else { 0 };
        let (start, end) = (atoi(lo)?, atoi(hi)?);
        // Fail before the loop: counting up to a huge bound would exhaust memory first.
        if end > i64::from(i32::MAX) {
            return Err(RangeError::OutOfRange(start.max(i64::from(i32::MAX) + 1)));
        }
        if end.saturating_sub(start) >= MAX_NAMES {
            return Err(RangeError::TooLarge);
        }
        for n in start..=end {
            note(&format!("{n:0width$}"), n, &mut pad)?;
        }
    }
    let width = usize::try_from(pad).unwrap_or(0);
    Ok(seen
        .into_iter()
        .map(|n| format!("{prefix}{n:0width$}"))
        .collect())
}

/// Expand a comma-separated list whose elements may be ranges (`foo[1-3],bar`).
pub fn split_list(list: &str) -> Result<Vec<String>, RangeError> {
    let mut out = Vec::new();
    for part in split_elements(list)? {
        out.extend(expand_element(part)?);
        if out.len() as i64 > MAX_NAMES {
            return Err(RangeError::TooLarge);
        }
    }
    Ok(out)
}

/// Compress names into range notation (`mm1,mm2,mm3` → `mm[1-3]`), minimega's `UnsplitList`.
pub fn compress(names: &[String]) -> String {
    let set: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    flatten(&set).join(",")
}

/// minimega's trie flattening: shared text, then numbers merged per common suffix.
fn flatten(set: &BTreeSet<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_char: BTreeMap<char, BTreeSet<&str>> = BTreeMap::new();
    let mut by_num: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
    for s in set {
        let Some(first) = s.chars().next() else {
            out.push(String::new());
            continue;
        };
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        match s[..digits].parse::<i64>() {
            Ok(n) if digits > 0 => {
                by_num.entry(n).or_default().insert(&s[digits..]);
            }
            _ => {
                by_char
                    .entry(first)
                    .or_default()
                    .insert(&s[first.len_utf8()..]);
            }
        }
    }
    for (c, rest) in &by_char {
        out.extend(flatten(rest).into_iter().map(|s| format!("{c}{s}")));
    }
    let mut by_suffix: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (n, rest) in &by_num {
        for suffix in flatten(rest) {
            by_suffix.entry(suffix).or_default().push(*n);
        }
    }
    for (suffix, nums) in by_suffix {
        out.push(format!("{}{suffix}", unsplit_ints(&nums)));
    }
    out
}

/// `[1,2,3,5]` → `[1-3,5]`; a single number stays bare.
fn unsplit_ints(nums: &[i64]) -> String {
    let mut nums = nums.to_vec();
    nums.sort_unstable();
    nums.dedup();
    if nums.len() == 1 {
        return nums[0].to_string();
    }
    let mut runs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        while i + 1 < nums.len() && nums[i + 1] == nums[i] + 1 {
            i += 1;
        }
        runs.push(if nums[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", nums[i])
        });
        i += 1;
    }
    format!("[{}]", runs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn expand_ranges_and_singles() {
        assert_eq!(
            expand("foo[1-3,5]").expect("ok"),
            strs(&["foo1", "foo2", "foo3", "foo5"])
        );
        assert_eq!(
            expand("foo[0-2,5]").expect("ok"),
            strs(&["foo0", "foo1", "foo2", "foo5"])
        );
    }

    #[test]
    fn expand_without_brackets_is_identity() {
        assert_eq!(expand("bar").expect("ok"), strs(&["bar"]));
    }

    #[test]
    fn expand_sorts_and_deduplicates() {
        assert_eq!(expand("n[3,1-2,2]").expect("ok"), strs(&["n1", "n2", "n3"]));
    }

    #[test]
    fn expand_keeps_padding_when_widths_agree() {
        assert_eq!(
            expand("kn[01-03]").expect("ok"),
            strs(&["kn01", "kn02", "kn03"])
        );
        assert_eq!(
            expand("kn[08-10]").expect("ok"),
            strs(&["kn08", "kn09", "kn10"])
        );
        assert_eq!(
            expand("kn[1-3,05]").expect("ok"),
            strs(&["kn1", "kn2", "kn3", "kn5"])
        );
        assert_eq!(expand("kn[9-10]").expect("ok"), strs(&["kn9", "kn10"]));
    }

    #[test]
    fn expand_errors_have_minimega_texts() {
        assert_eq!(
            expand("a[1[2]]").unwrap_err().to_string(),
            "nested '[' at char 3"
        );
        assert_eq!(
            expand("a]").unwrap_err().to_string(),
            "unmatched ']' at char 1"
        );
        assert_eq!(expand("a[1-2").unwrap_err().to_string(), "unterminated '['");
        assert_eq!(
            expand("a[1-2]b").unwrap_err().to_string(),
            "invalid range specification"
        );
        assert_eq!(
            expand("a[1-2-3]").unwrap_err().to_string(),
            "invalid subrange 1-2-3"
        );
        assert_eq!(
            expand("a[x]").unwrap_err().to_string(),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn split_list_keeps_commas_inside_brackets() {
        assert_eq!(
            split_list("foo[1-3],bar").expect("ok"),
            strs(&["foo1", "foo2", "foo3", "bar"])
        );
        assert_eq!(split_list("a,b").expect("ok"), strs(&["a", "b"]));
        assert!(split_list("").expect("ok").is_empty());
    }

    #[test]
    fn split_list_error_offsets_count_the_whole_list() {
        assert_eq!(split_list("ab,c]").unwrap_err(), RangeError::Unmatched(4));
        assert_eq!(split_list("x,a[[").unwrap_err(), RangeError::Nested(4));
    }

    #[test]
    fn compress_merges_numbered_names() {
        assert_eq!(compress(&strs(&["mm1", "mm2", "mm3"])), "mm[1-3]");
        assert_eq!(compress(&strs(&["mm3", "mm1", "mm5", "mm2"])), "mm[1-3,5]");
        assert_eq!(compress(&strs(&["foo"])), "foo");
        assert_eq!(compress(&strs(&["mm1"])), "mm1");
        assert_eq!(compress(&strs(&["a1", "a2", "b7"])), "a[1-2],b7");
        assert_eq!(compress(&strs(&["foo1.bar", "foo2.bar"])), "foo[1-2].bar");
        assert_eq!(compress(&[]), "");
    }
}
