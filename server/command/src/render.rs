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
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    fn table(host: &str, header: &[&str], rows: &[&[&str]]) -> Response {
        Response::table(host, row(header), rows.iter().map(|r| row(r)).collect())
    }

    fn plain() -> Flags {
        Flags {
            annotate: false,
            ..Flags::default()
        }
    }

    #[test]
    fn text_table_pads_columns_to_min_width_five() {
        let r = table("h", &["alias", "vlan"], &[&["A", "102"]]);
        assert_eq!(render(&[r], &plain()), "alias | vlan\nA     | 102");
        let r = table("h", &["name", "state"], &[&["foo0", "BUILDING"]]);
        assert_eq!(render(&[r], &plain()), "name | state\nfoo0 | BUILDING");
    }

    #[test]
    fn text_table_separator_counts_in_inner_column_width() {
        let r = table(
            "h",
            &["ip", "ip6", "name"],
            &[&["[]", "[]", "foo1"], &["[]", "[]", "foo2"]],
        );
        assert_eq!(
            render(&[r], &plain()),
            "ip   | ip6 | name\n[]   | []  | foo1\n[]   | []  | foo2"
        );
    }

    #[test]
    fn text_table_empty_first_cells_are_padded() {
        let r = table("h", &["dir", "name", "size"], &[&["", "bar", "0"]]);
        assert_eq!(
            render(&[r], &plain()),
            "dir  | name | size\n     | bar  | 0"
        );
    }

    #[test]
    fn text_table_final_trim_drops_trailing_separator_space() {
        let r = table("h", &["id", "responses", "filter"], &[&["1", "1", ""]]);
        assert_eq!(
            render(&[r], &plain()),
            "id   | responses | filter\n1    | 1         |"
        );
    }

    #[test]
    fn single_column_table_without_headers() {
        let r = table("h", &["name"], &[&["foo1"], &["bar"]]);
        let flags = Flags {
            headers: false,
            ..plain()
        };
        assert_eq!(render(&[r], &flags), "bar\nfoo1");
    }

    #[test]
    fn annotate_prepends_host_column_and_sorts_by_it() {
        let a = table("mm2", &["id"], &[&["1"]]);
        let b = table("mm1", &["id"], &[&["7"]]);
        assert_eq!(
            render(&[a, b], &Flags::default()),
            "host | id\nmm1  | 7\nmm2  | 1"
        );
    }

    #[test]
    fn sort_compares_integer_cells_numerically() {
        let r = table(
            "h",
            &["id", "name"],
            &[&["10", "x"], &["9", "y"], &["1", "z"]],
        );
        assert_eq!(
            render(std::slice::from_ref(&r), &plain()),
            "id   | name\n1    | z\n9    | y\n10   | x"
        );
        let unsorted = Flags {
            sort: false,
            ..plain()
        };
        assert_eq!(
            render(&[r], &unsorted),
            "id   | name\n10   | x\n9    | y\n1    | z"
        );
    }

    #[test]
    fn csv_mode_writes_rfc4180_with_header() {
        let r = table(
            "h",
            &["name", "state"],
            &[&["foo2", "RUNNING"], &["bar", "a,\"b\""]],
        );
        let flags = Flags {
            mode: Mode::Csv,
            ..plain()
        };
        assert_eq!(
            render(std::slice::from_ref(&r), &flags),
            "name,state\nbar,\"a,\"\"b\"\"\"\nfoo2,RUNNING"
        );
        let flags = Flags {
            headers: false,
            ..flags
        };
        assert!(render(&[r], &flags).starts_with("bar,"));
    }

    #[test]
    fn json_mode_uses_go_field_names_and_nulls() {
        let mut r = Response::text("h1", "a<b");
        r.data = Some(serde_json::json!({"x": 1}));
        let flags = Flags {
            mode: Mode::Json,
            ..plain()
        };
        assert_eq!(
            render(&[r], &flags),
            r#"[{"Host":"h1","Response":"a\u003cb","Header":null,"Tabular":null,"Error":"","Data":{"x":1}}]"#
        );
        let t = table("h", &["id"], &[&["1"]]);
        assert!(render(&[t], &flags).contains(r#""Header":["id"],"Tabular":[["1"]]"#));
    }

    #[test]
    fn compress_groups_identical_responses_by_host_range() {
        let resps: Vec<Response> = ["mm1", "mm2", "mm3"]
            .iter()
            .map(|h| Response::text(h, "hello"))
            .collect();
        assert_eq!(render(&resps, &Flags::default()), "mm[1-3]: hello");
        assert_eq!(render(&resps, &plain()), "hello");
        let mixed = vec![
            Response::text("b", "x"),
            Response::text("a", "y"),
            Response::text("c", "x"),
        ];
        assert_eq!(render(&mixed, &Flags::default()), "a: y\nb,c: x");
    }

    #[test]
    fn simple_responses_one_per_line_with_annotation() {
        let resps = vec![Response::text("a", "x"), Response::text("b", "x")];
        let flags = Flags {
            compress: false,
            ..Flags::default()
        };
        assert_eq!(render(&resps, &flags), "a: x\nb: x");
        assert_eq!(render(&[Response::text("a", "  x\n")], &plain()), "x");
    }

    #[test]
    fn errors_and_empty_tables_render_nothing() {
        assert_eq!(
            render(&[Response::error("h", "boom")], &Flags::default()),
            ""
        );
        assert_eq!(
            render(&[table("h", &["id", "name"], &[])], &Flags::default()),
            ""
        );
        assert_eq!(render(&[], &Flags::default()), "");
    }

    #[test]
    fn header_width_and_mix_errors_are_rendered_text() {
        let a = table("a", &["id"], &[&["1"]]);
        let b = table("b", &["name"], &[&["x"]]);
        assert_eq!(
            render(&[a.clone(), b], &plain()),
            "header mismatch, hosts: a, b"
        );
        let bad = table("c", &["id"], &[&["1"], &["1", "2"]]);
        assert_eq!(
            render(&[bad], &plain()),
            "tabular width mismatch, host: c, row: 1"
        );
        let mut simple = Response::text("s", "x");
        simple.error = String::new();
        let headerless = Response {
            tabular: vec![row(&["1"])],
            ..Response::new("t")
        };
        assert_eq!(
            render(&[simple, headerless], &plain()),
            "responses mix simple and tabular data"
        );
    }

    #[test]
    fn tabwrite_tab_padding_matches_go() {
        assert_eq!(
            tabwrite("ab \t :\t x \t\n", 0, 8, 0, '\t'),
            "ab \t :\t x \t\n"
        );
        assert_eq!(tabwrite("abcdefgh\tx\n", 0, 8, 0, '\t'), "abcdefghx\n");
    }

    fn vms() -> Vec<Response> {
        vec![table(
            "h",
            &["id", "name", "state", "ip"],
            &[
                &["0", "foo1", "BUILDING", "[]"],
                &["1", "bar", "RUNNING", "[10.0.0.1]"],
            ],
        )]
    }

    #[test]
    fn filter_forms_match_case_insensitively() {
        let names = |spec: &str| {
            let mut r = vms();
            filter(&mut r, spec).expect("filters");
            r[0].tabular
                .iter()
                .map(|row| row[1].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("name=BAR"), ["bar"]);
        assert_eq!(names("name!=bar"), ["foo1"]);
        assert!(names("name=foo").is_empty());
        assert_eq!(names("name~fo"), ["foo1"]);
        assert_eq!(names("name!~fo"), ["bar"]);
        assert_eq!(names("ip=10.0"), ["bar"]);
        assert_eq!(names("st=running"), ["bar"]);
    }

    #[test]
    fn filter_errors_have_minicli_texts() {
        let mut r = vms();
        assert_eq!(
            filter(&mut r, "nope").unwrap_err().to_string(),
            "invalid filter, see help"
        );
        assert_eq!(
            filter(&mut r, "i=1").unwrap_err().to_string(),
            "ambiguous column `i`"
        );
        assert_eq!(
            filter(&mut r, "x=1").unwrap_err().to_string(),
            "no such column `x`"
        );
    }

    #[test]
    fn filter_host_drops_whole_responses_and_passes_others() {
        let mut r = vec![
            Response::text("mm1", "a"),
            Response::text("mm2", "b"),
            Response::error("mm3", "e"),
        ];
        filter(&mut r, "host=mm2").expect("filters");
        assert_eq!(r.len(), 1);
        let mut r = vec![Response::text("mm1", "a"), Response::error("mm3", "e")];
        filter(&mut r, "name=x").expect("filters");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn columns_projects_in_order_with_full_names() {
        let mut r = vms();
        columns(&mut r, "st,na").expect("projects");
        assert_eq!(r[0].header, ["state", "name"]);
        assert_eq!(r[0].tabular[0], ["BUILDING", "foo1"]);
        assert_eq!(
            render(&r, &plain()),
            "state    | name\nBUILDING | foo1\nRUNNING  | bar"
        );
    }

    #[test]
    fn columns_errors_name_the_first_bad_column() {
        let mut r = vms();
        assert_eq!(
            columns(&mut r, "i,s").unwrap_err().to_string(),
            "ambiguous column `i`"
        );
        assert_eq!(
            columns(&mut r, "name,zz").unwrap_err().to_string(),
            "no such column `zz`"
        );
        assert_eq!(r, vms());
    }
}
