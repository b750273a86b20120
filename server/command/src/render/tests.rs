//! Tests of the renderer: exact strings from minimega's `.want` files, sorting, CSV, JSON,
//! compression, and the `.filter`/`.columns` forms and errors.
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
