//! Tests of the auth file: its format, edits that keep comments, refused edits that
//! change nothing, argon2.

use super::*;

fn tempfile() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("fm-auth-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("auth");
    (dir, path)
}

#[test]
fn add_then_check_tokens() {
    let (dir, path) = tempfile();
    let alice = add_token(&path, "alice").unwrap();
    let bob = add_token(&path, "bob").unwrap();
    assert_eq!(alice.len(), 64);
    assert_ne!(alice, bob);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&alice), "the file must keep only hashes");
    assert!(text.contains("token alice sha256:"));
    let file = AuthFile::load(&path).unwrap();
    assert_eq!(file.len(), 2);
    assert_eq!(file.check_token(&alice), Some("alice"));
    assert_eq!(file.check_token(&bob), Some("bob"));
    assert_eq!(file.check_token("nope"), None);
    assert_eq!(file.check_token(""), None);
    assert_eq!(
        file.rules_of("alice"),
        None,
        "a token without rules is let in"
    );
    assert!(matches!(add_token(&path, "alice"), Err(AuthError::Name(_))));
    assert!(matches!(add_token(&path, "a b"), Err(AuthError::Name(_))));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn users_rules_and_comments_survive_edits() {
    let (dir, path) = tempfile();
    std::fs::write(&path, "# people of the lab\n").unwrap();
    add_user(&path, "alice", "s3cret").unwrap();
    allow(&path, "alice", "/api/v1/namespaces/foo/", Access::Ro).unwrap();
    allow(&path, "alice", "/ns/foo/", Access::Ro).unwrap();
    allow(&path, "alice", "/api/v1/namespaces/foo/", Access::Rw).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# people of the lab\nuser alice $argon2id$"),
        "{text}"
    );
    assert!(!text.contains("s3cret"));
    assert_eq!(text.matches("allow alice").count(), 2, "{text}");
    let file = AuthFile::load(&path).unwrap();
    let phc = file.password_hash("alice").unwrap();
    assert!(verify_password(phc, "s3cret"));
    assert!(!verify_password(phc, "S3cret"));
    assert!(!verify_password("garbage", "s3cret"));
    assert!(decoy_hash().starts_with("$argon2id$"));
    assert!(!verify_password(decoy_hash(), "s3cret"));
    let rules = file.rules_of("alice").unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].access, Access::Rw);
    // A new password replaces the old; the rules stay.
    add_user(&path, "alice", "other").unwrap();
    let file = AuthFile::load(&path).unwrap();
    assert!(verify_password(
        file.password_hash("alice").unwrap(),
        "other"
    ));
    assert_eq!(file.rules_of("alice").unwrap().len(), 2);
    deny(&path, "alice", "/ns/foo/").unwrap();
    assert!(deny(&path, "alice", "/ns/foo/").is_err());
    let file = AuthFile::load(&path).unwrap();
    assert_eq!(file.rules_of("alice").unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_edits_are_refused_and_change_nothing() {
    let (dir, path) = tempfile();
    add_user(&path, "alice", "pw").unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    assert!(matches!(
        add_user(&path, "bob", ""),
        Err(AuthError::Password(_))
    ));
    assert!(matches!(
        allow(&path, "nobody", "/", Access::Rw),
        Err(AuthError::Unknown(_))
    ));
    assert!(matches!(
        allow(&path, "alice", "ns/foo", Access::Rw),
        Err(AuthError::Rule(_))
    ));
    assert!(matches!(add_token(&path, "alice"), Err(AuthError::Name(_))));
    add_token(&path, "ci").unwrap();
    assert!(matches!(
        add_user(&path, "ci", "pw"),
        Err(AuthError::Name(_))
    ));
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(after.starts_with(&before));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parse_rejects_bad_lines_and_skips_comments() {
    let p = Path::new("t");
    let h = hex(&hash_token("secret"));
    let ok = AuthFile::parse(p, &format!("# c\n\ntoken x sha256:{h}\n")).unwrap();
    assert_eq!(ok.check_token("secret"), Some("x"));
    assert!(AuthFile::parse(p, "token x sha256:abc\n").is_err());
    assert!(AuthFile::parse(p, &format!("tokens x sha256:{h}\n")).is_err());
    assert!(AuthFile::parse(p, &format!("token x {h}\n")).is_err());
    assert!(AuthFile::parse(p, "user x not-a-phc-string\n").is_err());
    let dup = format!("token x sha256:{h}\ntoken x sha256:{h}\n");
    assert!(matches!(
        AuthFile::parse(p, &dup),
        Err(AuthError::Syntax { line: 2, .. })
    ));
    let t = format!("token x sha256:{h}\n");
    assert!(AuthFile::parse(p, &format!("{t}allow x /a rx\n")).is_err());
    assert!(AuthFile::parse(p, &format!("{t}allow x a rw\n")).is_err());
    assert!(matches!(
        AuthFile::parse(p, &format!("{t}allow y /a rw\n")),
        Err(AuthError::Unknown(_))
    ));
    let err = AuthFile::parse(p, &format!("token x sha256:{h} extra\n"));
    assert!(matches!(err, Err(AuthError::Syntax { line: 1, .. })));
    // A token with rules is limited to them.
    let limited = AuthFile::parse(p, &format!("{t}allow x /ns/a ro\n")).unwrap();
    assert_eq!(limited.rules_of("x").map(|r| r.len()), Some(1));
    assert_eq!(limited.render(), format!("{t}allow x /ns/a ro\n"));
}

#[test]
fn known_sha256() {
    assert_eq!(
        hex(&hash_token("abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
