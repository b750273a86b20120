//! Rendering a batch of responses to minimega's `Rendered` text, and the `.filter`/`.columns` builtins (§12.2, §1.5).
//!
//! Byte-exact with minicli: tables go through a port of Go's `text/tabwriter`
//! (min width 5, padding 1, cells separated by `\t| `), CSV follows Go's
//! `encoding/csv`, JSON uses Go's capitalised field names and HTML escaping.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::ranges;
use crate::Response;

/// How tables are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Aligned text columns.
    #[default]
    Text,
    /// RFC 4180 CSV.
    Csv,
    /// The JSON array of responses.
    Json,
}

/// minicli's output flags (`.annotate`, `.compress` …) for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// Prefix host names (a `host` column or `host: `).
    pub annotate: bool,
    /// Merge identical simple responses of several hosts.
    pub compress: bool,
    /// Print the header row of tables.
    pub headers: bool,
    /// Sort table rows.
    pub sort: bool,
    /// Run the preprocessor on arguments (not used by rendering).
    pub preprocess: bool,
    /// Record the command in history (not used by rendering).
    pub record: bool,
    /// Output mode.
    pub mode: Mode,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            annotate: true,
            compress: true,
            headers: true,
            sort: true,
            preprocess: true,
            record: true,
            mode: Mode::Text,
        }
    }
}

/// A response as Go's `encoding/json` writes it (nil slices → `null`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GoResponse<'a> {
    host: &'a str,
    response: &'a str,
    header: Option<&'a Vec<String>>,
    tabular: Option<&'a Vec<Vec<String>>>,
    error: &'a str,
    data: &'a Option<serde_json::Value>,
}

fn render_json(resps: &[Response]) -> String {
    let go: Vec<GoResponse> = resps
        .iter()
        .map(|r| GoResponse {
            host: &r.host,
            response: &r.response,
            header: (!r.header.is_empty()).then_some(&r.header),
            tabular: (!r.tabular.is_empty()).then_some(&r.tabular),
            error: &r.error,
            data: &r.data,
        })
        .collect();
    match serde_json::to_string(&go) {
        // These characters only occur inside JSON strings, where Go escapes them.
        Ok(s) => s
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029"),
        Err(e) => e.to_string(),
    }
}

/// Whether a response carries a table (minicli: non-nil header or rows).
fn is_table(r: &Response) -> bool {
    !r.header.is_empty() || !r.tabular.is_empty()
}

/// Render one batch exactly as minicli's `Responses.String()`; errors are not included.
pub fn render(resps: &[Response], flags: &Flags) -> String {
    if resps.is_empty() {
        return String::new();
    }
    if flags.mode == Mode::Json {
        return render_json(resps);
    }
    for pair in resps.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if !a.error.is_empty() || !b.error.is_empty() {
            continue;
        }
        if a.header != b.header {
            return format!("header mismatch, hosts: {}, {}", a.host, b.host);
        }
    }
    let header = resps
        .iter()
        .find(|r| r.error.is_empty() && !r.header.is_empty())
        .map(|r| &r.header);
    let (mut simple, mut tabular) = (false, false);
    for r in resps.iter().filter(|r| r.error.is_empty()) {
        if !is_table(r) {
            simple = true;
            continue;
        }
        tabular = true;
        if let Some(h) = header {
            if let Some(j) = r.tabular.iter().position(|row| row.len() != h.len()) {
                return format!("tabular width mismatch, host: {}, row: {j}", r.host);
            }
        }
    }
    if simple && tabular {
        return "responses mix simple and tabular data".to_string();
    }
    let rows: usize = resps.iter().map(|r| r.tabular.len()).sum();
    let text = if tabular && rows > 0 {
        render_table(resps, header.map(Vec::as_slice).unwrap_or(&[]), flags)
    } else if flags.compress && resps.len() > 1 {
        render_compressed(resps, flags)
    } else {
        let mut out = String::new();
        for r in resps
            .iter()
            .filter(|r| r.error.is_empty() && !r.response.is_empty())
        {
            if flags.annotate {
                out.push_str(&r.host);
                out.push_str(": ");
            }
            out.push_str(&r.response);
            out.push('\n');
        }
        out
    };
    text.trim().to_string()
}

fn render_table(resps: &[Response], header: &[String], flags: &Flags) -> String {
    let mut header = header.to_vec();
    if flags.annotate {
        header.insert(0, "host".to_string());
    }
    let mut data: Vec<Vec<String>> = Vec::new();
    for r in resps {
        for row in &r.tabular {
            let mut row = row.clone();
            if flags.annotate {
                row.insert(0, r.host.clone());
            }
            data.push(row);
        }
    }
    if flags.sort {
        data.sort_by(|a, b| compare_rows(a, b));
    }
    let mut lines: Vec<&[String]> = Vec::new();
    if flags.headers {
        lines.push(&header);
    }
    lines.extend(data.iter().map(Vec::as_slice));
    if flags.mode == Mode::Csv {
        return lines.iter().map(|row| csv_record(row)).collect();
    }
    let mut text = String::new();
    for row in lines {
        text.push_str(&row.join("\t| "));
        text.push('\n');
    }
    tabwrite(&text, 5, 0, 1, ' ')
}

/// minicli's row order: cell by cell; two integer cells compare numerically.
fn compare_rows(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x == y {
            continue;
        }
        return match (go_atoi(x), go_atoi(y)) {
            (Some(v), Some(w)) => v.cmp(&w),
            _ => x.cmp(y),
        };
    }
    Ordering::Equal
}

/// Go's `strconv.Atoi`: optional sign, ASCII digits, 64-bit range.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One record as Go's `csv.Writer` writes it (LF line ends).
fn csv_record(row: &[String]) -> String {
    let fields: Vec<String> = row
        .iter()
        .map(|f| {
            let quote = !f.is_empty()
                && (f == r"\."
                    || f.contains([',', '"', '\r', '\n'])
                    || f.starts_with(char::is_whitespace));
            if quote {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    format!("{}\n", fields.join(","))
}

fn render_compressed(resps: &[Response], flags: &Flags) -> String {
    // Identical texts grouped, in first-seen order, with their hosts.
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for r in resps
        .iter()
        .filter(|r| r.error.is_empty() && !r.response.is_empty())
    {
        match groups.iter_mut().find(|(text, _)| *text == r.response) {
            Some((_, hosts)) => hosts.push(r.host.clone()),
            None => groups.push((&r.response, vec![r.host.clone()])),
        }
    }
    let keyed: BTreeMap<String, &str> = groups
        .into_iter()
        .map(|(text, hosts)| {
            let key = if hosts.len() == 1 {
                hosts[0].clone()
            } else {
                ranges::compress(&hosts)
            };
            (key, text)
        })
        .collect();
    let mut out = String::new();
    for (hosts, text) in keyed {
        if flags.annotate {
            out.push_str(&hosts);
            out.push_str(": ");
        }
        out.push_str(text);
        out.push('\n');
    }
    out
}

/// A cell of the tabwriter: its text and width in runes.
///
/// Go also records whether a tab ended the cell, which only matters for
/// `DiscardEmptyColumns`, a flag minicli does not use.
struct Cell {
    text: String,
    width: usize,
}

/// A port of Go's `text/tabwriter` (flags 0) applied to a whole text.
struct TabWriter {
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    padchar: char,
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    out: String,
}

impl TabWriter {
    fn terminate_cell(&mut self, cell: &mut String) -> usize {
        let text = std::mem::take(cell);
        let width = text.chars().count();
        let line = self.lines.last_mut();
        match line {
            Some(line) => {
                line.push(Cell { text, width });
                line.len()
            }
            None => 0,
        }
    }

    fn flush(&mut self) {
        let n = self.lines.len();
        self.format(0, n);
        self.lines = vec![Vec::new()];
        self.widths.clear();
    }

    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < self.lines[this].len() {
                width = width.max(self.lines[this][column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, c) in self.lines[i].iter().enumerate() {
                self.out.push_str(&c.text);
                if let Some(&cellw) = self.widths.get(j) {
                    let pad = if self.padchar == '\t' {
                        if self.tabwidth == 0 {
                            0
                        } else {
                            let cellw = cellw.div_ceil(self.tabwidth) * self.tabwidth;
                            (cellw - c.width).div_ceil(self.tabwidth)
                        }
                    } else {
                        cellw.saturating_sub(c.width)
                    };
                    self.out.extend(std::iter::repeat_n(self.padchar, pad));
                }
            }
            if i + 1 != self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

/// Format `text` as Go's tabwriter with the given parameters would, then flush.
pub fn tabwrite(
    text: &str,
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    padchar: char,
) -> String {
    let mut w = TabWriter {
        minwidth,
        tabwidth,
        padding,
        padchar,
        lines: vec![Vec::new()],
        widths: Vec::new(),
        out: String::new(),
    };
    let mut cell = String::new();
    for c in text.chars() {
        match c {
            '\t' | '\u{b}' => {
                w.terminate_cell(&mut cell);
            }
            '\n' | '\u{c}' => {
                let ncells = w.terminate_cell(&mut cell);
                w.lines.push(Vec::new());
                if c == '\u{c}' || ncells == 1 {
                    w.flush();
                }
            }
            c => cell.push(c),
        }
    }
    if !cell.is_empty() {
        w.terminate_cell(&mut cell);
    }
    w.flush();
    w.out
}

/// Why `.filter` or `.columns` failed; texts are minicli's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FilterError {
    /// The filter is not `col=val`, `col!=val`, `col~val` or `col!~val`.
    #[error("invalid filter, see help")]
    Invalid,
    /// The column prefix names several columns.
    #[error("ambiguous column `{0}`")]
    Ambiguous(String),
    /// No column has that name or prefix.
    #[error("no such column `{0}`")]
    NoSuchColumn(String),
}

/// A parsed `.filter` expression.
struct Filter {
    col: String,
    val: String,
    negate: bool,
    fuzzy: bool,
}

impl Filter {
    fn parse(spec: &str) -> Result<Filter, FilterError> {
        for (sep, negate, fuzzy) in [
            ("!~", true, true),
            ("~", false, true),
            ("!=", true, false),
            ("=", false, false),
        ] {
            let parts: Vec<&str> = spec.split(sep).collect();
            if let [col, val] = parts[..] {
                return Ok(Filter {
                    col: col.to_lowercase(),
                    val: val.to_lowercase(),
                    negate,
                    fuzzy,
                });
            }
        }
        Err(FilterError::Invalid)
    }

    fn matches(&self, s: &str) -> bool {
        let s = s.to_lowercase();
        let listy =
            (s.starts_with('[') && s.ends_with(']')) || (s.starts_with('{') && s.ends_with('}'));
        let hit = s == self.val || ((listy || self.fuzzy) && s.contains(&self.val));
        self.negate != hit
    }
}

/// Index of `column` in `header`: exact (case-insensitive) or a unique prefix.
fn find_column(header: &[String], column: &str) -> Result<usize, FilterError> {
    let mut found = None;
    for (i, h) in header.iter().enumerate() {
        let h = h.to_lowercase();
        if h == column {
            return Ok(i);
        }
        if h.starts_with(column) {
            if found.is_some() {
                return Err(FilterError::Ambiguous(column.to_string()));
            }
            found = Some(i);
        }
    }
    found.ok_or_else(|| FilterError::NoSuchColumn(column.to_string()))
}

/// Apply `.filter <spec>` to a batch: keep matching rows (or, for column `host`, matching responses).
pub fn filter(resps: &mut Vec<Response>, spec: &str) -> Result<(), FilterError> {
    let f = Filter::parse(spec)?;
    let mut kept = Vec::with_capacity(resps.len());
    for r in resps.iter() {
        if f.col == "host" {
            if f.matches(&r.host) {
                kept.push(r.clone());
            }
            continue;
        }
        if r.header.is_empty() || r.tabular.is_empty() {
            kept.push(r.clone());
            continue;
        }
        let i = find_column(&r.header, &f.col)?;
        let mut r = r.clone();
        r.tabular
            .retain(|row| row.get(i).is_some_and(|v| f.matches(v)));
        kept.push(r);
    }
    *resps = kept;
    Ok(())
}

/// Apply `.columns <a,b>` to a batch: project tables onto those columns, in that order.
pub fn columns(resps: &mut Vec<Response>, spec: &str) -> Result<(), FilterError> {
    // As in minicli, resolved full names replace the requested ones for later responses too.
    let mut cols: Vec<String> = spec.split(',').map(str::to_string).collect();
    let mut out = resps.clone();
    for r in out.iter_mut() {
        if r.header.is_empty() {
            continue;
        }
        if r.tabular.is_empty() {
            r.header = cols.clone();
            continue;
        }
        let mut tabular = vec![Vec::with_capacity(cols.len()); r.tabular.len()];
        for col in cols.iter_mut() {
            let j = find_column(&r.header, col)?;
            *col = r.header[j].clone();
            for (k, row) in r.tabular.iter().enumerate() {
                tabular[k].push(row.get(j).cloned().unwrap_or_default());
            }
        }
        r.tabular = tabular;
        r.header = cols.clone();
    }
    *resps = out;
    Ok(())
}

#[cfg(test)]
mod tests;
