//! minimega's unix-socket protocol (reference §12.3): JSON requests in, one reply message
//! per batch out, over `tokio::io::duplex` and over a real socket in the base directory.

use ferromega_tests::{TestApp, TEST_HOST};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, Lines};

/// A client end of one socket connection.
struct Conn<S> {
    lines: Lines<BufReader<tokio::io::ReadHalf<S>>>,
    w: tokio::io::WriteHalf<S>,
}

impl<S: AsyncRead + AsyncWrite> Conn<S> {
    fn new(stream: S) -> Self {
        let (r, w) = tokio::io::split(stream);
        Conn {
            lines: BufReader::new(r).lines(),
            w,
        }
    }

    async fn send(&mut self, request: &Value) {
        let mut line = serde_json::to_vec(request).expect("json");
        line.push(b'\n');
        self.w.write_all(&line).await.expect("write a request");
    }

    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("a reply within 10 s")
            .expect("read a reply")
            .expect("the server keeps the connection open");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply {line:?} is not JSON: {e}"))
    }

    /// Sends a command and reads messages until one has `More: false`.
    async fn command(&mut self, line: &str) -> Vec<Value> {
        self.send(&json!({ "Command": line })).await;
        let mut out = Vec::new();
        loop {
            let msg = self.recv().await;
            let more = msg["More"].as_bool().expect("More is a bool");
            out.push(msg);
            if !more {
                return out;
            }
        }
    }
}

/// A connection served by `serve_conn` over an in-memory pipe.
fn connect(app: &TestApp) -> Conn<tokio::io::DuplexStream> {
    let (client, server) = tokio::io::duplex(1 << 16);
    let cp = app.cp.clone();
    tokio::spawn(async move {
        let _ = ferromega_http::socket::serve_conn(cp, server).await;
    });
    Conn::new(client)
}

#[tokio::test]
async fn echo_is_one_message_with_minimega_field_names() {
    let app = TestApp::builder().plain().spawn().await;
    let mut c = connect(&app);
    let msgs = c.command("echo hi").await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0],
        json!({
            "Resp": [{
                "Host": TEST_HOST,
                "Response": "hi",
                "Header": null,
                "Tabular": null,
                "Error": "",
                "Data": null
            }],
            "Rendered": "hi",
            "More": false,
            "omitempty": null
        })
    );
}

#[tokio::test]
async fn tables_carry_header_and_rows() {
    let app = TestApp::builder().plain().spawn().await;
    let mut c = connect(&app);
    c.command("vlans add a 10").await;
    let msgs = c.command("vlans").await;
    assert_eq!(msgs[0]["Resp"][0]["Header"], json!(["alias", "vlan"]));
    assert_eq!(msgs[0]["Resp"][0]["Tabular"], json!([["a", "10"]]));
    assert_eq!(msgs[0]["Rendered"], "alias | vlan\na     | 10");
}

#[tokio::test]
async fn read_of_three_lines_streams_three_messages() {
    let app = TestApp::builder().plain().spawn().await;
    let path = app.write_file("three.mm", "echo one\necho two\necho three\n");
    let mut c = connect(&app);
    let msgs = c.command(&format!("read {}", path.display())).await;
    let rendered: Vec<&str> = msgs
        .iter()
        .map(|m| m["Rendered"].as_str().unwrap_or("?"))
        .collect();
    let more: Vec<bool> = msgs.iter().map(|m| m["More"] == true).collect();
    assert_eq!(rendered, ["one", "two", "three"]);
    assert_eq!(more, [true, true, false]);
}

#[tokio::test]
async fn blank_and_comment_commands_answer_resp_null() {
    let app = TestApp::spawn().await;
    let mut c = connect(&app);
    for line in ["   ", "# only a comment"] {
        let msgs = c.command(line).await;
        assert_eq!(
            msgs,
            [json!({"Resp": null, "Rendered": "", "More": false, "omitempty": null})],
            "{line:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_command_is_one_response_with_the_error() {
    let app = TestApp::spawn().await;
    let mut c = connect(&app);
    let msgs = c.command("vm foo").await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["Resp"][0]["Error"], "invalid command: `vm foo`");
    assert_eq!(msgs[0]["Resp"][0]["Host"], TEST_HOST);
    assert_eq!(msgs[0]["Rendered"], "");
}

#[tokio::test]
async fn suggestions_come_back_under_the_omitempty_key() {
    let app = TestApp::spawn().await;
    let mut c = connect(&app);
    c.send(&json!({"Suggest": "vm st"})).await;
    let msg = c.recv().await;
    assert_eq!(
        msg,
        json!({"Resp": null, "Rendered": "", "More": false, "omitempty": ["vm start ", "vm stop "]})
    );
}

#[tokio::test]
async fn neither_command_nor_suggest_is_an_error() {
    let app = TestApp::spawn().await;
    let mut c = connect(&app);
    for req in [json!({}), json!({"Command": "", "Suggest": ""})] {
        c.send(&req).await;
        let msg = c.recv().await;
        assert_eq!(
            msg["Resp"][0]["Error"], "must specify either command or suggest",
            "{req}"
        );
        assert_eq!(msg["More"], false);
    }
}

#[tokio::test]
async fn garbage_requests_get_an_error_and_the_connection_lives_on() {
    let app = TestApp::builder().plain().spawn().await;
    let (client, server) = tokio::io::duplex(1 << 16);
    let cp = app.cp.clone();
    tokio::spawn(async move {
        let _ = ferromega_http::socket::serve_conn(cp, server).await;
    });
    let mut c = Conn::new(client);
    c.w.write_all(b"this is not json\n").await.expect("write");
    let msg = c.recv().await;
    assert!(
        msg["Resp"][0]["Error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{msg}"
    );
    let msgs = c.command("echo alive").await;
    assert_eq!(msgs[0]["Rendered"], "alive");
}

#[tokio::test]
async fn namespace_sticks_to_the_connection() {
    let app = TestApp::builder().plain().spawn().await;
    let mut c = connect(&app);
    assert_eq!(
        c.command("namespace foo").await,
        [json!({"Resp": null, "Rendered": "", "More": false, "omitempty": null})]
    );
    c.command("vlans add a 10").await;
    let msgs = c.command("vlans").await;
    assert_eq!(msgs[0]["Rendered"], "alias | vlan\na     | 10");
    // The alias lives in foo, not in the default namespace.
    assert_eq!(app.out("vlans").await, "");
    assert_eq!(
        app.out("namespace foo vlans").await,
        "alias | vlan\na     | 10\n"
    );
    // Another connection starts in the default namespace.
    let mut other = connect(&app);
    assert_eq!(other.command("vlans").await[0]["Rendered"], "");
    let msgs = c.command("namespace foo").await;
    assert_eq!(msgs[0]["Resp"][0]["Error"], "already in namespace: foo");
}

#[tokio::test]
async fn the_real_socket_in_the_base_directory_speaks_the_same_protocol() {
    let app = TestApp::builder().plain().spawn().await;
    let path = app.base.join("minimega");
    let cp = app.cp.clone();
    let sock = path.clone();
    let server = tokio::spawn(async move {
        let _ = ferromega_http::socket::serve(cp, &sock).await;
    });
    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = tokio::net::UnixStream::connect(&path).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut c = Conn::new(stream.expect("the socket accepts connections"));
    let msgs = c.command("echo over the socket").await;
    assert_eq!(msgs[0]["Rendered"], "over the socket");
    // Two clients at once.
    let mut d = Conn::new(
        tokio::net::UnixStream::connect(&path)
            .await
            .expect("second connection"),
    );
    assert_eq!(d.command("echo second").await[0]["Rendered"], "second");
    assert_eq!(c.command("echo first").await[0]["Rendered"], "first");
    server.abort();
}
