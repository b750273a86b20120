//! VLAN aliases: the global, namespace-aware allocator behind `vlans` and `vm config net`.
//!
//! This is minimega's `src/vlans`: aliases are keyed `<namespace>//<alias>`, new
//! aliases take the next free VLAN of their namespace's reserved range (or of the
//! default range [101, 4096), skipping every reserved range), and VLANs entered
//! as numbers are blacklisted so that no alias is ever allocated on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Separator between the namespace and the alias in an alias key.
pub const ALIAS_SEP: &str = "//";

/// The namespace whose range is the global default range.
const DEFAULT_NAMESPACE: &str = "minimega";

/// First VLAN of the default allocation range.
const DEFAULT_MIN: u16 = 101;

/// End (exclusive) of the default allocation range, and of valid VLANs.
const VLAN_END: u16 = 4096;

/// Errors of the VLAN allocator; the texts are minimega's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VlanError {
    /// A numeric VLAN outside [0, 4096).
    #[error("invalid VLAN (0 <= vlan < 4096)")]
    Invalid,
    /// An empty VLAN string.
    #[error("VLAN must be non-empty string")]
    Empty,
    /// The allocation range is exhausted.
    #[error("out of VLANs")]
    OutOfVlans,
    /// `vlans add` with an alias that already exists.
    #[error("alias already in use")]
    AliasInUse,
    /// `vlans add` with a VLAN that already has an alias or is blacklisted.
    #[error("vlan already in use")]
    VlanInUse,
    /// `vlans add` with a non-integer VLAN.
    #[error("expected integer VLAN")]
    ExpectedInteger,
    /// `vlans range` with non-integer bounds.
    #[error("expected integer values for min/max")]
    ExpectedIntegerRange,
    /// `vlans range` with max <= min (minimega's text, sic).
    #[error("expected min > max")]
    EmptyRange,
    /// `vlans range` with bounds outside the VLAN space (ferromega's check).
    #[error("invalid VLAN range (0 <= min < max <= 4096)")]
    RangeOutOfBounds,
    /// `vlans range` overlapping the reserved range of another namespace.
    #[error("range overlaps with another namespace: {0}")]
    RangeOverlap(String),
}

/// A range [min, max) of VLANs and the next candidate for allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Range {
    min: u16,
    max: u16,
    next: u16,
}

impl Range {
    fn new(min: u16, max: u16) -> Self {
        Range {
            min,
            max,
            next: min,
        }
    }
}

/// What occupies a VLAN number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Use {
    /// The full alias key that owns it.
    Alias(String),
    /// Entered manually; never allocated to an alias.
    Blacklisted,
}

/// The VLAN alias allocator shared by every namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vlans {
    by_vlan: BTreeMap<u16, Use>,
    by_alias: BTreeMap<String, u16>,
    /// Reserved ranges by namespace; the key "" is the default range.
    ranges: BTreeMap<String, Range>,
}

impl Default for Vlans {
    fn default() -> Self {
        Self::new()
    }
}

/// The full alias key: `<namespace>//<s>` unless `s` already names a namespace.
fn alias_key(namespace: &str, s: &str) -> String {
    if s.contains(ALIAS_SEP) {
        s.to_string()
    } else {
        format!("{namespace}{ALIAS_SEP}{s}")
    }
}

/// The range key of a namespace: the `minimega` namespace owns the default range.
fn range_key(namespace: &str) -> &str {
    if namespace == DEFAULT_NAMESPACE {
        ""
    } else {
        namespace
    }
}

/// Go's `strconv.Atoi` acceptance: optional sign, decimal digits, fits an int64.
fn atoi(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

impl Vlans {
    /// An empty allocator with the default range [101, 4096).
    pub fn new() -> Self {
        let mut ranges = BTreeMap::new();
        ranges.insert(String::new(), Range::new(DEFAULT_MIN, VLAN_END));
        Vlans {
            by_vlan: BTreeMap::new(),
            by_alias: BTreeMap::new(),
            ranges,
        }
    }

    /// Resolves a VLAN string as minimega's `lookupVLAN`: a number (blacklisted
    /// unless it has an alias) or an alias, allocated when new.
    pub fn lookup(&mut self, namespace: &str, s: &str) -> Result<u16, VlanError> {
        self.lookup_new(namespace, s).map(|(vlan, _)| vlan)
    }

    /// As [`Vlans::lookup`], also telling whether a new alias was created (the
    /// caller then rewrites `<base>/vlans` from [`Vlans::file_text`]).
    pub fn lookup_new(&mut self, namespace: &str, s: &str) -> Result<(u16, bool), VlanError> {
        if s.is_empty() {
            return Err(VlanError::Empty);
        }
        if let Some(n) = atoi(s) {
            let vlan = u16::try_from(n)
                .ok()
                .filter(|v| *v < VLAN_END)
                .ok_or(VlanError::Invalid)?;
            match self.by_vlan.get(&vlan) {
                Some(Use::Alias(alias)) => {
                    tracing::warn!("VLAN {vlan} has alias {alias}");
                }
                Some(Use::Blacklisted) => {}
                None => {
                    tracing::warn!("blacklisting manually specified VLAN {vlan}");
                    self.blacklist(vlan);
                }
            }
            return Ok((vlan, false));
        }
        let key = alias_key(namespace, s);
        if let Some(vlan) = self.by_alias.get(&key) {
            return Ok((*vlan, false));
        }
        self.allocate(key).map(|vlan| (vlan, true))
    }

    /// Allocates the next free VLAN for a new alias key.
    fn allocate(&mut self, key: String) -> Result<u16, VlanError> {
        let ns = key
            .split_once(ALIAS_SEP)
            .map(|(ns, _)| ns)
            .unwrap_or_default();
        let range_name = match self.ranges.contains_key(range_key(ns)) {
            true => range_key(ns).to_string(),
            false => String::new(),
        };
        let reserved: Vec<Range> = self
            .ranges
            .iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(_, r)| *r)
            .collect();
        let Some(range) = self.ranges.get_mut(&range_name) else {
            return Err(VlanError::OutOfVlans);
        };
        'outer: loop {
            while range.next < range.max && self.by_vlan.contains_key(&range.next) {
                range.next += 1;
            }
            if range.next >= range.max {
                return Err(VlanError::OutOfVlans);
            }
            // The default range never hands out VLANs reserved by a namespace.
            if range_name.is_empty() {
                for r in &reserved {
                    if range.next >= r.min && range.next < r.max {
                        range.next = r.max;
                        continue 'outer;
                    }
                }
            }
            break;
        }
        let vlan = range.next;
        tracing::info!("adding VLAN alias {key} => {vlan}");
        self.by_vlan.insert(vlan, Use::Alias(key.clone()));
        self.by_alias.insert(key, vlan);
        Ok(vlan)
    }

    /// `vlans add <alias> <vlan>`: pins an alias (namespace-prefixed unless it
    /// contains `//`) to a VLAN.
    pub fn add_alias(&mut self, namespace: &str, alias: &str, vlan: &str) -> Result<(), VlanError> {
        let key = alias_key(namespace, alias);
        let n = atoi(vlan).ok_or(VlanError::ExpectedInteger)?;
        let vlan = u16::try_from(n)
            .ok()
            .filter(|v| *v < VLAN_END)
            .ok_or(VlanError::Invalid)?;
        if self.by_alias.contains_key(&key) {
            return Err(VlanError::AliasInUse);
        }
        if self.by_vlan.contains_key(&vlan) {
            return Err(VlanError::VlanInUse);
        }
        self.by_vlan.insert(vlan, Use::Alias(key.clone()));
        self.by_alias.insert(key, vlan);
        Ok(())
    }

    /// The aliases of `namespace` with the prefix stripped, sorted by alias.
    pub fn aliases(&self, namespace: &str) -> Vec<(String, u16)> {
        self.by_alias
            .iter()
            .filter_map(|(key, vlan)| {
                let (ns, alias) = key.split_once(ALIAS_SEP)?;
                (ns == namespace).then(|| (alias.to_string(), *vlan))
            })
            .collect()
    }

    /// (min, max, next) of the range new aliases of `namespace` come from: its
    /// reserved range, or the default range.
    pub fn range(&self, namespace: &str) -> (u16, u16, u16) {
        let r = self
            .ranges
            .get(range_key(namespace))
            .or_else(|| self.ranges.get(""))
            .copied()
            .unwrap_or_else(|| Range::new(DEFAULT_MIN, VLAN_END));
        (r.min, r.max, r.next)
    }

    /// (min, max, next) of the range reserved by `namespace` itself, if any
    /// (for `minimega`, the default range).
    pub fn own_range(&self, namespace: &str) -> Option<(u16, u16, u16)> {
        self.ranges
            .get(range_key(namespace))
            .map(|r| (r.min, r.max, r.next))
    }

    /// `vlans range <min> <max>`: reserves [min, max) for new aliases of
    /// `namespace` (in `minimega`, sets the default range).
    pub fn set_range(&mut self, namespace: &str, min: &str, max: &str) -> Result<(), VlanError> {
        let (Some(min), Some(max)) = (atoi(min), atoi(max)) else {
            return Err(VlanError::ExpectedIntegerRange);
        };
        if max <= min {
            return Err(VlanError::EmptyRange);
        }
        if min < 0 || max > i64::from(VLAN_END) {
            return Err(VlanError::RangeOutOfBounds);
        }
        // Both bounds are within [0, 4096] now.
        let (min, max) = (min as u16, max as u16);
        let key = range_key(namespace);
        if !key.is_empty() {
            for (other, r) in &self.ranges {
                if other.is_empty() || other == key {
                    continue;
                }
                // minimega's (inclusive) overlap test.
                if min <= r.max && r.min <= max {
                    return Err(VlanError::RangeOverlap(other.clone()));
                }
            }
        }
        if (min..max).any(|v| self.by_vlan.contains_key(&v)) {
            tracing::warn!("detected hole in VLAN range {min} -> {max}");
        }
        self.ranges.insert(key.to_string(), Range::new(min, max));
        Ok(())
    }

    /// `vlans blacklist <vlan>`: removes a VLAN from allocation (dropping its alias).
    pub fn blacklist(&mut self, vlan: u16) {
        if let Some(Use::Alias(alias)) = self.by_vlan.get(&vlan) {
            self.by_alias.remove(alias);
        }
        self.by_vlan.insert(vlan, Use::Blacklisted);
    }

    /// The blacklisted VLANs, ascending.
    pub fn blacklisted(&self) -> Vec<u16> {
        self.by_vlan
            .iter()
            .filter(|(_, u)| **u == Use::Blacklisted)
            .map(|(v, _)| *v)
            .collect()
    }

    /// `clear vlans [prefix]`: deletes the aliases of `namespace` starting with
    /// `prefix` (a prefix containing `//` is taken as a full key); an empty prefix
    /// also drops the namespace's range (resets the default range in `minimega`).
    pub fn clear(&mut self, namespace: &str, prefix: &str) {
        let full = alias_key(namespace, prefix);
        let doomed: Vec<String> = self
            .by_alias
            .keys()
            .filter(|k| k.starts_with(&full))
            .cloned()
            .collect();
        for key in doomed {
            if let Some(vlan) = self.by_alias.remove(&key) {
                self.by_vlan.remove(&vlan);
            }
        }
        if let Some(ns) = full.strip_suffix(ALIAS_SEP) {
            let key = range_key(ns);
            if key.is_empty() {
                self.ranges
                    .insert(String::new(), Range::new(DEFAULT_MIN, VLAN_END));
            } else {
                self.ranges.remove(key);
            }
        }
        // Rewind so recently freed VLANs are found again.
        for r in self.ranges.values_mut() {
            r.next = r.min;
        }
    }

    /// `clear vlans all`: forgets every alias, range and blacklisted VLAN.
    pub fn clear_all(&mut self) {
        *self = Vlans::new();
    }

    /// A VLAN as minimega prints it: `alias (N)` when it has an alias (the
    /// `<namespace>//` prefix dropped when it is `namespace`), else the number.
    pub fn display(&self, namespace: &str, vlan: u16) -> String {
        match self.by_vlan.get(&vlan) {
            Some(Use::Alias(key)) => {
                let alias = match key.split_once(ALIAS_SEP) {
                    Some((ns, rest)) if ns == namespace => rest,
                    _ => key.as_str(),
                };
                format!("{alias} ({vlan})")
            }
            _ => vlan.to_string(),
        }
    }

    /// The content of `<base>/vlans`: an `Alias VLAN` table of full alias keys,
    /// aligned like Go's tabwriter.
    pub fn file_text(&self) -> String {
        let width = self
            .by_alias
            .keys()
            .map(String::len)
            .chain([5])
            .max()
            .unwrap_or(5)
            + 1;
        let mut out = format!("{:<width$}VLAN\n", "Alias");
        for (key, vlan) in &self.by_alias {
            out.push_str(&format!("{key:<width$}{vlan}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_sequence_of_vlans_want() {
        let mut v = Vlans::new();
        assert_eq!(v.lookup("minimega", "101"), Ok(101));
        assert_eq!(v.lookup_new("minimega", "A"), Ok((102, true)));
        assert_eq!(v.lookup("minimega", "B"), Ok(103));
        assert_eq!(v.lookup_new("minimega", "A"), Ok((102, false)));
        assert_eq!(v.add_alias("minimega", "foo", "200"), Ok(()));
        assert_eq!(
            v.add_alias("minimega", "foo", "201"),
            Err(VlanError::AliasInUse)
        );
        assert_eq!(v.add_alias("minimega", "bar", "300"), Ok(()));
        assert_eq!(
            v.aliases("minimega"),
            vec![
                ("A".into(), 102),
                ("B".into(), 103),
                ("bar".into(), 300),
                ("foo".into(), 200)
            ]
        );
        assert_eq!(v.lookup("minimega", "foo"), Ok(200));
        assert_eq!(v.display("minimega", 200), "foo (200)");
        assert_eq!(v.lookup("foo", "A"), Ok(104));
        assert_eq!(v.aliases("foo"), vec![("A".into(), 104)]);
        assert_eq!(v.lookup("bar", "A"), Ok(105));
        assert_eq!(v.lookup("bar", "minimega//A"), Ok(102));
        assert_eq!(v.display("bar", 102), "minimega//A (102)");
        assert_eq!(v.lookup("bar", "foo//A"), Ok(104));
        assert_eq!(v.display("bar", 104), "foo//A (104)");
        assert_eq!(v.display("bar", 105), "A (105)");
        assert_eq!(v.set_range("foo", "130", "120"), Err(VlanError::EmptyRange));
        assert_eq!(v.set_range("foo", "120", "130"), Ok(()));
        assert_eq!(v.lookup("foo", "B"), Ok(120));
        assert_eq!(v.aliases("foo"), vec![("A".into(), 104), ("B".into(), 120)]);
        assert_eq!(v.range("foo"), (120, 130, 120));
    }

    #[test]
    fn numbers_are_validated_and_blacklisted() {
        let mut v = Vlans::new();
        assert_eq!(v.lookup("minimega", "4096"), Err(VlanError::Invalid));
        assert_eq!(v.lookup("minimega", "-1"), Err(VlanError::Invalid));
        assert_eq!(v.lookup("minimega", ""), Err(VlanError::Empty));
        assert_eq!(v.lookup("minimega", "0"), Ok(0));
        assert_eq!(v.lookup("minimega", "+7"), Ok(7));
        assert_eq!(v.blacklisted(), vec![0, 7]);
        assert_eq!(v.display("minimega", 7), "7");
        assert_eq!(v.lookup("minimega", "A"), Ok(101));
        // A number that has an alias stays the alias's.
        assert_eq!(v.lookup("minimega", "101"), Ok(101));
        assert_eq!(v.display("minimega", 101), "A (101)");
        v.blacklist(101);
        assert_eq!(v.aliases("minimega"), Vec::<(String, u16)>::new());
        assert_eq!(v.blacklisted(), vec![0, 7, 101]);
        assert_eq!(v.lookup("minimega", "A"), Ok(102));
    }

    #[test]
    fn add_alias_errors() {
        let mut v = Vlans::new();
        assert_eq!(
            v.add_alias("minimega", "a", "x"),
            Err(VlanError::ExpectedInteger)
        );
        assert_eq!(
            v.add_alias("minimega", "a", "5000"),
            Err(VlanError::Invalid)
        );
        v.blacklist(300);
        assert_eq!(
            v.add_alias("minimega", "a", "300"),
            Err(VlanError::VlanInUse)
        );
        assert_eq!(v.add_alias("ns", "other//a", "301"), Ok(()));
        assert_eq!(v.aliases("other"), vec![("a".into(), 301)]);
        assert_eq!(v.add_alias("other", "a", "302"), Err(VlanError::AliasInUse));
    }

    #[test]
    fn error_texts_are_minimegas() {
        let texts: Vec<String> = [
            VlanError::Invalid,
            VlanError::Empty,
            VlanError::OutOfVlans,
            VlanError::AliasInUse,
            VlanError::VlanInUse,
            VlanError::ExpectedInteger,
            VlanError::ExpectedIntegerRange,
            VlanError::EmptyRange,
            VlanError::RangeOverlap("foo".into()),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            texts,
            [
                "invalid VLAN (0 <= vlan < 4096)",
                "VLAN must be non-empty string",
                "out of VLANs",
                "alias already in use",
                "vlan already in use",
                "expected integer VLAN",
                "expected integer values for min/max",
                "expected min > max",
                "range overlaps with another namespace: foo",
            ]
        );
    }

    #[test]
    fn range_errors_and_default_range_skips_reserved() {
        let mut v = Vlans::new();
        assert_eq!(
            v.set_range("foo", "a", "10"),
            Err(VlanError::ExpectedIntegerRange)
        );
        assert_eq!(v.set_range("foo", "10", "10"), Err(VlanError::EmptyRange));
        assert_eq!(
            v.set_range("foo", "10", "5000"),
            Err(VlanError::RangeOutOfBounds)
        );
        assert_eq!(v.set_range("foo", "101", "103"), Ok(()));
        assert_eq!(
            v.set_range("bar", "103", "110"),
            Err(VlanError::RangeOverlap("foo".into()))
        );
        assert_eq!(v.lookup("minimega", "A"), Ok(103));
        assert_eq!(v.lookup("foo", "A"), Ok(101));
        assert_eq!(v.lookup("foo", "B"), Ok(102));
        assert_eq!(v.lookup("foo", "C"), Err(VlanError::OutOfVlans));
        assert_eq!(v.own_range("bar"), None);
        assert_eq!(v.range("bar"), (101, 4096, 103));
        // In `minimega` the range is the default one.
        assert_eq!(v.set_range("minimega", "200", "202"), Ok(()));
        assert_eq!(v.range("minimega"), (200, 202, 200));
        assert_eq!(v.lookup("bar", "A"), Ok(200));
        assert_eq!(v.lookup("bar", "B"), Ok(201));
        assert_eq!(v.lookup("bar", "C"), Err(VlanError::OutOfVlans));
    }

    #[test]
    fn clear_by_prefix_namespace_and_all() {
        let mut v = Vlans::new();
        v.set_range("foo", "500", "510").ok();
        for a in ["ab", "ac", "b"] {
            v.lookup("foo", a).ok();
        }
        v.lookup("minimega", "ab").ok();
        v.clear("foo", "a");
        assert_eq!(v.aliases("foo"), vec![("b".into(), 502)]);
        assert_eq!(v.own_range("foo"), Some((500, 510, 500)));
        assert_eq!(v.lookup("foo", "z"), Ok(500));
        v.clear("foo", "");
        assert_eq!(v.aliases("foo"), Vec::<(String, u16)>::new());
        assert_eq!(v.own_range("foo"), None);
        assert_eq!(v.aliases("minimega"), vec![("ab".into(), 101)]);
        v.set_range("minimega", "300", "400").ok();
        v.clear("minimega", "");
        assert_eq!(v.range("minimega"), (101, 4096, 101));
        v.blacklist(5);
        v.clear_all();
        assert_eq!(v.blacklisted(), Vec::<u16>::new());
    }

    #[test]
    fn file_text_is_an_aligned_table_of_full_keys() {
        let mut v = Vlans::new();
        assert_eq!(v.file_text(), "Alias VLAN\n");
        v.lookup("minimega", "A").ok();
        v.lookup("foo", "longer").ok();
        assert_eq!(
            v.file_text(),
            "Alias       VLAN\nfoo//longer 102\nminimega//A 101\n"
        );
    }
}
