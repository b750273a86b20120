//! The files directory over HTTP (`GET`/`PUT /api/v1/files/{path}`) against a TestApp:
//! downloads and uploads stay inside the files directory — `..`, a symlink out of it, an
//! existing file or a folder are refused with the one error body and change nothing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use ferromega_tests::TestApp;

async fn put(app: &TestApp, path: &str, body: &'static str) -> (u16, String) {
    let r = reqwest::Client::new()
        .put(app.url(&format!("/api/v1/files/{path}")))
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let r = reqwest::get(app.url(&format!("/api/v1/files/{path}")))
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn an_upload_lands_in_the_files_directory_and_downloads_back() {
    let app = TestApp::spawn().await;
    let (status, text) = put(&app, "images%2Fnotes.txt", "hello\n").await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(
        std::fs::read_to_string(app.files_dir.join("images/notes.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(get(&app, "images/notes.txt").await, (200, "hello\n".into()));
    assert_eq!(
        get(&app, "images%2Fnotes.txt").await,
        (200, "hello\n".into())
    );
    // `file list` sees it, as the files page does.
    let out = app.out("file list images").await;
    assert!(out.contains("notes.txt"), "{out}");
    // Never over an existing file.
    let (status, text) = put(&app, "images%2Fnotes.txt", "other\n").await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("file exists: images/notes.txt"), "{text}");
    assert_eq!(
        std::fs::read_to_string(app.files_dir.join("images/notes.txt")).unwrap(),
        "hello\n"
    );
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(app.files_dir.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
}

#[tokio::test]
async fn paths_out_of_the_files_directory_are_refused() {
    let app = TestApp::spawn().await;
    let outside = app.files_dir.parent().unwrap();
    for path in [
        "..%2Fescape.txt",
        "a%2F..%2F..%2Fescape.txt",
        "%2Fetc%2F..%2F..%2Fx",
    ] {
        let (status, text) = put(&app, path, "x").await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains("path leaves the files directory"), "{text}");
    }
    assert!(!outside.join("escape.txt").exists());
    assert!(!app.files_dir.join("escape.txt").exists());
    let (status, text) = get(&app, "..%2Fferromega.pid").await;
    assert_eq!(status, 400, "{text}");

    // A symlink inside pointing out: neither read nor written through.
    std::fs::write(outside.join("secret"), "secret\n").unwrap();
    std::os::unix::fs::symlink(outside, app.files_dir.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), app.files_dir.join("s")).unwrap();
    let (status, text) = get(&app, "s").await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = get(&app, "out%2Fsecret").await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = put(&app, "out%2Fnew.txt", "x").await;
    assert_eq!(status, 400, "{text}");
    assert!(!outside.join("new.txt").exists());
}

#[tokio::test]
async fn folders_and_missing_files_are_not_downloads_or_upload_targets() {
    let app = TestApp::spawn().await;
    app.write_file("dir/a.txt", "a");
    assert_eq!(get(&app, "dir").await.0, 404);
    assert_eq!(get(&app, "nope.txt").await.0, 404);
    let (status, text) = put(&app, "dir", "x").await;
    assert_eq!(status, 409, "{text}");
    let (status, text) = put(&app, "dir%2F", "x").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("an upload needs a file name"), "{text}");
}
